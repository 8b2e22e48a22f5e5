"""The entry point: parse an Alexa directive, dispatch it, always answer a full message.

Supported directives:

- ``Alexa.Discovery.Discover`` -> ``Discover.Response`` (see :mod:`.discovery`)
- ``Alexa.ReportState`` -> ``Alexa.StateReport`` with ``Alexa.EndpointHealth.connectivity``
- ``Alexa.CameraStreamController.InitializeCameraStreams`` -> ``Response`` with one stream
- ``Alexa.Authorization.AcceptGrant`` -> ``AcceptGrant.Response``

Anything else, and anything malformed, is answered with ``Alexa.ErrorResponse``
``INVALID_DIRECTIVE``. Tokens (scope tokens, grant codes, grantee tokens) are never logged:
logs name the directive, the endpointId and the outcome, and the text of unexpected
tracebacks and error messages has every token of the directive replaced.
"""

from __future__ import annotations

import contextlib
import json
import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from .camera_streams import camera_streams_payload, parse_stream_request
from .discovery import discover
from .errors import (
    AcceptGrantFailedError,
    AlexaError,
    EndpointUnreachableError,
    InternalError,
    InvalidDirectiveError,
    NoSuchEndpointError,
    NotSupportedInCurrentModeError,
)
from .messages import build_error, build_event, connectivity_property, is_reportable_error
from .models import CameraEndpoint, SmartHomeBackend

_LOGGER = logging.getLogger(__name__)

#: Largest directive (JSON text) accepted; real directives are a few kilobytes.
MAX_DIRECTIVE_SIZE: Final = 1 << 20

_REDACTED: Final = "**REDACTED**"
_REQUIRED_HEADER_FIELDS: Final = ("namespace", "name", "messageId", "payloadVersion")
_GRANT_TYPE: Final = "OAuth2.AuthorizationCode"
_ACCEPT_GRANT: Final = "Alexa.Authorization.AcceptGrant"

type Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _quote(value: str, limit: int = 80) -> str:
    """Quote a value from the directive for a message, cut to ``limit`` characters."""
    return repr(value if len(value) <= limit else f"{value[:limit]}...")


@dataclass(slots=True)
class _Exchange:
    """What is known so far about the directive being handled, for answers and logs."""

    label: str = "unparsed directive"
    correlation_token: str | None = None
    endpoint_id: str | None = None
    secrets: list[str] = field(default_factory=list)

    def add_secret(self, value: object) -> None:
        """Remember a token of the directive so it can be kept out of logs and messages."""
        if isinstance(value, str) and value:
            self.secrets.append(value)
            self.secrets.sort(key=len, reverse=True)

    def redact(self, text: str) -> str:
        """Return ``text`` with every remembered token replaced."""
        for secret in self.secrets:
            text = text.replace(secret, _REDACTED)
        return text


@dataclass(frozen=True, slots=True)
class _Directive:
    """A directive whose header has been checked."""

    namespace: str
    name: str
    endpoint: object
    payload: Mapping[str, Any]


type _Handler = Callable[
    [_Directive, SmartHomeBackend, Clock, _Exchange], Awaitable[dict[str, Any]]
]


def _token_of(container: object, key: str, leaf: str = "token") -> object:
    """Return ``container[key][leaf]`` when both levels are objects, else None."""
    if isinstance(container, Mapping):
        inner = container.get(key)
        if isinstance(inner, Mapping):
            return inner.get(leaf)
    return None


