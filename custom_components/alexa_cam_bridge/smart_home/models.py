"""Data the Smart Home layer exchanges with its backend, and the backend's interface.

The HA glue (``bridge.py``) implements :class:`SmartHomeBackend`; nothing here knows about
Home Assistant.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

#: Longest endpointId Alexa accepts.
ENDPOINT_ID_MAX_LENGTH: Final = 256

# Amazon's message schema: letters, digits and ``_ - = # ; : ? @ &`` (no dot, no space).
_ENDPOINT_ID_RE: Final = re.compile(r"[a-zA-Z0-9_\-=#;:?@&]{1,256}")
_ENDPOINT_ID_BAD_CHAR: Final = re.compile(r"[^a-zA-Z0-9_\-=#;:?@&]")


def is_valid_endpoint_id(value: object) -> bool:
    """Return whether ``value`` is an endpointId Alexa accepts.

    That is a string of 1 to 256 ASCII letters, digits and ``_ - = # ; : ? @ &``, the
    pattern of Amazon's message schema (the prose documentation also allows spaces; the
    schema does not, so neither do we).
    """
    return isinstance(value, str) and _ENDPOINT_ID_RE.fullmatch(value) is not None


def make_endpoint_id(entity_id: str) -> str:
    """Return the endpointId for a Home Assistant entity id.

    The dot is not allowed in an endpointId, so it becomes ``#`` (the mapping HA core's own
    Alexa integration uses: ``camera.front_door`` -> ``camera#front_door``); any other
    character Alexa does not accept becomes ``_``. For valid HA entity ids (lower-case
    letters, digits, ``_`` and one dot) the mapping is one-to-one. An id longer than 256
    characters is cut to 247 and given ``_`` plus 8 hex digits of its SHA-256, so it stays
    unique and stable. Raises ``ValueError`` for an empty ``entity_id``.
    """
    if not entity_id:
        raise ValueError("entity_id must not be empty")
    endpoint_id = _ENDPOINT_ID_BAD_CHAR.sub("_", entity_id.replace(".", "#"))
    if len(endpoint_id) > ENDPOINT_ID_MAX_LENGTH:
        digest = hashlib.sha256(entity_id.encode("utf-8")).hexdigest()[:8]
        endpoint_id = f"{endpoint_id[: ENDPOINT_ID_MAX_LENGTH - 9]}_{digest}"
    return endpoint_id


@dataclass(frozen=True, slots=True)
class CameraEndpoint:
    """A camera exposed to Alexa.

    ``endpoint_id`` must satisfy :func:`is_valid_endpoint_id` (build it with
    :func:`make_endpoint_id`); ``friendly_name`` is what the user says ("front door").
    ``doorbell`` adds the DOORBELL display category and ``Alexa.DoorbellEventSource``.
    """

    endpoint_id: str
    friendly_name: str
    description: str
    manufacturer: str
    entity_id: str
    doorbell: bool = False


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What the bridge knows about a camera's stream.

    ``width``/``height`` are the probed (or configured) picture size; ``h264`` is False
    when the camera's stream cannot be served to an Echo (H.265, MJPEG, ...);
    ``audio_codecs`` is a subset of ``"AAC"``/``"G711"`` (empty: video only);
    ``reachable`` is False when the last probe failed; ``probed`` is False when the values
    are configured defaults rather than a probe's result.
    """

    width: int
    height: int
    video_codec: str = "H264"
    h264: bool = True
    profile: str | None = None
    audio_codecs: tuple[str, ...] = ("AAC",)
    reachable: bool = True
    probed: bool = False


@dataclass(frozen=True, slots=True)
class StreamRequest:
    """The stream preferences of an ``InitializeCameraStreams`` directive.

    Each tuple collects, in the directive's order without duplicates, the values of the
    ``cameraStreams`` entries: protocols (``"RTSP"``), resolutions (``(width, height)``),
    authorization types (``"BASIC"``, ``"DIGEST"``, ``"NONE"``; Alexa also sends
    ``"BEARER"``), video codecs and audio codecs. An empty tuple means no preference.
    """

    protocols: tuple[str, ...]
    resolutions: tuple[tuple[int, int], ...]
    authorization_types: tuple[str, ...]
    video_codecs: tuple[str, ...]
    audio_codecs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StreamSession:
    """A stream handed to Alexa in the ``InitializeCameraStreams`` response.

    ``uri`` carries the per-session credentials (``rtsp://user:pass@host:port/path``);
    ``expiration`` is timezone-aware UTC; ``protocol`` is ``"RTSP"``;
    ``authorization_type`` one of ``"BASIC"``, ``"DIGEST"``, ``"NONE"``; ``video_codec``
    ``"H264"``; ``audio_codec`` one of ``"AAC"``, ``"G711"``, ``"NONE"``; ``image_uri`` an
    HTTPS URL of a JPEG snapshot.
    """

    uri: str
    expiration: datetime
    idle_timeout_seconds: int
    protocol: str
    width: int
    height: int
    authorization_type: str
    video_codec: str
    audio_codec: str
    image_uri: str


class SmartHomeBackend(Protocol):
    """What :func:`handle_directive <.handler.handle_directive>` needs from the host.

    Methods may raise :class:`AlexaError <.errors.AlexaError>` to answer with that error;
    anything else they raise is answered with ``INTERNAL_ERROR``.
    """

    def endpoints(self) -> Sequence[CameraEndpoint]:
        """Return the cameras exposed to Alexa."""
        ...

    def is_available(self, endpoint_id: str) -> bool:
        """Return whether the camera's entity is available."""
        ...

    async def stream_info(self, endpoint_id: str) -> StreamInfo:
        """Return the camera's probed (or default) stream description."""
        ...

    async def initialize_streams(self, endpoint_id: str, request: StreamRequest) -> StreamSession:
        """Mint per-session credentials, start the relay, return the stream to hand out."""
        ...

    async def accept_grant(self, code: str, grantee_token: str) -> None:
        """Exchange the LWA authorization ``code`` and keep the tokens."""
        ...
