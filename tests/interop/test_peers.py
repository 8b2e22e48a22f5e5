"""The test peers against each other, without the project's server.

If these pass, a failure elsewhere that involves a peer is the project's fault: the fake
camera serves H.264 + AAC that ffmpeg, GStreamer and the Echo-like client all play, the
camera is free-running like a real one, and stunnel + the test PKI give a valid TLS chain.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.peers.camera import FakeCamera
from tests.peers.echo_client import (
    AuthMode,
    EchoResult,
    authorization_header,
    make_url,
    parse_sdp_tracks,
    rtp_diff,
    run_echo_client,
)
from tests.peers.ffmpeg import ffmpeg_read_frames, ffprobe_streams
from tests.peers.fixtures import CameraFactory
from tests.peers.gst import gst_play
from tests.peers.stunnel import Stunnel
from tests.peers.tls import TestPki

CAN_SHOW_LIMIT = 15.0
"""gst-rtsp-server's SRs come every 2-6 s per track (RTCP interval); then the next IDR."""

SMALL = {"width": 320, "height": 240, "bitrate": 300}
"""Settings for cameras that only test signalling (cheap on two cores)."""


@pytest.fixture
def stunnel(fake_camera: FakeCamera, test_pki: TestPki, tmp_path: Path) -> Iterator[Stunnel]:
    """stunnel with the test PKI's chain in front of the module's camera.

    Function-scoped: starting it takes ~20 ms, and pytest-socket only allows sockets
    inside a test (the root conftest enables them per test).
    """
    chain_dir = tmp_path / "stunnel"
    chain_dir.mkdir()
    chain, key = test_pki.write_chain_and_key(chain_dir)
    with Stunnel(fake_camera.port, chain, key) as tunnel:
        yield tunnel


def assert_echo_can_show(result: EchoResult) -> None:
    """The Echo-like client played the H.264 + AAC camera to a showable picture."""
    assert result.errors == [], result.summary()
    assert result.statuses[:4] == [("DESCRIBE", 200), ("SETUP", 200), ("SETUP", 200), ("PLAY", 200)]
    assert result.track_media == ["video/H264/90000", "audio/MPEG4-GENERIC/16000"]
    assert result.sprop_present
    assert result.content_base is not None
    assert result.content_base.endswith("/")
    assert [entry["url"] for entry in result.rtp_info_entries] == result.track_urls
    assert result.first_idr_complete is not None
    # (no check of in-band SPS/PPS here: joining a free-running camera between an IDR's
    # SPS/PPS packets and its slices is legitimate; the sprop in the SDP covers it)
    assert set(result.first_sr) == {0, 1}
    assert result.can_show is not None
    assert result.can_show >= max(result.first_sr.values())
    assert not result.timestamps_faked
    assert result.seq_gaps == {0: 0, 1: 0}
    assert result.reordered == {0: 0, 1: 0}
    assert result.rtp_backwards == {0: 0, 1: 0}


# -- Echo-like client straight to the camera ---------------------------------------------


async def test_echo_client_plays_camera(fake_camera: FakeCamera) -> None:
    """DESCRIBE/SETUP/PLAY, SDP with sprop, RTP-Info, a complete IDR, SRs, no gaps."""
    result = await run_echo_client(fake_camera.url, until="can_show", duration=CAN_SHOW_LIMIT)
    assert_echo_can_show(result)
    assert result.tls_done is None
    assert result.rtp_info_entries[0]["seq"].isdigit()
    assert result.rtp_info_entries[0]["rtptime"].isdigit()
    assert result.statuses[-1] == ("TEARDOWN", 200)


async def test_echo_client_variants(fake_camera: FakeCamera) -> None:
    """Transport without interleaved= (server assigns channels) and PLAY without Range."""
    result = await run_echo_client(
        fake_camera.url, until="first_rtp", omit_interleaved=True, play_range=False
    )
    assert result.errors == [], result.summary()
    assert all("interleaved=" in transport for transport in result.transports)
    assert result.packets[0] > 0
    assert result.seq_gaps == {0: 0, 1: 0}


async def test_echo_client_stall_keeps_socket_open(fake_camera: FakeCamera) -> None:
    """stall_after_packets stops reading but does not disconnect."""
    result = await run_echo_client(
        fake_camera.url, until="duration", duration=2.0, stall_after_packets=5
    )
    assert result.errors == [], result.summary()
    assert result.stalled_at is not None
    assert sum(result.packets.values()) + sum(result.rtcp_packets.values()) <= 5


