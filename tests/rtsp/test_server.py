"""Tests of the RTSP server session: methods, auth, limits (real relay to the fake camera).

The session runs behind a plain TCP asyncio server here (TLS is the front door's job and
is covered by tests/test_front_door.py and tests/interop/); requests are written by hand
so that every malformed case can be produced.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from custom_components.alexa_cam_bridge.broker import StreamBroker, StreamGrant
from custom_components.alexa_cam_bridge.rtsp import auth
from custom_components.alexa_cam_bridge.rtsp.limits import Limits
from custom_components.alexa_cam_bridge.rtsp.messages import (
    InterleavedFrame,
    RtspParser,
    RtspResponse,
    parse_session,
)
from custom_components.alexa_cam_bridge.rtsp.relay import CameraRelay
from custom_components.alexa_cam_bridge.rtsp.server import RtspServerSession, ServerContext
from tests.peers.camera import FakeCamera

HOST = "127.0.0.1"


@dataclass
class Env:
    """A running test server."""

    port: int
    broker: StreamBroker
    relays: dict[str, CameraRelay]
    limits: Limits

    def grant(self, camera_id: str = "cam", auth_type: str = "DIGEST") -> StreamGrant:
        return self.broker.mint(camera_id, ttl=300, auth_type=auth_type)

    def url(self, grant: StreamGrant, scheme: str = "rtsp") -> str:
        return f"{scheme}://{HOST}:{self.port}/{grant.stream_id}"


@pytest.fixture(scope="module")
def h265_camera() -> Iterator[FakeCamera]:
    camera = FakeCamera(video="h265", audio="none", width=320, height=240)
    camera.start()
    try:
        yield camera
    finally:
        camera.stop()


async def start_env(
    fake_camera: FakeCamera, h265_camera: FakeCamera, limits: Limits
) -> tuple[Env, asyncio.Server]:
    broker = StreamBroker()
    urls = {"cam": fake_camera.url, "h265": h265_camera.url}

    async def source(camera_id: str) -> str | None:
        return urls[camera_id]

    relays = {cid: CameraRelay(cid, source=source, grace_seconds=5, limits=limits) for cid in urls}
    context = ServerContext(
        lookup=broker.lookup,
        relay_for=relays.get,
        failures=broker.failures,
        nonces=auth.DigestNonceStore(lifetime=2.0),
        limits=limits,
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = RtspServerSession(reader, writer, peer=HOST, context=context)
        try:
            await session.run()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    return Env(port, broker, relays, limits), server


@pytest.fixture
async def env(fake_camera: FakeCamera, h265_camera: FakeCamera) -> AsyncIterator[Env]:
    limits = Limits(request_timeout=1.0, idle_timeout=3.0, session_timeout=2, max_line=512)
    environment, server = await start_env(fake_camera, h265_camera, limits)
    yield environment
    server.close()
    for relay in environment.relays.values():
        await relay.stop()
    await server.wait_closed()


class Conn:
    """A hand-driven RTSP connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = RtspParser(role="client")
        self.frames: list[InterleavedFrame] = []
        self.responses: list[RtspResponse] = []
        self.cseq = 0

    @classmethod
    async def open(cls, env: Env) -> Conn:
        reader, writer = await asyncio.open_connection(HOST, env.port)
        return cls(reader, writer)

    async def request(
        self, method: str, url: str, *headers: str, body: bytes = b""
    ) -> RtspResponse:
        self.cseq += 1
        lines = [f"{method} {url} RTSP/1.0", f"CSeq: {self.cseq}", *headers]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return await self.response()

    async def response(self) -> RtspResponse:
        async with asyncio.timeout(8):
            while not self.responses:
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("closed")
                for message in self.parser.feed(data):
                    if isinstance(message, InterleavedFrame):
                        self.frames.append(message)
                    elif isinstance(message, RtspResponse):
                        self.responses.append(message)
        return self.responses.pop(0)

    async def closed(self) -> bool:
        """Read until EOF (True) within a bound."""
        try:
            async with asyncio.timeout(6):
                while await self.reader.read(65536):
                    pass
        except (ConnectionError, TimeoutError):
            return False
        return True

    def close(self) -> None:
        self.writer.close()


def basic(grant: StreamGrant) -> str:
    token = base64.b64encode(f"{grant.username}:{grant.password}".encode()).decode()
    return f"Authorization: Basic {token}"


def aosp_digest(grant: StreamGrant, method: str, url: str, nonce: str) -> str:
    """What stock AOSP sends: realm "Streaming Server", no qop, trailing space in uri."""

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    uri = url + " "
    ha1 = md5(f"{grant.username}:Streaming Server:{grant.password}")
    response = md5(f"{ha1}:{nonce}:{md5(f'{method}:{uri}')}")
    return (
        f'Authorization: Digest username="{grant.username}", nonce="{nonce}", '
        f'uri="{uri}", response="{response}"'
    )


def nonce_of(response: RtspResponse) -> str:
    digest = next(v for v in response.headers.get_all("WWW-Authenticate") if "Digest" in v)
    return digest.split('nonce="', 1)[1].split('"', 1)[0]


