"""The forwarding Lambda against real local HTTP(S) stand-ins for HA.

Every answer the handler gives is validated against Amazon's Smart Home message schema.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import trustme

from lambda_proxy import lambda_function
from lambda_proxy.lambda_function import HA_VIEW_PATH, lambda_handler
from tests.alexa_schema import validate_message
from tests.lambda_proxy.conftest import (
    FakeContext,
    StandinFactory,
    compact,
    load_sample,
    server_context,
)
from tests.lambda_proxy.ha_standin import (
    Reply,
    Request,
    SilentListener,
    closed_port_url,
)

CAMERA = "CameraStreamController.request"
DISCOVER = "Discovery.request"
ACCEPT_GRANT = "Authorization.AcceptGrant.request"
ANSWERS = {
    CAMERA: "CameraStreamController.response",
    DISCOVER: "Discovery.response",
    ACCEPT_GRANT: "Authorization.AcceptGrant.response",
}
SHORT_CONTEXT_MS = 1500  # budget = 1.5 s - 0.3 s margin


def invoke(event: object, context: FakeContext | None = None) -> dict[str, Any]:
    """Run the handler and check its answer against Amazon's schema."""
    answer = lambda_handler(event, context or FakeContext())
    validate_message(answer)
    return answer


def camera_directive(token: str = "cam-token") -> dict[str, Any]:
    directive = load_sample(CAMERA)
    directive["directive"]["endpoint"]["scope"]["token"] = token
    return directive


def answer_with(name: str) -> Reply:
    return Reply(body=compact(load_sample(name)))


def assert_error(answer: dict[str, Any], error_type: str, directive: dict[str, Any]) -> None:
    """An ErrorResponse of ``error_type`` that echoes the directive's header and endpoint."""
    event = answer["event"]
    header, payload = event["header"], event["payload"]
    assert payload["type"] == error_type
    assert payload["message"]
    assert header["name"] == "ErrorResponse"
    assert header["payloadVersion"] == "3"
    assert header["messageId"] != directive["directive"]["header"]["messageId"]
    assert header.get("correlationToken") == directive["directive"]["header"].get(
        "correlationToken"
    )
    if error_type == "ACCEPT_GRANT_FAILED":
        assert header["namespace"] == "Alexa.Authorization"
        assert "endpoint" not in event
    else:
        assert header["namespace"] == "Alexa"
        endpoint = directive["directive"].get("endpoint")
        if endpoint is None:
            assert "endpoint" not in event
        else:
            assert event["endpoint"] == {"endpointId": endpoint["endpointId"]}


def use(monkeypatch: pytest.MonkeyPatch, url: str, ca_bundle: str | None, **env: str) -> None:
    monkeypatch.setenv("HA_URL", url)
    if ca_bundle is not None:
        monkeypatch.setenv("CA_BUNDLE", ca_bundle)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


# --------------------------------------------------------------------------- success


@pytest.mark.parametrize(
    ("sample", "token_path"),
    [
        (CAMERA, ("endpoint", "scope")),
        (DISCOVER, ("payload", "scope")),
        (ACCEPT_GRANT, ("payload", "grantee")),
    ],
)
def test_passthrough_from_each_token_location(
    sample: str,
    token_path: tuple[str, str],
    make_standin: StandinFactory,
    ca_bundle: str,
    lambda_env: pytest.MonkeyPatch,
) -> None:
    """HA's answer comes back byte for byte; the token is taken from where Alexa puts it."""
    directive = load_sample(sample)
    directive["directive"][token_path[0]][token_path[1]]["token"] = f"tok-{sample}"
    original = copy.deepcopy(directive)
    answer_bytes = compact(load_sample(ANSWERS[sample]))
    standin = make_standin(lambda _request: Reply(body=answer_bytes))
    use(lambda_env, standin.url + "/", ca_bundle)

    answer = invoke(directive)

    assert compact(answer) == answer_bytes
    (request,) = standin.requests
    assert request.path == HA_VIEW_PATH
    assert request.headers["authorization"] == f"Bearer tok-{sample}"
    assert request.headers["content-type"] == "application/json"
    assert request.body == compact(original)
    assert directive == original


