"""Alexa events through a real Home Assistant, with fake LWA and Event Gateway servers.

Doorbell presses, connectivity ChangeReports (debounced), AddOrUpdate/DeleteReport on
option changes, the AcceptGrant token exchange, repairs and diagnostics.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.alexa_cam_bridge.const import (
    API_PATH,
    CHANGE_REPORT_DEBOUNCE_SECONDS,
    CONF_CAMERAS,
    CONF_DOORBELL_KEEP_WARM,
    CONF_DOORBELLS,
    CONF_EVENT_GATEWAY_URL,
    CONF_KEEP_WARM,
    CONF_LWA_CLIENT_ID,
    CONF_LWA_CLIENT_SECRET,
    CONF_LWA_TOKEN_URL,
    CONF_NAME,
    CONF_VIDEO_ONLY,
    DOMAIN,
    ISSUE_EVENTS_CLIENT_REJECTED,
    ISSUE_EVENTS_RELINK,
    ISSUE_EVENTS_SKILL_DISABLED,
)
from custom_components.alexa_cam_bridge.diagnostics import async_get_config_entry_diagnostics
from custom_components.alexa_cam_bridge.events import (
    STORAGE_KEY,
    TOKEN_CHECK_SECONDS,
    is_doorbell_press,
)
from custom_components.alexa_cam_bridge.gateway import Tokens
from tests.alexa_schema import validate_message
from tests.conftest import RtspCamera, setup_cameras
from tests.directives import accept_grant, discover, report_state
from tests.fake_amazon import (
    CLIENT_ID,
    CLIENT_SECRET,
    GOOD_CODE,
    REFRESH_TOKEN,
    FakeAmazon,
    Received,
    serve_fake_amazon,
)
from tests.peers.camera import FakeCamera

ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]
EntryFactory = Callable[..., MockConfigEntry]

FRONT_DOORBELL = {CONF_DOORBELLS: {"camera.front_door": "binary_sensor.doorbell"}}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
async def fake_amazon() -> AsyncIterator[FakeAmazon]:
    """Fake LWA, Event Gateway and region lookup on 127.0.0.1."""
    async with serve_fake_amazon() as fake:
        yield fake


def events_options(fake: FakeAmazon, **extra: Any) -> dict[str, Any]:
    """Options that turn Alexa events on against the fake servers."""
    return {
        CONF_LWA_CLIENT_ID: CLIENT_ID,
        CONF_LWA_CLIENT_SECRET: CLIENT_SECRET,
        CONF_EVENT_GATEWAY_URL: fake.event_url("na"),
        CONF_LWA_TOKEN_URL: fake.token_url,
        **extra,
    }


def seed_storage(
    hass_storage: dict[str, Any],
    fake: FakeAmazon,
    *,
    reported: dict[str, Any] | None = None,
    expires_in: float = 3600,
) -> Tokens:
    """Tokens (and what Alexa was last told) as a previous AcceptGrant left them."""
    tokens = Tokens(fake.issue_access_token(), REFRESH_TOKEN, time.time() + expires_in)
    hass_storage[STORAGE_KEY] = {
        "version": 1,
        "minor_version": 1,
        "key": STORAGE_KEY,
        "data": {"tokens": tokens.as_dict(), "reported": reported},
    }
    return tokens


async def start(
    hass: HomeAssistant, entry_factory: EntryFactory, cameras: dict[str, str], **options: Any
) -> MockConfigEntry:
    """Set up the bridge with extra options."""
    entry = entry_factory(cameras)
    hass.config_entries.async_update_entry(entry, options={**entry.options, **options})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def start_doorbell(
    hass: HomeAssistant, entry_factory: EntryFactory, fake_amazon: FakeAmazon
) -> MockConfigEntry:
    """The bridge with events on and camera.front_door linked to binary_sensor.doorbell
    (off)."""
    hass.states.async_set("binary_sensor.doorbell", "off")
    await setup_cameras(hass, [RtspCamera("Front door", None)])
    return await start(
        hass,
        entry_factory,
        {"camera.front_door": "front door"},
        **events_options(
            fake_amazon, **{CONF_DOORBELLS: {"camera.front_door": "binary_sensor.doorbell"}}
        ),
    )


async def stop(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Unload (and so check that nothing lingers)."""
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def settle(hass: HomeAssistant) -> None:
    """Let the ChangeReport debounce expire (after the state listeners have run)."""
    await hass.async_block_till_done()
    async_fire_time_changed(
        hass, dt_util.utcnow() + timedelta(seconds=CHANGE_REPORT_DEBOUNCE_SECONDS + 1)
    )
    await hass.async_block_till_done()


