"""Builders for the Alexa messages this layer sends (responses, error responses, events).

Every builder produces a complete message that validates against Amazon's Smart Home
message schema. Responses about an endpoint carry ``{"endpointId": ...}``; the endpoint's
``scope`` (a bearer token) is optional in the schema and deliberately not echoed, so no
token ever appears in a response. Proactive events for the Alexa Event Gateway
(``ChangeReport``, ``DoorbellPress``, ``AddOrUpdateReport``, ``DeleteReport``) must carry
the skill's access token in their scope; their builders take it as ``token``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Final

from .errors import (
    ACCEPT_GRANT_FAILED,
    DEVICE_MODES,
    INTERNAL_ERROR,
    NAMESPACE_ALEXA,
    NAMESPACE_AUTHORIZATION,
    NOT_SUPPORTED_IN_CURRENT_MODE,
    AlexaError,
)
from .models import is_valid_endpoint_id

PAYLOAD_VERSION: Final = "3"

#: ``uncertaintyInMilliseconds`` of reported properties: the connectivity value is read
#: from the backend while the directive is handled.
UNCERTAINTY_MS: Final = 0

# Error types of the ``Alexa`` namespace the schema accepts, with the extra payload fields
# each may carry besides ``type`` and ``message``.
_ALEXA_ERROR_EXTRAS: Final[dict[str, frozenset[str]]] = {
    error_type: frozenset(extras)
    for error_type, extras in {
        "ALREADY_IN_OPERATION": (),
        "BRIDGE_UNREACHABLE": (),
        "CLOUD_CONTROL_DISABLED": (),
        "ENDPOINT_BUSY": (),
        "ENDPOINT_LOW_POWER": ("percentageState",),
        "ENDPOINT_UNREACHABLE": (),
        "EXPIRED_AUTHORIZATION_CREDENTIAL": (),
        "FIRMWARE_OUT_OF_DATE": (),
        "HARDWARE_MALFUNCTION": (),
        "INSUFFICIENT_PERMISSIONS": (),
        "INTERNAL_ERROR": (),
        "INVALID_AUTHORIZATION_CREDENTIAL": (),
        "INVALID_DIRECTIVE": (),
        "INVALID_VALUE": (),
        "NO_SUCH_ENDPOINT": (),
        "NOT_CALIBRATED": (),
        "NOT_SUPPORTED_IN_CURRENT_MODE": ("currentDeviceMode",),
        "NOT_IN_OPERATION": (),
        "POWER_LEVEL_NOT_SUPPORTED": (),
        "RATE_LIMIT_EXCEEDED": (),
        "VALUE_OUT_OF_RANGE": ("validRange",),
        "TEMPERATURE_VALUE_OUT_OF_RANGE": ("validRange",),
        "TOO_MANY_FAILED_ATTEMPTS": (),
    }.items()
}


def new_message_id() -> str:
    """Return a fresh messageId (a random UUID)."""
    return str(uuid.uuid4())


def _as_utc(moment: datetime) -> datetime:
    """Return ``moment`` in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_time_of_sample(moment: datetime) -> str:
    """Format ``moment`` as the schema's ``timeOfSample``: UTC, milliseconds, ``Z``."""
    utc = _as_utc(moment)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def format_expiration(moment: datetime) -> str:
    """Format ``moment`` as ``expirationTime``: ISO 8601 UTC, whole seconds, ``Z``."""
    return f"{_as_utc(moment):%Y-%m-%dT%H:%M:%S}Z"


def format_event_timestamp(moment: datetime) -> str:
    """Format ``moment`` as an event ``timestamp`` (DoorbellPress): UTC, whole seconds, ``Z``.

    The schema's pattern has no fraction of a second: ``YYYY-MM-DDThh:mm:ssZ``.
    """
    return format_expiration(moment)


def is_reportable_error(error: AlexaError) -> bool:
    """Return whether the schema accepts an ErrorResponse built from ``error``.

    The namespace must be ``Alexa`` with a documented type and only that type's extra
    fields (``currentDeviceMode`` from the documented modes), or ``Alexa.Authorization``
    with ``ACCEPT_GRANT_FAILED`` and no extras.
    """
    if error.namespace == NAMESPACE_AUTHORIZATION:
        return error.error_type == ACCEPT_GRANT_FAILED and not error.payload_extra
    if error.namespace != NAMESPACE_ALEXA:
        return False
    allowed = _ALEXA_ERROR_EXTRAS.get(error.error_type)
    if allowed is None or not set(error.payload_extra) <= allowed:
        return False
    if error.error_type == NOT_SUPPORTED_IN_CURRENT_MODE:
        return error.payload_extra.get("currentDeviceMode") in DEVICE_MODES
    return True


