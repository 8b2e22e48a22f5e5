"""unavailable_response: answering a directive no backend can take."""

from __future__ import annotations

import json
from typing import Any

import pytest

from custom_components.alexa_cam_bridge.smart_home import unavailable_response
from tests.alexa_schema import validate_message

from .backend import (
    CORRELATION_TOKEN,
    FRONT_DOOR,
    accept_grant_directive,
    discover_directive,
    error_of,
    report_state_directive,
)


def checked(message: dict[str, Any]) -> dict[str, Any]:
    """Validate ``message`` against the schema and return it."""
    validate_message(message)
    return message


@pytest.mark.parametrize("encode", [False, True])
def test_echoes_what_it_can_read(encode: bool) -> None:
    """The error echoes the directive's correlationToken and endpoint."""
    raw: Any = report_state_directive()
    if encode:
        raw = json.dumps(raw).encode()
    message = checked(unavailable_response(raw, "BRIDGE_UNREACHABLE", "Not set up"))
    assert error_of(message) == ("Alexa", "BRIDGE_UNREACHABLE", "Not set up")
    assert message["event"]["header"]["correlationToken"] == CORRELATION_TOKEN
    assert message["event"]["endpoint"] == {"endpointId": FRONT_DOOR.endpoint_id}


def test_unreadable_body() -> None:
    """An empty or broken body still gets a complete ErrorResponse."""
    for raw in (b"", b"{", "[]"):
        message = checked(unavailable_response(raw, "INVALID_DIRECTIVE", "Too large"))
        assert error_of(message) == ("Alexa", "INVALID_DIRECTIVE", "Too large")
        assert "correlationToken" not in message["event"]["header"]
        assert "endpoint" not in message["event"]


def test_discover() -> None:
    """A Discover directive gets the error without an endpoint."""
    message = checked(unavailable_response(discover_directive(), "BRIDGE_UNREACHABLE", "Down"))
    assert error_of(message) == ("Alexa", "BRIDGE_UNREACHABLE", "Down")
    assert "endpoint" not in message["event"]


def test_accept_grant() -> None:
    """AcceptGrant is always answered with ACCEPT_GRANT_FAILED."""
    raw = accept_grant_directive()
    message = checked(unavailable_response(raw, "BRIDGE_UNREACHABLE", "Not set up"))
    assert error_of(message) == ("Alexa.Authorization", "ACCEPT_GRANT_FAILED", "Not set up")
    assert message["event"]["header"]["correlationToken"] == CORRELATION_TOKEN


def test_unknown_type_is_internal_error() -> None:
    """An error type Alexa does not know becomes INTERNAL_ERROR."""
    message = checked(unavailable_response(report_state_directive(), "NOT_LOADED", "x"))
    assert error_of(message) == ("Alexa", "INTERNAL_ERROR", "x")