async def drain(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Run the state listeners, then wait for every pending event delivery."""
    await hass.async_block_till_done()
    gateway = entry.runtime_data.events.gateway
    assert gateway is not None
    await gateway.wait_idle()
    await hass.async_block_till_done()


def connectivity(event: Received) -> tuple[str, str, str]:
    """(endpointId, connectivity value, cause) of a ChangeReport."""
    body = event.body["event"]
    (prop,) = body["payload"]["change"]["properties"]
    assert prop["namespace"] == "Alexa.EndpointHealth"
    return (
        body["endpoint"]["endpointId"],
        prop["value"]["value"],
        body["payload"]["change"]["cause"]["type"],
    )


async def _post(client: TestClient[web.Request, web.Application], body: Any) -> dict[str, Any]:
    resp = await client.post(API_PATH, json=body)
    assert resp.status == 200
    message: dict[str, Any] = await resp.json()
    validate_message(message)
    return message


# -- doorbells ------------------------------------------------------------------------------


async def test_doorbell_press_from_binary_sensor(
    hass: HomeAssistant,
    entry_factory: EntryFactory,
    hass_storage: dict[str, Any],
    hass_client: ClientFactory,
    fake_amazon: FakeAmazon,
    record_property: Callable[[str, object], None],
) -> None:
    """A binary_sensor turning on sends a schema-valid DoorbellPress at once; the camera
    is discovered as CAMERA + DOORBELL with Alexa.DoorbellEventSource."""
    tokens = seed_storage(hass_storage, fake_amazon)
    hass.states.async_set("binary_sensor.doorbell", "off")
    await setup_cameras(hass, [RtspCamera("Front door", None), RtspCamera("Garden", None)])
    entry = await start(
        hass,
        entry_factory,
        {"camera.front_door": "front door", "camera.garden": "garden"},
        **events_options(
            fake_amazon, **{CONF_DOORBELLS: {"camera.front_door": "binary_sensor.doorbell"}}
        ),
    )
    started = time.monotonic()
    hass.states.async_set("binary_sensor.doorbell", "on")
    (received,) = await fake_amazon.wait_for(1)
    latency = received.at - started
    record_property("doorbell_to_gateway_ms", round(latency * 1000, 1))
    print(f"doorbell -> gateway: {latency * 1000:.1f} ms")
    assert received.status == 202
    assert received.name == "Alexa.DoorbellEventSource.DoorbellPress"
    assert received.authorization == f"Bearer {tokens.access_token}"
    event = received.body["event"]
    assert event["endpoint"]["endpointId"] == "camera#front_door"
    assert event["endpoint"]["scope"] == {"type": "BearerToken", "token": tokens.access_token}
    assert event["payload"]["cause"] == {"type": "PHYSICAL_INTERACTION"}
    assert TIMESTAMP.match(event["payload"]["timestamp"])
    # off -> on again is a second press; on -> off and unavailable -> on are not
    hass.states.async_set("binary_sensor.doorbell", "off")
    hass.states.async_set("binary_sensor.doorbell", "unavailable")
    hass.states.async_set("binary_sensor.doorbell", "on")
    hass.states.async_set("binary_sensor.doorbell", "off")
    hass.states.async_set("binary_sensor.doorbell", "on")
    await drain(hass, entry)
    assert fake_amazon.names() == ["Alexa.DoorbellEventSource.DoorbellPress"] * 2

    client = await hass_client()
    message = await _post(client, discover())
    endpoints = {e["endpointId"]: e for e in message["event"]["payload"]["endpoints"]}
    door = endpoints["camera#front_door"]
    assert door["displayCategories"] == ["CAMERA", "DOORBELL"]
    (source,) = [c for c in door["capabilities"] if c["interface"] == "Alexa.DoorbellEventSource"]
    assert source["proactivelyReported"] is True
    assert endpoints["camera#garden"]["displayCategories"] == ["CAMERA"]
    await stop(hass, entry)


async def test_doorbell_press_from_event_entity(
    hass: HomeAssistant,
    entry_factory: EntryFactory,
    hass_storage: dict[str, Any],
    fake_amazon: FakeAmazon,
) -> None:
    """An event entity firing is a press; restoring its state after a restart is not."""
    seed_storage(hass_storage, fake_amazon)
    await setup_cameras(hass, [RtspCamera("Front door", None)])
    hass.states.async_set("event.doorbell", "unknown", {"event_type": None})
    entry = await start(
        hass,
        entry_factory,
        {"camera.front_door": "front door"},
        **events_options(fake_amazon, **{CONF_DOORBELLS: {"camera.front_door": "event.doorbell"}}),
    )
    hass.states.async_set("event.doorbell", "2026-11-21T08:00:00.000+00:00", {"event_type": "ring"})
    await fake_amazon.wait_for(1)
    hass.states.async_set("event.doorbell", "unavailable")
    hass.states.async_set("event.doorbell", "2026-11-21T08:00:00.000+00:00", {"event_type": "ring"})
    hass.states.async_set("event.doorbell", "2026-11-21T08:00:05.000+00:00", {"event_type": "ring"})
    await drain(hass, entry)
    assert fake_amazon.names() == ["Alexa.DoorbellEventSource.DoorbellPress"] * 2
    await stop(hass, entry)


def test_is_doorbell_press() -> None:
    """Which state changes count as a press."""
    from homeassistant.core import State

    def press(entity_id: str, old: str | None, new: str | None) -> bool:
        return is_doorbell_press(
            entity_id,
            State(entity_id, old) if old is not None else None,
            State(entity_id, new) if new is not None else None,
        )

    assert press("binary_sensor.d", "off", "on")
    assert not press("binary_sensor.d", "on", "off")
    assert not press("binary_sensor.d", "unavailable", "on")
    assert not press("binary_sensor.d", None, "on")
    assert press("event.d", "unknown", "2026-11-21T08:00:00+00:00")
    assert press("event.d", "2026-11-21T08:00:00+00:00", "2026-11-21T08:00:01+00:00")
    assert not press("event.d", "unavailable", "2026-11-21T08:00:00+00:00")
    assert not press("event.d", "2026-11-21T08:00:00+00:00", "unavailable")
    assert not press("event.d", None, "2026-11-21T08:00:00+00:00")
    assert not press("sensor.d", "off", "on")


async def test_doorbell_keep_warm(
    hass: HomeAssistant,
    entry_factory: EntryFactory,
    hass_storage: dict[str, Any],
    fake_amazon: FakeAmazon,
) -> None:
    """With the keep-warm option a doorbell camera's upstream is kept connected."""
    seed_storage(hass_storage, fake_amazon)
    await setup_cameras(hass, [RtspCamera("Front door", None), RtspCamera("Garden", None)])
    entry = await start(
        hass,
        entry_factory,
        {"camera.front_door": "front door", "camera.garden": "garden"},
        **events_options(
            fake_amazon,
            **{
                CONF_DOORBELLS: {"camera.front_door": "binary_sensor.doorbell"},
                CONF_DOORBELL_KEEP_WARM: True,
            },
        ),
    )
    from custom_components.alexa_cam_bridge.bridge import camera_configs

    configs = camera_configs(entry.options)
    assert configs["camera.front_door"].keep_warm
    assert not configs["camera.garden"].keep_warm
    await stop(hass, entry)


# -- connectivity ---------------------------------------------------------------------------


async def test_change_report_on_availability(
    hass: HomeAssistant,
    entry_factory: EntryFactory,
    hass_storage: dict[str, Any],
    fake_amazon: FakeAmazon,
    fake_camera: FakeCamera,
) -> None:
    """A camera going unavailable and back is reported once each, after it settles;
    flapping inside the debounce window sends nothing."""
    seed_storage(hass_storage, fake_amazon)
    cameras = await setup_cameras(hass, [RtspCamera("Porch", fake_camera.url)])
    entry = await start(
        hass, entry_factory, {"camera.porch": "porch"}, **events_options(fake_amazon)
    )
    porch = cameras.entities["camera.porch"]
    # let the set-up probe finish first: firing time changes also fires its timeout
    await entry.runtime_data.backend.refresh_all()
    await settle(hass)  # the probe reached the camera: nothing to report
    gateway = entry.runtime_data.events.gateway
    assert gateway is not None
    await gateway.wait_idle()
    assert fake_amazon.events == []

    porch.set_available(False)
    await hass.async_block_till_done()
    assert fake_amazon.events == []  # not before the debounce
    await settle(hass)
    (down,) = await fake_amazon.wait_for(1)
    assert connectivity(down) == ("camera#porch", "UNREACHABLE", "PERIODIC_POLL")
    # firing time changes also fires the timeouts of HTTP requests still in flight
    await gateway.wait_idle()

    for available in (True, False, True, False):  # flapping, ends where it started
        porch.set_available(available)
    await settle(hass)
    await gateway.wait_idle()
    assert [connectivity(e) for e in fake_amazon.events] == [connectivity(down)]

    porch.set_available(True)
    await settle(hass)
    _, up = await fake_amazon.wait_for(2)
    assert connectivity(up) == ("camera#porch", "OK", "PERIODIC_POLL")
    assert fake_amazon.names() == ["Alexa.ChangeReport"] * 2
    await stop(hass, entry)


async def test_change_report_on_unreachable_stream(
    hass: HomeAssistant,
    entry_factory: EntryFactory,
    hass_storage: dict[str, Any],
    fake_amazon: FakeAmazon,
) -> None:
    """A camera entity that is available but whose stream cannot be reached is reported
    UNREACHABLE once its probe fails."""
    seed_storage(hass_storage, fake_amazon)
    await setup_cameras(hass, [RtspCamera("Porch", "rtsp://127.0.0.1:9/stream")])
    entry = await start(
        hass, entry_factory, {"camera.porch": "porch"}, **events_options(fake_amazon)
    )
    await entry.runtime_data.backend.refresh_all()  # the set-up probe (a background task)
    await settle(hass)
    (report,) = await fake_amazon.wait_for(1)
    assert connectivity(report) == ("camera#porch", "UNREACHABLE", "PERIODIC_POLL")
    await stop(hass, entry)


# -- discovery events -----------------------------------------------------------------------


async def test_add_or_update_and_delete_on_option_change(
    hass: HomeAssistant,
    entry_factory: EntryFactory,
    hass_storage: dict[str, Any],
    fake_amazon: FakeAmazon,
) -> None:
    """Cameras added, renamed, linked to a doorbell or removed in the options reach Alexa
    without 'discover devices'; what Alexa was told is remembered."""
    seed_storage(
        hass_storage,
        fake_amazon,
        reported={"camera#front_door": {"name": "front door", "doorbell": False}},
    )
    await setup_cameras(hass, [RtspCamera("Front door", None), RtspCamera("Garden", None)])
    entry = await start(
        hass,
        entry_factory,
        {"camera.front_door": "front door", "camera.garden": "garden"},
        **events_options(fake_amazon),
    )
    (added,) = await fake_amazon.wait_for(1)
    assert added.name == "Alexa.Discovery.AddOrUpdateReport"
    (endpoint,) = added.body["event"]["payload"]["endpoints"]
    assert endpoint["endpointId"] == "camera#garden"
    assert endpoint["friendlyName"] == "garden"
    await drain(hass, entry)
    assert set(hass_storage[STORAGE_KEY]["data"]["reported"]) == {
        "camera#front_door",
        "camera#garden",
    }

    # options: drop the front door, rename the garden and make it a doorbell
    cameras = {
        "camera.garden": {CONF_NAME: "back garden", CONF_VIDEO_ONLY: False, CONF_KEEP_WARM: False}
    }
    hass.config_entries.async_update_entry(
        entry,
        options={
            **entry.options,
            CONF_CAMERAS: cameras,
            CONF_DOORBELLS: {"camera.garden": "binary_sensor.gate"},
        },
    )
    await hass.async_block_till_done()
    received = await fake_amazon.wait_for(3)
    by_name = {event.name: event for event in received[1:]}
    update = by_name["Alexa.Discovery.AddOrUpdateReport"].body["event"]["payload"]
    (garden,) = update["endpoints"]
    assert garden["friendlyName"] == "back garden"
    assert garden["displayCategories"] == ["CAMERA", "DOORBELL"]
    delete = by_name["Alexa.Discovery.DeleteReport"].body["event"]["payload"]
    assert delete["endpoints"] == [{"endpointId": "camera#front_door"}]
    await drain(hass, entry)
    assert hass_storage[STORAGE_KEY]["data"]["reported"] == {
        "camera#garden": {"name": "back garden", "doorbell": True}
    }
    # a reload with nothing changed reports nothing
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert len(fake_amazon.events) == 3
    await stop(hass, entry)


# -- tokens, repairs, diagnostics -----------------------------------------------------------


async def test_accept_grant_exchanges_tokens(
    hass: HomeAssistant,
    entry_factory: EntryFactory,
    hass_storage: dict[str, Any],
    hass_client: ClientFactory,
    fake_amazon: FakeAmazon,
) -> None:
    """AcceptGrant exchanges the code and stores the tokens; a failed exchange is
    ACCEPT_GRANT_FAILED; a new grant clears the repairs and sends again."""
    entry = await start_doorbell(hass, entry_factory, fake_amazon)
    client = await hass_client()
    failed = await _post(client, accept_grant("a-stale-code"))
    assert failed["event"]["header"]["namespace"] == "Alexa.Authorization"
    assert failed["event"]["payload"]["type"] == "ACCEPT_GRANT_FAILED"
    assert "invalid_grant" in failed["event"]["payload"]["message"]
    assert STORAGE_KEY not in hass_storage or not hass_storage[STORAGE_KEY]["data"].get("tokens")

    ir.async_create_issue(
        hass,
        DOMAIN,
        ISSUE_EVENTS_RELINK,
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=ISSUE_EVENTS_RELINK,
    )
    message = await _post(client, accept_grant(GOOD_CODE))
    assert message["event"]["header"]["name"] == "AcceptGrant.Response"
    assert fake_amazon.token_requests[-1]["code"] == GOOD_CODE
    stored = hass_storage[STORAGE_KEY]["data"]
    assert stored["tokens"]["refresh_token"] == REFRESH_TOKEN
    assert stored["reported"] == {"camera#front_door": {"name": "front door", "doorbell": True}}
    assert ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_EVENTS_RELINK) is None
    hass.states.async_set("binary_sensor.doorbell", "on")
    (press,) = await fake_amazon.wait_for(1)
    assert press.status == 202
    await stop(hass, entry)


