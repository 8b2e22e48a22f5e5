"""Certificate files supplied by the user: validation and the TLS server context.

Blocking (file I/O, parsing): call from an executor. No Home Assistant import.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

# Modern AEAD suites only for TLS 1.2; TLS 1.3 suites are fixed by OpenSSL.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


class CertificateError(Exception):
    """A certificate problem, with the config-flow error key in ``reason``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """What diagnostics and the UI may show about a certificate chain (no key material)."""

    subject: str
    issuer: str
    names: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    intermediates: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        """Return a JSON-friendly view."""
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "names": list(self.names),
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "intermediates": list(self.intermediates),
        }


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise CertificateError(f"{what}_unreadable", f"cannot read {path}: {err.strerror}") from err


def _dns_names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(san.get_values_for_type(x509.DNSName))


def name_matches(host: str, names: tuple[str, ...]) -> bool:
    """RFC 6125 matching of a DNS host name against SAN dNSNames (one left-most wildcard)."""
    host = host.lower().rstrip(".")
    for raw in names:
        name = raw.lower().rstrip(".")
        if name == host:
            return True
        if name.startswith("*."):
            head, _, rest = host.partition(".")
            if head and rest == name[2:]:
                return True
    return False


def load_and_validate(
    cert_file: str, key_file: str, *, host: str | None = None, now: datetime | None = None
) -> CertificateInfo:
    """Check that the files form a usable, unexpired chain whose key matches the leaf.

    Raises CertificateError with reason one of: cert_unreadable, key_unreadable,
    cert_invalid, key_invalid, key_mismatch, cert_expired, cert_not_yet_valid,
    cert_host_mismatch.
    """
    now = now or datetime.now(UTC)
    try:
        chain = x509.load_pem_x509_certificates(_read(cert_file, "cert"))
    except ValueError as err:
        raise CertificateError("cert_invalid", f"{cert_file} holds no PEM certificate") from err
    key_pem = _read(key_file, "key")
    try:
        key: PrivateKeyTypes = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as err:
        raise CertificateError(
            "key_invalid", f"{key_file} holds no unencrypted PEM private key"
        ) from err
    leaf = chain[0]
    public = key.public_key()
    if public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise CertificateError("key_mismatch", "the private key does not belong to the certificate")
    for cert in chain:
        subject = cert.subject.rfc4514_string()
        if cert.not_valid_after_utc <= now:
            raise CertificateError(
                "cert_expired", f"{subject} expired {cert.not_valid_after_utc.isoformat()}"
            )
        if cert.not_valid_before_utc > now:
            raise CertificateError(
                "cert_not_yet_valid",
                f"{subject} is valid from {cert.not_valid_before_utc.isoformat()}",
            )
    names = _dns_names(leaf)
    if host is not None and not name_matches(host, names):
        raise CertificateError(
            "cert_host_mismatch", f"the certificate is for {', '.join(names) or 'no DNS name'}"
        )
    return CertificateInfo(
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        names=names,
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        intermediates=tuple(c.subject.rfc4514_string() for c in chain[1:]),
    )


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """TLS 1.2+ server context serving the whole chain in ``cert_file``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.load_cert_chain(cert_file, key_file)
    return ctx