@pytest.mark.parametrize("auth", ["basic", "digest"])
async def test_echo_client_camera_auth(fake_camera_factory: CameraFactory, auth: str) -> None:
    """Basic and Digest against gst-rtsp-server; a wrong password is a reported 401."""
    camera = await fake_camera_factory.astart(
        **SMALL, audio="none", user="admin", password="pa ss:wörd", auth=auth
    )
    mode: AuthMode = "digest" if auth == "digest" else "basic"
    good = await run_echo_client(camera.url_with_credentials, auth=mode, until="first_rtp")
    assert good.errors == [], good.summary()
    assert good.statuses[:2] == [("DESCRIBE", 401), ("DESCRIBE", 200)]
    assert good.packets[0] > 0

    bad = await run_echo_client(camera.url, user="admin", password="wrong", auth=mode, until="play")
    assert bad.statuses == [("DESCRIBE", 401), ("DESCRIBE", 401)]
    assert bad.errors == ["RtspError: DESCRIBE failed: 401"]


def test_aosp_digest_bytes() -> None:
    """The stock AOSP Digest: fixed realm, no realm field, URL with a trailing space."""
    url = "rtsp://cam.test:443/cam"
    header = authorization_header(
        "aosp-digest",
        'Digest realm="Other", nonce="abc", qop="auth"',
        method="DESCRIBE",
        url=url,
        user="u",
        password="p",
    )

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    expected = md5(f"{md5('u:Streaming Server:p')}:abc:{md5(f'DESCRIBE:{url} ')}")
    assert header == (f'Digest nonce="abc", username="u", uri="{url} ", response="{expected}"')


def test_make_url_follows_aosp() -> None:
    """AOSP MakeURL: a Content-Base without a trailing slash loses its last segment."""
    assert make_url("rtsp://h:1/cam/", "stream=0") == "rtsp://h:1/cam/stream=0"
    assert make_url("rtsp://h:1/cam", "stream=0") == "rtsp://h:1/stream=0"
    assert make_url("rtsp://h:1", "trackID=1") == "rtsp://h:1/trackID=1"
    assert make_url("rtsp://h:1/cam/", "rtsp://x/y") == "rtsp://x/y"
    assert rtp_diff(5, 2**32 - 5) == 10
    session, tracks = parse_sdp_tracks(
        "v=0\r\na=control:*\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
        "a=control:stream=0\r\n"
    )
    assert session == "*"
    assert tracks == [
        {
            "media": "video",
            "pt": "96",
            "encoding": "H264",
            "clock_rate": "90000",
            "control": "stream=0",
            "fmtp": "",
        }
    ]


# -- the can_show rule, against a scripted server --------------------------------------

SCRIPTED_SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=scripted\r\nt=0 0\r\na=control:*\r\n"
    "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0IAHg==,aM4=\r\n"
    "a=control:trackID=0\r\n"
    "m=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=control:trackID=1\r\n"
)


def rtp(seq: int, timestamp: int, payload: bytes, *, marker: bool, pt: int = 96) -> bytes:
    """One RTP packet (no CSRC, no extension)."""
    header = bytes([0x80, (0x80 if marker else 0) | pt]) + seq.to_bytes(2) + timestamp.to_bytes(4)
    return header + b"\x00\x00\x00\x01" + payload


def sender_report(ntp_seconds: int, timestamp: int) -> bytes:
    """An RTCP SR without report blocks."""
    return (
        b"\x80\xc8\x00\x06"
        + b"\x00\x00\x00\x01"
        + (ntp_seconds << 32).to_bytes(8)
        + (timestamp.to_bytes(4) + bytes(8))
    )


def interleaved(channel: int, packet: bytes) -> bytes:
    """RTSP interleaved framing."""
    return b"$" + bytes([channel]) + len(packet).to_bytes(2) + packet


def idr_packets(seq: int, timestamp: int) -> list[bytes]:
    """SPS+PPS in a STAP-A, then an IDR slice in two FU-A fragments (marker on the last)."""
    sps, pps, idr = b"\x67\x42\x00\x1e", b"\x68\xce", b"\x65" + bytes(2000)
    stap = b"\x18" + len(sps).to_bytes(2) + sps + len(pps).to_bytes(2) + pps
    first = b"\x7c\x85" + idr[1:1000]
    last = b"\x7c\x45" + idr[1000:]
    return [
        rtp(seq, timestamp, stap, marker=False),
        rtp(seq + 1, timestamp, first, marker=False),
        rtp(seq + 2, timestamp, last, marker=True),
    ]