async def test_accept_grant_with_wrong_client_secret(
    hass: HomeAssistant,
    entry_factory: EntryFactory,
    hass_client: ClientFactory,
    fake_amazon: FakeAmazon,
) -> None:
    """LWA rejecting the skill's credentials fails the link with a message saying so."""
    await setup_cameras(hass, [RtspCamera("Front door", None)])
    options = events_options(fake_amazon, **{CONF_LWA_CLIENT_SECRET: "wrong"})
    entry = await start(hass, entry_factory, {"camera.front_door": "front door"}, **options)
    message = await _post(await hass_client(), accept_grant(GOOD_CODE))
    assert message["event"]["payload"]["type"] == "ACCEPT_GRANT_FAILED"
    assert "client id or secret" in message["event"]["payload"]["message"]
    assert "wrong" not in json.dumps(message)
    await stop(hass, entry)


async def test_invalid_grant_raises_relink_repair(
    hass: HomeAssistant,
    entry_factory: EntryFactory,
    hass_storage: dict[str, Any],
    fake_amazon: FakeAmazon,
) -> None:
    """A refresh rejected with invalid_grant stops events and asks to re-link the skill."""
    seed_storage(hass_storage, fake_amazon, expires_in=-10)
    fake_amazon.refresh_script.append((400, "invalid_grant"))
    entry = await start_doorbell(hass, entry_factory, fake_amazon)
    hass.states.async_set("binary_sensor.doorbell", "on")
    await drain(hass, entry)
    gateway = entry.runtime_data.events.gateway
    assert gateway is not None
    issue = ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_EVENTS_RELINK)
    assert issue is not None
    assert issue.translation_key == ISSUE_EVENTS_RELINK
    assert hass_storage[STORAGE_KEY]["data"]["tokens"] is None
    assert fake_amazon.events == []
    await stop(hass, entry)