def test_base_path_is_kept(
    make_standin: StandinFactory, ca_bundle: str, lambda_env: pytest.MonkeyPatch
) -> None:
    """An HA_URL with a reverse-proxy prefix posts below that prefix."""
    standin = make_standin(lambda _request: answer_with(ANSWERS[CAMERA]))
    use(lambda_env, standin.url + "/ha/", ca_bundle)
    invoke(camera_directive())
    assert standin.requests[0].path == "/ha" + HA_VIEW_PATH


def test_plain_http_when_allowed(
    make_standin: StandinFactory, lambda_env: pytest.MonkeyPatch
) -> None:
    standin = make_standin(lambda _request: answer_with(ANSWERS[CAMERA]), tls=None)
    use(lambda_env, standin.url, None, ALLOW_HTTP="1")
    assert invoke(camera_directive())["event"]["header"]["name"] == "Response"


def test_ha_error_response_is_passed_through(
    make_standin: StandinFactory, ca_bundle: str, lambda_env: pytest.MonkeyPatch
) -> None:
    """HA answers Alexa errors with HTTP 200; they reach Alexa unchanged."""
    error = compact(load_sample("ErrorResponse.General"))
    standin = make_standin(lambda _request: Reply(body=error))
    use(lambda_env, standin.url, ca_bundle)
    assert compact(invoke(camera_directive())) == error


# --------------------------------------------------------------------------- HA says no


@pytest.mark.parametrize(
    ("reply", "error_type"),
    [
        (
            Reply(401, b"401: Unauthorized", {"Content-Type": "text/plain"}),
            "INVALID_AUTHORIZATION_CREDENTIAL",
        ),
        (Reply(403, b'{"message":"Forbidden"}'), "INVALID_AUTHORIZATION_CREDENTIAL"),
        (Reply(401, b'{"message":"Access token expired"}'), "EXPIRED_AUTHORIZATION_CREDENTIAL"),
        (
            Reply(
                401,
                b"",
                {"WWW-Authenticate": 'Bearer error="invalid_token", error_description="expired"'},
            ),
            "EXPIRED_AUTHORIZATION_CREDENTIAL",
        ),
        (
            Reply(500, b"500 Internal Server Error", {"Content-Type": "text/plain"}),
            "INTERNAL_ERROR",
        ),
        (Reply(404, b"404: Not Found"), "INTERNAL_ERROR"),
        (Reply(302, b"", {"Location": "https://elsewhere.example/"}), "INTERNAL_ERROR"),
        (Reply(200, b"<html>login</html>", {"Content-Type": "text/html"}), "INTERNAL_ERROR"),
        (Reply(200, b""), "INTERNAL_ERROR"),
        (Reply(200, b'{"event": {"header": {"name": "x"}}}'), "INTERNAL_ERROR"),
        (Reply(200, b"[1, 2, 3]"), "INTERNAL_ERROR"),
        (Reply(200, b'{"event": {"header": {}, "payload": NaN}}'), "INTERNAL_ERROR"),
        (Reply(200, b"[" * 100_000), "INTERNAL_ERROR"),
        (Reply(200, b"", {"Content-Length": "100000000"}), "INTERNAL_ERROR"),
        (Reply(raw=b"SSH-2.0-OpenSSH_9.2\r\n\r\n"), "INTERNAL_ERROR"),
    ],
    ids=[
        "401",
        "403",
        "401-expired-body",
        "401-expired-header",
        "500",
        "404",
        "302",
        "html",
        "empty",
        "json-not-alexa",
        "json-list",
        "json-nan",
        "json-too-deep",
        "too-large",
        "not-http",
    ],
)
def test_ha_failures_map_to_errors(
    reply: Reply,
    error_type: str,
    make_standin: StandinFactory,
    ca_bundle: str,
    lambda_env: pytest.MonkeyPatch,
) -> None:
    standin = make_standin(lambda _request: reply)
    use(lambda_env, standin.url, ca_bundle)
    directive = camera_directive()
    assert_error(invoke(directive), error_type, directive)