async def test_options_and_unknown_method(env: Env) -> None:
    conn = await Conn.open(env)
    reply = await conn.request("OPTIONS", f"rtsp://{HOST}:{env.port}/x")
    assert reply.status == 200
    assert reply.headers["CSeq"] == "1"
    assert "DESCRIBE" in reply.headers["Public"]
    reply = await conn.request("RECORD", f"rtsp://{HOST}:{env.port}/x")
    assert reply.status == 501
    reply = await conn.request("PAUSE", f"rtsp://{HOST}:{env.port}/x")
    assert reply.status == 501
    assert reply.headers["CSeq"] == "3"
    conn.close()


async def test_describe_challenges_and_basic_login(env: Env) -> None:
    grant = env.grant(auth_type="BASIC")
    conn = await Conn.open(env)
    reply = await conn.request("DESCRIBE", env.url(grant), "Accept: application/sdp")
    assert reply.status == 401
    challenges = reply.headers.get_all("WWW-Authenticate")
    assert challenges == ['Basic realm="Streaming Server"']
    reply = await conn.request("DESCRIBE", env.url(grant, "rtsps"), basic(grant))
    assert reply.status == 200
    assert reply.headers["Content-Base"] == env.url(grant, "rtsps") + "/"
    assert reply.headers["Content-Type"] == "application/sdp"
    assert b"m=video" in reply.body
    conn.close()


async def test_aosp_digest_login_and_connection_bound_nonce(env: Env) -> None:
    grant = env.grant()
    url = env.url(grant)
    conn = await Conn.open(env)
    reply = await conn.request("DESCRIBE", url)
    assert reply.status == 401
    assert reply.headers.get_all("WWW-Authenticate")[-1].startswith(
        'Digest realm="Streaming Server"'
    )
    header = aosp_digest(grant, "DESCRIBE", url, nonce_of(reply))
    assert (await conn.request("DESCRIBE", url, header)).status == 200
    # The same nonce is reused on later requests of the same connection (AOSP does).
    assert (await conn.request("DESCRIBE", url, header)).status == 200
    # Replayed on another connection: refused.
    other = await Conn.open(env)
    assert (await other.request("DESCRIBE", url, header)).status == 401
    other.close()
    conn.close()


async def test_stale_nonce(env: Env) -> None:
    grant = env.grant()
    url = env.url(grant)
    conn = await Conn.open(env)
    nonce = nonce_of(await conn.request("DESCRIBE", url))
    await asyncio.sleep(2.2)  # the store's lifetime in this fixture is 2 s
    reply = await conn.request("DESCRIBE", url, aosp_digest(grant, "DESCRIBE", url, nonce))
    assert reply.status == 401
    assert "stale=TRUE" in reply.headers.get_all("WWW-Authenticate")[-1]
    fresh = nonce_of(reply)
    reply = await conn.request("DESCRIBE", url, aosp_digest(grant, "DESCRIBE", url, fresh))
    assert reply.status == 200
    conn.close()


async def test_aged_nonce_still_valid_on_its_authenticated_connection(env: Env) -> None:
    grant = env.grant()
    url = env.url(grant)
    conn = await Conn.open(env)
    header = aosp_digest(grant, "DESCRIBE", url, nonce_of(await conn.request("DESCRIBE", url)))
    assert (await conn.request("DESCRIBE", url, header)).status == 200
    await asyncio.sleep(2.2)  # past the nonce lifetime: AOSP keeps sending it anyway
    assert (await conn.request("DESCRIBE", url, header)).status == 200
    wrong = header.replace('response="', 'response="0')
    assert (await conn.request("DESCRIBE", url, wrong)).status == 401
    conn.close()


async def test_wrong_and_unknown_credentials_rate_limited(env: Env) -> None:
    grant = env.grant(auth_type="BASIC")
    wrong = StreamGrant(grant.stream_id, "cam", grant.username, "nope", 0, "BASIC")
    unknown = StreamGrant("doesnotexist", "cam", "u", "p", 0, "BASIC")
    for attempt in range(10):
        conn = await Conn.open(env)
        target = wrong if attempt % 2 else unknown
        reply = await conn.request("DESCRIBE", env.url(target), basic(target))
        assert reply.status == 401
        conn.close()
    conn = await Conn.open(env)
    reply = await conn.request("DESCRIBE", env.url(grant), basic(grant))
    assert reply.status == 403
    assert await conn.closed()