async def test_skill_disabled_raises_repair(
    hass: HomeAssistant,
    entry_factory: EntryFactory,
    hass_storage: dict[str, Any],
    fake_amazon: FakeAmazon,
) -> None:
    """403 SKILL_DISABLED_EXCEPTION stops events and raises a repair."""
    seed_storage(hass_storage, fake_amazon)
    fake_amazon.gateway_script.append((403, "SKILL_DISABLED_EXCEPTION"))
    entry = await start_doorbell(hass, entry_factory, fake_amazon)
    hass.states.async_set("binary_sensor.doorbell", "on")
    await drain(hass, entry)
    gateway = entry.runtime_data.events.gateway
    assert gateway is not None
    issue = ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_EVENTS_SKILL_DISABLED)
    assert issue is not None
    assert issue.translation_placeholders == {"code": "SKILL_DISABLED_EXCEPTION"}
    assert not gateway.active
    await stop(hass, entry)
    # set-up again clears a client-credentials repair (the user may have fixed them)
    ir.async_create_issue(
        hass,
        DOMAIN,
        ISSUE_EVENTS_CLIENT_REJECTED,
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=ISSUE_EVENTS_CLIENT_REJECTED,
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_EVENTS_CLIENT_REJECTED) is None
    await stop(hass, entry)


