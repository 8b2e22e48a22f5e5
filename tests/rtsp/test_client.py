"""Tests of the upstream RTSP client and the prober against the real fake camera."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from custom_components.alexa_cam_bridge.rtsp import sdp
from custom_components.alexa_cam_bridge.rtsp.client import (
    RtspClient,
    RtspClientError,
    probe,
)
from custom_components.alexa_cam_bridge.rtsp.messages import InterleavedFrame
from tests.peers.camera import FakeCamera
from tests.peers.fixtures import CameraFactory
from tests.rtsp.bare_camera import BareCamera


async def _play_video(url: str, wanted: int = 50) -> tuple[list[InterleavedFrame], RtspClient]:
    frames: list[InterleavedFrame] = []
    enough = asyncio.Event()

    def on_frames(batch: list[InterleavedFrame]) -> None:
        frames.extend(batch)
        if len(frames) >= wanted:
            enough.set()

    client = RtspClient(url, timeout=5.0, on_frames=on_frames)
    await client.connect()
    sdp_text, base = await client.describe()
    tracks, _ = sdp.select_tracks(sdp.parse_sdp(sdp_text), base, video_only=True)
    await client.setup(tracks[0].control, (0, 1))
    await client.play(base)
    async with asyncio.timeout(8):
        await enough.wait()
    return frames, client


async def test_describe_setup_play_receives_rtp(fake_camera: FakeCamera) -> None:
    frames, client = await _play_video(fake_camera.url)
    try:
        assert client.session is not None
        rtp = [f for f in frames if f.channel == 0]
        assert rtp
        assert all(f.payload[0] >> 6 == 2 for f in rtp)
        seqs = [int.from_bytes(f.payload[2:4], "big") for f in rtp]
        assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    finally:
        await client.close()
    assert client.closed.done()


@pytest.mark.parametrize("auth", ["basic", "digest"])
async def test_camera_auth(fake_camera_factory: CameraFactory, auth: str) -> None:
    camera = await fake_camera_factory.astart(
        user="admin",
        password="p@ss:word/x",
        auth=auth,
        audio="none",
    )
    frames, client = await _play_video(camera.url_with_credentials, wanted=5)
    await client.close()
    assert frames
    wrong = camera.url_with_credentials.replace("admin", "nobody")
    bad = RtspClient(wrong, timeout=5.0)
    await bad.connect()
    with pytest.raises(RtspClientError) as err:
        await bad.describe()
    assert err.value.status == 401
    await bad.close()


async def test_connect_refused() -> None:
    client = RtspClient("rtsp://127.0.0.1:1/x", timeout=2.0)
    with pytest.raises(RtspClientError):
        await client.connect()


async def test_probe_h264_with_sprop(fake_camera: FakeCamera) -> None:
    result = await probe(fake_camera.url)
    assert result.h264
    assert result.video_codec == "H264"
    assert (result.width, result.height) == (1280, 720)
    assert result.profile == "Main"
    assert result.audio_codec == "AAC"
    assert "m=video" in result.sdp


async def test_probe_other_codecs(fake_camera_factory: CameraFactory) -> None:
    h265 = await fake_camera_factory.astart(video="h265", audio="pcmu", width=640, height=360)
    result = await probe(h265.url)
    assert not result.h264
    assert result.video_codec == "H265"
    assert any("H.264" in note or "H265" in note for note in result.notes)
    small = await fake_camera_factory.astart(
        audio="pcma", width=640, height=360, profile="baseline"
    )
    result = await probe(small.url)
    assert result.h264
    assert (result.width, result.height) == (640, 360)
    assert result.audio_codec == "G711"
    assert result.profile is not None
    assert "Baseline" in result.profile


async def test_probe_unreachable() -> None:
    result = await probe("rtsp://127.0.0.1:1/none", timeout=2.0)
    assert not result.h264
    assert result.notes


async def test_probe_reads_in_band_sps_without_sprop() -> None:
    camera = BareCamera()
    await camera.start()
    try:
        result = await probe(camera.url, timeout=4.0)
    finally:
        await camera.stop()
    assert result.h264
    assert (result.width, result.height, result.profile) == (1280, 720, "Main")
    assert result.audio_codec is None
    assert "sprop" not in result.sdp
