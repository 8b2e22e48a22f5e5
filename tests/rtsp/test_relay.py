"""Tests of the camera relay against the real fake camera.

Viewers here write into an in-memory transport (so the tests can look at every byte and
simulate a stalled TCP connection); the camera side is the real gst-rtsp-server camera.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from typing import Any

import pytest

from custom_components.alexa_cam_bridge.rtsp import h264
from custom_components.alexa_cam_bridge.rtsp.limits import Limits
from custom_components.alexa_cam_bridge.rtsp.messages import (
    InterleavedFrame,
    RtspParser,
)
from custom_components.alexa_cam_bridge.rtsp.relay import (
    CameraRelay,
    RelayState,
    RelayUnavailable,
    Viewer,
)
from custom_components.alexa_cam_bridge.rtsp.rtp import SenderReport, parse_rtcp
from tests.peers.camera import FakeCamera
from tests.peers.fixtures import CameraFactory
from tests.rtsp.bare_camera import SPS, BareCamera

HOST = "127.0.0.1"


class MemoryTransport(asyncio.WriteTransport):
    """Collects written bytes; ``backlog`` simulates a full socket buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()
        self.backlog = 0
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.backlog:
            self.backlog += len(data)
        else:
            self.data += data

    def get_write_buffer_size(self) -> int:
        return self.backlog

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def frames(self) -> list[InterleavedFrame]:
        return [
            m
            for m in RtspParser(role="client").feed(bytes(self.data))
            if isinstance(m, InterleavedFrame)
        ]


def make_relay(url: str, **kwargs: Any) -> CameraRelay:
    async def source(camera_id: str) -> str | None:
        return url

    return CameraRelay("camera.test", source=source, **kwargs)


def is_skipping(viewer: Viewer) -> bool:
    """Read the flag through a call (mypy would keep an earlier narrowing)."""
    return viewer.skipping


def is_running(relay: CameraRelay) -> bool:
    """Read the property through a call (mypy would keep an earlier narrowing)."""
    return relay.running


def seq_of(frame: InterleavedFrame) -> int:
    return int.from_bytes(frame.payload[2:4], "big")


def ts_of(frame: InterleavedFrame) -> int:
    return int.from_bytes(frame.payload[4:8], "big")


def gaps(frames: list[InterleavedFrame], channel: int) -> int:
    seqs = [seq_of(f) for f in frames if f.channel == channel]
    return sum(1 for a, b in itertools.pairwise(seqs) if (b - a) & 0xFFFF != 1)


async def test_viewer_starts_on_cached_keyframe_with_srs(fake_camera: FakeCamera) -> None:
    relay = make_relay(fake_camera.url, grace_seconds=0.5)
    relay.acquire()
    try:
        sdp_text, tracks = await relay.wait_sdp()
        assert [t.kind for t in tracks] == ["video", "audio"]
        assert sdp_text.index("m=video") < sdp_text.index("m=audio")
        assert "sprop-parameter-sets=" in sdp_text
        assert await relay.wait_keyframe(5.0)
        assert await relay.wait_all_tracks(2.0)
        transport = MemoryTransport()
        ended: list[str] = []
        viewer = Viewer(transport, {0: 0, 1: 2}, queue_limit=1 << 20, on_end=ended.append)
        start = relay.attach(viewer)
        assert start.from_cache
        transport.write(start.initial)
        await asyncio.sleep(1.0)
        frames = transport.frames()
        # First an SR on each track's RTCP channel, mapping the first packet's timestamp.
        assert {frames[0].channel, frames[1].channel} == {1, 3}
        first_rtp = {ch: next(f for f in frames if f.channel == ch) for ch in (0, 2)}
        for rtcp_frame in frames[:2]:
            report = parse_rtcp(rtcp_frame.payload)[0]
            assert isinstance(report, SenderReport)
            media = first_rtp[rtcp_frame.channel - 1]
            assert report.rtp_timestamp == ts_of(media)
            assert report.ssrc == int.from_bytes(media.payload[8:12], "big")
        # The first video packet starts a keyframe (SPS or IDR), RTP-Info names it.
        video = first_rtp[0]
        assert h264.is_keyframe_start(video.payload[12:])
        assert start.rtp_info[0] == (seq_of(video), ts_of(video))
        assert start.rtp_info[1] == (seq_of(first_rtp[2]), ts_of(first_rtp[2]))
        assert gaps(frames, 0) == 0
        assert gaps(frames, 2) == 0
        assert not ended
        relay.detach(viewer)
    finally:
        relay.release()
        await relay.stop()