async def test_setup_play_teardown(env: Env) -> None:
    grant = env.grant(auth_type="BASIC")
    url = env.url(grant)
    conn = await Conn.open(env)
    assert (await conn.request("DESCRIBE", url, basic(grant))).status == 200
    udp = await conn.request(
        "SETUP", f"{url}/trackID=0", "Transport: RTP/AVP;unicast;client_port=5000-5001"
    )
    assert udp.status == 461
    reply = await conn.request("SETUP", f"{url}/trackID=0", "Transport: RTP/AVP/TCP;unicast")
    assert reply.status == 200
    assert "interleaved=0-1" in reply.headers["Transport"]
    session, timeout = parse_session(reply.headers["Session"])
    assert timeout == env.limits.session_timeout
    # The client asks for channels already taken: others are assigned.
    reply = await conn.request(
        "SETUP",
        f"{url}/trackID=1",
        "Transport: RTP/AVP/TCP;unicast;interleaved=0-1",
        f"Session: {session}",
    )
    assert reply.status == 200
    assert "interleaved=2-3" in reply.headers["Transport"]
    assert (
        await conn.request(
            "SETUP", f"{url}/trackID=7", f"Session: {session}", "Transport: RTP/AVP/TCP"
        )
    ).status == 404
    assert (await conn.request("PLAY", url)).status == 454
    reply = await conn.request("PLAY", url, f"Session: {session}")
    assert reply.status == 200
    info = reply.headers["RTP-Info"]
    assert f"url={url}/trackID=0;seq=" in info
    assert f"url={url}/trackID=1;seq=" in info
    assert (await conn.request("GET_PARAMETER", url, f"Session: {session}")).status == 200
    assert (await conn.request("OPTIONS", url, f"Session: {session}")).status == 200
    assert (await conn.request("SET_PARAMETER", url, f"Session: {session}")).status == 200
    reply = await conn.request("SET_PARAMETER", url, f"Session: {session}", body=b"volume: 1\r\n")
    assert reply.status == 451
    assert (await conn.request("GET_PARAMETER", url, "Session: WRONG")).status == 454
    assert {f.channel for f in conn.frames} >= {0, 1}
    reply = await conn.request("TEARDOWN", url, f"Session: {session}")
    assert reply.status == 200
    assert await conn.closed()


async def test_session_timeout_enforced(env: Env) -> None:
    grant = env.grant(auth_type="BASIC")
    url = env.url(grant)
    conn = await Conn.open(env)
    assert (await conn.request("DESCRIBE", url, basic(grant))).status == 200
    reply = await conn.request(
        "SETUP", f"{url}/trackID=0", "Transport: RTP/AVP/TCP;interleaved=0-1"
    )
    session = reply.headers["Session"].split(";")[0]
    assert (await conn.request("PLAY", url, f"Session: {session}")).status == 200
    # No keep-alive and no RTCP: dropped after session_timeout (2 s here).
    assert await conn.closed()


async def test_limits_garbage_and_timeouts(env: Env) -> None:
    conn = await Conn.open(env)
    conn.writer.write(
        b"DESCRIBE rtsp://x/y RTSP/1.0\r\nCSeq: 1\r\n" + b"X-Big: " + b"a" * 600 + b"\r\n\r\n"
    )
    reply = await conn.response()
    assert reply.status == 400
    assert await conn.closed()
    conn = await Conn.open(env)
    many = "".join(f"X-{i}: 1\r\n" for i in range(80))
    conn.writer.write(f"OPTIONS rtsp://x/ RTSP/1.0\r\nCSeq: 1\r\n{many}\r\n".encode())
    assert (await conn.response()).status == 400
    conn = await Conn.open(env)
    conn.writer.write(b"OPTIONS rtsp://x/ RTSP/1.0\r\nCSeq: 1\r\n")  # never finished
    assert (await conn.response()).status == 408
    assert await conn.closed()
    conn = await Conn.open(env)
    conn.writer.write(b"\x16\x03\x01 binary junk \r\n\r\n")
    assert (await conn.response()).status == 400
    conn = await Conn.open(env)
    conn.writer.write(b"DESCRIBE rtsp://x/y HTTP/1.1\r\n\r\n")
    assert (await conn.response()).status in (400, 505)


async def test_slowloris_headers_cut_at_request_timeout(env: Env) -> None:
    conn = await Conn.open(env)
    conn.writer.write(b"OPTIONS rtsp://x/ RTSP/1.0\r\n")
    replies: list[int] = []

    async def trickle() -> None:
        for byte in b"CSeq: 1\r\nX-Slow: " + b"z" * 40:
            if conn.writer.is_closing():
                return
            conn.writer.write(bytes([byte]))
            await asyncio.sleep(0.1)

    task = asyncio.create_task(trickle())
    replies.append((await conn.response()).status)
    assert replies == [408]  # request_timeout is 1 s here, the trickle would take 5 s
    assert not task.done()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert await conn.closed()


async def test_unsupported_codec_is_refused_with_reason(env: Env) -> None:
    grant = env.grant("h265", auth_type="BASIC")
    conn = await Conn.open(env)
    reply = await conn.request("DESCRIBE", env.url(grant), basic(grant))
    assert reply.status == 415
    assert "H265" in reply.reason
    conn.close()


async def test_camera_not_exposed(env: Env) -> None:
    grant = env.grant("gone", auth_type="BASIC")
    conn = await Conn.open(env)
    reply = await conn.request("DESCRIBE", env.url(grant), basic(grant))
    assert reply.status == 404
    conn.close()
