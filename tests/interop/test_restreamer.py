"""The restreamer end to end with real peers: gst cameras upstream; over TLS downstream
the Echo-like client, ffprobe/ffmpeg and GStreamer (which verifies the certificate chain).

One restreamer and its cameras are shared by the module (module-scoped event loop).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
import pytest_socket  # type: ignore[import-untyped]
import trustme

from custom_components.alexa_cam_bridge.broker import StreamBroker, StreamGrant
from custom_components.alexa_cam_bridge.restreamer import CameraConfig, Limits, Restreamer
from tests.peers.camera import FakeCamera
from tests.peers.echo_client import EchoResult, make_url, run_echo_client
from tests.peers.ffmpeg import ffmpeg_read_frames, ffprobe_streams
from tests.peers.gst import gst_play
from tests.peers.tls import TestPki

pytestmark = pytest.mark.asyncio(loop_scope="module")

HOST = "127.0.0.1"
SNI = "cam.test"
JPEG = b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9"


@dataclass
class Stack:
    """The module's restreamer, its broker and cameras."""

    restreamer: Restreamer
    broker: StreamBroker
    pki: TestPki
    ca_path: Path
    sources: dict[str, str]
    clock_offset: list[float] = field(default_factory=lambda: [0.0])

    @property
    def port(self) -> int:
        return self.restreamer.bound_ports[0]

    def grant(self, camera_id: str = "cam", auth_type: str = "DIGEST") -> StreamGrant:
        return self.broker.mint(camera_id, ttl=600, auth_type=auth_type)

    def url(self, grant: StreamGrant, scheme: str = "rtsp") -> str:
        return self.restreamer.stream_uri(grant, scheme=scheme)

    async def echo(self, grant: StreamGrant, **kwargs: object) -> EchoResult:
        return await run_echo_client(
            self.url(grant),
            ssl_context=self.pki.client_context(),
            server_hostname=SNI,
            **kwargs,  # type: ignore[arg-type]
        )