async def scripted_server(media: list[bytes]) -> tuple[asyncio.Server, int]:
    """An RTSP server that answers the Echo's requests and sends ``media`` after PLAY."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = (await reader.readuntil(b"\r\n\r\n")).decode()
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            method, url = head.split(" ", 2)[:2]
            cseq = head.split("CSeq: ", 1)[1].split("\r\n", 1)[0]
            extra, body = "", ""
            if method == "DESCRIBE":
                body = SCRIPTED_SDP
                extra = f"Content-Base: {url}/\r\nContent-Type: application/sdp\r\n"
            elif method == "SETUP":
                transport = head.split("Transport: ", 1)[1].split("\r\n", 1)[0]
                extra = f"Session: 42;timeout=60\r\nTransport: {transport}\r\n"
            writer.write(
                f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}"
                f"Content-Length: {len(body)}\r\n\r\n{body}".encode()
            )
            if method == "PLAY":
                for frame in media:
                    writer.write(frame)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_can_show_when_relay_sends_srs_first() -> None:
    """SRs at PLAY that cover the cached IDR: showable at once, nothing dropped."""
    video_ts, audio_ts = 900_000, 80_000
    media = [
        interleaved(1, sender_report(1000, video_ts)),
        interleaved(3, sender_report(1000, audio_ts)),
        *(interleaved(0, packet) for packet in idr_packets(10, video_ts)),
        interleaved(2, rtp(5, audio_ts, bytes(160), marker=False, pt=0)),
    ]
    server, port = await scripted_server(media)
    async with server:
        result = await run_echo_client(f"rtsp://127.0.0.1:{port}/cam", duration=5)
    assert result.errors == [], result.summary()
    assert result.can_show is not None
    assert result.first_idr_complete is not None
    assert result.can_show >= result.first_idr_complete
    assert result.first_idr_has_parameter_sets
    assert result.dropped_idrs == 0
    assert result.track_urls == [
        f"rtsp://127.0.0.1:{port}/cam/trackID=0",
        f"rtsp://127.0.0.1:{port}/cam/trackID=1",
    ]


async def test_can_show_drops_idr_older_than_first_sr() -> None:
    """An IDR older than the first SR is dropped (AOSP); the next IDR is shown."""
    video_ts, audio_ts = 900_000, 80_000
    media = [
        *(interleaved(0, packet) for packet in idr_packets(10, video_ts)),
        interleaved(2, rtp(5, audio_ts, bytes(160), marker=False, pt=0)),
        # First SR: 0.1 s after the IDR was captured (video clock 90 kHz).
        interleaved(1, sender_report(1000, video_ts + 9000)),
        interleaved(3, sender_report(1000, audio_ts + 800)),
        *(interleaved(0, packet) for packet in idr_packets(13, video_ts + 18000)),
    ]
    server, port = await scripted_server(media)
    async with server:
        result = await run_echo_client(f"rtsp://127.0.0.1:{port}/cam", duration=5)
    assert result.errors == [], result.summary()
    assert result.idr_timestamps == [video_ts, video_ts + 18000]
    assert result.dropped_idrs == 1
    assert result.can_show is not None
    assert result.first_idr_complete is not None
    assert result.can_show > result.first_idr_complete


async def test_no_can_show_without_srs() -> None:
    """Without SRs AOSP holds the picture (until its 10 s fallback)."""
    media = [interleaved(0, packet) for packet in idr_packets(10, 900_000)]
    media.append(interleaved(2, rtp(5, 80_000, bytes(160), marker=False, pt=0)))
    server, port = await scripted_server(media)
    async with server:
        result = await run_echo_client(f"rtsp://127.0.0.1:{port}/cam", duration=0.5)
    assert result.first_idr_complete is not None
    assert result.can_show is None
    assert result.errors == ["can_show not reached within 0.5 s"]


# -- the camera is free-running --------------------------------------------------------


async def test_camera_is_free_running(fake_camera: FakeCamera) -> None:
    """A viewer joining 1 s later shares the running encoder, like on a real camera.

    A seekable gst-rtsp-server pipeline would restart on the second PLAY (``Range:
    npt=0.000-``): the first viewer's RTP timestamps would jump back and the second
    viewer would start on a fresh IDR. Asserted on RTP timestamps, not wall-clock time.
    """
    first_task = asyncio.create_task(
        run_echo_client(fake_camera.url, until="duration", duration=5.0)
    )
    await asyncio.sleep(1.0)
    second = await run_echo_client(fake_camera.url, until="duration", duration=3.0)
    first = await first_task
    assert first.errors == [], first.summary()
    assert second.errors == [], second.summary()
    assert first.rtp_backwards == {0: 0, 1: 0}
    assert second.rtp_backwards == {0: 0, 1: 0}
    gop_ticks = fake_camera.gop * 90000 // fake_camera.fps
    idrs = first.idr_timestamps + second.idr_timestamps
    assert len(first.idr_timestamps) >= 2
    assert second.idr_timestamps
    assert all(rtp_diff(ts, idrs[0]) % gop_ticks == 0 for ts in idrs)
    # Where in the GOP did the second viewer join? Unless exactly on a key frame, its
    # first access unit must be a P-frame.
    phase = rtp_diff(second.first_rtp_timestamp[0], idrs[0]) % gop_ticks
    if phase != 0:
        assert second.first_video_au_is_idr is False


async def test_camera_kill_and_restart(fake_camera_factory: CameraFactory) -> None:
    """kill() drops the viewers; restart() serves again on the same port."""
    camera = await fake_camera_factory.astart(**SMALL, audio="pcmu")
    port = camera.port
    playing = asyncio.create_task(run_echo_client(camera.url, until="duration", duration=5))
    await asyncio.sleep(0.5)
    await camera.akill()
    killed = await playing
    assert any("lost" in error or "closed" in error for error in killed.errors)
    await camera.arestart()
    assert camera.port == port
    again = await run_echo_client(camera.url, until="first_rtp")
    assert again.errors == [], again.summary()
    assert again.track_media == ["video/H264/90000", "audio/PCMU/8000"]


# -- ffmpeg and GStreamer -------------------------------------------------------------------


async def test_ffprobe_and_ffmpeg(fake_camera: FakeCamera) -> None:
    """ffprobe sees 1280x720 H.264 Main and AAC; ffmpeg decodes frames (timed)."""
    streams, frames = await asyncio.gather(
        ffprobe_streams(fake_camera.url), ffmpeg_read_frames(fake_camera.url, n=10)
    )
    by_type = {stream["codec_type"]: stream for stream in streams}
    assert by_type["video"]["codec_name"] == "h264"
    assert by_type["video"]["profile"] == "Main"
    assert (by_type["video"]["width"], by_type["video"]["height"]) == (1280, 720)
    assert by_type["audio"]["codec_name"] == "aac"
    assert frames.ok, frames
    assert frames.first_frame_s is not None


async def test_other_codecs(fake_camera_factory: CameraFactory) -> None:
    """Cameras the bridge cannot serve (H.265 + G.711 A-law, MJPEG) are real too."""
    h265, jpeg = await asyncio.gather(
        fake_camera_factory.astart(**SMALL, video="h265", audio="pcma"),
        fake_camera_factory.astart(**SMALL, video="jpeg", audio="none"),
    )
    h265_streams, jpeg_streams = await asyncio.gather(
        ffprobe_streams(h265.url), ffprobe_streams(jpeg.url)
    )
    assert {stream["codec_name"] for stream in h265_streams} == {"hevc", "pcm_alaw"}
    assert {stream["codec_name"] for stream in jpeg_streams} == {"mjpeg"}


async def test_gst_client_plays_camera(fake_camera: FakeCamera) -> None:
    """GStreamer's rtspsrc decodes H.264 frames from the camera."""
    result = await gst_play(fake_camera.url, frames=5)
    assert result.ok, result
    assert result.frames == 5


