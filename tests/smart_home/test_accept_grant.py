"""Alexa.Authorization.AcceptGrant."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from custom_components.alexa_cam_bridge.smart_home import (
    AcceptGrantFailedError,
    AlexaError,
    BridgeUnreachableError,
)

from .backend import (
    CORRELATION_TOKEN,
    GRANT_CODE,
    GRANTEE_TOKEN,
    SCOPE_TOKEN,
    FakeBackend,
    accept_grant_directive,
    answer,
    error_of,
)


async def test_accept_grant() -> None:
    """The code and grantee token go to the backend; the answer is AcceptGrant.Response."""
    backend = FakeBackend()
    message = await answer(accept_grant_directive(), backend)
    assert message["event"]["header"]["namespace"] == "Alexa.Authorization"
    assert message["event"]["header"]["name"] == "AcceptGrant.Response"
    assert message["event"]["header"]["correlationToken"] == CORRELATION_TOKEN
    assert message["event"]["payload"] == {}
    assert "endpoint" not in message["event"]
    assert backend.grants == [(GRANT_CODE, GRANTEE_TOKEN)]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (AcceptGrantFailedError("LWA said no"), "LWA said no"),
        (BridgeUnreachableError("Token store unavailable"), "Token store unavailable"),
        (RuntimeError(f"POST failed for code={GRANT_CODE}"), "Unexpected error"),
        (
            AlexaError("ACCEPT_GRANT_FAILED", "Wrong namespace, still a grant failure"),
            "Wrong namespace, still a grant failure",
        ),
    ],
)
async def test_backend_failure(
    error: Exception, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Any backend failure is an Alexa.Authorization ACCEPT_GRANT_FAILED, tokens unlogged."""
    caplog.set_level(logging.DEBUG)
    backend = FakeBackend()
    backend.grant_error = error
    message = await answer(accept_grant_directive(), backend)
    namespace, error_type, text = error_of(message)
    assert (namespace, error_type) == ("Alexa.Authorization", "ACCEPT_GRANT_FAILED")
    assert expected in text
    assert message["event"]["header"]["correlationToken"] == CORRELATION_TOKEN
    for secret in (GRANT_CODE, GRANTEE_TOKEN):
        assert secret not in caplog.text
        assert secret not in text
    if isinstance(error, RuntimeError):
        assert "Alexa.Authorization.AcceptGrant for endpoint None failed unexpectedly" in (
            caplog.text
        )
        assert "RuntimeError: POST failed for code=**REDACTED**" in caplog.text


async def test_invalid_directive_is_a_grant_failure() -> None:
    """Even a malformed AcceptGrant is answered in the Alexa.Authorization namespace."""
    raw = accept_grant_directive()
    raw["directive"]["header"]["payloadVersion"] = "2"
    message = await answer(raw, FakeBackend())
    namespace, error_type, text = error_of(message)
    assert (namespace, error_type) == ("Alexa.Authorization", "ACCEPT_GRANT_FAILED")
    assert "payloadVersion" in text


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("grant",), None, "grant.code is missing"),
        (("grant", "code"), None, "grant.code is missing"),
        (("grant", "code"), "", "grant.code is missing"),
        (("grant", "code"), 42, "grant.code is missing"),
        (("grant", "type"), "OAuth2.Implicit", "Unsupported grant type"),
        (("grantee",), None, "grantee.token is missing"),
        (("grantee",), "token", "grantee.token is missing"),
        (("grantee", "token"), None, "grantee.token is missing"),
    ],
)
async def test_malformed_grant(path: tuple[str, ...], value: object, expected: str) -> None:
    """A grant without code or grantee token fails without calling the backend."""
    raw = accept_grant_directive()
    parent: Any = raw["directive"]["payload"]
    for key in path[:-1]:
        parent = parent[key]
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    backend = FakeBackend()
    message = await answer(raw, backend)
    namespace, error_type, text = error_of(message)
    assert (namespace, error_type) == ("Alexa.Authorization", "ACCEPT_GRANT_FAILED")
    assert expected in text
    assert backend.grants == []


async def test_failure_never_carries_an_endpoint() -> None:
    """ACCEPT_GRANT_FAILED has no endpoint even if the directive had one."""
    raw = accept_grant_directive()
    raw["directive"]["endpoint"] = {
        "endpointId": "camera#front_door",
        "scope": {"type": "BearerToken", "token": SCOPE_TOKEN},
    }
    backend = FakeBackend()
    backend.grant_error = AcceptGrantFailedError("no")
    message = await answer(raw, backend)
    assert error_of(message)[1] == "ACCEPT_GRANT_FAILED"
    assert "endpoint" not in message["event"]