async def test_without_credentials_events_are_off(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hass_client: ClientFactory,
    hass_storage: dict[str, Any],
) -> None:
    """Without the skill's LWA credentials the link still succeeds and nothing is sent."""
    events = loaded_entry.runtime_data.events
    assert events is not None
    assert not events.configured
    assert events.gateway is None
    message = await _post(await hass_client(), accept_grant("code-1"))
    assert message["event"]["header"]["name"] == "AcceptGrant.Response"
    assert STORAGE_KEY not in hass_storage


async def test_diagnostics_redact_secrets(
    hass: HomeAssistant,
    entry_factory: EntryFactory,
    hass_storage: dict[str, Any],
    fake_amazon: FakeAmazon,
) -> None:
    """Diagnostics show the events state but no client secret, id or token."""
    tokens = seed_storage(hass_storage, fake_amazon)
    await setup_cameras(hass, [RtspCamera("Front door", None)])
    entry = await start(
        hass, entry_factory, {"camera.front_door": "front door"}, **events_options(fake_amazon)
    )
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    text = json.dumps(diagnostics, default=str)
    for secret in (
        CLIENT_SECRET,
        CLIENT_ID,
        tokens.access_token,
        REFRESH_TOKEN,
        fake_amazon.base_url,
    ):
        assert secret not in text
    assert diagnostics["events"]["linked"] is True
    assert diagnostics["events"]["gateway"]["active"] is True
    await stop(hass, entry)


