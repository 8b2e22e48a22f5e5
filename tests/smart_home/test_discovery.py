"""Alexa.Discovery.Discover."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from custom_components.alexa_cam_bridge.smart_home import (
    CameraEndpoint,
    EndpointUnreachableError,
    StreamInfo,
    discovery,
)
from custom_components.alexa_cam_bridge.smart_home.discovery import advertised_resolution

from .backend import FRONT_DOOR, FakeBackend, answer, camera, discover_directive

HEALTH = {
    "type": "AlexaInterface",
    "interface": "Alexa.EndpointHealth",
    "version": "3",
    "properties": {
        "supported": [{"name": "connectivity"}],
        "proactivelyReported": True,
        "retrievable": True,
    },
}
ALEXA = {"type": "AlexaInterface", "interface": "Alexa", "version": "3"}


async def discover(backend: FakeBackend) -> list[dict[str, Any]]:
    """Run Discover and return the endpoints of the (schema-checked) response."""
    message = await answer(discover_directive(), backend)
    header = message["event"]["header"]
    assert (header["namespace"], header["name"]) == ("Alexa.Discovery", "Discover.Response")
    assert "endpoint" not in message["event"]
    assert "context" not in message
    endpoints: list[dict[str, Any]] = message["event"]["payload"]["endpoints"]
    return endpoints


def capability(endpoint: dict[str, Any], interface: str) -> dict[str, Any] | None:
    """Return the endpoint's capability ``interface``, if it has one."""
    found = [cap for cap in endpoint["capabilities"] if cap["interface"] == interface]
    assert len(found) <= 1
    return found[0] if found else None


def stream_config(endpoint: dict[str, Any]) -> dict[str, Any]:
    """Return the endpoint's single camera stream configuration."""
    cap = capability(endpoint, "Alexa.CameraStreamController")
    assert cap is not None
    configs: list[dict[str, Any]] = cap["cameraStreamConfigurations"]
    assert len(configs) == 1
    return configs[0]


async def test_discover_one_camera() -> None:
    """A camera is described completely, in the documented shape."""
    assert await discover(FakeBackend()) == [
        {
            "endpointId": "camera#front_door",
            "manufacturerName": "Reolink",
            "friendlyName": "Front door",
            "description": "Front door camera via Home Assistant",
            "displayCategories": ["CAMERA"],
            "capabilities": [
                ALEXA,
                {
                    "type": "AlexaInterface",
                    "interface": "Alexa.CameraStreamController",
                    "version": "3",
                    "cameraStreamConfigurations": [
                        {
                            "protocols": ["RTSP"],
                            "resolutions": [{"width": 1920, "height": 1080}],
                            "authorizationTypes": ["BASIC", "DIGEST"],
                            "videoCodecs": ["H264"],
                            "audioCodecs": ["AAC"],
                        }
                    ],
                },
                HEALTH,
            ],
        }
    ]


async def test_discover_no_cameras() -> None:
    """Discovery with nothing exposed is a valid, empty response."""
    assert await discover(FakeBackend([])) == []


async def test_doorbell() -> None:
    """A doorbell camera gets the DOORBELL category and Alexa.DoorbellEventSource."""
    backend = FakeBackend([camera(1, doorbell=True), camera(2)])
    bell, plain = await discover(backend)
    assert bell["displayCategories"] == ["CAMERA", "DOORBELL"]
    assert capability(bell, "Alexa.DoorbellEventSource") == {
        "type": "AlexaInterface",
        "interface": "Alexa.DoorbellEventSource",
        "version": "3",
        "proactivelyReported": True,
    }
    assert capability(bell, "Alexa.CameraStreamController") is not None
    assert plain["displayCategories"] == ["CAMERA"]
    assert capability(plain, "Alexa.DoorbellEventSource") is None


async def test_hundred_cameras_probed_concurrently() -> None:
    """All cameras are listed in order and their stream info is fetched concurrently."""
    cameras = [camera(index) for index in range(100)]
    backend = FakeBackend(cameras)
    endpoints = await discover(backend)
    assert [endpoint["endpointId"] for endpoint in endpoints] == [
        cam.endpoint_id for cam in cameras
    ]
    assert sorted(backend.info_calls) == sorted(cam.endpoint_id for cam in cameras)
    assert backend.max_in_flight == 100


async def test_unavailable_camera_still_discovered() -> None:
    """Availability does not change what is discovered."""
    backend = FakeBackend()
    backend.unavailable.add(FRONT_DOOR.endpoint_id)
    (endpoint,) = await discover(backend)
    assert capability(endpoint, "Alexa.CameraStreamController") is not None


async def test_non_h264_camera_discovered_without_stream_controller() -> None:
    """A camera that cannot be streamed is listed, but offers no camera stream."""
    backend = FakeBackend([camera(1), camera(2)])
    backend.infos["camera#cam_1"] = StreamInfo(1920, 1080, video_codec="H265", h264=False)
    bad, good = await discover(backend)
    assert bad["capabilities"] == [ALEXA, HEALTH]
    assert bad["displayCategories"] == ["CAMERA"]
    assert capability(good, "Alexa.CameraStreamController") is not None