async def test_stalled_viewer_skips_to_keyframe_others_unaffected(
    fake_camera: FakeCamera,
) -> None:
    relay = make_relay(fake_camera.url)
    relay.acquire()
    try:
        await relay.wait_sdp()
        assert await relay.wait_keyframe(5.0)
        good, slow = MemoryTransport(), MemoryTransport()
        viewers = [
            Viewer(t, {0: 0, 1: 2}, queue_limit=64 * 1024, on_end=lambda _r: None)
            for t in (good, slow)
        ]
        for transport, viewer in zip((good, slow), viewers, strict=True):
            transport.write(relay.attach(viewer).initial)
        slow.backlog = 10 * 1024 * 1024  # its socket stops draining
        await asyncio.sleep(0.5)
        assert is_skipping(viewers[1])
        assert viewers[1].dropped > 0
        slow.backlog = 0  # it drains again: resumes at the next keyframe
        await asyncio.sleep(2.5)
        assert not is_skipping(viewers[1])
        frames = slow.frames()
        after_gap = [f for f in frames if f.channel == 0]
        assert gaps(frames, 0) >= 1
        resumed = next(
            after_gap[i + 1]
            for i in range(len(after_gap) - 1)
            if (seq_of(after_gap[i + 1]) - seq_of(after_gap[i])) & 0xFFFF != 1
        )
        assert h264.is_keyframe_start(resumed.payload[12:])
        assert gaps(good.frames(), 0) == 0
        assert gaps(good.frames(), 2) == 0
        for viewer in viewers:
            relay.detach(viewer)
    finally:
        relay.release()
        await relay.stop()


async def test_grace_stop_and_keep_warm(fake_camera: FakeCamera) -> None:
    relay = make_relay(fake_camera.url, grace_seconds=0.3)
    relay.prepare()
    await relay.wait_sdp()
    assert is_running(relay)
    await asyncio.sleep(0.8)
    assert not is_running(relay)
    assert relay.state is RelayState.IDLE
    warm = make_relay(fake_camera.url, grace_seconds=0.1, keep_warm=True)
    warm.prepare()
    await warm.wait_sdp()
    await asyncio.sleep(0.5)
    assert is_running(warm)
    assert warm.stats()["state"] == "streaming"
    warm.set_options(video_only=False, keep_warm=False)
    await asyncio.sleep(0.4)
    assert not is_running(warm)
    await warm.stop()
    await relay.stop()


async def test_video_only(fake_camera: FakeCamera) -> None:
    relay = make_relay(fake_camera.url, video_only=True)
    relay.acquire()
    try:
        sdp_text, tracks = await relay.wait_sdp()
        assert [t.kind for t in tracks] == ["video"]
        assert "m=audio" not in sdp_text
    finally:
        relay.release()
        await relay.stop()


async def test_unsupported_codec_refused(fake_camera_factory: CameraFactory) -> None:
    camera = await fake_camera_factory.astart(video="h265", width=640, height=360)
    relay = make_relay(camera.url)
    relay.acquire()
    try:
        with pytest.raises(RelayUnavailable) as err:
            await relay.wait_sdp()
        assert err.value.status == 415
        assert "H265" in err.value.reason
        assert relay.probe_result() is None
    finally:
        relay.release()
        await relay.stop()