def _jwt(claims: dict[str, Any]) -> str:
    """A JWT-shaped token (the signature is never checked by the Lambda)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("token", "error_type"),
    [
        (_jwt({"iss": "x", "exp": int(time.time()) - 60}), "EXPIRED_AUTHORIZATION_CREDENTIAL"),
        (_jwt({"iss": "x", "exp": int(time.time()) + 600}), "INVALID_AUTHORIZATION_CREDENTIAL"),
        (_jwt({"iss": "x"}), "INVALID_AUTHORIZATION_CREDENTIAL"),
        (_jwt({"exp": True}), "INVALID_AUTHORIZATION_CREDENTIAL"),
        ("a.!!!.c", "INVALID_AUTHORIZATION_CREDENTIAL"),
        (
            "a." + base64.urlsafe_b64encode(b"[" * 3000).decode() + ".c",
            "INVALID_AUTHORIZATION_CREDENTIAL",
        ),
    ],
    ids=["expired", "valid", "no-exp", "bool-exp", "not-base64", "too-deep"],
)
def test_expired_jwt_on_401(
    token: str,
    error_type: str,
    make_standin: StandinFactory,
    ca_bundle: str,
    lambda_env: pytest.MonkeyPatch,
) -> None:
    """HA says only 401 for an expired access token; the token's own exp tells which."""
    standin = make_standin(lambda _request: Reply(401, b"401: Unauthorized"))
    use(lambda_env, standin.url, ca_bundle)
    directive = camera_directive(token)
    assert_error(invoke(directive), error_type, directive)


@pytest.mark.parametrize("status", [401, 500, 200])
def test_accept_grant_failures(
    status: int, make_standin: StandinFactory, ca_bundle: str, lambda_env: pytest.MonkeyPatch
) -> None:
    """Whatever breaks during AcceptGrant, Alexa gets Alexa.Authorization ACCEPT_GRANT_FAILED."""
    standin = make_standin(lambda _request: Reply(status, b"not json"))
    use(lambda_env, standin.url, ca_bundle)
    directive = load_sample(ACCEPT_GRANT)
    assert_error(invoke(directive), "ACCEPT_GRANT_FAILED", directive)


def test_accept_grant_unreachable(ca_bundle: str, lambda_env: pytest.MonkeyPatch) -> None:
    use(lambda_env, closed_port_url(), ca_bundle)
    directive = load_sample(ACCEPT_GRANT)
    assert_error(invoke(directive), "ACCEPT_GRANT_FAILED", directive)


# --------------------------------------------------------------------------- HA unreachable


def test_connection_refused(ca_bundle: str, lambda_env: pytest.MonkeyPatch) -> None:
    use(lambda_env, closed_port_url(), ca_bundle)
    directive = camera_directive()
    assert_error(invoke(directive), "BRIDGE_UNREACHABLE", directive)


def test_dns_failure(ca_bundle: str, lambda_env: pytest.MonkeyPatch) -> None:
    """A name that cannot resolve (.invalid is reserved) is unreachable, not a crash."""
    use(lambda_env, "https://ha.invalid", ca_bundle)
    directive = camera_directive()
    assert_error(invoke(directive, FakeContext(SHORT_CONTEXT_MS)), "BRIDGE_UNREACHABLE", directive)
    for thread in threading.enumerate():  # a resolver slower than the budget (offline CI)
        if thread.name == "lambda-dns":
            thread.join(15)


def _assert_returns_in_budget(directive: dict[str, Any]) -> dict[str, Any]:
    """The handler answers before the Lambda would be killed (its remaining time).

    The budget is that time minus a 300 ms margin, which is also what absorbs scheduling
    delays on a loaded machine here.
    """
    started = time.monotonic()
    answer = lambda_handler(directive, FakeContext(SHORT_CONTEXT_MS))
    assert time.monotonic() - started < SHORT_CONTEXT_MS / 1000
    validate_message(answer)
    return answer


def test_silent_port_times_out_in_budget(ca_bundle: str, lambda_env: pytest.MonkeyPatch) -> None:
    """TCP connects but TLS never starts: BRIDGE_UNREACHABLE inside the budget."""
    with SilentListener() as silent:
        use(lambda_env, silent.url, ca_bundle)
        directive = camera_directive()
        assert_error(_assert_returns_in_budget(directive), "BRIDGE_UNREACHABLE", directive)