def _decode(raw: object) -> object:
    """Decode JSON text (str or bytes); a mapping is returned as it is."""
    if not isinstance(raw, str | bytes | bytearray):
        return raw
    if len(raw) > MAX_DIRECTIVE_SIZE:
        raise InvalidDirectiveError(f"Directive is larger than {MAX_DIRECTIVE_SIZE} bytes")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as err:
        raise InvalidDirectiveError(
            f"Directive is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from None
    except (ValueError, RecursionError):
        raise InvalidDirectiveError("Directive is not valid UTF-8 JSON text") from None


def _parse(raw: object, exchange: _Exchange) -> _Directive:
    """Check the message's structure and header; record what the answer must echo."""
    message = _decode(raw)
    if not isinstance(message, Mapping):
        raise InvalidDirectiveError("Message is not a JSON object")
    directive = message.get("directive")
    if not isinstance(directive, Mapping):
        raise InvalidDirectiveError("Message has no 'directive' object")
    header = directive.get("header")
    if not isinstance(header, Mapping):
        raise InvalidDirectiveError("Directive has no 'header' object")
    correlation_token = header.get("correlationToken")
    if isinstance(correlation_token, str) and correlation_token:
        exchange.correlation_token = correlation_token
    endpoint = directive.get("endpoint")
    payload = directive.get("payload", {})
    exchange.add_secret(_token_of(endpoint, "scope"))
    exchange.add_secret(_token_of(payload, "scope"))
    exchange.add_secret(_token_of(payload, "grant", "code"))
    exchange.add_secret(_token_of(payload, "grantee"))
    if isinstance(endpoint, Mapping) and isinstance(endpoint.get("endpointId"), str):
        exchange.endpoint_id = endpoint["endpointId"]

    for name in _REQUIRED_HEADER_FIELDS:
        value = header.get(name)
        if not isinstance(value, str) or not value:
            raise InvalidDirectiveError(f"directive.header.{name} is missing or not a string")
    exchange.label = f"{header['namespace']}.{header['name']}"
    if header["payloadVersion"] != "3":
        raise InvalidDirectiveError(
            f"Unsupported payloadVersion {_quote(header['payloadVersion'])}; only '3' is supported"
        )
    if not isinstance(payload, Mapping):
        raise InvalidDirectiveError("directive.payload is not an object")
    return _Directive(header["namespace"], header["name"], endpoint, payload)


def _require_scope(scope: object, where: str) -> None:
    """Raise INVALID_DIRECTIVE unless ``scope`` is an object with a non-empty token."""
    token = scope.get("token") if isinstance(scope, Mapping) else None
    if not isinstance(token, str) or not token:
        raise InvalidDirectiveError(f"{where} with a token is missing")


def _require_endpoint(directive: _Directive) -> str:
    """Return the directive's endpointId; raise INVALID_DIRECTIVE if it or its scope is missing."""
    endpoint = directive.endpoint
    if not isinstance(endpoint, Mapping):
        raise InvalidDirectiveError(f"{directive.namespace}.{directive.name} needs an endpoint")
    endpoint_id = endpoint.get("endpointId")
    if not isinstance(endpoint_id, str) or not endpoint_id:
        raise InvalidDirectiveError("directive.endpoint.endpointId is missing or not a string")
    _require_scope(endpoint.get("scope"), "directive.endpoint.scope")
    return endpoint_id


def _find_endpoint(backend: SmartHomeBackend, endpoint_id: str) -> CameraEndpoint:
    """Return the exposed camera ``endpoint_id``; raise NO_SUCH_ENDPOINT if there is none."""
    for endpoint in backend.endpoints():
        if endpoint.endpoint_id == endpoint_id:
            return endpoint
    raise NoSuchEndpointError(f"No camera with endpointId {_quote(endpoint_id)} is exposed")


async def _discover(
    directive: _Directive, backend: SmartHomeBackend, clock: Clock, exchange: _Exchange
) -> dict[str, Any]:
    _require_scope(directive.payload.get("scope"), "directive.payload.scope")
    endpoints = await discover(backend)
    return build_event(
        "Alexa.Discovery",
        "Discover.Response",
        {"endpoints": endpoints},
        correlation_token=exchange.correlation_token,
    )


async def _report_state(
    directive: _Directive, backend: SmartHomeBackend, clock: Clock, exchange: _Exchange
) -> dict[str, Any]:
    endpoint_id = _require_endpoint(directive)
    _find_endpoint(backend, endpoint_id)
    reachable = backend.is_available(endpoint_id) and (
        (await backend.stream_info(endpoint_id)).reachable
    )
    return build_event(
        "Alexa",
        "StateReport",
        {},
        correlation_token=exchange.correlation_token,
        endpoint_id=endpoint_id,
        context_properties=[connectivity_property(reachable, clock())],
    )


async def _initialize_camera_streams(
    directive: _Directive, backend: SmartHomeBackend, clock: Clock, exchange: _Exchange
) -> dict[str, Any]:
    endpoint_id = _require_endpoint(directive)
    request = parse_stream_request(directive.payload)
    endpoint = _find_endpoint(backend, endpoint_id)
    if not backend.is_available(endpoint_id):
        raise EndpointUnreachableError(f"{endpoint.friendly_name} is unavailable")
    info = await backend.stream_info(endpoint_id)
    if not info.h264:
        # NOT_SUPPORTED_IN_CURRENT_MODE / NOT_PROVISIONED: the directive is fine (so not
        # INVALID_VALUE, which blames Alexa's request); the camera is set up in a way that
        # cannot be streamed, and the user fixes it by setting the camera's encoder to H.264.
        raise NotSupportedInCurrentModeError(
            f"{endpoint.friendly_name} sends {info.video_codec} video; "
            "Alexa can only play H.264 cameras",
            "NOT_PROVISIONED",
        )
    session = await backend.initialize_streams(endpoint_id, request)
    return build_event(
        "Alexa.CameraStreamController",
        "Response",
        camera_streams_payload(session),
        correlation_token=exchange.correlation_token,
        endpoint_id=endpoint_id,
        # The backend has just handed out a stream, so the camera is reported reachable; a
        # backend that knows the camera is down raises ENDPOINT_UNREACHABLE instead.
        context_properties=[connectivity_property(True, clock())],
    )


async def _accept_grant(
    directive: _Directive, backend: SmartHomeBackend, clock: Clock, exchange: _Exchange
) -> dict[str, Any]:
    grant = directive.payload.get("grant")
    code = _token_of(directive.payload, "grant", "code")
    grantee_token = _token_of(directive.payload, "grantee")
    if isinstance(grant, Mapping) and grant.get("type", _GRANT_TYPE) != _GRANT_TYPE:
        raise AcceptGrantFailedError(f"Unsupported grant type; expected {_GRANT_TYPE}")
    if not isinstance(code, str) or not code:
        raise AcceptGrantFailedError("directive.payload.grant.code is missing")
    if not isinstance(grantee_token, str) or not grantee_token:
        raise AcceptGrantFailedError("directive.payload.grantee.token is missing")
    await backend.accept_grant(code, grantee_token)
    return build_event(
        "Alexa.Authorization",
        "AcceptGrant.Response",
        {},
        correlation_token=exchange.correlation_token,
    )


_HANDLERS: Final[dict[str, dict[str, _Handler]]] = {
    "Alexa.Discovery": {"Discover": _discover},
    "Alexa": {"ReportState": _report_state},
    "Alexa.CameraStreamController": {"InitializeCameraStreams": _initialize_camera_streams},
    "Alexa.Authorization": {"AcceptGrant": _accept_grant},
}


def _handler_for(directive: _Directive) -> _Handler:
    """Return the handler of the directive; raise INVALID_DIRECTIVE if there is none."""
    handlers = _HANDLERS.get(directive.namespace)
    if handlers is None:
        raise InvalidDirectiveError(f"Unsupported namespace {_quote(directive.namespace)}")
    handler = handlers.get(directive.name)
    if handler is None:
        raise InvalidDirectiveError(
            f"Unsupported directive {_quote(directive.name)} "
            f"in namespace {_quote(directive.namespace)}"
        )
    return handler


def _log_unexpected(exchange: _Exchange, exc: Exception) -> None:
    """Log an unexpected exception with its traceback, tokens replaced."""
    text = exchange.redact("".join(traceback.format_exception(exc)).rstrip())
    _LOGGER.error(
        "%s for endpoint %s failed unexpectedly:\n%s", exchange.label, exchange.endpoint_id, text
    )


def _error_answer(error: AlexaError, exchange: _Exchange) -> dict[str, Any]:
    """Build the ErrorResponse for ``error``, its message free of the directive's tokens.

    Every failure of an AcceptGrant is answered ``Alexa.Authorization``
    ``ACCEPT_GRANT_FAILED`` (with the failure's message), as Alexa expects.
    """
    if exchange.label == _ACCEPT_GRANT:
        error = AcceptGrantFailedError(error.message)
    elif not is_reportable_error(error):
        _LOGGER.warning(
            "%s for endpoint %s raised %s %s, which Alexa does not accept; "
            "answering INTERNAL_ERROR",
            exchange.label,
            exchange.endpoint_id,
            error.namespace,
            error.error_type,
        )
    redacted = AlexaError(
        error.error_type,
        exchange.redact(str(error.message)),
        payload_extra=error.payload_extra,
        namespace=error.namespace,
    )
    return build_error(
        redacted, correlation_token=exchange.correlation_token, endpoint_id=exchange.endpoint_id
    )


def _log_outcome(exchange: _Exchange, message: dict[str, Any]) -> None:
    event = message["event"]
    name = event["header"]["name"]
    if name == "ErrorResponse":
        _LOGGER.info(
            "%s for endpoint %s -> %s %s: %s",
            exchange.label,
            exchange.endpoint_id,
            event["header"]["namespace"],
            event["payload"]["type"],
            event["payload"]["message"],
        )
    else:
        _LOGGER.debug("%s for endpoint %s -> %s", exchange.label, exchange.endpoint_id, name)


async def handle_directive(
    raw: bytes | str | Mapping[str, Any],
    backend: SmartHomeBackend,
    *,
    now: Callable[[], datetime] | None = None,
) -> dict[str, Any]:
    """Handle one Alexa Smart Home directive and return the message to answer with.

    ``raw`` is the request body (JSON text as bytes or str) or the already decoded object.
    ``now`` returns the current time (aware UTC; default ``datetime.now(UTC)``) for
    ``timeOfSample``. Never raises (except for task cancellation): every outcome is a
    complete Alexa message - the response, or an ``ErrorResponse`` whose
    ``correlationToken`` (and endpoint, when the error is about one) echo the directive.
    """
    clock = now or _utc_now
    exchange = _Exchange()
    try:
        directive = _parse(raw, exchange)
        handler = _handler_for(directive)
        message = await handler(directive, backend, clock, exchange)
    except AlexaError as err:
        message = _error_answer(err, exchange)
    except Exception as exc:
        _log_unexpected(exchange, exc)
        message = _error_answer(InternalError("Unexpected error in the camera bridge"), exchange)
    _log_outcome(exchange, message)
    return message


def unavailable_response(
    raw: bytes | str | Mapping[str, Any], error_type: str, message: str
) -> dict[str, Any]:
    """Answer a directive that cannot be handed to a backend, with ``error_type``.

    For the HA view when no bridge is loaded (``BRIDGE_UNREACHABLE``) or the body is too
    large (``INVALID_DIRECTIVE``). What can be read of ``raw`` is echoed as in
    :func:`handle_directive` (correlationToken, endpoint); an ``AcceptGrant`` directive is
    answered ``Alexa.Authorization`` ``ACCEPT_GRANT_FAILED``; a type Alexa does not accept
    becomes ``INTERNAL_ERROR``. Never raises.
    """
    exchange = _Exchange()
    # Whatever _parse objects to, the answer is the caller's error; what it could read
    # before objecting is recorded in ``exchange`` and echoed.
    with contextlib.suppress(Exception):
        _parse(raw, exchange)
    answer = _error_answer(AlexaError(error_type, message), exchange)
    _log_outcome(exchange, answer)
    return answer
