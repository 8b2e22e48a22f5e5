"""Key and certificate material: generation, PEM handling, TLS contexts, summaries.

``ssl.SSLContext.load_cert_chain`` only reads files, so PEM held in memory is written to
a private (0600) temporary file that exists only while OpenSSL reads it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import ssl
import tempfile
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import NameOID

from ..certfiles import TLS12_CIPHERS, CertificateInfo

KEY_EC_P256: Final = "ec_p256"
KEY_RSA_2048: Final = "rsa_2048"
KEY_RSA_4096: Final = "rsa_4096"
KEY_TYPES: Final = (KEY_EC_P256, KEY_RSA_2048, KEY_RSA_4096)


def generate_key(key_type: str = KEY_EC_P256) -> CertificateIssuerPrivateKeyTypes:
    """A new private key: EC P-256 (default) or RSA 2048/4096."""
    if key_type == KEY_EC_P256:
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == KEY_RSA_2048:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == KEY_RSA_4096:
        return rsa.generate_private_key(public_exponent=65537, key_size=4096)
    raise ValueError(f"unknown key type {key_type!r}")


def private_key_pem(key: PrivateKeyTypes) -> bytes:
    """Unencrypted PKCS#8 PEM of ``key``."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_key(pem: bytes) -> PrivateKeyTypes:
    """Parse an unencrypted PEM private key."""
    return serialization.load_pem_private_key(pem, password=None)


def split_chain(pem: bytes | str) -> list[x509.Certificate]:
    """All certificates of a PEM bundle, in order."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    return x509.load_pem_x509_certificates(data)


def chain_pem(certs: list[x509.Certificate]) -> bytes:
    """PEM bundle of ``certs``."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def context_from_pem(chain: bytes, key: bytes) -> ssl.SSLContext:
    """TLS 1.2+ server context serving ``chain`` (leaf first) with ``key``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    fd, path = tempfile.mkstemp(prefix="acb-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as handle:  # mkstemp creates the file 0600
            handle.write(key + b"\n" + chain)
        ctx.load_cert_chain(path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return ctx


def common_name(name: x509.Name) -> str:
    """The CN of ``name``, or its RFC 4514 form when it has none."""
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else name.rfc4514_string()


def dns_names(cert: x509.Certificate) -> tuple[str, ...]:
    """The SAN dNSNames of ``cert``."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(san.get_values_for_type(x509.DNSName))


def chain_info(chain: bytes) -> CertificateInfo:
    """What may be shown about a served chain (leaf first); never key material."""
    certs = split_chain(chain)
    leaf = certs[0]
    return CertificateInfo(
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        names=dns_names(leaf),
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        intermediates=tuple(c.subject.rfc4514_string() for c in certs[1:]),
    )


def issuer_chain(chain: bytes) -> list[str]:
    """Issuer CNs from the leaf up to the root named by the topmost certificate."""
    return [common_name(c.issuer) for c in split_chain(chain)]


def key_matches(chain: bytes, key: bytes) -> bool:
    """True when ``key`` is the private key of the leaf of ``chain``."""
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    leaf = split_chain(chain)[0]
    return bool(
        load_key(key).public_key().public_bytes(der, spki)
        == leaf.public_key().public_bytes(der, spki)
    )


def self_signed_builder(
    host: str, key: CertificateIssuerPrivateKeyTypes, *, days: int, organization: str | None = None
) -> x509.CertificateBuilder:
    """A self-signed certificate for ``host`` (SAN = host), valid from 5 minutes ago for
    ``days`` days, ready for more extensions and signing with ``key``."""
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, host)]
    if organization is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    name = x509.Name(attributes)
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
    )


def self_signed(host: str, key: CertificateIssuerPrivateKeyTypes, days: int = 30) -> bytes:
    """A placeholder certificate for ``host`` (served until the first ACME order completes)."""
    builder = self_signed_builder(
        host, key, days=days, organization="Alexa Camera Bridge (temporary)"
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def csr_pem(key: CertificateIssuerPrivateKeyTypes, names: list[str]) -> bytes:
    """A PEM CSR for ``names`` (first one as CN) signed by ``key``."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)
