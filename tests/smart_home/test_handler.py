"""handle_directive: input checking, echoes, message ids, errors and logging."""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

import pytest

from custom_components.alexa_cam_bridge.smart_home import (
    AlexaError,
    BridgeUnreachableError,
    handle_directive,
)
from custom_components.alexa_cam_bridge.smart_home.handler import MAX_DIRECTIVE_SIZE
from tests.alexa_schema import validate_message

from .backend import (
    CORRELATION_TOKEN,
    FRONT_DOOR,
    GRANT_CODE,
    GRANTEE_TOKEN,
    SCOPE_TOKEN,
    FakeBackend,
    accept_grant_directive,
    answer,
    directive,
    discover_directive,
    error_of,
    report_state_directive,
    streams_directive,
)

SECRETS = (SCOPE_TOKEN, GRANT_CODE, GRANTEE_TOKEN)


async def invalid_directive(raw: bytes | str | dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Answer ``raw`` and return (answer, message), asserting an INVALID_DIRECTIVE."""
    message = await answer(raw, FakeBackend())
    namespace, error_type, text = error_of(message)
    assert (namespace, error_type) == ("Alexa", "INVALID_DIRECTIVE")
    return message, text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"directive": ', "not valid JSON"),
        (b"", "not valid JSON"),
        ('{"directive": {"header": }}', "not valid JSON"),
        (b'{"text": "\xff\xfe"}', "not valid UTF-8 JSON"),
        (b"[" * 100_000, "JSON"),
        (b"[1, 2]", "not a JSON object"),
        ("42", "not a JSON object"),
        ('"directive"', "not a JSON object"),
        (b"null", "not a JSON object"),
        ("{}", "no 'directive' object"),
        ('{"directive": []}', "no 'directive' object"),
        ('{"directive": {"payload": {}}}', "no 'header' object"),
        ('{"directive": {"header": "Alexa"}}', "no 'header' object"),
    ],
)
async def test_malformed_messages(raw: bytes | str, expected: str) -> None:
    """Text that is not a directive object is answered with INVALID_DIRECTIVE."""
    message, text = await invalid_directive(raw)
    assert expected in text
    assert "endpoint" not in message["event"]
    assert "correlationToken" not in message["event"]["header"]


async def test_oversized_directive() -> None:
    """A body over the size limit is rejected without being parsed."""
    raw = b" " * (MAX_DIRECTIVE_SIZE + 1)
    _, text = await invalid_directive(raw)
    assert "larger than" in text


@pytest.mark.parametrize("field", ["namespace", "name", "messageId", "payloadVersion"])
@pytest.mark.parametrize("value", [None, "", 3, ["x"]])
async def test_missing_or_bad_header_field(field: str, value: object) -> None:
    """Each required header field must be a non-empty string; the error names it."""
    raw = report_state_directive()
    if value is None:
        del raw["directive"]["header"][field]
    else:
        raw["directive"]["header"][field] = value
    message, text = await invalid_directive(raw)
    assert f"directive.header.{field}" in text
    # What could be read is still echoed.
    assert message["event"]["header"]["correlationToken"] == CORRELATION_TOKEN
    assert message["event"]["endpoint"] == {"endpointId": FRONT_DOOR.endpoint_id}


@pytest.mark.parametrize("version", ["2", "3.0", "v3"])
async def test_wrong_payload_version(version: str) -> None:
    """Only payloadVersion "3" is handled."""
    raw = discover_directive()
    raw["directive"]["header"]["payloadVersion"] = version
    _, text = await invalid_directive(raw)
    assert "payloadVersion" in text
    assert repr(version) in text


async def test_payload_must_be_an_object() -> None:
    """A payload that is not an object is an INVALID_DIRECTIVE."""
    raw = report_state_directive()
    raw["directive"]["payload"] = ["x"]
    _, text = await invalid_directive(raw)
    assert "payload" in text


async def test_missing_payload_is_empty() -> None:
    """A directive without payload is handled as if the payload were empty."""
    raw = report_state_directive()
    del raw["directive"]["payload"]
    message = await answer(raw, FakeBackend())
    assert message["event"]["header"]["name"] == "StateReport"


async def test_unknown_namespace() -> None:
    """A namespace this bridge does not implement is an INVALID_DIRECTIVE."""
    raw = directive("Alexa.PowerController", "TurnOn", endpoint_id=FRONT_DOOR.endpoint_id)
    message, text = await invalid_directive(raw)
    assert "Unsupported namespace 'Alexa.PowerController'" in text
    assert message["event"]["endpoint"] == {"endpointId": FRONT_DOOR.endpoint_id}
    assert message["event"]["header"]["correlationToken"] == CORRELATION_TOKEN


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        ("Alexa.Discovery", "Discover.Response"),
        ("Alexa", "TurnOn"),
        ("Alexa.CameraStreamController", "InitializeCameraStream"),
        ("Alexa.Authorization", "RevokeGrant"),
    ],
)
async def test_unknown_name_in_known_namespace(namespace: str, name: str) -> None:
    """An unknown directive name in a handled namespace is an INVALID_DIRECTIVE."""
    raw = directive(namespace, name, endpoint_id=FRONT_DOOR.endpoint_id)
    _, text = await invalid_directive(raw)
    assert f"Unsupported directive {name!r} in namespace {namespace!r}" in text


@pytest.mark.parametrize(
    "make", [report_state_directive, streams_directive], ids=["ReportState", "Streams"]
)
@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("endpoint",), None, "needs an endpoint"),
        (("endpoint",), "camera#front_door", "needs an endpoint"),
        (("endpoint", "endpointId"), None, "endpointId is missing"),
        (("endpoint", "endpointId"), 7, "endpointId is missing"),
        (("endpoint", "scope"), None, "scope with a token is missing"),
        (("endpoint", "scope", "token"), None, "scope with a token is missing"),
        (("endpoint", "scope", "token"), "", "scope with a token is missing"),
    ],
)
async def test_endpoint_and_scope_required(
    make: Any, path: tuple[str, ...], value: object, expected: str
) -> None:
    """Directives about an endpoint need its endpointId and a scope with a token."""
    raw = make()
    parent = raw["directive"]
    for key in path[:-1]:
        parent = parent[key]
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    backend = FakeBackend()
    message = await answer(raw, backend)
    assert error_of(message)[:2] == ("Alexa", "INVALID_DIRECTIVE")
    assert expected in error_of(message)[2]
    assert backend.requests == []
    assert backend.info_calls == []


@pytest.mark.parametrize("scope", [None, {}, {"type": "BearerToken"}, "token"])
async def test_discover_requires_scope(scope: object) -> None:
    """Discover needs payload.scope with a token."""
    raw = discover_directive()
    if scope is None:
        del raw["directive"]["payload"]["scope"]
    else:
        raw["directive"]["payload"]["scope"] = scope
    _, text = await invalid_directive(raw)
    assert "directive.payload.scope" in text


@pytest.mark.parametrize(
    "make",
    [discover_directive, report_state_directive, streams_directive, accept_grant_directive],
)
async def test_correlation_token_echo(make: Any) -> None:
    """The correlationToken is echoed when the directive has one, and only then."""
    raw = make()
    raw["directive"]["header"]["correlationToken"] = CORRELATION_TOKEN
    message = await answer(raw, FakeBackend())
    assert message["event"]["header"]["correlationToken"] == CORRELATION_TOKEN
    del raw["directive"]["header"]["correlationToken"]
    message = await answer(raw, FakeBackend())
    assert "correlationToken" not in message["event"]["header"]


async def test_correlation_token_echoed_in_errors() -> None:
    """Errors echo the correlationToken too; an unusable one is left out."""
    raw = report_state_directive("camera#nope")
    message = await answer(raw, FakeBackend())
    assert error_of(message)[1] == "NO_SUCH_ENDPOINT"
    assert message["event"]["header"]["correlationToken"] == CORRELATION_TOKEN
    raw["directive"]["header"]["correlationToken"] = 12
    message = await answer(raw, FakeBackend())
    assert "correlationToken" not in message["event"]["header"]


async def test_message_ids_are_fresh_uuid4() -> None:
    """Every answer has a new random messageId, never the directive's."""
    backend = FakeBackend()
    raws: list[bytes | dict[str, Any]] = [
        discover_directive(),
        report_state_directive(),
        b"garbage",
        streams_directive(),
    ]
    ids = []
    for raw in raws * 2:
        message = await answer(raw, backend)
        ids.append(message["event"]["header"]["messageId"])
    assert len(set(ids)) == len(ids)
    assert "1bd5d003-31b9-476f-ad03-71d471922820" not in ids
    assert all(uuid.UUID(message_id).version == 4 for message_id in ids)


async def test_bytes_str_and_mapping_inputs_agree() -> None:
    """JSON bytes, JSON text and a decoded mapping give the same answer."""
    raw = report_state_directive()
    answers = [
        await answer(json.dumps(raw).encode(), FakeBackend()),
        await answer(json.dumps(raw), FakeBackend()),
        await answer(raw, FakeBackend()),
    ]
    for message in answers:
        message["event"]["header"]["messageId"] = "x"
    assert answers[0] == answers[1] == answers[2]


async def test_default_clock() -> None:
    """Without ``now`` the current UTC time is used, in the schema's format."""
    message = await handle_directive(report_state_directive(), FakeBackend())
    validate_message(message)
    sampled = message["context"]["properties"][0]["timeOfSample"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", sampled)


class BrokenBackend(FakeBackend):
    """A backend whose endpoint list fails with a message mentioning the scope token."""

    def endpoints(self) -> Any:
        """Raise."""
        raise RuntimeError(f"backend failed with {SCOPE_TOKEN}")


class UnavailableCheckFails(FakeBackend):
    """is_available raises RuntimeError mentioning the scope token."""

    def is_available(self, endpoint_id: str) -> bool:
        """Raise."""
        raise RuntimeError(f"state lookup for {endpoint_id} failed ({SCOPE_TOKEN})")


@pytest.mark.parametrize("make", [discover_directive, report_state_directive, streams_directive])
async def test_unexpected_backend_error_is_internal_error(
    make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A backend raising anything but AlexaError gives INTERNAL_ERROR and a logged traceback."""
    caplog.set_level(logging.DEBUG)
    message = await answer(make(), BrokenBackend())
    namespace, error_type, text = error_of(message)
    assert (namespace, error_type) == ("Alexa", "INTERNAL_ERROR")
    assert "backend failed" not in text
    assert "Traceback" in caplog.text
    assert "RuntimeError: backend failed with **REDACTED**" in caplog.text
    for secret in SECRETS:
        assert secret not in caplog.text
        assert secret not in json.dumps(message)


async def test_unexpected_sync_error_is_internal_error(caplog: pytest.LogCaptureFixture) -> None:
    """An exception from is_available is an INTERNAL_ERROR about the endpoint."""
    caplog.set_level(logging.DEBUG)
    message = await answer(streams_directive(), UnavailableCheckFails())
    assert error_of(message)[1] == "INTERNAL_ERROR"
    assert message["event"]["endpoint"] == {"endpointId": FRONT_DOOR.endpoint_id}
    assert "state lookup for camera#front_door failed (**REDACTED**)" in caplog.text
    assert SCOPE_TOKEN not in caplog.text


async def test_backend_alexa_error_is_answered_as_is() -> None:
    """An AlexaError raised by the backend becomes that ErrorResponse."""
    backend = FakeBackend()
    backend.session_error = BridgeUnreachableError("The restreamer is not running")
    message = await answer(streams_directive(), backend)
    assert error_of(message) == ("Alexa", "BRIDGE_UNREACHABLE", "The restreamer is not running")
    assert message["event"]["endpoint"] == {"endpointId": FRONT_DOOR.endpoint_id}


@pytest.mark.parametrize(
    "error",
    [
        AlexaError("NO_SUCH_THING", "made up"),
        AlexaError("INVALID_VALUE", "extra field", payload_extra={"hint": "x"}),
        AlexaError("NOT_SUPPORTED_IN_CURRENT_MODE", "no mode"),
        AlexaError(
            "NOT_SUPPORTED_IN_CURRENT_MODE", "bad mode", payload_extra={"currentDeviceMode": "X"}
        ),
        AlexaError("ACCEPT_GRANT_FAILED", "wrong namespace"),
        AlexaError("INVALID_VALUE", "wrong namespace", namespace="Alexa.Authorization"),
        AlexaError("INVALID_VALUE", "unknown namespace", namespace="Alexa.Whatever"),
    ],
)
async def test_backend_error_alexa_rejects_becomes_internal_error(
    error: AlexaError, caplog: pytest.LogCaptureFixture
) -> None:
    """An AlexaError the schema would reject is answered as INTERNAL_ERROR, with a warning."""
    backend = FakeBackend()
    backend.session_error = error
    message = await answer(streams_directive(), backend)
    assert error_of(message) == ("Alexa", "INTERNAL_ERROR", error.message)
    assert "which Alexa does not accept" in caplog.text


async def test_backend_error_message_is_redacted() -> None:
    """A token in a backend error message does not go back out."""
    backend = FakeBackend()
    backend.session_error = BridgeUnreachableError(f"token {SCOPE_TOKEN} refused")
    message = await answer(streams_directive(), backend)
    assert error_of(message)[2] == "token **REDACTED** refused"


@pytest.mark.parametrize(
    ("make", "label", "outcome"),
    [
        (discover_directive, "Alexa.Discovery.Discover", "Discover.Response"),
        (report_state_directive, "Alexa.ReportState", "StateReport"),
        (
            streams_directive,
            "Alexa.CameraStreamController.InitializeCameraStreams",
            "-> Response",
        ),
        (accept_grant_directive, "Alexa.Authorization.AcceptGrant", "AcceptGrant.Response"),
    ],
)
async def test_log_names_directive_endpoint_outcome_never_tokens(
    make: Any, label: str, outcome: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The log names the directive, endpoint and outcome and never a token."""
    caplog.set_level(logging.DEBUG)
    await answer(make(), FakeBackend())
    assert label in caplog.text
    assert outcome in caplog.text
    for secret in SECRETS:
        assert secret not in caplog.text


async def test_error_outcome_logged(caplog: pytest.LogCaptureFixture) -> None:
    """An error answer is logged at INFO with its type and the endpoint."""
    caplog.set_level(logging.INFO)
    await answer(report_state_directive("camera#nope"), FakeBackend())
    assert "Alexa.ReportState for endpoint camera#nope -> Alexa NO_SUCH_ENDPOINT" in caplog.text
