"""Local stand-ins for Amazon: the Login with Amazon token endpoint, the Alexa Event
Gateway of each region and the ``alexaApiEndpoint`` region lookup, on one aiohttp server
on 127.0.0.1. They record what they receive; every event body is validated against
Amazon's message schema on arrival (``DeleteReport``, which the vendored schema lacks,
against the shape Amazon's Alexa.Discovery documentation gives).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.alexa_schema import validate_message

CLIENT_ID = "amzn1.application-oa2-client.test"
CLIENT_SECRET = "skill-messaging-secret"
GOOD_CODE = "grant-code-good"
REFRESH_TOKEN = "Atzr|refresh-token-1"

_SCOPE = {
    "type": "object",
    "required": ["type", "token"],
    "properties": {"type": {"enum": ["BearerToken"]}, "token": {"type": "string", "minLength": 1}},
}
DELETE_REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["event"],
    "additionalProperties": False,
    "properties": {
        "event": {
            "type": "object",
            "required": ["header", "payload"],
            "additionalProperties": False,
            "properties": {
                "header": {
                    "type": "object",
                    "required": ["namespace", "name", "payloadVersion", "messageId"],
                    "additionalProperties": False,
                    "properties": {
                        "namespace": {"enum": ["Alexa.Discovery"]},
                        "name": {"enum": ["DeleteReport"]},
                        "payloadVersion": {"enum": ["3"]},
                        "messageId": {"type": "string", "minLength": 1},
                    },
                },
                "payload": {
                    "type": "object",
                    "required": ["endpoints", "scope"],
                    "additionalProperties": False,
                    "properties": {
                        "endpoints": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "object",
                                "required": ["endpointId"],
                                "additionalProperties": False,
                                "properties": {
                                    "endpointId": {
                                        "type": "string",
                                        "pattern": "^[a-zA-Z0-9_\\-=#;:?@&]{1,256}$",
                                    }
                                },
                            },
                        },
                        "scope": _SCOPE,
                    },
                },
            },
        }
    },
}


def validate_event(message: Any) -> None:
    """Validate an Event Gateway message: Amazon's schema, or DeleteReport's documented shape."""
    header = message.get("event", {}).get("header", {}) if isinstance(message, dict) else {}
    if header.get("name") == "DeleteReport":
        jsonschema.Draft4Validator(DELETE_REPORT_SCHEMA).validate(message)
    else:
        validate_message(message)


def scope_token(message: dict[str, Any]) -> str | None:
    """The bearer token an event carries (endpoint scope or payload scope)."""
    event = message["event"]
    scope = event.get("endpoint", {}).get("scope") or event["payload"].get("scope") or {}
    token = scope.get("token")
    return token if isinstance(token, str) else None


@dataclass
class Received:
    """One event the fake gateway received."""

    region: str
    authorization: str
    body: dict[str, Any]
    at: float  # time.monotonic() when the request arrived
    status: int

    @property
    def name(self) -> str:
        """``Namespace.Name`` of the event."""
        header = self.body["event"]["header"]
        return f"{header['namespace']}.{header['name']}"


@dataclass
class FakeAmazon:
    """State and scripts of the fake servers (see the module docstring)."""

    base_url: str = ""
    token_requests: list[dict[str, str]] = field(default_factory=list)
    events: list[Received] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)
    #: Scripted gateway answers, (status, payload code or None); then 202.
    gateway_script: deque[tuple[int, str | None]] = field(default_factory=deque)
    #: Scripted LWA answers for refresh grants, (status, error or None); then success.
    refresh_script: deque[tuple[int, str | None]] = field(default_factory=deque)
    #: Seconds LWA takes to answer.
    lwa_delay: float = 0.0
    #: What the region lookup answers (None: 500).
    lookup_host: str | None = "api.eu.amazonalexa.com"
    expires_in: int = 3600
    valid_access_tokens: set[str] = field(default_factory=set)
    schema_errors: list[str] = field(default_factory=list)
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _arrived: asyncio.Condition | None = None

    # -- URLs -------------------------------------------------------------------------------

    @property
    def token_url(self) -> str:
        """The fake LWA token endpoint."""
        return f"{self.base_url}/auth/o2/token"

    @property
    def lookup_url(self) -> str:
        """The fake ``alexaApiEndpoint``."""
        return f"{self.base_url}/v1/alexaApiEndpoint"

    def event_url(self, region: str = "na") -> str:
        """The fake Event Gateway of a region (``na``, ``eu``, ``fe``)."""
        return f"{self.base_url}/{region.lower()}/v3/events"

    # -- helpers for tests ----------------------------------------------------------------

    def issue_access_token(self) -> str:
        """Mint an access token the gateway accepts."""
        token = f"Atza|access-{next(self._serial)}"
        self.valid_access_tokens.add(token)
        return token

    def expire_all(self) -> None:
        """Make the gateway reject every access token issued so far (401)."""
        self.valid_access_tokens.clear()

    def names(self) -> list[str]:
        """``Namespace.Name`` of every accepted event, in order."""
        return [event.name for event in self.events if event.status == 202]

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:  # noqa: ASYNC109
        """Wait until at least ``count`` events arrived (any status); return them all."""
        assert self._arrived is not None
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.events) >= count)
        return list(self.events)

    # -- handlers ---------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.token_requests.append({k: str(v) for k, v in form.items()})
        if self.lwa_delay:
            await asyncio.sleep(self.lwa_delay)
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return web.json_response({"error": "invalid_client"}, status=401)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            if form.get("code") != GOOD_CODE:
                return web.json_response({"error": "invalid_grant"}, status=400)
        elif grant == "refresh_token":
            if self.refresh_script:
                status, error = self.refresh_script.popleft()
                if error is not None or status != 200:
                    return web.json_response({"error": error or "server_error"}, status=status)
            if form.get("refresh_token") != REFRESH_TOKEN:
                return web.json_response({"error": "invalid_grant"}, status=400)
        else:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        return web.json_response(
            {
                "access_token": self.issue_access_token(),
                "refresh_token": REFRESH_TOKEN,
                "token_type": "bearer",
                "expires_in": self.expires_in,
            }
        )

    async def _lookup(self, request: web.Request) -> web.Response:
        self.lookups.append(request.headers.get("Authorization", ""))
        if self.lookup_host is None:
            return web.json_response({}, status=500)
        return web.json_response({"endpoints": [self.lookup_host]})

    async def _event(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()  # before the (first time slow) schema validation
        region = request.match_info["region"]
        authorization = request.headers.get("Authorization", "")
        body = await request.json()
        try:
            validate_event(body)
        except (AssertionError, jsonschema.ValidationError) as err:
            self.schema_errors.append(str(err))
        token = authorization.removeprefix("Bearer ")
        if self.gateway_script:
            status, code = self.gateway_script.popleft()
        elif token not in self.valid_access_tokens:
            status, code = 401, "INVALID_ACCESS_TOKEN_EXCEPTION"
        elif scope_token(body) != token:
            status, code = 400, "INVALID_REQUEST_EXCEPTION"
        else:
            status, code = 202, None
        await self._record(Received(region, authorization, body, arrived, status))
        if status == 202:
            return web.Response(status=202)
        headers = {"Retry-After": "0"} if status == 429 else None
        return web.json_response(
            {
                "header": {"messageId": "fake"},
                "payload": {"code": code or "ERROR", "description": "scripted"},
            },
            status=status,
            headers=headers,
        )

    async def _record(self, received: Received) -> None:
        assert self._arrived is not None
        async with self._arrived:
            self.events.append(received)
            self._arrived.notify_all()

    def app(self) -> web.Application:
        """The aiohttp application serving every fake endpoint."""
        self._arrived = asyncio.Condition()
        app = web.Application()
        app.router.add_post("/auth/o2/token", self._token)
        app.router.add_get("/v1/alexaApiEndpoint", self._lookup)
        app.router.add_post("/{region}/v3/events", self._event)
        return app


@contextlib.asynccontextmanager
async def serve_fake_amazon() -> AsyncIterator[FakeAmazon]:
    """Run the fake Amazon servers on 127.0.0.1; fail on any schema violation.

    Test modules wrap this in their ``fake_amazon`` fixture.
    """
    fake = FakeAmazon()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    fake.base_url = str(server.make_url("")).rstrip("/")
    try:
        yield fake
    finally:
        await server.close()
    assert not fake.schema_errors, "\n".join(fake.schema_errors)


def dumps(message: dict[str, Any]) -> str:
    """Compact JSON of a message (for 'no token in here' assertions)."""
    return json.dumps(message, separators=(",", ":"))
