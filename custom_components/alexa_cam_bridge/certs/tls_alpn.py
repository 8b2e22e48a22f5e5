"""ACME TLS-ALPN-01 (RFC 8737): the challenge certificate and the front door's handler.

The ACME server connects to the stream port with ALPN ``acme-tls/1`` and SNI set to the
name being validated. The front door peeks that ClientHello and asks :meth:`handler`
for an ``SSLContext``; it serves a self-signed certificate for the name carrying the
critical ``acmeIdentifier`` extension (OID 1.3.6.1.5.5.7.1.31) whose value is the DER
OCTET STRING of SHA-256(key authorization), negotiates ``acme-tls/1`` and closes.
Normal ClientHellos never reach this module, so streaming goes on during validation.
"""

from __future__ import annotations

import hashlib
import ssl
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ..front_door import ClientHelloInfo
from .acme_client import CHALLENGE_TLS_ALPN_01
from .material import context_from_pem, private_key_pem, self_signed_builder

ACME_TLS_ALPN_PROTOCOL = "acme-tls/1"
ACME_IDENTIFIER_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")


def acme_identifier_value(key_authorization: str) -> bytes:
    """DER of the extension value: an OCTET STRING holding SHA-256(key authorization)."""
    digest = hashlib.sha256(key_authorization.encode("ascii")).digest()
    return b"\x04" + bytes([len(digest)]) + digest


def challenge_certificate(domain: str, key_authorization: str) -> tuple[bytes, bytes]:
    """A self-signed certificate for ``domain`` answering the challenge: (cert PEM, key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        self_signed_builder(domain, key, days=7)
        .add_extension(
            x509.UnrecognizedExtension(
                ACME_IDENTIFIER_OID, acme_identifier_value(key_authorization)
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), private_key_pem(key)


class TlsAlpnResponder:
    """Challenge contexts by domain; filled from the ACME worker, read by the front door.

    ``add``/``remove`` run in an executor thread while :meth:`handler` runs on the event
    loop, so the table is guarded by a lock.
    """

    def __init__(self) -> None:
        """Start with no pending challenge."""
        self._lock = threading.Lock()
        self._contexts: dict[str, ssl.SSLContext] = {}

    def add(self, domain: str, key_authorization: str) -> None:
        """Answer TLS-ALPN-01 for ``domain`` with ``key_authorization`` until removed."""
        cert_pem, key_pem = challenge_certificate(domain, key_authorization)
        ctx = context_from_pem(cert_pem, key_pem)
        ctx.set_alpn_protocols([ACME_TLS_ALPN_PROTOCOL])
        with self._lock:
            self._contexts[domain.lower().rstrip(".")] = ctx

    def remove(self, domain: str) -> None:
        """Stop answering for ``domain``."""
        with self._lock:
            self._contexts.pop(domain.lower().rstrip("."), None)

    @property
    def pending(self) -> int:
        """Number of domains with a challenge being answered."""
        with self._lock:
            return len(self._contexts)

    def handler(self, hello: ClientHelloInfo) -> ssl.SSLContext | None:
        """Front door ALPN handler: the challenge context for the SNI, or None (close)."""
        if hello.server_name is None:
            return None
        with self._lock:
            return self._contexts.get(hello.server_name.lower().rstrip("."))


class TlsAlpnSolver:
    """ACME challenge solver for TLS-ALPN-01 through the front door (see acme_client)."""

    challenge_type = CHALLENGE_TLS_ALPN_01

    def __init__(self, responder: TlsAlpnResponder) -> None:
        """Publish challenges through ``responder``."""
        self._responder = responder

    def present(self, domain: str, token: str, key_authorization: str) -> None:
        """Serve the challenge certificate for ``domain``."""
        self._responder.add(domain, key_authorization)

    def cleanup(self, domain: str, token: str, key_authorization: str) -> None:
        """Stop serving it."""
        self._responder.remove(domain)