@pytest.mark.parametrize(
    ("codecs", "expected"),
    [
        (("AAC",), ["AAC"]),
        (("G711",), ["G711"]),
        (("G711", "AAC"), ["AAC", "G711"]),
        ((), ["NONE"]),
        (("OPUS",), ["NONE"]),
    ],
)
async def test_audio_codecs(codecs: tuple[str, ...], expected: list[str]) -> None:
    """The advertised audio codecs follow the camera's; none means NONE."""
    backend = FakeBackend()
    backend.infos[FRONT_DOOR.endpoint_id] = StreamInfo(1280, 720, audio_codecs=codecs)
    (endpoint,) = await discover(backend)
    assert stream_config(endpoint)["audioCodecs"] == expected


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1920, 1080), (1920, 1080)),
        ((1280, 720), (1280, 720)),
        ((854, 480), (854, 480)),
        ((640, 480), (640, 480)),
        ((1280, 960), (1280, 960)),
        ((2560, 1440), (1920, 1080)),
        ((3840, 2160), (1920, 1080)),
        ((2592, 1944), (1920, 1080)),
        ((1080, 1920), (1920, 1080)),
        ((640, 360), (854, 480)),
        ((320, 240), (854, 480)),
        ((1920, 400), (1280, 720)),
        ((0, 0), (1280, 720)),
        ((-1, 720), (1280, 720)),
    ],
)
async def test_resolution_clamping(size: tuple[int, int], expected: tuple[int, int]) -> None:
    """Sizes outside 480p..1080p are advertised as the nearest standard size."""
    assert advertised_resolution(*size) == expected
    backend = FakeBackend()
    backend.infos[FRONT_DOOR.endpoint_id] = StreamInfo(*size)
    (endpoint,) = await discover(backend)
    assert stream_config(endpoint)["resolutions"] == [{"width": expected[0], "height": expected[1]}]


async def test_failing_stream_info_advertises_defaults(caplog: pytest.LogCaptureFixture) -> None:
    """A camera whose stream info fails is still discovered, with the default configuration."""
    backend = FakeBackend([camera(1), camera(2), camera(3)])
    backend.info_errors["camera#cam_1"] = RuntimeError("probe crashed")
    backend.info_errors["camera#cam_2"] = EndpointUnreachableError("offline")
    backend.infos["camera#cam_3"] = StreamInfo(1280, 960)
    first, second, third = await discover(backend)
    for endpoint in (first, second):
        assert stream_config(endpoint)["resolutions"] == [{"width": 1280, "height": 720}]
        assert stream_config(endpoint)["audioCodecs"] == ["AAC"]
    assert stream_config(third)["resolutions"] == [{"width": 1280, "height": 960}]
    assert "Stream info of camera#cam_1 failed unexpectedly" in caplog.text
    assert "Stream info of camera#cam_2 failed (ENDPOINT_UNREACHABLE)" in caplog.text


async def test_stalled_stream_info_advertises_defaults(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A camera whose stream info never answers does not hold up discovery."""
    monkeypatch.setattr(discovery, "STREAM_INFO_TIMEOUT", 0.01)
    backend = FakeBackend([camera(1), camera(2)])
    backend.stalled.add("camera#cam_1")
    backend.infos["camera#cam_2"] = StreamInfo(640, 480, audio_codecs=())
    stalled, fine = await discover(backend)
    assert stream_config(stalled)["resolutions"] == [{"width": 1280, "height": 720}]
    assert stream_config(fine)["resolutions"] == [{"width": 640, "height": 480}]
    assert "Stream info of camera#cam_1 took over" in caplog.text


async def test_invalid_and_duplicate_endpoint_ids_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Endpoints Alexa would reject are left out, with a warning."""
    dotted = CameraEndpoint("camera.dotted", "Dotted", "d", "m", "camera.dotted")
    empty = CameraEndpoint("", "Empty", "d", "m", "camera.empty")
    duplicate = CameraEndpoint(FRONT_DOOR.endpoint_id, "Again", "d", "m", "camera.again")
    backend = FakeBackend([dotted, FRONT_DOOR, empty, duplicate])
    endpoints = await discover(backend)
    assert [endpoint["friendlyName"] for endpoint in endpoints] == ["Front door"]
    assert "Not discovering camera.dotted" in caplog.text
    assert "Not discovering camera.empty" in caplog.text
    assert "endpointId camera#front_door is used twice" in caplog.text


async def test_at_most_300_endpoints(caplog: pytest.LogCaptureFixture) -> None:
    """Alexa takes at most 300 endpoints; the rest are left out with a warning."""
    caplog.set_level(logging.WARNING)
    backend = FakeBackend([camera(index) for index in range(301)])
    endpoints = await discover(backend)
    assert len(endpoints) == 300
    assert endpoints[-1]["endpointId"] == "camera#cam_299"
    assert "not discovering the last 1" in caplog.text


async def test_texts_fit_the_schema() -> None:
    """Long names are cut to 128 characters; empty ones get fallbacks."""
    long_name = CameraEndpoint("camera#long", "x" * 200, "y" * 129, "z" * 300, "camera.long")
    blank = CameraEndpoint("camera#blank", "  ", "", "", "camera.blank")
    backend = FakeBackend([long_name, blank])
    first, second = await discover(backend)
    assert first["friendlyName"] == "x" * 128
    assert first["description"] == "y" * 128
    assert first["manufacturerName"] == "z" * 128
    assert second["friendlyName"] == "camera.blank"
    assert second["description"] == "Camera"
    assert second["manufacturerName"] == "Home Assistant"
