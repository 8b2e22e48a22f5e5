"""An in-memory SmartHomeBackend and directive builders for the smart_home tests."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from custom_components.alexa_cam_bridge.smart_home import (
    CameraEndpoint,
    StreamInfo,
    StreamRequest,
    StreamSession,
    handle_directive,
)
from tests.alexa_schema import validate_message

SAMPLES = Path(__file__).parent.parent / "alexa_samples"

#: The clock every test hands to handle_directive.
NOW = datetime(2026, 11, 21, 8, 0, 0, 123456, tzinfo=UTC)
NOW_SAMPLE = "2026-11-21T08:00:00.123Z"

SCOPE_TOKEN = "scope-token-Zx81kQ"
GRANT_CODE = "grant-code-ANUbUKCJ"
GRANTEE_TOKEN = "grantee-token-pP3v"
CORRELATION_TOKEN = "dFMb0z+PgpgdDmluhJ1LddFvSqZ/jCc8ptlAKulUj90jSqg=="

FRONT_DOOR = CameraEndpoint(
    endpoint_id="camera#front_door",
    friendly_name="Front door",
    description="Front door camera via Home Assistant",
    manufacturer="Reolink",
    entity_id="camera.front_door",
)


def camera(index: int, *, doorbell: bool = False) -> CameraEndpoint:
    """Return a numbered camera endpoint."""
    return CameraEndpoint(
        endpoint_id=f"camera#cam_{index}",
        friendly_name=f"Camera {index}",
        description=f"Camera {index} via Home Assistant",
        manufacturer="Home Assistant",
        entity_id=f"camera.cam_{index}",
        doorbell=doorbell,
    )


class FakeBackend:
    """A SmartHomeBackend over plain dictionaries that records every call."""

    def __init__(self, cameras: Sequence[CameraEndpoint] = (FRONT_DOOR,)) -> None:
        """Expose ``cameras``, all available, 1920x1080 H.264 with AAC."""
        self.cameras = list(cameras)
        self.infos: dict[str, StreamInfo] = {}
        self.unavailable: set[str] = set()
        self.info_errors: dict[str, Exception] = {}
        self.stalled: set[str] = set()
        self.session_error: Exception | None = None
        self.grant_error: Exception | None = None
        self.session: StreamSession = StreamSession(
            uri="rtsps://u1:p1@cam.example.com:443/stream/abc",
            expiration=datetime(2026, 11, 21, 9, 0, 0, 654321, tzinfo=UTC),
            idle_timeout_seconds=30,
            protocol="RTSP",
            width=1920,
            height=1080,
            authorization_type="DIGEST",
            video_codec="H264",
            audio_codec="AAC",
            image_uri="https://cam.example.com:443/snapshot/tok",
        )
        self.requests: list[tuple[str, StreamRequest]] = []
        self.grants: list[tuple[str, str]] = []
        self.info_calls: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0

    def endpoints(self) -> Sequence[CameraEndpoint]:
        """Return the exposed cameras."""
        return self.cameras

    def is_available(self, endpoint_id: str) -> bool:
        """Return False for cameras listed in ``unavailable``."""
        return endpoint_id not in self.unavailable

    async def stream_info(self, endpoint_id: str) -> StreamInfo:
        """Return ``infos[endpoint_id]`` (default 1920x1080), raise or stall as set up."""
        self.info_calls.append(endpoint_id)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            # Yield twice so that concurrent callers overlap.
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            if endpoint_id in self.stalled:
                await asyncio.Event().wait()
            if endpoint_id in self.info_errors:
                raise self.info_errors[endpoint_id]
            return self.infos.get(endpoint_id, StreamInfo(1920, 1080, probed=True))
        finally:
            self.in_flight -= 1

    async def initialize_streams(self, endpoint_id: str, request: StreamRequest) -> StreamSession:
        """Record the request; return ``session`` or raise ``session_error``."""
        self.requests.append((endpoint_id, request))
        if self.session_error is not None:
            raise self.session_error
        return self.session

    async def accept_grant(self, code: str, grantee_token: str) -> None:
        """Record the grant; raise ``grant_error`` if set."""
        self.grants.append((code, grantee_token))
        if self.grant_error is not None:
            raise self.grant_error


def sample(name: str) -> dict[str, Any]:
    """Load one of Amazon's sample messages."""
    data: dict[str, Any] = json.loads((SAMPLES / f"sample_messages__{name}.json").read_text())
    return data


def directive(
    namespace: str,
    name: str,
    *,
    endpoint_id: str | None = None,
    payload: Mapping[str, Any] | None = None,
    correlation_token: str | None = CORRELATION_TOKEN,
) -> dict[str, Any]:
    """Build a directive; with ``endpoint_id`` it gets an endpoint with a bearer scope."""
    header: dict[str, Any] = {
        "namespace": namespace,
        "name": name,
        "payloadVersion": "3",
        "messageId": "1bd5d003-31b9-476f-ad03-71d471922820",
    }
    if correlation_token is not None:
        header["correlationToken"] = correlation_token
    body: dict[str, Any] = {"header": header, "payload": dict(payload or {})}
    if endpoint_id is not None:
        body["endpoint"] = {
            "scope": {"type": "BearerToken", "token": SCOPE_TOKEN},
            "endpointId": endpoint_id,
            "cookie": {},
        }
    return {"directive": body}


def discover_directive() -> dict[str, Any]:
    """Amazon's sample Discover directive with our scope token."""
    message = sample("Discovery__Discovery.request")
    message["directive"]["payload"]["scope"]["token"] = SCOPE_TOKEN
    return message


def report_state_directive(endpoint_id: str = FRONT_DOOR.endpoint_id) -> dict[str, Any]:
    """Amazon's sample ReportState directive for ``endpoint_id``."""
    message = sample("StateReport__ReportState")
    message["directive"]["endpoint"]["endpointId"] = endpoint_id
    message["directive"]["endpoint"]["scope"]["token"] = SCOPE_TOKEN
    return message


def streams_directive(endpoint_id: str = FRONT_DOOR.endpoint_id) -> dict[str, Any]:
    """Amazon's sample InitializeCameraStreams directive for ``endpoint_id``."""
    message = sample("CameraStreamController__CameraStreamController.request")
    message["directive"]["endpoint"]["endpointId"] = endpoint_id
    message["directive"]["endpoint"]["scope"]["token"] = SCOPE_TOKEN
    return message


def accept_grant_directive() -> dict[str, Any]:
    """Amazon's sample AcceptGrant directive with our code and grantee token."""
    message = sample("Authorization__Authorization.AcceptGrant.request")
    message["directive"]["payload"]["grant"]["code"] = GRANT_CODE
    message["directive"]["payload"]["grantee"]["token"] = GRANTEE_TOKEN
    return message


async def answer(raw: bytes | str | Mapping[str, Any], backend: FakeBackend) -> dict[str, Any]:
    """Run handle_directive with the fixed clock and check the answer against the schema."""
    before = copy.deepcopy(raw)
    message = await handle_directive(raw, backend, now=lambda: NOW)
    validate_message(message)
    # Whatever went in, the answer is plain JSON and the input is left untouched.
    assert json.loads(json.dumps(message)) == message
    assert raw == before
    return message


def error_of(message: Mapping[str, Any]) -> tuple[str, str, str]:
    """Return (namespace, type, message) of an ErrorResponse."""
    event = message["event"]
    assert event["header"]["name"] == "ErrorResponse", event
    return event["header"]["namespace"], event["payload"]["type"], event["payload"]["message"]
