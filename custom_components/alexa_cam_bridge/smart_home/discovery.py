"""``Alexa.Discovery``: describing the exposed cameras to Alexa.

Each camera becomes an endpoint with display category ``CAMERA`` (plus ``DOORBELL`` for
doorbells) and the capabilities ``Alexa``, ``Alexa.CameraStreamController`` (one stream
configuration built from :class:`StreamInfo <.models.StreamInfo>`), ``Alexa.EndpointHealth``
and, for doorbells, ``Alexa.DoorbellEventSource``.

A camera whose stream cannot be served (``StreamInfo.h264`` False: H.265, MJPEG, ...) is
still discovered, so the user sees it in the Alexa app, but without
``Alexa.CameraStreamController``: Alexa then never asks it for a stream, and the user is
not offered something that cannot play. (The schema accepts such an endpoint.)
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from typing import Any, Final

from .errors import AlexaError
from .models import CameraEndpoint, SmartHomeBackend, StreamInfo, is_valid_endpoint_id

_LOGGER = logging.getLogger(__name__)

#: Most endpoints one Discover.Response may list (Amazon's schema).
MAX_ENDPOINTS: Final = 300
#: Longest friendlyName, description and manufacturerName (Amazon's schema).
MAX_TEXT_LENGTH: Final = 128
#: Seconds one camera's ``stream_info`` may take during discovery before its defaults are
#: advertised instead (Alexa gives a whole Discover about 8 s).
STREAM_INFO_TIMEOUT: Final = 4.0

#: Standard sizes advertised when a camera's own size is outside what Alexa accepts.
STANDARD_RESOLUTIONS: Final = ((1920, 1080), (1280, 720), (854, 480))
#: Advertised when the size is unknown (zero or negative).
DEFAULT_RESOLUTION: Final = (1280, 720)
#: What is advertised for a camera whose ``stream_info`` failed during discovery.
FALLBACK_STREAM_INFO: Final = StreamInfo(width=DEFAULT_RESOLUTION[0], height=DEFAULT_RESOLUTION[1])

_AUDIO_CODECS: Final = ("AAC", "G711")
_DEFAULT_MANUFACTURER: Final = "Home Assistant"
_DEFAULT_DESCRIPTION: Final = "Camera"


def advertised_resolution(width: int, height: int) -> tuple[int, int]:
    """Return the resolution to tell Alexa for a camera of ``width`` x ``height``.

    Alexa accepts 480p to 1080p. A size that fits that range (640..1920 wide and
    480..1080 high) is advertised as it is. Any other size is replaced by the nearest of the
    standard sizes 1920x1080, 1280x720 and 854x480, "nearest" meaning the smallest ratio
    between pixel counts: a 4K or 2560x1440 camera is advertised as 1920x1080, a 640x360
    or 320x240 one as 854x480. An unknown size (zero or negative) is advertised as
    1280x720. The advertised size is only Alexa's hint for choosing a stream; the Echo
    decodes whatever the stream carries. The same mapping is used for discovery and for
    the ``InitializeCameraStreams`` response, so the two always agree.
    """
    if width <= 0 or height <= 0:
        return DEFAULT_RESOLUTION
    if 640 <= width <= 1920 and 480 <= height <= 1080:
        return (width, height)
    area = math.log(width * height)
    return min(STANDARD_RESOLUTIONS, key=lambda size: abs(math.log(size[0] * size[1]) - area))


def _text(value: str, fallback: str) -> str:
    """Return ``value`` stripped and cut to the schema's limit, or ``fallback`` if empty."""
    text = value.strip()[:MAX_TEXT_LENGTH].strip()
    return text or fallback


def camera_stream_configuration(info: StreamInfo) -> dict[str, Any]:
    """Build the one ``cameraStreamConfigurations`` entry for a camera.

    RTSP, the advertised resolution, BASIC and DIGEST authorization, H.264 video, and the
    camera's AAC / G.711 audio (``NONE`` when it has neither).
    """
    width, height = advertised_resolution(info.width, info.height)
    audio: list[str] = [codec for codec in _AUDIO_CODECS if codec in info.audio_codecs]
    return {
        "protocols": ["RTSP"],
        "resolutions": [{"width": width, "height": height}],
        "authorizationTypes": ["BASIC", "DIGEST"],
        "videoCodecs": ["H264"],
        "audioCodecs": audio or ["NONE"],
    }


