"""Alexa.CameraStreamController.InitializeCameraStreams."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from custom_components.alexa_cam_bridge.smart_home import (
    AlexaError,
    BridgeUnreachableError,
    EndpointUnreachableError,
    InvalidValueError,
    NoSuchEndpointError,
    NotSupportedInCurrentModeError,
    StreamInfo,
    StreamRequest,
)

from .backend import (
    CORRELATION_TOKEN,
    FRONT_DOOR,
    NOW_SAMPLE,
    FakeBackend,
    answer,
    error_of,
    streams_directive,
)

SAMPLE_REQUEST = StreamRequest(
    protocols=("RTSP",),
    resolutions=((1920, 1080), (1280, 720)),
    authorization_types=("BEARER",),
    video_codecs=("H264", "MPEG2"),
    audio_codecs=("AAC", "G711"),
)
EMPTY_REQUEST = StreamRequest((), (), (), (), ())


async def test_initialize_streams() -> None:
    """The backend's session becomes the response, with the request parsed for it."""
    backend = FakeBackend()
    message = await answer(streams_directive(), backend)
    assert message == {
        "context": {
            "properties": [
                {
                    "namespace": "Alexa.EndpointHealth",
                    "name": "connectivity",
                    "value": {"value": "OK"},
                    "timeOfSample": NOW_SAMPLE,
                    "uncertaintyInMilliseconds": 0,
                }
            ]
        },
        "event": {
            "header": {
                "namespace": "Alexa.CameraStreamController",
                "name": "Response",
                "payloadVersion": "3",
                "messageId": message["event"]["header"]["messageId"],
                "correlationToken": CORRELATION_TOKEN,
            },
            "endpoint": {"endpointId": "camera#front_door"},
            "payload": {
                "cameraStreams": [
                    {
                        "uri": "rtsps://u1:p1@cam.example.com:443/stream/abc",
                        "expirationTime": "2026-11-21T09:00:00Z",
                        "idleTimeoutSeconds": 30,
                        "protocol": "RTSP",
                        "resolution": {"width": 1920, "height": 1080},
                        "authorizationType": "DIGEST",
                        "videoCodec": "H264",
                        "audioCodec": "AAC",
                    }
                ],
                "imageUri": "https://cam.example.com:443/snapshot/tok",
            },
        },
    }
    assert backend.requests == [(FRONT_DOOR.endpoint_id, SAMPLE_REQUEST)]


@pytest.mark.parametrize("streams", [None, []])
async def test_no_preferences(streams: list[Any] | None) -> None:
    """A missing or empty cameraStreams list is a request without preferences."""
    raw = streams_directive()
    if streams is None:
        del raw["directive"]["payload"]["cameraStreams"]
    else:
        raw["directive"]["payload"]["cameraStreams"] = streams
    backend = FakeBackend()
    await answer(raw, backend)
    assert backend.requests == [(FRONT_DOOR.endpoint_id, EMPTY_REQUEST)]


async def test_partial_and_repeated_preferences() -> None:
    """Missing fields add nothing; repeated values are kept once, in order."""
    raw = streams_directive()
    raw["directive"]["payload"]["cameraStreams"] = [
        {"protocol": "RTSP", "resolution": {"width": 1280, "height": 720}},
        {"protocol": "RTSP", "audioCodec": "G711", "extra": True},
        {"resolution": {"width": 1280, "height": 720}, "videoCodec": "H264"},
    ]
    backend = FakeBackend()
    await answer(raw, backend)
    assert backend.requests[0][1] == StreamRequest(
        protocols=("RTSP",),
        resolutions=((1280, 720),),
        authorization_types=(),
        video_codecs=("H264",),
        audio_codecs=("G711",),
    )