@pytest.mark.parametrize("misbehavior", ["hang", "dribble"])
def test_hanging_server_times_out_in_budget(
    misbehavior: str,
    make_standin: StandinFactory,
    ca_bundle: str,
    lambda_env: pytest.MonkeyPatch,
) -> None:
    """HA reads the directive and never answers, or dribbles headers forever."""
    reply = Reply(hang=misbehavior == "hang", dribble=misbehavior == "dribble")
    standin = make_standin(lambda _request: reply)
    use(lambda_env, standin.url, ca_bundle)
    directive = camera_directive()
    assert_error(_assert_returns_in_budget(directive), "BRIDGE_UNREACHABLE", directive)
    assert len(standin.requests) == 1


def test_no_time_left(ca_bundle: str, lambda_env: pytest.MonkeyPatch) -> None:
    """With less than the safety margin left, the handler answers at once without HA."""
    use(lambda_env, closed_port_url(), ca_bundle)
    directive = camera_directive()
    assert_error(invoke(directive, FakeContext(200)), "INTERNAL_ERROR", directive)


def test_dropped_connection(
    make_standin: StandinFactory, ca_bundle: str, lambda_env: pytest.MonkeyPatch
) -> None:
    """HA closes the connection without answering a fresh request."""
    standin = make_standin(lambda _request: Reply(drop=True))
    use(lambda_env, standin.url, ca_bundle)
    directive = camera_directive()
    assert_error(invoke(directive), "BRIDGE_UNREACHABLE", directive)


def test_truncated_body(
    make_standin: StandinFactory, ca_bundle: str, lambda_env: pytest.MonkeyPatch
) -> None:
    """Content-Length promises more than HA sends before closing."""
    standin = make_standin(
        lambda _request: Reply(
            body=b'{"event":', headers={"Content-Length": "500"}, close_after=True
        )
    )
    use(lambda_env, standin.url, ca_bundle)
    directive = camera_directive()
    assert_error(invoke(directive), "BRIDGE_UNREACHABLE", directive)


# --------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def untrusted_tls() -> ssl.SSLContext:
    """A certificate from a CA the Lambda does not know (self-signed HA, wrong chain)."""
    return server_context(trustme.CA(), "127.0.0.1")


def test_bad_certificate_rejected(
    untrusted_tls: ssl.SSLContext,
    make_standin: StandinFactory,
    ca_bundle: str,
    lambda_env: pytest.MonkeyPatch,
) -> None:
    standin = make_standin(lambda _request: answer_with(ANSWERS[CAMERA]), tls=untrusted_tls)
    use(lambda_env, standin.url, ca_bundle)
    directive = camera_directive()
    assert_error(invoke(directive), "BRIDGE_UNREACHABLE", directive)
    assert standin.requests == []


def test_wrong_host_name_rejected(
    test_ca: trustme.CA,
    make_standin: StandinFactory,
    ca_bundle: str,
    lambda_env: pytest.MonkeyPatch,
) -> None:
    """A trusted certificate for another name is still refused."""
    tls = server_context(test_ca, "other.example")
    standin = make_standin(lambda _request: answer_with(ANSWERS[CAMERA]), tls=tls)
    use(lambda_env, standin.url, ca_bundle)
    directive = camera_directive()
    assert_error(invoke(directive), "BRIDGE_UNREACHABLE", directive)


def test_bad_certificate_accepted_without_verification(
    untrusted_tls: ssl.SSLContext, make_standin: StandinFactory, lambda_env: pytest.MonkeyPatch
) -> None:
    answer = compact(load_sample(ANSWERS[CAMERA]))
    standin = make_standin(lambda _request: Reply(body=answer), tls=untrusted_tls)
    use(lambda_env, standin.url, None, VERIFY_TLS="0")
    assert compact(invoke(camera_directive())) == answer


