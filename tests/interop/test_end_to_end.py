"""End to end through a real Home Assistant: Discover probes real cameras, then
InitializeCameraStreams hands out a URI that real clients play over TLS."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.alexa_cam_bridge import bridge
from custom_components.alexa_cam_bridge.const import API_PATH
from tests.alexa_schema import validate_message
from tests.conftest import STREAM_HOST, RtspCamera, setup_cameras
from tests.directives import discover, initialize_streams, report_state
from tests.peers.echo_client import run_echo_client
from tests.peers.ffmpeg import ffprobe_streams
from tests.peers.fixtures import CameraFactory
from tests.peers.gst import gst_play
from tests.peers.process import free_port
from tests.peers.tls import TestPki

ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


async def _post(client: TestClient[web.Request, web.Application], body: Any) -> dict[str, Any]:
    resp = await client.post(API_PATH, data=json.dumps(body))
    assert resp.status == 200
    message: dict[str, Any] = await resp.json()
    validate_message(message)
    return message


def _capability(endpoint: dict[str, Any], interface: str) -> dict[str, Any] | None:
    return next((c for c in endpoint["capabilities"] if c["interface"] == interface), None)


def _loopback(uri: str, scheme: str | None = None) -> str:
    """The URI with its host (the public name) replaced by 127.0.0.1 — cam.test does not
    resolve here; TLS still verifies against the name via SNI / the IP SAN."""
    parts = urlsplit(uri)
    netloc = parts.netloc.replace(f"@{STREAM_HOST}:", "@127.0.0.1:").replace(
        f"{STREAM_HOST}:", "127.0.0.1:"
    )
    return urlunsplit((scheme or parts.scheme, netloc, parts.path, parts.query, ""))


async def test_discover_probes_real_cameras(
    hass: HomeAssistant,
    entry_factory: Callable[..., MockConfigEntry],
    hass_client: ClientFactory,
    fake_camera_factory: CameraFactory,
) -> None:
    """Resolution and audio come from the camera's own SDP/SPS; an offline camera gets
    defaults and UNREACHABLE; an H.265 camera is listed without a stream capability."""
    small = await fake_camera_factory.astart(width=854, height=480, audio="pcmu")
    hevc = await fake_camera_factory.astart(video="h265", audio="none")
    await setup_cameras(
        hass,
        [
            RtspCamera("Porch", small.url),
            RtspCamera("Garage", f"rtsp://127.0.0.1:{free_port()}/gone"),
            RtspCamera("Attic", hevc.url),
        ],
    )
    entry = entry_factory(
        {"camera.porch": "porch", "camera.garage": "garage", "camera.attic": "attic"}
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    client = await hass_client()
    message = await _post(client, discover())
    endpoints = {e["endpointId"]: e for e in message["event"]["payload"]["endpoints"]}
    assert set(endpoints) == {"camera#porch", "camera#garage", "camera#attic"}

    porch = _capability(endpoints["camera#porch"], "Alexa.CameraStreamController")
    assert porch is not None
    (config,) = porch["cameraStreamConfigurations"]
    assert config["resolutions"] == [{"width": 854, "height": 480}]
    assert config["audioCodecs"] == ["G711"]

    garage = _capability(endpoints["camera#garage"], "Alexa.CameraStreamController")
    assert garage is not None
    assert garage["cameraStreamConfigurations"][0]["resolutions"] == [
        {"width": 1280, "height": 720}
    ]
    state = await _post(client, report_state("camera#garage"))
    assert state["context"]["properties"][0]["value"]["value"] == "UNREACHABLE"
    state = await _post(client, report_state("camera#porch"))
    assert state["context"]["properties"][0]["value"]["value"] == "OK"

    assert _capability(endpoints["camera#attic"], "Alexa.CameraStreamController") is None
    refused = await _post(client, initialize_streams("camera#attic"))
    assert refused["event"]["header"]["name"] == "ErrorResponse"
    assert refused["event"]["payload"]["type"] == "NOT_SUPPORTED_IN_CURRENT_MODE"
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_initialize_streams_and_play(
    hass: HomeAssistant,
    entry_factory: Callable[..., MockConfigEntry],
    hass_client: ClientFactory,
    fake_camera_factory: CameraFactory,
    test_pki: TestPki,
    tmp_path: Path,
) -> None:
    """The returned URI plays in an Echo-like client, ffprobe and GStreamer (verifying the
    certificate), and imageUri serves a JPEG; a second viewer starts from the cache."""
    camera = await fake_camera_factory.astart()
    await setup_cameras(hass, [RtspCamera("Front door", camera.url)])
    entry = entry_factory({"camera.front_door": "front door"})
    assert await hass.config_entries.async_setup(entry.entry_id)
    client = await hass_client()

    message = await _post(client, initialize_streams("camera#front_door", auth="DIGEST"))
    payload = message["event"]["payload"]
    (stream,) = payload["cameraStreams"]
    assert stream["protocol"] == "RTSP"
    assert stream["authorizationType"] == "DIGEST"
    assert stream["resolution"] == {"width": 1280, "height": 720}
    assert stream["audioCodec"] == "AAC"
    uri = urlsplit(stream["uri"])
    assert uri.scheme == "rtsp"
    assert uri.hostname == STREAM_HOST
    assert uri.port == entry.data["port"]
    assert uri.username
    assert uri.password

    ctx = test_pki.client_context()
    first = await run_echo_client(
        _loopback(stream["uri"]), ssl_context=ctx, server_hostname=STREAM_HOST,
        auth="aosp-digest",
    )  # fmt: skip
    assert not first.errors, first.errors
    assert first.can_show is not None
    assert first.sprop_present
    assert first.first_video_au_is_idr
    assert set(first.first_sr) == {0, 1}

    second = await run_echo_client(
        _loopback(stream["uri"]), ssl_context=ctx, server_hostname=STREAM_HOST
    )
    assert second.can_show is not None
    assert second.first_video_au_is_idr  # started on the cached keyframe

    streams = await ffprobe_streams(_loopback(stream["uri"], "rtsps"))
    assert sorted(s["codec_name"] for s in streams) == ["aac", "h264"]

    ca_path = test_pki.ca_pem_path(tmp_path)
    played = await gst_play(_loopback(stream["uri"], "rtsps"), ca_path=ca_path, frames=5)
    assert played.ok, played.error
    assert played.frames >= 5

    image = urlsplit(payload["imageUri"])
    assert image.scheme == "https"
    assert image.hostname == STREAM_HOST
    connector = aiohttp.TCPConnector(ssl=ctx, resolver=_StaticResolver({STREAM_HOST: "127.0.0.1"}))
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(payload["imageUri"]) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "image/jpeg"
            assert (await resp.read())[:2] == b"\xff\xd8"
        async with session.get(payload["imageUri"] + "x") as resp:
            assert resp.status == 404
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_wrong_credentials_and_expired_grant(
    hass: HomeAssistant,
    entry_factory: Callable[..., MockConfigEntry],
    hass_client: ClientFactory,
    fake_camera_factory: CameraFactory,
) -> None:
    """A URI with a wrong password, or for a revoked grant, is refused (401)."""
    camera = await fake_camera_factory.astart(audio="none")
    await setup_cameras(hass, [RtspCamera("Front door", camera.url)])
    entry = entry_factory({"camera.front_door": "front door"})
    assert await hass.config_entries.async_setup(entry.entry_id)
    client = await hass_client()
    message = await _post(client, initialize_streams("camera#front_door"))
    uri = message["event"]["payload"]["cameraStreams"][0]["uri"]
    parts = urlsplit(_loopback(uri))
    wrong = urlunsplit(
        (parts.scheme, f"{parts.username}:nope@{parts.hostname}:{parts.port}", parts.path, "", "")
    )
    result = await run_echo_client(wrong, ssl_context=_insecure(), timeout=5)
    assert result.can_show is None
    assert ("DESCRIBE", 401) in result.statuses
    entry.runtime_data.broker.revoke_camera("camera.front_door")
    result = await run_echo_client(_loopback(uri), ssl_context=_insecure(), timeout=5)
    assert result.can_show is None
    assert result.statuses[-1][1] in (401, 404)
    assert await hass.config_entries.async_unload(entry.entry_id)


def _insecure() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class _StaticResolver(aiohttp.abc.AbstractResolver):
    """Resolve the stream host name to loopback (no DNS here)."""

    def __init__(self, hosts: dict[str, str]) -> None:
        self._hosts = hosts

    async def resolve(
        self, host: str, port: int = 0, family: int = 0
    ) -> list[aiohttp.abc.ResolveResult]:
        return [
            {
                "hostname": host,
                "host": self._hosts.get(host, host),
                "port": port,
                "family": 2,
                "proto": 0,
                "flags": 0,
            }
        ]

    async def close(self) -> None:
        return None


async def test_slow_camera_does_not_delay_the_stream_answer(
    hass: HomeAssistant,
    entry_factory: Callable[..., MockConfigEntry],
    hass_client: ClientFactory,
    fake_camera_factory: CameraFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once probed, a camera whose probe is due is answered from the last result while a
    new probe runs in the background: a camera that stopped answering (accepts TCP, says
    nothing) does not hold up InitializeCameraStreams."""
    camera = await fake_camera_factory.astart(width=854, height=480, audio="none")
    cameras = await setup_cameras(hass, [RtspCamera("Front door", camera.url)])
    entry = entry_factory({"camera.front_door": "front door"})
    assert await hass.config_entries.async_setup(entry.entry_id)
    client = await hass_client()
    await _post(client, discover())  # probed: 854x480, no audio
    backend = entry.runtime_data.backend
    assert backend.probing == []

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        cameras.entities[
            "camera.front_door"
        ].source = f"rtsp://127.0.0.1:{silent.getsockname()[1]}/hung"
        monkeypatch.setattr(bridge, "PROBE_CACHE_SECONDS", 0)  # every probe is due now
        message = await _post(client, initialize_streams("camera#front_door"))
        assert message["event"]["header"]["name"] == "Response"
        (stream,) = message["event"]["payload"]["cameraStreams"]
        assert stream["resolution"] == {"width": 854, "height": 480}
        assert stream["audioCodec"] == "NONE"
        assert backend.probing == ["camera.front_door"]  # answered before the probe ended
        assert await hass.config_entries.async_unload(entry.entry_id)
    assert backend.probing == []