@pytest.mark.parametrize(
    ("streams", "expected"),
    [
        ({"protocol": "RTSP"}, "payload.cameraStreams must be a list"),
        (["RTSP"], "payload.cameraStreams[0] must be an object"),
        ([{}, {"protocol": 1}], "payload.cameraStreams[1].protocol must be a string"),
        ([{"audioCodec": ["AAC"]}], "payload.cameraStreams[0].audioCodec must be a string"),
        ([{"resolution": "1080p"}], "payload.cameraStreams[0].resolution must have integer"),
        ([{"resolution": {"width": 1920}}], "resolution must have integer"),
        ([{"resolution": {"width": 1920, "height": 1080.5}}], "resolution must have integer"),
        ([{"resolution": {"width": True, "height": 1080}}], "resolution must have integer"),
    ],
)
async def test_malformed_stream_request(streams: object, expected: str) -> None:
    """A cameraStreams list of the wrong shape is an INVALID_DIRECTIVE."""
    raw = streams_directive()
    raw["directive"]["payload"]["cameraStreams"] = streams
    backend = FakeBackend()
    message = await answer(raw, backend)
    namespace, error_type, text = error_of(message)
    assert (namespace, error_type) == ("Alexa", "INVALID_DIRECTIVE")
    assert expected in text
    assert message["event"]["endpoint"] == {"endpointId": FRONT_DOOR.endpoint_id}
    assert backend.requests == []


async def test_unknown_endpoint() -> None:
    """A camera that is not exposed is NO_SUCH_ENDPOINT."""
    backend = FakeBackend()
    message = await answer(streams_directive("camera#back_yard"), backend)
    assert error_of(message)[:2] == ("Alexa", "NO_SUCH_ENDPOINT")
    assert message["event"]["endpoint"] == {"endpointId": "camera#back_yard"}
    assert backend.requests == []


async def test_unavailable_camera() -> None:
    """An unavailable camera is ENDPOINT_UNREACHABLE and no stream is started."""
    backend = FakeBackend()
    backend.unavailable.add(FRONT_DOOR.endpoint_id)
    message = await answer(streams_directive(), backend)
    assert error_of(message) == ("Alexa", "ENDPOINT_UNREACHABLE", "Front door is unavailable")
    assert message["event"]["endpoint"] == {"endpointId": FRONT_DOOR.endpoint_id}
    assert backend.requests == []


async def test_camera_not_h264() -> None:
    """A camera Alexa cannot play is NOT_SUPPORTED_IN_CURRENT_MODE / NOT_PROVISIONED."""
    backend = FakeBackend()
    backend.infos[FRONT_DOOR.endpoint_id] = StreamInfo(
        1920, 1080, video_codec="H265", h264=False, probed=True
    )
    message = await answer(streams_directive(), backend)
    assert message["event"]["payload"] == {
        "type": "NOT_SUPPORTED_IN_CURRENT_MODE",
        "message": "Front door sends H265 video; Alexa can only play H.264 cameras",
        "currentDeviceMode": "NOT_PROVISIONED",
    }
    assert message["event"]["endpoint"] == {"endpointId": FRONT_DOOR.endpoint_id}
    assert backend.requests == []


async def test_unreachable_stream_still_tried() -> None:
    """A failed earlier probe does not stop a new attempt: the backend decides."""
    backend = FakeBackend()
    backend.infos[FRONT_DOOR.endpoint_id] = StreamInfo(1280, 720, reachable=False)
    message = await answer(streams_directive(), backend)
    assert message["event"]["header"]["name"] == "Response"
    assert len(backend.requests) == 1