def test_http_server_behind_https_url(
    make_standin: StandinFactory, ca_bundle: str, lambda_env: pytest.MonkeyPatch
) -> None:
    """HA_URL says https but the port speaks plain HTTP: a TLS error, unreachable."""
    standin = make_standin(lambda _request: answer_with(ANSWERS[CAMERA]), tls=None)
    use(lambda_env, standin.url.replace("http://", "https://"), ca_bundle)
    directive = camera_directive()
    assert_error(invoke(directive), "BRIDGE_UNREACHABLE", directive)


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"HA_URL": "   "},
        {"HA_URL": "http://127.0.0.1:8123"},
        {"HA_URL": "ftp://127.0.0.1"},
        {"HA_URL": "127.0.0.1:8123"},
        {"HA_URL": "https://"},
        {"HA_URL": "https://127.0.0.1:99999"},
        {"HA_URL": "https://user:pw@127.0.0.1"},
        {"HA_URL": "https://127.0.0.1/?x=1"},
        {"HA_URL": "https://127.0.0.1/my ha"},
        {"HA_URL": "https://ha..example.com"},
        {"HA_URL": "ftp://user:SECRET@127.0.0.1"},
        {"HA_URL": "https://127.0.0.1", "VERIFY_TLS": "maybe"},
        {"HA_URL": "https://127.0.0.1", "CA_BUNDLE": "/nonexistent/ca.pem"},
        {"HA_URL": "https://127.0.0.1", "CA_BUNDLE": __file__},
    ],
    ids=[
        "missing",
        "blank",
        "http",
        "ftp",
        "no-scheme",
        "no-host",
        "bad-port",
        "userinfo",
        "query",
        "space",
        "empty-label",
        "ftp-with-password",
        "bad-flag",
        "missing-ca",
        "ca-not-pem",
    ],
)
def test_bad_configuration(
    env: dict[str, str], lambda_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No exception: INTERNAL_ERROR for Alexa and an ERROR line saying what to fix."""
    for name, value in env.items():
        lambda_env.setenv(name, value)
    directive = camera_directive()
    with caplog.at_level(logging.INFO, logger=lambda_function.__name__):
        assert_error(invoke(directive), "INTERNAL_ERROR", directive)
    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert "configuration:" in record.getMessage()
    assert "SECRET" not in caplog.text


def test_bad_configuration_accept_grant(lambda_env: pytest.MonkeyPatch) -> None:
    directive = load_sample(ACCEPT_GRANT)
    assert_error(invoke(directive), "ACCEPT_GRANT_FAILED", directive)


# --------------------------------------------------------------------------- directives


def _break(path: tuple[str, ...], value: object) -> dict[str, Any]:
    directive = camera_directive()
    node: Any = directive
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return directive


@pytest.mark.parametrize(
    "event",
    [
        None,
        "a string",
        [1, 2],
        {},
        {"directive": "x"},
        _break(("directive", "header"), KeyError),
        _break(("directive", "header", "payloadVersion"), "2"),
        _break(("directive", "header", "namespace"), 7),
        _break(("directive", "header", "messageId"), KeyError),
        _break(("directive", "payload"), KeyError),
        _break(("directive", "endpoint", "endpointId"), "bad id with spaces"),
        _break(("directive", "endpoint"), "not an object"),
    ],
    ids=[
        "none",
        "string",
        "list",
        "empty",
        "directive-not-object",
        "no-header",
        "v2",
        "namespace-not-string",
        "no-message-id",
        "no-payload",
        "bad-endpoint-id",
        "endpoint-not-object",
    ],
)
def test_invalid_directive_never_reaches_ha(
    event: object,
    make_standin: StandinFactory,
    ca_bundle: str,
    lambda_env: pytest.MonkeyPatch,
) -> None:
    standin = make_standin(lambda _request: answer_with(ANSWERS[CAMERA]))
    use(lambda_env, standin.url, ca_bundle)
    answer = invoke(event)
    assert answer["event"]["payload"]["type"] == "INVALID_DIRECTIVE"
    assert answer["event"]["header"]["namespace"] == "Alexa"
    assert standin.connections == 0


def test_invalid_directive_keeps_correlation_token(lambda_env: pytest.MonkeyPatch) -> None:
    directive = _break(("directive", "header", "payloadVersion"), "2")
    assert_error(invoke(directive), "INVALID_DIRECTIVE", directive)


@pytest.mark.parametrize("token", [None, "", "bad token\r\nX-Injected: 1"])
def test_unusable_token_never_reaches_ha(
    token: str | None,
    make_standin: StandinFactory,
    ca_bundle: str,
    lambda_env: pytest.MonkeyPatch,
) -> None:
    standin = make_standin(lambda _request: answer_with(ANSWERS[CAMERA]))
    use(lambda_env, standin.url, ca_bundle)
    directive = camera_directive()
    if token is None:
        del directive["directive"]["endpoint"]["scope"]
    else:
        directive["directive"]["endpoint"]["scope"]["token"] = token
    assert_error(invoke(directive), "INVALID_AUTHORIZATION_CREDENTIAL", directive)
    assert standin.connections == 0


def test_message_ids_are_fresh(lambda_env: pytest.MonkeyPatch) -> None:
    directive = camera_directive()
    first, second = invoke(directive), invoke(directive)
    assert first["event"]["header"]["messageId"] != second["event"]["header"]["messageId"]


# --------------------------------------------------------------------------- connection reuse


def test_warm_invocations_reuse_one_connection(
    make_standin: StandinFactory, ca_bundle: str, lambda_env: pytest.MonkeyPatch
) -> None:
    standin = make_standin(lambda _request: answer_with(ANSWERS[CAMERA]))
    use(lambda_env, standin.url, ca_bundle)
    for _ in range(3):
        invoke(camera_directive())
    assert len(standin.requests) == 3
    assert standin.connections == 1


def test_connection_closed_while_idle_is_replaced(
    make_standin: StandinFactory, ca_bundle: str, lambda_env: pytest.MonkeyPatch
) -> None:
    """HA closes keep-alive connections between invocations: each call still succeeds."""
    reply = Reply(body=compact(load_sample(ANSWERS[CAMERA])), close_after=True)
    standin = make_standin(lambda _request: reply)
    use(lambda_env, standin.url, ca_bundle)
    for _ in range(2):
        assert invoke(camera_directive())["event"]["header"]["name"] == "Response"
    assert standin.connections == 2


def test_stale_connection_is_retried_once(
    make_standin: StandinFactory, ca_bundle: str, lambda_env: pytest.MonkeyPatch
) -> None:
    """A reused connection that dies on the request is retried on a fresh one."""

    def behavior(request: Request) -> Reply:
        if request.index_on_connection > 1:
            return Reply(drop=True)
        return answer_with(ANSWERS[CAMERA])

    standin = make_standin(behavior)
    use(lambda_env, standin.url, ca_bundle)
    for _ in range(2):
        assert invoke(camera_directive())["event"]["header"]["name"] == "Response"
    assert standin.connections == 2
    assert [r.index_on_connection for r in standin.requests] == [1, 2, 1]


def test_configuration_change_opens_a_new_connection(
    make_standin: StandinFactory, ca_bundle: str, lambda_env: pytest.MonkeyPatch
) -> None:
    first = make_standin(lambda _request: answer_with(ANSWERS[CAMERA]))
    second = make_standin(lambda _request: answer_with(ANSWERS[CAMERA]))
    for standin in (first, second):
        use(lambda_env, standin.url, ca_bundle)
        invoke(camera_directive())
    assert (first.connections, second.connections) == (1, 1)


# --------------------------------------------------------------------------- logging


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == lambda_function.__name__]


def test_one_log_line_without_secrets(
    make_standin: StandinFactory,
    ca_bundle: str,
    lambda_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    answer = load_sample(ANSWERS[CAMERA])
    standin = make_standin(lambda _request: Reply(body=compact(answer)))
    use(lambda_env, standin.url, ca_bundle)
    with caplog.at_level(logging.DEBUG, logger=lambda_function.__name__):
        invoke(camera_directive("SECRET-TOKEN"))
    (line,) = _lines(caplog)
    assert line.startswith("Alexa.CameraStreamController.InitializeCameraStreams ")
    assert "endpoint=endpoint-001" in line
    assert "ha_status=200" in line
    assert " ms=" in line
    assert "SECRET-TOKEN" not in caplog.text
    assert "rtsp://" not in caplog.text


def test_error_log_line(
    make_standin: StandinFactory,
    ca_bundle: str,
    lambda_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    standin = make_standin(lambda _request: Reply(401, b"expired"))
    use(lambda_env, standin.url, ca_bundle)
    with caplog.at_level(logging.INFO, logger=lambda_function.__name__):
        invoke(camera_directive("SECRET-TOKEN"))
    (line,) = _lines(caplog)
    assert "ha_status=401" in line
    assert "result=EXPIRED_AUTHORIZATION_CREDENTIAL (HTTP 401)" in line
    assert "SECRET-TOKEN" not in caplog.text


def test_debug_logs_bodies_redacted(
    make_standin: StandinFactory,
    ca_bundle: str,
    lambda_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """DEBUG shows the directive and answer, without tokens or stream credentials."""
    answer = load_sample(ANSWERS[CAMERA])
    streams = answer["event"]["payload"]["cameraStreams"]
    streams[0]["uri"] = "rtsp://user:STREAM-PASSWORD@cam.example.com:443/s1"
    standin = make_standin(lambda _request: Reply(body=compact(answer)))
    use(lambda_env, standin.url, ca_bundle, DEBUG="1")
    with caplog.at_level(logging.INFO, logger=lambda_function.__name__):
        invoke(camera_directive("SECRET-TOKEN"))
    lines = _lines(caplog)
    assert len(lines) == 3
    assert "InitializeCameraStreams" in lines[0]
    assert "cameraStreams" in lines[1]
    assert "rtsp://***@cam.example.com:443/s1" in lines[1]
    assert "SECRET-TOKEN" not in caplog.text
    assert "STREAM-PASSWORD" not in caplog.text


def test_redact() -> None:
    message = {
        "a": [{"token": "t", "code": "c", "uri": "https://u:p@h/x"}],
        "n": 1,
        "token": {"nested": "kept"},
    }
    assert lambda_function.redact(message) == {
        "a": [{"token": "***", "code": "***", "uri": "https://***@h/x"}],
        "n": 1,
        "token": {"nested": "kept"},
    }


def test_unexpected_error_still_answers(
    make_standin: StandinFactory,
    ca_bundle: str,
    lambda_env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A directive the runtime could never have produced (not JSON-serializable)."""
    standin = make_standin(lambda _request: answer_with(ANSWERS[CAMERA]))
    use(lambda_env, standin.url, ca_bundle)
    directive = camera_directive()
    directive["directive"]["payload"]["odd"] = {1, 2}
    with caplog.at_level(logging.INFO, logger=lambda_function.__name__):
        assert_error(invoke(directive), "INTERNAL_ERROR", directive)
    assert "unexpected TypeError" in _lines(caplog)[0]


def test_lambda_file_uses_only_the_standard_library() -> None:
    """The deployed file must import nothing outside Python's standard library."""
    import ast
    import sys

    tree = ast.parse(Path(lambda_function.__file__).read_text(encoding="utf-8"))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    assert modules
    assert {name.split(".")[0] for name in modules} <= sys.stdlib_module_names | {"__future__"}


def test_event_is_sent_as_is(
    make_standin: StandinFactory, ca_bundle: str, lambda_env: pytest.MonkeyPatch
) -> None:
    """Unicode and unknown fields survive the trip unchanged."""
    standin = make_standin(lambda _request: answer_with(ANSWERS[CAMERA]))
    use(lambda_env, standin.url, ca_bundle)
    directive = camera_directive()
    directive["directive"]["payload"]["extra"] = {"name": "Haustür \u00e9\u20ac", "n": 1.5}
    invoke(directive)
    assert json.loads(standin.requests[0].body) == directive


def test_default_context(
    make_standin: StandinFactory, ca_bundle: str, lambda_env: pytest.MonkeyPatch
) -> None:
    """Invoked without a context (a local test run), the 5 s budget applies."""
    standin = make_standin(lambda _request: answer_with(ANSWERS[CAMERA]))
    use(lambda_env, standin.url, ca_bundle)
    answer = lambda_handler(camera_directive(), None)
    validate_message(answer)
    assert answer["event"]["header"]["name"] == "Response"
    assert len(standin.requests) == 1