@pytest.fixture(autouse=True)
def verify_cleanup() -> None:
    """Replace the HA plugin's per-test check, which cancels every task a test started.

    Here one restreamer (and the relays it starts on demand) lives for the whole module
    on a module-scoped loop; the ``stack`` fixture checks at the end that ``stop()``
    left no task behind, and ``test_stop_leaves_nothing`` checks it for a fresh one.
    """


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(
    fake_camera: FakeCamera, test_pki: TestPki, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    # Module-scoped: set up before the function-scoped ``socket_enabled`` fixture runs.
    pytest_socket.enable_socket()
    small = {"width": 320, "height": 240, "gop": 25}
    pcmu = FakeCamera(audio="pcmu", **small)  # type: ignore[arg-type]
    h265 = FakeCamera(video="h265", audio="none", **small)  # type: ignore[arg-type]
    locked = FakeCamera(user="admin", password="s3cret", auth="digest", audio="none", **small)  # type: ignore[arg-type]
    extra = [pcmu, h265, locked]
    await asyncio.gather(*(camera.astart() for camera in extra))
    sources = {
        "cam": fake_camera.url,
        "video_only": fake_camera.url,
        "pcmu": pcmu.url,
        "h265": h265.url,
        "locked": locked.url_with_credentials,
    }
    offset = [0.0]
    broker = StreamBroker(clock=lambda: time.time() + offset[0])

    async def source(camera_id: str) -> str | None:
        return sources.get(camera_id)

    async def snapshot(camera_id: str) -> bytes | None:
        return JPEG if camera_id == "cam" else None

    restreamer = Restreamer(
        port=0,
        host=HOST,
        ssl_context=test_pki.server_context(),
        broker=broker,
        source=source,
        snapshot=snapshot,
        cameras={
            "cam": CameraConfig("cam", keep_warm=True),
            "video_only": CameraConfig("video_only", video_only=True),
            "pcmu": CameraConfig("pcmu"),
            "h265": CameraConfig("h265"),
            "locked": CameraConfig("locked"),
        },
        grace_seconds=5.0,
        limits=Limits(viewer_queue_bytes=256 * 1024),
        public_host=HOST,
    )
    await restreamer.start()
    ca_path = test_pki.ca_pem_path(tmp_path_factory.mktemp("ca"))
    before = asyncio.all_tasks()
    try:
        yield Stack(restreamer, broker, test_pki, ca_path, sources, offset)
    finally:
        await restreamer.stop()
        leftover = asyncio.all_tasks() - before - {asyncio.current_task()}
        await asyncio.gather(*(camera.astop() for camera in extra))
    assert not leftover, leftover


def assert_playable(result: EchoResult, *, tracks: int = 2) -> None:
    """What the Echo needs, checked on one Echo-like session."""
    assert not result.errors, result.errors
    assert [s for _, s in result.statuses if s != 401] == [200] * len(
        [s for _, s in result.statuses if s != 401]
    )
    assert result.track_media[0].startswith("video/H264/")
    assert len(result.track_urls) == tracks
    assert result.sprop_present
    assert result.content_base is not None
    for index, url in enumerate(result.track_urls):
        assert url == make_url(result.content_base, f"trackID={index}")
    # RTP-Info names every track with the exact URL it was set up with, and the seq and
    # rtptime of the first packet each track received.
    entries = {e["url"]: e for e in result.rtp_info_entries}
    assert set(entries) == set(result.track_urls)
    for index, url in enumerate(result.track_urls):
        assert int(entries[url]["seq"]) == result.first_rtp_seq[index]
        assert int(entries[url]["rtptime"]) == result.first_rtp_timestamp[index]
    # An SR on every track right at PLAY.
    assert result.play_reply is not None
    for index in range(tracks):
        assert result.first_sr[index] - result.play_reply < 1.0
    assert result.first_video_au_is_idr
    assert result.first_idr_complete is not None
    assert result.can_show is not None
    assert not result.timestamps_faked
    assert all(gap == 0 for gap in result.seq_gaps.values())


@pytest.mark.parametrize(
    ("auth", "omit_interleaved", "play_range"),
    [
        ("basic", False, True),
        ("digest", True, True),
        ("aosp-digest", False, False),
        ("aosp-digest", True, True),
    ],
)
async def test_echo_client_plays(
    stack: Stack, auth: str, omit_interleaved: bool, play_range: bool
) -> None:
    grant = stack.grant(auth_type="BASIC" if auth == "basic" else "DIGEST")
    result = await stack.echo(
        grant, auth=auth, omit_interleaved=omit_interleaved, play_range=play_range
    )
    assert_playable(result)
    assert result.statuses[0] == ("DESCRIBE", 401)
    assert result.track_media[1].startswith("audio/MPEG4-GENERIC/")
    assert result.rtp_info is not None
    assert result.rtp_info.count("url=rtsp://") == 2


async def test_ffprobe_and_ffmpeg_over_rtsps(stack: Stack) -> None:
    url = stack.url(stack.grant(), scheme="rtsps")
    streams = await ffprobe_streams(url)
    assert [s["codec_name"] for s in streams] == ["h264", "aac"]
    assert (streams[0]["width"], streams[0]["height"]) == (1280, 720)
    frames = await ffmpeg_read_frames(url, n=10)
    assert frames.ok, frames.stderr_tail


async def test_gstreamer_verifies_chain(stack: Stack, tmp_path: Path) -> None:
    grant = stack.grant(auth_type="BASIC")
    url = f"rtsps://{HOST}:{stack.port}/{grant.stream_id}"
    result = await gst_play(
        url, ca_path=stack.ca_path, user=grant.username, password=grant.password, frames=5
    )
    assert result.ok, (result.error, result.stderr[-2000:])
    wrong_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(wrong_ca))
    result = await gst_play(
        url, ca_path=wrong_ca, user=grant.username, password=grant.password, frames=5, timeout=8
    )
    assert not result.ok
    assert result.frames == 0


async def test_five_viewers_fan_out_without_gaps(stack: Stack) -> None:
    results = await asyncio.gather(
        *(stack.echo(stack.grant(), until="duration", duration=2.0) for _ in range(5))
    )
    for result in results:
        assert_playable(result)
        assert result.packets[0] > 50


