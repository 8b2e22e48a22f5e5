"""Test PKI (root CA -> intermediate CA -> server certificate) built with trustme.

The server certificate covers ``cam.test``, ``localhost`` and ``127.0.0.1`` and is served
with its full chain (leaf + intermediate), like a Let's Encrypt certificate. trustme
adds the extensions (basicConstraints, keyUsage, SAN, AKI/SKI, extendedKeyUsage) that
Python 3.13's strict X.509 verification requires.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme

DEFAULT_IDENTITIES = ("cam.test", "localhost", "127.0.0.1")


class TestPki:
    """A root CA, an intermediate CA and one server certificate issued by the latter."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, identities: tuple[str, ...] = DEFAULT_IDENTITIES) -> None:
        """Create the CAs and the server certificate (ECDSA P-256, fast)."""
        self.identities = identities
        self.root_ca = trustme.CA(organization_name="alexa_cam_bridge test root")
        self.intermediate_ca = self.root_ca.create_child_ca()
        self.server_cert = self.intermediate_ca.issue_cert(*identities, common_name=identities[0])

    @property
    def ca_pem(self) -> bytes:
        """The root CA certificate (PEM), the trust anchor of clients."""
        return bytes(self.root_ca.cert_pem.bytes())

    @property
    def chain_pem(self) -> bytes:
        """Leaf + intermediate certificates (PEM), what a server sends."""
        return b"".join(bytes(blob.bytes()) for blob in self.server_cert.cert_chain_pems)

    @property
    def key_pem(self) -> bytes:
        """The server's private key (PEM, unencrypted)."""
        return bytes(self.server_cert.private_key_pem.bytes())

    def server_context(self) -> ssl.SSLContext:
        """A TLS 1.2+ server context that serves the full chain."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.server_cert.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A TLS 1.2+ client context that verifies against the root CA (strict X.509)."""
        context = ssl.create_default_context()
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.root_ca.configure_trust(context)
        return context

    def ca_pem_path(self, tmp_dir: Path) -> Path:
        """Write the root CA certificate to ``tmp_dir/ca.pem`` and return its path."""
        path = Path(tmp_dir) / "ca.pem"
        path.write_bytes(self.ca_pem)
        return path

    def write_chain_and_key(self, directory: Path) -> tuple[Path, Path]:
        """Write ``fullchain.pem`` (leaf + intermediate) and ``privkey.pem``; return both."""
        chain_path = Path(directory) / "fullchain.pem"
        key_path = Path(directory) / "privkey.pem"
        chain_path.write_bytes(self.chain_pem)
        key_path.write_bytes(self.key_pem)
        key_path.chmod(0o600)
        return chain_path, key_path
