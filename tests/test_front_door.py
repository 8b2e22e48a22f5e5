"""Tests of the front door: ClientHello peek, TLS, demux and limits (real sockets)."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import trustme

from custom_components.alexa_cam_bridge.front_door import (
    ClientHelloError,
    ClientHelloInfo,
    Connection,
    FrontDoor,
    HttpReply,
    parse_client_hello,
)
from custom_components.alexa_cam_bridge.rtsp.limits import Limits

HOST = "127.0.0.1"


def client_hello_bytes(
    server_name: str | None = "cam.example.com", alpn: list[str] | None = None
) -> bytes:
    """Capture the ClientHello a real ssl client sends (no network)."""
    ctx = ssl.create_default_context()
    if alpn:
        ctx.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def test_parse_client_hello_sni_and_alpn() -> None:
    data = client_hello_bytes("cam.example.com", ["acme-tls/1", "h2"])
    info = parse_client_hello(data)
    assert info is not None
    assert info.server_name == "cam.example.com"
    assert info.alpn_protocols == ("acme-tls/1", "h2")
    assert 0x0304 in info.supported_versions
    assert info.length == len(data) - 5


def test_parse_client_hello_without_extensions_of_interest() -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    info = parse_client_hello(outgoing.read())
    assert info is not None
    assert info.server_name is None
    assert info.alpn_protocols == ()


def test_parse_client_hello_incomplete_prefixes() -> None:
    data = client_hello_bytes()
    for cut in (0, 1, 3, 5, 9, 50, len(data) - 1):
        assert parse_client_hello(data[:cut]) is None


def test_parse_client_hello_split_over_records() -> None:
    data = client_hello_bytes("split.example.com", ["x"])
    body = data[5:]
    first, second = body[:40], body[40:]
    records = (
        data[:3]
        + len(first).to_bytes(2, "big")
        + first
        + data[:3]
        + len(second).to_bytes(2, "big")
        + second
    )
    info = parse_client_hello(records)
    assert info is not None
    assert info.server_name == "split.example.com"
    assert parse_client_hello(records[:-3]) is None


@pytest.mark.parametrize(
    "data",
    [
        b"OPTIONS rtsp://x/ RTSP/1.0\r\n",
        b"GET / HTTP/1.1\r\n",
        b"\x17\x03\x03\x00\x10" + b"\x00" * 16,  # application data record
        b"\x16\x03\x03\x00\x05\x02\x00\x00\x01\x00",  # ServerHello
        b"\x16\x03\x03\x00\x00",  # empty record
        b"\x16\x02",  # not TLS major version 3
        b"\x16\x03\x01\x00\x30\x01\x00\x00\x2c" + b"\x03\x03" + b"\x00" * 32 + b"\xff" * 10,
    ],
)
def test_parse_client_hello_rejects_garbage(data: bytes) -> None:
    with pytest.raises(ClientHelloError):
        parse_client_hello(data)


def _hello_record(body: bytes) -> bytes:
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(handshake).to_bytes(2, "big") + handshake


def test_parse_client_hello_minimal_and_truncated_inner_fields() -> None:
    base = b"\x03\x03" + b"\x00" * 32 + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    info = parse_client_hello(_hello_record(base))
    assert info == ClientHelloInfo(None, (), 0x0303, (), len(base) + 4)
    # Extensions block claims 100 bytes but carries 4: complete record, broken inside.
    with pytest.raises(ClientHelloError):
        parse_client_hello(_hello_record(base + b"\x00\x64\x00\x00\x00\x00"))
    # No cipher suites.
    with pytest.raises(ClientHelloError):
        parse_client_hello(_hello_record(base.replace(b"\x00\x02\x13\x01", b"\x00\x00")))


# ---------------------------------------------------------------------------------------
# Live listener


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, path


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("cam.example.com", "127.0.0.1").configure_cert(ctx)
    return ctx


def client_context(ca: trustme.CA, alpn: list[str] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


async def echo_rtsp(conn: Connection) -> None:
    """A stand-in RTSP handler: answers each request line with 200 and its CSeq."""
    data = conn.initial
    while True:
        while b"\r\n\r\n" in data:
            head, _, data = data.partition(b"\r\n\r\n")
            cseq = next(
                (
                    line.split(b":", 1)[1].strip()
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"cseq:")
                ),
                b"0",
            )
            conn.writer.write(b"RTSP/1.0 200 OK\r\nCSeq: " + cseq + b"\r\n\r\n")
        chunk = await conn.reader.read(4096)
        if not chunk:
            return
        data += chunk


async def snapshot_handler(method: str, path: str) -> HttpReply:
    if path == "/snapshot/good":
        return HttpReply(200, b"\xff\xd8jpeg\xff\xd9", "image/jpeg")
    return HttpReply(404, b"not found\n")


@pytest.fixture
async def door_factory(
    pki: tuple[trustme.CA, Path],
) -> AsyncIterator[Callable[..., Awaitable[FrontDoor]]]:
    doors: list[FrontDoor] = []

    async def make(limits: Limits | None = None) -> FrontDoor:
        door = FrontDoor(
            port=0,
            host=HOST,
            ssl_context=server_context(pki[0]),
            rtsp_handler=echo_rtsp,
            http_handler=snapshot_handler,
            limits=limits or Limits(handshake_timeout=2.0, request_timeout=2.0),
        )
        await door.start()
        doors.append(door)
        return door

    yield make
    for door in doors:
        await door.stop()


async def tls_connect(
    door: FrontDoor, ca: trustme.CA, alpn: list[str] | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(
        HOST,
        door.bound_ports[0],
        ssl=client_context(ca, alpn),
        server_hostname="cam.example.com",
    )


async def read_all(reader: asyncio.StreamReader, limit: float = 5.0) -> bytes:
    out = b""
    async with asyncio.timeout(limit):
        while True:
            try:
                chunk = await reader.read(65536)
            except (ConnectionError, ssl.SSLError):
                return out
            if not chunk:
                return out
            out += chunk


async def test_rtsp_request_after_tls(
    door_factory: Callable[..., Awaitable[FrontDoor]], pki: tuple[trustme.CA, Path]
) -> None:
    door = await door_factory()
    reader, writer = await tls_connect(door, pki[0])
    writer.write(b"DESCRIBE rtsps://cam.example.com/x RTSP/1.0\r\nCSeq: 7\r\n\r\n")
    async with asyncio.timeout(5):
        line = await reader.readuntil(b"\r\n\r\n")
    assert line == b"RTSP/1.0 200 OK\r\nCSeq: 7\r\n\r\n"
    writer.close()
    assert door.counters["rtsp"] == 1


async def test_snapshot_over_https(
    door_factory: Callable[..., Awaitable[FrontDoor]], pki: tuple[trustme.CA, Path]
) -> None:
    door = await door_factory()
    reader, writer = await tls_connect(door, pki[0])
    writer.write(b"GET /snapshot/good HTTP/1.1\r\nHost: cam.example.com\r\n\r\n")
    reply = await read_all(reader)
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Type: image/jpeg" in reply
    assert reply.endswith(b"\xff\xd8jpeg\xff\xd9")
    reader, writer = await tls_connect(door, pki[0])
    writer.write(b"GET /snapshot/bad HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await read_all(reader)).startswith(b"HTTP/1.1 404 ")


async def test_plain_tcp_is_closed_without_reply(
    door_factory: Callable[..., Awaitable[FrontDoor]],
) -> None:
    door = await door_factory()
    reader, writer = await asyncio.open_connection(HOST, door.bound_ports[0])
    writer.write(b"OPTIONS rtsp://127.0.0.1/ RTSP/1.0\r\nCSeq: 1\r\n\r\n")
    assert await read_all(reader) == b""
    assert door.counters["not_tls"] == 1


async def test_garbage_after_tls_gets_400(
    door_factory: Callable[..., Awaitable[FrontDoor]], pki: tuple[trustme.CA, Path]
) -> None:
    door = await door_factory()
    reader, writer = await tls_connect(door, pki[0])
    writer.write(b"\x00\x01garbage that is not a request\r\n\r\n")
    reply = await read_all(reader)
    assert reply.startswith(b"RTSP/1.0 400 Bad Request\r\n")


async def test_overlong_first_line_gets_400(
    door_factory: Callable[..., Awaitable[FrontDoor]], pki: tuple[trustme.CA, Path]
) -> None:
    door = await door_factory(Limits(max_line=256, request_timeout=3.0))
    reader, writer = await tls_connect(door, pki[0])
    writer.write(b"DESCRIBE rtsp://x/" + b"a" * 2000)
    reply = await read_all(reader)
    assert reply.startswith(b"RTSP/1.0 400 ")


async def test_slowloris_is_cut_while_others_work(
    door_factory: Callable[..., Awaitable[FrontDoor]], pki: tuple[trustme.CA, Path]
) -> None:
    door = await door_factory(Limits(request_timeout=1.0, idle_timeout=5.0))
    slow_reader, slow_writer = await tls_connect(door, pki[0])
    loop = asyncio.get_running_loop()
    started = loop.time()
    closed_at: float | None = None

    async def trickle() -> None:
        nonlocal closed_at
        for byte in b"DESCRIBE rtsp://x/y RTSP/1.0\r\nCSeq: 1\r\n":
            slow_writer.write(bytes([byte]))
            await asyncio.sleep(0.05)
            if slow_reader.at_eof():
                break
        reply = await read_all(slow_reader)
        closed_at = loop.time()
        assert reply.startswith(b"RTSP/1.0 408 ") or reply == b""

    trickler = asyncio.create_task(trickle())
    await asyncio.sleep(0.3)
    reader, writer = await tls_connect(door, pki[0])
    writer.write(b"OPTIONS rtsp://x/ RTSP/1.0\r\nCSeq: 2\r\n\r\n")
    async with asyncio.timeout(2):
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"RTSP/1.0 200 OK")
    await trickler
    assert closed_at is not None
    assert closed_at - started < 2.5
    writer.close()


async def test_handshake_timeout(
    door_factory: Callable[..., Awaitable[FrontDoor]],
) -> None:
    door = await door_factory(Limits(handshake_timeout=0.5))
    reader, _writer = await asyncio.open_connection(HOST, door.bound_ports[0])
    assert await read_all(reader, limit=3.0) == b""
    await asyncio.sleep(0.05)
    assert door.active_connections == 0


async def test_partial_client_hello_times_out(
    door_factory: Callable[..., Awaitable[FrontDoor]],
) -> None:
    door = await door_factory(Limits(handshake_timeout=0.5))
    reader, writer = await asyncio.open_connection(HOST, door.bound_ports[0])
    writer.write(client_hello_bytes()[:30])
    assert await read_all(reader, limit=3.0) == b""


async def test_max_connections(
    door_factory: Callable[..., Awaitable[FrontDoor]], pki: tuple[trustme.CA, Path]
) -> None:
    door = await door_factory(Limits(max_connections=2, handshake_timeout=3.0))
    held = [await tls_connect(door, pki[0]) for _ in range(2)]
    reader, _ = await asyncio.open_connection(HOST, door.bound_ports[0])
    assert await read_all(reader, limit=3.0) == b""
    assert door.counters["rejected_full"] == 1
    for _, writer in held:
        writer.close()
    await asyncio.sleep(0.2)
    reader, writer = await tls_connect(door, pki[0])
    writer.write(b"OPTIONS rtsp://x/ RTSP/1.0\r\nCSeq: 3\r\n\r\n")
    async with asyncio.timeout(2):
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"RTSP/1.0 200 OK")
    writer.close()


async def test_alpn_challenge_handler(
    door_factory: Callable[..., Awaitable[FrontDoor]], pki: tuple[trustme.CA, Path]
) -> None:
    door = await door_factory()
    seen: list[ClientHelloInfo] = []
    challenge_ca = trustme.CA()

    def handler(info: ClientHelloInfo) -> ssl.SSLContext:
        seen.append(info)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        challenge_ca.issue_cert("cam.example.com").configure_cert(ctx)
        ctx.set_alpn_protocols(["acme-tls/1"])
        return ctx

    door.add_alpn_handler("acme-tls/1", handler)
    reader, writer = await tls_connect(door, challenge_ca, alpn=["acme-tls/1"])
    assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "acme-tls/1"
    assert await read_all(reader) == b""
    assert seen[0].server_name == "cam.example.com"
    # Without the ALPN the normal certificate is served.
    _, writer = await tls_connect(door, pki[0])
    writer.close()


async def test_set_ssl_context_affects_new_handshakes(
    door_factory: Callable[..., Awaitable[FrontDoor]], pki: tuple[trustme.CA, Path]
) -> None:
    door = await door_factory()
    old_reader, old_writer = await tls_connect(door, pki[0])
    other = trustme.CA()
    door.set_ssl_context(server_context(other))
    with pytest.raises(ssl.SSLCertVerificationError):
        await tls_connect(door, pki[0])
    _, writer = await tls_connect(door, other)
    writer.close()
    old_writer.write(b"OPTIONS rtsp://x/ RTSP/1.0\r\nCSeq: 4\r\n\r\n")
    async with asyncio.timeout(2):
        assert (await old_reader.readuntil(b"\r\n\r\n")).startswith(b"RTSP/1.0 200 OK")


async def test_tls_1_1_refused(
    door_factory: Callable[..., Awaitable[FrontDoor]], pki: tuple[trustme.CA, Path]
) -> None:
    door = await door_factory()
    ctx = client_context(pki[0])
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with pytest.warns(DeprecationWarning, match="TLSv1_1"):
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await asyncio.open_connection(
            HOST, door.bound_ports[0], ssl=ctx, server_hostname="cam.example.com"
        )


async def test_all_addresses_share_one_port(pki: tuple[trustme.CA, Path]) -> None:
    door = FrontDoor(
        port=0,
        host=None,
        ssl_context=server_context(pki[0]),
        rtsp_handler=echo_rtsp,
        http_handler=snapshot_handler,
    )
    await door.start()
    try:
        assert len(door.bound_ports) == 1
        port = door.bound_ports[0]
        assert f"0.0.0.0:{port}" in door.bound_addresses
        assert set(door.bound_addresses) <= {f"0.0.0.0:{port}", f"[::]:{port}"}
        reader, writer = await asyncio.open_connection(
            HOST,
            door.bound_ports[0],
            ssl=client_context(pki[0]),
            server_hostname="cam.example.com",
        )
        writer.write(b"OPTIONS rtsp://x/ RTSP/1.0\r\nCSeq: 5\r\n\r\n")
        async with asyncio.timeout(3):
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"RTSP/1.0 200 OK")
        writer.close()
    finally:
        await door.stop()


async def test_port_in_use_raises(pki: tuple[trustme.CA, Path]) -> None:
    blocker = socket.socket()
    blocker.bind((HOST, 0))
    blocker.listen()
    try:
        door = FrontDoor(
            port=blocker.getsockname()[1],
            host=HOST,
            ssl_context=server_context(pki[0]),
            rtsp_handler=echo_rtsp,
            http_handler=snapshot_handler,
        )
        with pytest.raises(OSError) as err:
            await door.start()
        assert err.value.errno == errno.EADDRINUSE
        assert not door.listening
    finally:
        blocker.close()


async def test_stop_closes_everything(
    door_factory: Callable[..., Awaitable[FrontDoor]], pki: tuple[trustme.CA, Path]
) -> None:
    door = await door_factory()
    port = door.bound_ports[0]
    reader, _writer = await tls_connect(door, pki[0])
    silent_reader, _silent_writer = await asyncio.open_connection(HOST, port)  # still peeking
    await asyncio.sleep(0.1)
    before = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
    assert door.active_connections == 2
    await door.stop()
    assert await read_all(silent_reader, limit=1.0) == b""
    assert not door.listening
    assert door.active_connections == 0
    assert await read_all(reader) == b""
    leftover = {t for t in asyncio.all_tasks() if t.get_name().startswith("alexa_cam_bridge")}
    assert not leftover, before
    with pytest.raises(OSError):
        await asyncio.open_connection(HOST, port)
