"""``Alexa.CameraStreamController``: the directive's stream request and the response payload."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .discovery import advertised_resolution
from .errors import InternalError, InvalidDirectiveError
from .messages import format_expiration
from .models import StreamRequest, StreamSession

PROTOCOLS: Final = frozenset({"RTSP", "WEBRTC"})
AUTHORIZATION_TYPES: Final = frozenset({"BASIC", "DIGEST", "NONE"})
VIDEO_CODECS: Final = frozenset({"H264", "MPEG2", "MJPEG", "JPG"})
AUDIO_CODECS: Final = frozenset({"G711", "AAC", "NONE"})

_TEXT_FIELDS: Final = ("protocol", "authorizationType", "videoCodec", "audioCodec")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def parse_stream_request(payload: Mapping[str, Any]) -> StreamRequest:
    """Collect the preferences of an ``InitializeCameraStreams`` payload.

    ``payload.cameraStreams`` is a list of objects with ``protocol``, ``resolution``
    (``width``, ``height``), ``authorizationType``, ``videoCodec`` and ``audioCodec``; a
    missing list or missing fields mean no preference, and values are kept as sent (Alexa
    sends e.g. ``BEARER``, which we never offer). Raises
    :class:`InvalidDirectiveError <.errors.InvalidDirectiveError>` when the list, an entry
    or a field has the wrong JSON type.
    """
    streams = payload.get("cameraStreams", [])
    if not isinstance(streams, list):
        raise InvalidDirectiveError("payload.cameraStreams must be a list")
    collected: dict[str, dict[Any, None]] = {field: {} for field in (*_TEXT_FIELDS, "resolution")}
    for index, stream in enumerate(streams):
        where = f"payload.cameraStreams[{index}]"
        if not isinstance(stream, Mapping):
            raise InvalidDirectiveError(f"{where} must be an object")
        for field in _TEXT_FIELDS:
            value = stream.get(field)
            if value is None:
                continue
            if not isinstance(value, str):
                raise InvalidDirectiveError(f"{where}.{field} must be a string")
            collected[field][value] = None
        resolution = stream.get("resolution")
        if resolution is None:
            continue
        if not (
            isinstance(resolution, Mapping)
            and _is_int(resolution.get("width"))
            and _is_int(resolution.get("height"))
        ):
            raise InvalidDirectiveError(f"{where}.resolution must have integer width and height")
        collected["resolution"][(resolution["width"], resolution["height"])] = None
    return StreamRequest(
        protocols=tuple(collected["protocol"]),
        resolutions=tuple(collected["resolution"]),
        authorization_types=tuple(collected["authorizationType"]),
        video_codecs=tuple(collected["videoCodec"]),
        audio_codecs=tuple(collected["audioCodec"]),
    )


def _check_session(session: StreamSession) -> None:
    """Raise ``InternalError`` if the backend's session cannot be sent to Alexa."""
    problems = [
        name
        for name, ok in (
            ("uri", _is_text(session.uri)),
            ("image_uri", _is_text(session.image_uri)),
            ("protocol", session.protocol in PROTOCOLS),
            ("authorization_type", session.authorization_type in AUTHORIZATION_TYPES),
            ("video_codec", session.video_codec in VIDEO_CODECS),
            ("audio_codec", session.audio_codec in AUDIO_CODECS),
            (
                "idle_timeout_seconds",
                _is_int(session.idle_timeout_seconds) and session.idle_timeout_seconds >= 1,
            ),
            ("width", _is_int(session.width)),
            ("height", _is_int(session.height)),
        )
        if not ok
    ]
    if problems:
        raise InternalError(f"The bridge produced an invalid stream ({', '.join(problems)})")


def camera_streams_payload(session: StreamSession) -> dict[str, Any]:
    """Build the ``Alexa.CameraStreamController.Response`` payload for ``session``.

    The resolution goes through :func:`advertised_resolution
    <.discovery.advertised_resolution>`, as in discovery. Raises
    :class:`InternalError <.errors.InternalError>` when a field of ``session`` is not a
    value Alexa accepts.
    """
    _check_session(session)
    width, height = advertised_resolution(session.width, session.height)
    return {
        "cameraStreams": [
            {
                "uri": session.uri,
                "expirationTime": format_expiration(session.expiration),
                "idleTimeoutSeconds": session.idle_timeout_seconds,
                "protocol": session.protocol,
                "resolution": {"width": width, "height": height},
                "authorizationType": session.authorization_type,
                "videoCodec": session.video_codec,
                "audioCodec": session.audio_codec,
            }
        ],
        "imageUri": session.image_uri,
    }