async def test_token_refreshed_before_a_press_needs_it(
    hass: HomeAssistant,
    entry_factory: EntryFactory,
    hass_storage: dict[str, Any],
    fake_amazon: FakeAmazon,
) -> None:
    """A token close to expiry is refreshed by the periodic check and stored, so the next
    doorbell press goes out without waiting for Login with Amazon."""
    old = seed_storage(hass_storage, fake_amazon, expires_in=200)
    hass.states.async_set("binary_sensor.doorbell", "off")
    await setup_cameras(hass, [RtspCamera("Front door", None)])
    entry = await start(
        hass,
        entry_factory,
        {"camera.front_door": "front door"},
        **events_options(fake_amazon, **FRONT_DOORBELL),
    )
    await entry.runtime_data.backend.refresh_all()
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=TOKEN_CHECK_SECONDS + 1))
    await hass.async_block_till_done(wait_background_tasks=True)
    (refresh,) = fake_amazon.token_requests
    assert refresh["grant_type"] == "refresh_token"
    stored = hass_storage[STORAGE_KEY]["data"]["tokens"]
    assert stored["access_token"] != old.access_token
    assert stored["expires_at"] > old.expires_at
    hass.states.async_set("binary_sensor.doorbell", "on")
    await drain(hass, entry)
    # (the camera without a stream was also reported UNREACHABLE meanwhile)
    (press,) = [e for e in fake_amazon.events if e.name.endswith("DoorbellPress")]
    assert press.authorization == f"Bearer {stored['access_token']}"
    assert len(fake_amazon.token_requests) == 1
    await stop(hass, entry)