@pytest.mark.parametrize(
    ("error", "payload"),
    [
        (
            BridgeUnreachableError("Restreamer down"),
            {"type": "BRIDGE_UNREACHABLE", "message": "Restreamer down"},
        ),
        (
            EndpointUnreachableError("Camera did not answer"),
            {"type": "ENDPOINT_UNREACHABLE", "message": "Camera did not answer"},
        ),
        (
            NoSuchEndpointError("Removed meanwhile"),
            {"type": "NO_SUCH_ENDPOINT", "message": "Removed meanwhile"},
        ),
        (InvalidValueError("No RTSP"), {"type": "INVALID_VALUE", "message": "No RTSP"}),
        (
            NotSupportedInCurrentModeError("Privacy mode", "OTHER"),
            {
                "type": "NOT_SUPPORTED_IN_CURRENT_MODE",
                "message": "Privacy mode",
                "currentDeviceMode": "OTHER",
            },
        ),
        (
            AlexaError("ENDPOINT_LOW_POWER", "Battery", payload_extra={"percentageState": 5}),
            {"type": "ENDPOINT_LOW_POWER", "message": "Battery", "percentageState": 5},
        ),
        (
            RuntimeError("relay crashed"),
            {"type": "INTERNAL_ERROR", "message": "Unexpected error in the camera bridge"},
        ),
    ],
)
async def test_backend_errors(error: Exception, payload: dict[str, Any]) -> None:
    """Backend AlexaErrors are answered as they are; anything else is INTERNAL_ERROR."""
    backend = FakeBackend()
    backend.session_error = error
    message = await answer(streams_directive(), backend)
    assert message["event"]["header"]["name"] == "ErrorResponse"
    assert message["event"]["payload"] == payload
    assert message["event"]["endpoint"] == {"endpointId": FRONT_DOOR.endpoint_id}
    assert "context" not in message


@pytest.mark.parametrize(
    ("size", "expected"),
    [((3840, 2160), (1920, 1080)), ((640, 360), (854, 480)), ((1280, 720), (1280, 720))],
)
async def test_response_resolution_clamped(
    size: tuple[int, int], expected: tuple[int, int]
) -> None:
    """The response resolution is mapped like the discovered one."""
    backend = FakeBackend()
    backend.session = dataclasses.replace(backend.session, width=size[0], height=size[1])
    message = await answer(streams_directive(), backend)
    assert message["event"]["payload"]["cameraStreams"][0]["resolution"] == {
        "width": expected[0],
        "height": expected[1],
    }


@pytest.mark.parametrize(
    ("expiration", "expected"),
    [
        (datetime(2026, 11, 21, 10, 0, 0, 999999, tzinfo=timezone(timedelta(hours=2))), "08:00:00"),
        (datetime(2026, 11, 21, 9, 30, 15), "09:30:15"),
    ],
)
async def test_expiration_in_utc(expiration: datetime, expected: str) -> None:
    """expirationTime is UTC in whole seconds (a naive time is taken as UTC)."""
    backend = FakeBackend()
    backend.session = dataclasses.replace(backend.session, expiration=expiration)
    message = await answer(streams_directive(), backend)
    stream = message["event"]["payload"]["cameraStreams"][0]
    assert stream["expirationTime"] == f"2026-11-21T{expected}Z"


async def test_session_variants() -> None:
    """BASIC, no audio and NONE authorization are passed on as they are."""
    backend = FakeBackend()
    backend.session = dataclasses.replace(
        backend.session, authorization_type="BASIC", audio_codec="NONE"
    )
    message = await answer(streams_directive(), backend)
    stream = message["event"]["payload"]["cameraStreams"][0]
    assert (stream["authorizationType"], stream["audioCodec"]) == ("BASIC", "NONE")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"uri": ""}, "uri"),
        ({"image_uri": ""}, "image_uri"),
        ({"protocol": "HLS"}, "protocol"),
        ({"authorization_type": "BEARER"}, "authorization_type"),
        ({"video_codec": "H265"}, "video_codec"),
        ({"audio_codec": "OPUS"}, "audio_codec"),
        ({"idle_timeout_seconds": 0}, "idle_timeout_seconds"),
    ],
)
async def test_invalid_session_is_internal_error(change: dict[str, Any], field: str) -> None:
    """A session Alexa would reject is not sent; the answer is INTERNAL_ERROR."""
    backend = FakeBackend()
    backend.session = dataclasses.replace(backend.session, **change)
    message = await answer(streams_directive(), backend)
    namespace, error_type, text = error_of(message)
    assert (namespace, error_type) == ("Alexa", "INTERNAL_ERROR")
    assert text == f"The bridge produced an invalid stream ({field})"