async def test_unreachable_camera_gives_503() -> None:
    relay = make_relay("rtsp://127.0.0.1:1/none")
    relay.acquire()
    try:
        with pytest.raises(RelayUnavailable) as err:
            await relay.wait_sdp(timeout=1.5)
        assert err.value.status == 503
        assert relay.last_error
    finally:
        relay.release()
        await relay.stop()


async def test_camera_death_ends_viewers_then_reconnects(
    fake_camera_factory: CameraFactory,
) -> None:
    camera = await fake_camera_factory.astart(audio="none", width=640, height=360, gop=25)
    relay = make_relay(camera.url)
    relay.acquire()
    try:
        await relay.wait_sdp()
        assert await relay.wait_keyframe(5.0)
        ended: list[str] = []
        ended_event = asyncio.Event()

        def on_end(reason: str) -> None:
            ended.append(reason)
            ended_event.set()

        transport = MemoryTransport()
        viewer = Viewer(transport, {0: 0}, queue_limit=1 << 20, on_end=on_end)
        relay.attach(viewer)
        await camera.akill()
        async with asyncio.timeout(5):
            await ended_event.wait()
        assert "camera" in ended[0]
        await camera.arestart()
        sdp_text, _ = await relay.wait_sdp(timeout=8.0)
        assert "m=video" in sdp_text
        assert relay.reconnects >= 1
        assert relay.probe_result() is not None
    finally:
        relay.release()
        await relay.stop()
    assert relay.stats()["viewers"] == 0


async def test_gop_cache_bound(fake_camera: FakeCamera) -> None:
    relay = make_relay(fake_camera.url, limits=Limits(gop_cache_bytes=2000))
    relay.acquire()
    try:
        await relay.wait_sdp()
        await asyncio.sleep(2.5)
        stats = relay.stats()
        assert stats["gop_bytes"] <= 2000
        transport = MemoryTransport()
        viewer = Viewer(transport, {0: 0, 1: 2}, queue_limit=1 << 20, on_end=lambda _r: None)
        start = relay.attach(viewer)
        if not start.from_cache:
            assert viewer.skipping  # waits for the next keyframe instead
        relay.detach(viewer)
    finally:
        relay.release()
        await relay.stop()


async def test_camera_without_sprop_or_rtcp() -> None:
    camera = BareCamera()
    await camera.start()
    relay = make_relay(camera.url)
    relay.acquire()
    try:
        sdp_text, tracks = await relay.wait_sdp()
        assert [t.kind for t in tracks] == ["video"]
        # sprop filled from the in-band SPS/PPS.
        assert f"sprop-parameter-sets={base64.b64encode(SPS).decode()}," in sdp_text
        assert await relay.wait_keyframe(2.0)
        transport = MemoryTransport()
        viewer = Viewer(transport, {0: 0}, queue_limit=1 << 20, on_end=lambda _r: None)
        start = relay.attach(viewer)
        transport.write(start.initial)
        await asyncio.sleep(2.6)
        frames = transport.frames()
        # An SR generated from the arrival clock comes first, for the cached keyframe
        # (which starts with its SPS); more are generated periodically.
        assert frames[0].channel == 1
        first_video = next(f for f in frames if f.channel == 0)
        report = parse_rtcp(frames[0].payload)[0]
        assert isinstance(report, SenderReport)
        assert report.rtp_timestamp == ts_of(first_video)
        assert first_video.payload[12] & 0x1F == h264.NAL_SPS
        assert abs(report.unix_time - time.time()) < 5
        srs = [parse_rtcp(f.payload)[0] for f in frames if f.channel == 1]
        assert len(srs) >= 2
        assert all(isinstance(sr, SenderReport) for sr in srs)
        assert gaps(frames, 0) == 0
        relay.detach(viewer)
    finally:
        relay.release()
        await relay.stop()
        await camera.stop()
