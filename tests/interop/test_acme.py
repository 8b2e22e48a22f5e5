"""ACME against a real server (Pebble): TLS-ALPN-01 through the front door, preferred
chains, DNS-01 through a fake DuckDNS that writes into pebble-challtestsrv."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Iterator

import pytest
from cryptography import x509

from custom_components.alexa_cam_bridge.certs.acme_client import (
    AcmeClient,
    AcmeError,
    new_account_key,
)
from custom_components.alexa_cam_bridge.certs.duckdns import DuckDnsSolver, query_txt
from custom_components.alexa_cam_bridge.certs.material import (
    context_from_pem,
    generate_key,
    private_key_pem,
    self_signed,
    split_chain,
)
from custom_components.alexa_cam_bridge.certs.tls_alpn import (
    ACME_TLS_ALPN_PROTOCOL,
    TlsAlpnResponder,
    TlsAlpnSolver,
)
from custom_components.alexa_cam_bridge.front_door import Connection, FrontDoor, HttpReply
from tests.peers.duckdns import FakeDuckDns
from tests.peers.pebble import Pebble, pebble_fixture, pebble_server_fixture  # noqa: F401

HOST = "cam.test"


async def _no_rtsp(conn: Connection) -> None:
    conn.writer.write(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n")


async def _no_http(method: str, path: str) -> HttpReply:
    return HttpReply(404, b"")


@pytest.fixture
async def door(pebble: Pebble) -> AsyncIterator[tuple[FrontDoor, TlsAlpnResponder]]:
    """A front door on Pebble's tlsPort with a placeholder certificate."""
    key = generate_key()
    ctx = context_from_pem(self_signed(HOST, key), private_key_pem(key))
    front = FrontDoor(
        port=pebble.tls_port,
        host="127.0.0.1",
        ssl_context=ctx,
        rtsp_handler=_no_rtsp,
        http_handler=_no_http,
    )
    responder = TlsAlpnResponder()
    front.add_alpn_handler(ACME_TLS_ALPN_PROTOCOL, responder.handler)
    await front.start()
    yield front, responder
    await front.stop()


def _client(pebble: Pebble) -> AcmeClient:
    return AcmeClient(
        pebble.directory_url,
        account_key_pem=new_account_key("ec_p256"),
        email="admin@example.com",
        ca_bundle=pebble.ca_bundle,
    )


def _served_subject(port: int) -> str:
    """Handshake like a viewer (no ALPN) and return the served leaf's subject CN."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=HOST) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).subject.rfc4514_string()


class _WatchingSolver(TlsAlpnSolver):
    """Records what a normal viewer gets while the challenge is being answered."""

    def __init__(self, responder: TlsAlpnResponder, port: int) -> None:
        super().__init__(responder)
        self.port = port
        self.seen_during_validation: list[str] = []

    def present(self, domain: str, token: str, key_authorization: str) -> None:
        super().present(domain, token, key_authorization)
        self.seen_during_validation.append(_served_subject(self.port))


async def test_tls_alpn_issuance_through_front_door(
    pebble: Pebble, door: tuple[FrontDoor, TlsAlpnResponder]
) -> None:
    """Pebble validates acme-tls/1 on the front door's port while viewers keep getting
    the normal certificate; the issued chain verifies against Pebble's root."""
    front, responder = door
    solver = _WatchingSolver(responder, pebble.tls_port)
    issued = await asyncio.to_thread(
        _client(pebble).obtain, [HOST], solver, key_type="ec_p256", preferred_chain=None
    )
    assert front.counters["alpn_challenges"] >= 1
    assert solver.seen_during_validation == [f"O=Alexa Camera Bridge (temporary),CN={HOST}"]
    assert responder.pending == 0
    certs = split_chain(issued.chain_pem)
    assert len(certs) == 2  # leaf + intermediate, no root
    san = certs[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [HOST]
    assert issued.chains_offered == 3
    # the chain verifies against the default root with strict X.509 checks
    front.set_ssl_context(context_from_pem(issued.chain_pem, issued.key_pem))
    client = ssl.create_default_context(cadata=pebble.root_pem(0).decode())
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", pebble.tls_port, ssl=client, server_hostname=HOST
    )
    writer.write(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n")
    assert (await reader.readline()).startswith(b"RTSP/1.0 200")
    writer.close()


@pytest.mark.parametrize("root", [1, 2])
async def test_preferred_chain_by_root_name(
    pebble: Pebble, door: tuple[FrontDoor, TlsAlpnResponder], root: int
) -> None:
    """Naming an alternate root picks its chain, which verifies against that root."""
    _front, responder = door
    name = pebble.root_name(root)
    issued = await asyncio.to_thread(
        _client(pebble).obtain,
        [HOST],
        TlsAlpnSolver(responder),
        key_type="rsa_2048" if root == 2 else "ec_p256",
        preferred_chain=name,
    )
    assert issued.preferred_matched
    assert issued.top_issuer == name
    certs = split_chain(issued.chain_pem)
    root_cert = x509.load_pem_x509_certificate(pebble.root_pem(root))
    assert certs[-1].issuer == root_cert.subject
    certs[-1].verify_directly_issued_by(root_cert)


async def test_preferred_chain_fallback(
    pebble: Pebble, door: tuple[FrontDoor, TlsAlpnResponder]
) -> None:
    """No chain ends in "ISRG Root X1" on Pebble: the default chain is used."""
    _front, responder = door
    issued = await asyncio.to_thread(
        _client(pebble).obtain,
        [HOST],
        TlsAlpnSolver(responder),
        key_type="ec_p256",
        preferred_chain="ISRG Root X1",
    )
    assert not issued.preferred_matched
    assert issued.top_issuer == pebble.root_name(0)


@pytest.fixture
def duckdns(pebble: Pebble) -> Iterator[FakeDuckDns]:
    """A fake DuckDNS accepting the token ``secret-token``."""
    fake = FakeDuckDns(pebble, "secret-token")
    yield fake
    fake.close()


async def test_dns01_through_duckdns(pebble: Pebble, duckdns: FakeDuckDns) -> None:
    """DNS-01: TXT set through the DuckDNS API, seen on the name server, cleared after."""
    name = "myhome.duckdns.org"
    solver = DuckDnsSolver(
        "secret-token",
        update_url=duckdns.url,
        nameservers=[pebble.dns_server],
        propagation_timeout=10,
        poll_interval=0.2,
    )
    issued = await asyncio.to_thread(
        _client(pebble).obtain, [name], solver, key_type="ec_p256", preferred_chain=None
    )
    san = split_chain(issued.chain_pem)[0].extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert san.value.get_values_for_type(x509.DNSName) == [name]
    assert [c.get("clear") for c in duckdns.calls] == [None, "true"]
    assert {c["domains"] for c in duckdns.calls} == {"myhome"}
    txt = await asyncio.to_thread(query_txt, pebble.dns_server, f"_acme-challenge.{name}")
    assert txt == []


async def test_dns01_bad_token_is_a_clear_error(pebble: Pebble, duckdns: FakeDuckDns) -> None:
    """DuckDNS answering KO fails the order with a message that does not leak the token."""
    solver = DuckDnsSolver("wrong-token", update_url=duckdns.url, nameservers=[pebble.dns_server])
    with pytest.raises(AcmeError) as info:
        await asyncio.to_thread(
            _client(pebble).obtain,
            ["myhome.duckdns.org"],
            solver,
            key_type="ec_p256",
            preferred_chain=None,
        )
    assert "refused" in str(info.value)
    assert "wrong-token" not in str(info.value)