def endpoint_description(endpoint: CameraEndpoint, info: StreamInfo) -> dict[str, Any]:
    """Build the Discover.Response entry of one camera."""
    capabilities: list[dict[str, Any]] = [
        {"type": "AlexaInterface", "interface": "Alexa", "version": "3"}
    ]
    if info.h264:
        capabilities.append(
            {
                "type": "AlexaInterface",
                "interface": "Alexa.CameraStreamController",
                "version": "3",
                "cameraStreamConfigurations": [camera_stream_configuration(info)],
            }
        )
    capabilities.append(
        {
            "type": "AlexaInterface",
            "interface": "Alexa.EndpointHealth",
            "version": "3",
            "properties": {
                "supported": [{"name": "connectivity"}],
                "proactivelyReported": True,
                "retrievable": True,
            },
        }
    )
    categories = ["CAMERA"]
    if endpoint.doorbell:
        categories.append("DOORBELL")
        capabilities.append(
            {
                "type": "AlexaInterface",
                "interface": "Alexa.DoorbellEventSource",
                "version": "3",
                "proactivelyReported": True,
            }
        )
    friendly_name = _text(endpoint.friendly_name, _text(endpoint.entity_id, endpoint.endpoint_id))
    return {
        "endpointId": endpoint.endpoint_id,
        "manufacturerName": _text(endpoint.manufacturer, _DEFAULT_MANUFACTURER),
        "friendlyName": friendly_name,
        "description": _text(endpoint.description, _DEFAULT_DESCRIPTION),
        "displayCategories": categories,
        "capabilities": capabilities,
    }


def _discoverable(endpoints: Sequence[CameraEndpoint]) -> list[CameraEndpoint]:
    """Drop endpoints Alexa would reject: invalid or duplicate ids, and any beyond 300."""
    chosen: list[CameraEndpoint] = []
    seen: set[str] = set()
    for endpoint in endpoints:
        if not is_valid_endpoint_id(endpoint.endpoint_id):
            _LOGGER.warning(
                "Not discovering %s: %r is not a valid Alexa endpointId",
                endpoint.entity_id,
                endpoint.endpoint_id,
            )
        elif endpoint.endpoint_id in seen:
            _LOGGER.warning(
                "Not discovering %s: endpointId %s is used twice",
                endpoint.entity_id,
                endpoint.endpoint_id,
            )
        else:
            seen.add(endpoint.endpoint_id)
            chosen.append(endpoint)
    if len(chosen) > MAX_ENDPOINTS:
        _LOGGER.warning(
            "Alexa accepts at most %d endpoints; not discovering the last %d",
            MAX_ENDPOINTS,
            len(chosen) - MAX_ENDPOINTS,
        )
        del chosen[MAX_ENDPOINTS:]
    return chosen


async def _stream_info(backend: SmartHomeBackend, endpoint: CameraEndpoint) -> StreamInfo:
    """Return the camera's stream info, or defaults when it fails or takes too long.

    One broken camera must not fail the whole discovery: it is still listed, with the
    default configuration, and plays once the camera works.
    """
    try:
        async with asyncio.timeout(STREAM_INFO_TIMEOUT):
            return await backend.stream_info(endpoint.endpoint_id)
    except TimeoutError:
        _LOGGER.warning(
            "Stream info of %s took over %.0f s; advertising defaults",
            endpoint.endpoint_id,
            STREAM_INFO_TIMEOUT,
        )
    except AlexaError as err:
        _LOGGER.warning(
            "Stream info of %s failed (%s); advertising defaults",
            endpoint.endpoint_id,
            err.error_type,
        )
    except Exception:
        _LOGGER.exception(
            "Stream info of %s failed unexpectedly; advertising defaults", endpoint.endpoint_id
        )
    return FALLBACK_STREAM_INFO


async def discover(backend: SmartHomeBackend) -> list[dict[str, Any]]:
    """Return the Discover.Response ``endpoints`` list for every exposed camera.

    ``stream_info`` is asked for all cameras concurrently.
    """
    endpoints = _discoverable(backend.endpoints())
    infos = await asyncio.gather(*(_stream_info(backend, endpoint) for endpoint in endpoints))
    return [
        endpoint_description(endpoint, info)
        for endpoint, info in zip(endpoints, infos, strict=True)
    ]
