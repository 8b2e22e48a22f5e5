"""RFC 8737 challenge certificate and the front door's ALPN handler."""

from __future__ import annotations

import contextlib
import hashlib
import ssl

from cryptography import x509

from custom_components.alexa_cam_bridge.certs.tls_alpn import (
    ACME_IDENTIFIER_OID,
    ACME_TLS_ALPN_PROTOCOL,
    TlsAlpnResponder,
    acme_identifier_value,
    challenge_certificate,
)
from custom_components.alexa_cam_bridge.front_door import ClientHelloInfo

KEY_AUTH = "token-abc.thumbprint-xyz"


def _hello(server_name: str | None) -> ClientHelloInfo:
    return ClientHelloInfo(server_name, (ACME_TLS_ALPN_PROTOCOL,), 0x0303, (0x0304,), 200)


def test_challenge_certificate_structure() -> None:
    """Self-signed, SAN = the name, critical acmeIdentifier = OCTET STRING(SHA-256)."""
    cert_pem, key_pem = challenge_certificate("cam.example.com", KEY_AUTH)
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.issuer == cert.subject
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["cam.example.com"]
    ext = cert.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
    assert ext.critical
    assert ACME_IDENTIFIER_OID.dotted_string == "1.3.6.1.5.5.7.1.31"
    digest = hashlib.sha256(KEY_AUTH.encode()).digest()
    assert isinstance(ext.value, x509.UnrecognizedExtension)
    assert ext.value.value == b"\x04\x20" + digest
    assert acme_identifier_value(KEY_AUTH) == b"\x04\x20" + digest
    assert b"PRIVATE KEY" in key_pem


def _handshake(server: ssl.SSLContext, sni: str) -> tuple[str | None, bytes]:
    """A TLS handshake in memory: (negotiated ALPN, server certificate DER)."""
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    client_ctx.set_alpn_protocols([ACME_TLS_ALPN_PROTOCOL])
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=sni)
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side in (client, srv):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    der = client.getpeercert(binary_form=True)
    assert der is not None
    return client.selected_alpn_protocol(), der


def test_responder_serves_challenge_for_the_right_name_only() -> None:
    """The handler answers the SNI it holds a challenge for (any case), nothing else."""
    responder = TlsAlpnResponder()
    assert responder.handler(_hello("cam.example.com")) is None
    responder.add("cam.example.com", KEY_AUTH)
    assert responder.pending == 1
    assert responder.handler(_hello("other.example.com")) is None
    assert responder.handler(_hello(None)) is None
    ctx = responder.handler(_hello("CAM.example.com."))
    assert ctx is not None
    alpn, der = _handshake(ctx, "cam.example.com")
    assert alpn == ACME_TLS_ALPN_PROTOCOL
    cert = x509.load_der_x509_certificate(der)
    assert cert.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID).critical
    responder.remove("cam.example.com")
    assert responder.handler(_hello("cam.example.com")) is None
    assert responder.pending == 0
