"""The Alexa endpoint through Home Assistant's HTTP server: auth, directives, errors."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.alexa_cam_bridge.const import API_PATH, DOMAIN, MAX_DIRECTIVE_BYTES
from tests.alexa_schema import validate_message
from tests.conftest import RtspCamera, setup_cameras
from tests.directives import (
    TOKEN,
    accept_grant,
    directive,
    discover,
    initialize_streams,
    report_state,
)

ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


async def _post(client: TestClient[web.Request, web.Application], body: Any) -> dict[str, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    resp = await client.post(API_PATH, data=data, headers={"Content-Type": "application/json"})
    assert resp.status == 200, await resp.text()
    message: dict[str, Any] = await resp.json()
    validate_message(message)
    return message


def _error_type(message: dict[str, Any]) -> str:
    header = message["event"]["header"]
    assert header["name"] == "ErrorResponse"
    return str(message["event"]["payload"]["type"])


async def test_requires_auth(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, hass_client_no_auth: ClientFactory
) -> None:
    """Without HA's bearer token the view answers 401 and never reaches the handler."""
    client = await hass_client_no_auth()
    resp = await client.post(API_PATH, json=discover())
    assert resp.status == 401
    resp = await client.post(
        API_PATH, json=discover(), headers={"Authorization": "Bearer not-a-token"}
    )
    assert resp.status == 401


async def test_discover(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, hass_client: ClientFactory
) -> None:
    """Discover lists the exposed camera with its name and camera capabilities."""
    client = await hass_client()
    message = await _post(client, discover())
    event = message["event"]
    assert event["header"]["namespace"] == "Alexa.Discovery"
    assert event["header"]["name"] == "Discover.Response"
    (endpoint,) = event["payload"]["endpoints"]
    assert endpoint["endpointId"] == "camera#front_door"
    assert endpoint["friendlyName"] == "front door"
    assert endpoint["displayCategories"] == ["CAMERA"]
    interfaces = {c["interface"] for c in endpoint["capabilities"]}
    assert {"Alexa", "Alexa.EndpointHealth"} <= interfaces


async def test_report_state(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, hass_client: ClientFactory
) -> None:
    """ReportState: UNREACHABLE when the camera's stream cannot be reached or it is
    unavailable; unknown endpoints are NO_SUCH_ENDPOINT."""
    client = await hass_client()
    message = await _post(client, report_state("camera#front_door"))
    assert message["event"]["header"]["name"] == "StateReport"
    (prop,) = [
        p for p in message["context"]["properties"] if p["namespace"] == "Alexa.EndpointHealth"
    ]
    # the fixture camera has no stream source at all
    assert prop["value"]["value"] == "UNREACHABLE"
    message = await _post(client, report_state("camera#nope"))
    assert _error_type(message) == "NO_SUCH_ENDPOINT"


async def test_bad_input_is_invalid_directive(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, hass_client: ClientFactory
) -> None:
    """Malformed or unknown directives get INVALID_DIRECTIVE with HTTP 200."""
    client = await hass_client()
    for body in (
        b"{not json",
        b"[]",
        json.dumps({"directive": {"header": {"namespace": "Alexa"}}}).encode(),
        json.dumps(directive("Alexa.Nope", "Nope", endpoint_id="camera#front_door")).encode(),
    ):
        assert _error_type(await _post(client, body)) == "INVALID_DIRECTIVE"
    wrong_version = report_state("camera#front_door")
    wrong_version["directive"]["header"]["payloadVersion"] = "2"
    assert _error_type(await _post(client, wrong_version)) == "INVALID_DIRECTIVE"
    too_big = b'{"pad": "' + b"x" * MAX_DIRECTIVE_BYTES + b'"}'
    assert _error_type(await _post(client, too_big)) == "INVALID_DIRECTIVE"


async def test_correlation_token_echoed_and_fresh_message_id(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, hass_client: ClientFactory
) -> None:
    """correlationToken comes back; messageId is new for every answer."""
    client = await hass_client()
    request = report_state("camera#front_door")
    first = await _post(client, request)
    second = await _post(client, request)
    token = request["directive"]["header"]["correlationToken"]
    assert first["event"]["header"]["correlationToken"] == token
    ids = {first["event"]["header"]["messageId"], second["event"]["header"]["messageId"]}
    assert len(ids) == 2
    assert request["directive"]["header"]["messageId"] not in ids


async def test_unavailable_camera(
    hass: HomeAssistant,
    entry_factory: Callable[..., MockConfigEntry],
    hass_client: ClientFactory,
) -> None:
    """An unavailable camera entity: ReportState UNREACHABLE, streams ENDPOINT_UNREACHABLE."""
    cameras = await setup_cameras(hass, [RtspCamera("Porch", "rtsp://127.0.0.1:9/x")])
    entry = entry_factory({"camera.porch": "porch"})
    assert await hass.config_entries.async_setup(entry.entry_id)
    cameras.entities["camera.porch"].set_available(False)
    await hass.async_block_till_done()
    client = await hass_client()
    message = await _post(client, report_state("camera#porch"))
    (prop,) = message["context"]["properties"]
    assert prop["value"]["value"] == "UNREACHABLE"
    message = await _post(client, initialize_streams("camera#porch"))
    assert _error_type(message) == "ENDPOINT_UNREACHABLE"
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_accept_grant_is_stored(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hass_client: ClientFactory,
    hass_storage: dict[str, Any],
) -> None:
    """AcceptGrant answers AcceptGrant.Response and keeps the code, never the HA token."""
    client = await hass_client()
    message = await _post(client, accept_grant("code-42"))
    assert message["event"]["header"]["namespace"] == "Alexa.Authorization"
    assert message["event"]["header"]["name"] == "AcceptGrant.Response"
    await hass.async_block_till_done()
    stored = hass_storage[f"{DOMAIN}.grant"]["data"]
    assert stored["code"] == "code-42"
    assert TOKEN not in json.dumps(stored)


async def test_not_loaded_is_bridge_unreachable(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, hass_client: ClientFactory
) -> None:
    """With the entry unloaded, directives get BRIDGE_UNREACHABLE (not an empty Discover,
    which would make Alexa forget every camera)."""
    client = await hass_client()
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    message = await _post(client, discover())
    assert _error_type(message) == "BRIDGE_UNREACHABLE"
    message = await _post(client, report_state("camera#front_door"))
    assert _error_type(message) == "BRIDGE_UNREACHABLE"
    assert message["event"]["endpoint"]["endpointId"] == "camera#front_door"