async def test_stalled_viewer_does_not_stall_others(stack: Stack) -> None:
    stalled = asyncio.create_task(
        stack.echo(stack.grant(), until="duration", duration=4.0, stall_after_packets=30)
    )
    await asyncio.sleep(0.3)
    others = await asyncio.gather(
        *(stack.echo(stack.grant(), until="duration", duration=3.0) for _ in range(2))
    )
    for result in others:
        assert_playable(result)
    stalled_result = await stalled
    assert stalled_result.stalled_at is not None


async def test_camera_killed_and_restarted(stack: Stack) -> None:
    camera = FakeCamera(audio="none", width=320, height=240, gop=25)
    await camera.astart()
    try:
        stack.sources["flaky"] = camera.url
        stack.restreamer.update_cameras({**_configs(stack), "flaky": CameraConfig("flaky")})
        grant = stack.grant("flaky")
        viewer = asyncio.create_task(stack.echo(grant, until="duration", duration=20.0))
        await asyncio.sleep(1.5)
        await camera.akill()
        async with asyncio.timeout(10):  # ends well before its 20 s: no hang
            result = await viewer
        assert result.can_show is not None
        await camera.arestart()
        result = await stack.echo(stack.grant("flaky"), timeout=10.0)
        assert_playable(result, tracks=1)
        # Removing the camera ends its viewers and refuses new ones.
        viewer = asyncio.create_task(stack.echo(grant, until="duration", duration=20.0))
        await asyncio.sleep(1.0)
        stack.restreamer.update_cameras(_configs(stack))
        async with asyncio.timeout(10):
            await viewer
        result = await stack.echo(stack.grant("flaky"))
        assert result.can_show is None
    finally:
        stack.sources.pop("flaky", None)
        await camera.astop()


def _configs(stack: Stack) -> dict[str, CameraConfig]:
    return {
        "cam": CameraConfig("cam", keep_warm=True),
        "video_only": CameraConfig("video_only", video_only=True),
        "pcmu": CameraConfig("pcmu"),
        "h265": CameraConfig("h265"),
        "locked": CameraConfig("locked"),
    }


async def test_expired_and_wrong_credentials(stack: Stack) -> None:
    grant = stack.grant()
    stack.clock_offset[0] = 601.0
    try:
        result = await stack.echo(grant, auth="aosp-digest")
    finally:
        stack.clock_offset[0] = 0.0
    assert result.statuses[-1] == ("DESCRIBE", 401)
    assert result.can_show is None
    grant = stack.grant(auth_type="BASIC")
    result = await stack.echo(grant, auth="basic", password="wrong")
    assert result.statuses == [("DESCRIBE", 401), ("DESCRIBE", 401)]


async def tls_exchange(stack: Stack, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(
        HOST, stack.port, ssl=stack.pki.client_context(), server_hostname=SNI
    )
    writer.write(data)
    out = b""
    try:
        async with asyncio.timeout(8):
            while b"\r\n\r\n" not in out:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                out += chunk
    finally:
        writer.close()
    return out


async def test_digest_replay_on_new_connection_refused(stack: Stack) -> None:
    grant = stack.grant()
    url = f"rtsp://{HOST}:{stack.port}/{grant.stream_id}"
    reader, writer = await asyncio.open_connection(
        HOST, stack.port, ssl=stack.pki.client_context(), server_hostname=SNI
    )
    writer.write(f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode())
    challenge = (await reader.readuntil(b"\r\n\r\n")).decode()
    nonce = challenge.split('nonce="', 1)[1].split('"', 1)[0]

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1 = md5(f"{grant.username}:Streaming Server:{grant.password}")
    response = md5(f"{ha1}:{nonce}:{md5(f'DESCRIBE:{url}')}")
    authorization = (
        f'Authorization: Digest username="{grant.username}", realm="Streaming Server", '
        f'nonce="{nonce}", uri="{url}", response="{response}"'
    )
    request = f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 2\r\n{authorization}\r\n\r\n".encode()
    writer.write(request)
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"RTSP/1.0 200 OK")
    writer.close()
    replay = await tls_exchange(stack, request)
    assert replay.startswith(b"RTSP/1.0 401 ")


