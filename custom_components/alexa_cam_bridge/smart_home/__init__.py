"""Alexa Smart Home API v3 for cameras, independent of Home Assistant.

The HA view passes each directive to :func:`handle_directive` together with a
:class:`SmartHomeBackend` (implemented by the HA glue) and returns the message it gets.
Nothing in this package imports ``homeassistant``.
"""

from .errors import (
    AcceptGrantFailedError,
    AlexaError,
    BridgeUnreachableError,
    EndpointUnreachableError,
    InternalError,
    InvalidDirectiveError,
    InvalidValueError,
    NoSuchEndpointError,
    NotSupportedInCurrentModeError,
)
from .handler import handle_directive, unavailable_response
from .models import (
    CameraEndpoint,
    SmartHomeBackend,
    StreamInfo,
    StreamRequest,
    StreamSession,
    is_valid_endpoint_id,
    make_endpoint_id,
)

__all__ = [
    "AcceptGrantFailedError",
    "AlexaError",
    "BridgeUnreachableError",
    "CameraEndpoint",
    "EndpointUnreachableError",
    "InternalError",
    "InvalidDirectiveError",
    "InvalidValueError",
    "NoSuchEndpointError",
    "NotSupportedInCurrentModeError",
    "SmartHomeBackend",
    "StreamInfo",
    "StreamRequest",
    "StreamSession",
    "handle_directive",
    "is_valid_endpoint_id",
    "make_endpoint_id",
    "unavailable_response",
]