async def test_change_report_after_a_directive_probe(
    hass: HomeAssistant,
    entry_factory: EntryFactory,
    hass_storage: dict[str, Any],
    hass_client: ClientFactory,
    fake_amazon: FakeAmazon,
    fake_camera: FakeCamera,
) -> None:
    """A camera whose stream comes back, noticed by a probe a directive caused, is
    reported OK with cause APP_INTERACTION."""
    seed_storage(hass_storage, fake_amazon)
    cameras = await setup_cameras(hass, [RtspCamera("Porch", "rtsp://127.0.0.1:9/stream")])
    entry = await start(
        hass, entry_factory, {"camera.porch": "porch"}, **events_options(fake_amazon)
    )
    backend = entry.runtime_data.backend
    await backend.refresh_all()
    await settle(hass)
    (down,) = await fake_amazon.wait_for(1)
    assert connectivity(down) == ("camera#porch", "UNREACHABLE", "PERIODIC_POLL")
    await drain(hass, entry)

    cameras.entities["camera.porch"].source = fake_camera.url  # the camera is back
    backend._probes.clear()  # as if the failed probe's 30 s had passed
    message = await _post(await hass_client(), report_state("camera#porch"))
    (prop,) = message["context"]["properties"]
    assert prop["value"]["value"] == "OK"
    await settle(hass)
    _, up = await fake_amazon.wait_for(2)
    assert connectivity(up) == ("camera#porch", "OK", "APP_INTERACTION")
    await stop(hass, entry)