# -- TLS through stunnel ----------------------------------------------------------------


async def test_echo_client_through_stunnel(stunnel: Stunnel, test_pki: TestPki) -> None:
    """rtsp://…:<port> over TLS (like the Echo), verified against the test CA."""
    result = await run_echo_client(
        f"rtsp://127.0.0.1:{stunnel.port}/cam",
        ssl_context=test_pki.client_context(),
        server_hostname="cam.test",
        until="can_show",
        duration=CAN_SHOW_LIMIT,
    )
    assert_echo_can_show(result)
    assert result.tls_done is not None
    assert result.connect_done is not None
    assert result.tls_done >= result.connect_done


async def test_gst_rtsps_verifies_the_chain(
    stunnel: Stunnel, test_pki: TestPki, tmp_path: Path
) -> None:
    """GStreamer plays rtsps:// with the right CA and refuses a foreign CA."""
    url = f"rtsps://127.0.0.1:{stunnel.port}/cam"
    foreign_dir = tmp_path / "foreign"
    foreign_dir.mkdir()
    foreign = TestPki().ca_pem_path(foreign_dir)
    good, bad = await asyncio.gather(
        gst_play(url, ca_path=test_pki.ca_pem_path(tmp_path), frames=3),
        gst_play(url, ca_path=foreign, frames=3, timeout=10),
    )
    assert good.ok, good
    assert not bad.ok
    assert bad.frames == 0


async def test_ffprobe_rtsps(stunnel: Stunnel) -> None:
    """ffprobe speaks rtsps:// (without verifying: Debian's ffmpeg never does)."""
    streams = await ffprobe_streams(f"rtsps://127.0.0.1:{stunnel.port}/cam")
    assert {stream["codec_name"] for stream in streams} == {"h264", "aac"}