def _header(namespace: str, name: str, correlation_token: str | None) -> dict[str, Any]:
    header: dict[str, Any] = {
        "namespace": namespace,
        "name": name,
        "payloadVersion": PAYLOAD_VERSION,
        "messageId": new_message_id(),
    }
    if correlation_token:
        header["correlationToken"] = correlation_token
    return header


def build_event(
    namespace: str,
    name: str,
    payload: dict[str, Any],
    *,
    correlation_token: str | None = None,
    endpoint_id: str | None = None,
    context_properties: list[dict[str, Any]] | None = None,
    scope_token: str | None = None,
) -> dict[str, Any]:
    """Build a response or event message.

    ``correlation_token`` and ``endpoint_id`` are included when given (the endpoint only
    when it is a valid endpointId); ``context_properties`` becomes ``context.properties``;
    ``scope_token`` (events only) becomes the endpoint's ``BearerToken`` scope.
    """
    event: dict[str, Any] = {"header": _header(namespace, name, correlation_token)}
    if endpoint_id is not None and is_valid_endpoint_id(endpoint_id):
        endpoint: dict[str, Any] = {"endpointId": endpoint_id}
        if scope_token is not None:
            endpoint = {"scope": bearer_scope(scope_token), **endpoint}
        event["endpoint"] = endpoint
    event["payload"] = payload
    message: dict[str, Any] = {"event": event}
    if context_properties is not None:
        message = {"context": {"properties": context_properties}, **message}
    return message


def build_error(
    error: AlexaError,
    *,
    correlation_token: str | None = None,
    endpoint_id: str | None = None,
) -> dict[str, Any]:
    """Build the ``ErrorResponse`` for ``error``.

    An error the schema would reject (see :func:`is_reportable_error`) is sent as
    ``INTERNAL_ERROR`` with its message. ``Alexa.Authorization`` errors never carry an
    endpoint.
    """
    if is_reportable_error(error):
        namespace, error_type, extra = error.namespace, error.error_type, error.payload_extra
    else:
        namespace, error_type, extra = NAMESPACE_ALEXA, INTERNAL_ERROR, {}
    payload: dict[str, Any] = {"type": error_type, "message": str(error.message), **extra}
    return build_event(
        namespace,
        "ErrorResponse",
        payload,
        correlation_token=correlation_token,
        endpoint_id=endpoint_id if namespace == NAMESPACE_ALEXA else None,
    )


def connectivity_property(reachable: bool, sampled_at: datetime) -> dict[str, Any]:
    """Build the ``Alexa.EndpointHealth.connectivity`` context property."""
    return {
        "namespace": "Alexa.EndpointHealth",
        "name": "connectivity",
        "value": {"value": "OK" if reachable else "UNREACHABLE"},
        "timeOfSample": format_time_of_sample(sampled_at),
        "uncertaintyInMilliseconds": UNCERTAINTY_MS,
    }


def bearer_scope(token: str) -> dict[str, str]:
    """Build the ``BearerToken`` scope object of an event."""
    return {"type": "BearerToken", "token": token}


def build_change_report(
    endpoint_id: str, token: str, properties: list[dict[str, Any]], cause: str
) -> dict[str, Any]:
    """Build an ``Alexa.ChangeReport`` event for ``endpoint_id``.

    ``properties`` are the changed properties (e.g. :func:`connectivity_property`),
    ``cause`` the change's cause type (``PERIODIC_POLL``, ``APP_INTERACTION``, ...).
    """
    return build_event(
        "Alexa",
        "ChangeReport",
        {"change": {"cause": {"type": cause}, "properties": properties}},
        endpoint_id=endpoint_id,
        scope_token=token,
    )


def build_doorbell_press(endpoint_id: str, token: str, pressed_at: datetime) -> dict[str, Any]:
    """Build an ``Alexa.DoorbellEventSource.DoorbellPress`` event (a physical press)."""
    message = build_event(
        "Alexa.DoorbellEventSource",
        "DoorbellPress",
        {
            "cause": {"type": "PHYSICAL_INTERACTION"},
            "timestamp": format_event_timestamp(pressed_at),
        },
        endpoint_id=endpoint_id,
        scope_token=token,
    )
    return {"context": {}, **message}


def build_add_or_update_report(endpoints: list[dict[str, Any]], token: str) -> dict[str, Any]:
    """Build an ``Alexa.Discovery.AddOrUpdateReport`` for Discover.Response-style endpoints."""
    return build_event(
        "Alexa.Discovery",
        "AddOrUpdateReport",
        {"endpoints": endpoints, "scope": bearer_scope(token)},
    )


def build_delete_report(endpoint_ids: list[str], token: str) -> dict[str, Any]:
    """Build an ``Alexa.Discovery.DeleteReport`` removing ``endpoint_ids``."""
    return build_event(
        "Alexa.Discovery",
        "DeleteReport",
        {
            "endpoints": [{"endpointId": endpoint_id} for endpoint_id in endpoint_ids],
            "scope": bearer_scope(token),
        },
    )