async def test_plain_garbage_and_oversized(stack: Stack) -> None:
    reader, writer = await asyncio.open_connection(HOST, stack.port)
    writer.write(b"DESCRIBE rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 1\r\n\r\n")
    async with asyncio.timeout(5):
        assert await reader.read() == b""
    writer.close()
    assert (await tls_exchange(stack, b"\x00\xffgarbage\r\n\r\n")).startswith(b"RTSP/1.0 400 ")
    big = b"OPTIONS rtsp://x/ RTSP/1.0\r\nCSeq: 1\r\n" + b"X-A: " + b"a" * 20000 + b"\r\n\r\n"
    assert (await tls_exchange(stack, big)).startswith(b"RTSP/1.0 400 ")


async def test_video_only_pcmu_and_upstream_auth(stack: Stack) -> None:
    result = await stack.echo(stack.grant("video_only"))
    assert_playable(result, tracks=1)
    assert "m=audio" not in result.sdp
    result = await stack.echo(stack.grant("pcmu"))
    assert_playable(result)
    assert result.track_media[1].startswith("audio/PCMU/8000")
    result = await stack.echo(stack.grant("locked"))
    assert_playable(result, tracks=1)


async def test_h265_camera_refused_clearly(stack: Stack) -> None:
    result = await stack.echo(stack.grant("h265"))
    assert result.statuses[-1] == ("DESCRIBE", 415)
    probe = await stack.restreamer.probe("h265")
    assert not probe.h264
    assert probe.video_codec == "H265"


async def test_probe_and_snapshot(stack: Stack) -> None:
    probe = await stack.restreamer.probe("cam")
    assert probe.h264
    assert (probe.width, probe.height, probe.profile) == (1280, 720, "Main")
    assert probe.audio_codec == "AAC"
    probe = await stack.restreamer.probe("pcmu")
    assert probe.audio_codec == "G711"
    uri = stack.restreamer.snapshot_uri("cam")
    path = uri.split(f":{stack.port}", 1)[1]
    reply = await tls_exchange(stack, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 200 OK")
    reply = await tls_exchange(stack, b"GET /snapshot/forged HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 404 ")
    path = stack.restreamer.snapshot_uri("pcmu").split(f":{stack.port}", 1)[1]
    reply = await tls_exchange(stack, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 503 ")
    stats = stack.restreamer.stats()
    assert stats["listening"]
    assert stats["cameras"]["cam"]["state"] == "streaming"
    assert "password" not in repr(stats)


async def test_stop_leaves_nothing(fake_camera: FakeCamera, test_pki: TestPki) -> None:
    broker = StreamBroker()

    async def source(camera_id: str) -> str | None:
        return fake_camera.url

    async def snapshot(camera_id: str) -> bytes | None:
        return None

    restreamer = Restreamer(
        port=0,
        host=HOST,
        ssl_context=test_pki.server_context(),
        broker=broker,
        source=source,
        snapshot=snapshot,
        cameras={"cam": CameraConfig("cam")},
        public_host=HOST,
    )
    await restreamer.start()
    before = set(asyncio.all_tasks())
    grant = broker.mint("cam", ttl=60, auth_type="BASIC")
    viewer = asyncio.create_task(
        run_echo_client(
            restreamer.stream_uri(grant),
            ssl_context=test_pki.client_context(),
            server_hostname=SNI,
            until="duration",
            duration=20.0,
        )
    )
    port = restreamer.bound_ports[0]
    try:
        for _ in range(80):  # cold relay: up to a GOP before PLAY is answered
            if restreamer.stats()["playing"] == 1:
                break
            await asyncio.sleep(0.1)
        assert restreamer.stats()["playing"] == 1
    finally:
        await restreamer.stop()
    assert not restreamer.listening
    async with asyncio.timeout(5):
        result = await viewer
    assert result.can_show is not None
    leftover = set(asyncio.all_tasks()) - before - {asyncio.current_task()}
    assert not leftover
    with pytest.raises(OSError):
        await asyncio.open_connection(HOST, port)
