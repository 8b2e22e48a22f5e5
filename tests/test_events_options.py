"""The options flow's Alexa events step: credentials, region, doorbells, URL overrides."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.alexa_cam_bridge.bridge import camera_configs
from custom_components.alexa_cam_bridge.config_flow import CONF_CONFIGURE_EVENTS
from custom_components.alexa_cam_bridge.const import (
    CONF_CAMERAS,
    CONF_DOORBELL_KEEP_WARM,
    CONF_DOORBELLS,
    CONF_EVENT_GATEWAY_URL,
    CONF_EVENTS_REGION,
    CONF_GRACE_SECONDS,
    CONF_LWA_CLIENT_ID,
    CONF_LWA_CLIENT_SECRET,
    CONF_LWA_TOKEN_URL,
)
from tests.conftest import RtspCamera, setup_cameras

CAMERAS = ["camera.front_door", "camera.garage"]
NAMES = {"camera.front_door": "Door", "camera.garage": "Garage"}


async def _to_events_step(
    hass: HomeAssistant, entry: MockConfigEntry, *, advanced: bool = False, events: bool = True
) -> dict[str, Any]:
    """Run the options flow through the cameras and names steps."""
    result: dict[str, Any] = dict(
        await hass.config_entries.options.async_init(
            entry.entry_id, context={"show_advanced_options": advanced}
        )
    )
    result = dict(
        await hass.config_entries.options.async_configure(
            result["flow_id"],
            {CONF_CAMERAS: CAMERAS, CONF_GRACE_SECONDS: 5, CONF_CONFIGURE_EVENTS: events},
        )
    )
    assert result["step_id"] == "names"
    return dict(await hass.config_entries.options.async_configure(result["flow_id"], NAMES))


def _fields(result: dict[str, Any]) -> set[str]:
    return {str(key) for key in result["data_schema"].schema}


async def test_events_step(
    hass: HomeAssistant, entry_factory: Callable[..., MockConfigEntry]
) -> None:
    """Credentials, region and a doorbell per camera are saved; the secret is never shown;
    an empty secret keeps the saved one; an empty client id turns events off."""
    await setup_cameras(hass, [RtspCamera("Front door", None), RtspCamera("Garage", None)])
    entry = entry_factory({"camera.front_door": "Door"})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    result = await _to_events_step(hass, entry)
    assert result["step_id"] == "events"
    assert _fields(result) == {
        CONF_LWA_CLIENT_ID,
        CONF_LWA_CLIENT_SECRET,
        CONF_EVENTS_REGION,
        CONF_DOORBELL_KEEP_WARM,
        *CAMERAS,
    }
    result = dict(
        await hass.config_entries.options.async_configure(
            result["flow_id"], {CONF_LWA_CLIENT_ID: "client", CONF_EVENTS_REGION: "auto"}
        )
    )
    assert result["errors"] == {CONF_LWA_CLIENT_SECRET: "secret_required"}
    result = dict(
        await hass.config_entries.options.async_configure(
            result["flow_id"],
            {
                CONF_LWA_CLIENT_ID: " client ",
                CONF_LWA_CLIENT_SECRET: "s3cret",
                CONF_EVENTS_REGION: "EU",
                "camera.front_door": "binary_sensor.doorbell",
                CONF_DOORBELL_KEEP_WARM: True,
            },
        )
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options[CONF_LWA_CLIENT_ID] == "client"
    assert entry.options[CONF_LWA_CLIENT_SECRET] == "s3cret"
    assert entry.options[CONF_EVENTS_REGION] == "EU"
    assert entry.options[CONF_DOORBELLS] == {"camera.front_door": "binary_sensor.doorbell"}
    assert camera_configs(entry.options)["camera.front_door"].keep_warm
    doorbells = {e.endpoint_id for e in entry.runtime_data.backend.endpoints() if e.doorbell}
    assert doorbells == {"camera#front_door"}

    # the cameras steps alone keep the events settings
    result = await _to_events_step(hass, entry, events=False)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options[CONF_LWA_CLIENT_SECRET] == "s3cret"
    assert entry.options[CONF_DOORBELLS] == {"camera.front_door": "binary_sensor.doorbell"}

    # the saved secret is not sent to the form, and an empty one keeps it
    result = await _to_events_step(hass, entry)
    secret_key = next(k for k in result["data_schema"].schema if k == CONF_LWA_CLIENT_SECRET)
    assert "s3cret" not in str(secret_key.description) + str(secret_key.default)
    result = dict(
        await hass.config_entries.options.async_configure(
            result["flow_id"],
            {CONF_LWA_CLIENT_ID: "client", CONF_EVENTS_REGION: "auto"},
        )
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options[CONF_LWA_CLIENT_SECRET] == "s3cret"
    assert entry.options[CONF_DOORBELLS] == {}

    # no client id: events off, both credentials gone; a lone secret is an error
    result = await _to_events_step(hass, entry)
    result = dict(
        await hass.config_entries.options.async_configure(
            result["flow_id"], {CONF_LWA_CLIENT_SECRET: "x", CONF_EVENTS_REGION: "auto"}
        )
    )
    assert result["errors"] == {CONF_LWA_CLIENT_ID: "client_id_required"}
    result = dict(
        await hass.config_entries.options.async_configure(
            result["flow_id"], {CONF_EVENTS_REGION: "auto"}
        )
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert CONF_LWA_CLIENT_ID not in entry.options
    assert CONF_LWA_CLIENT_SECRET not in entry.options
    assert entry.runtime_data.events.configured is False
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_events_step_advanced_urls(
    hass: HomeAssistant, entry_factory: Callable[..., MockConfigEntry]
) -> None:
    """In advanced mode the gateway and token URLs can be overridden (http or https)."""
    await setup_cameras(hass, [RtspCamera("Front door", None), RtspCamera("Garage", None)])
    entry = entry_factory({"camera.front_door": "Door"})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    result = await _to_events_step(hass, entry, advanced=True)
    assert {CONF_EVENT_GATEWAY_URL, CONF_LWA_TOKEN_URL} <= _fields(result)
    base = {CONF_LWA_CLIENT_ID: "c", CONF_LWA_CLIENT_SECRET: "s", CONF_EVENTS_REGION: "auto"}
    result = dict(
        await hass.config_entries.options.async_configure(
            result["flow_id"], {**base, CONF_EVENT_GATEWAY_URL: "ftp://gateway"}
        )
    )
    assert result["errors"] == {CONF_EVENT_GATEWAY_URL: "invalid_url"}
    result = dict(
        await hass.config_entries.options.async_configure(
            result["flow_id"],
            {
                **base,
                CONF_EVENT_GATEWAY_URL: "https://events.example.net/v3/events",
                CONF_LWA_TOKEN_URL: "http://127.0.0.1:8123/token",
            },
        )
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options[CONF_EVENT_GATEWAY_URL] == "https://events.example.net/v3/events"
    assert entry.options[CONF_LWA_TOKEN_URL] == "http://127.0.0.1:8123/token"
    # outside advanced mode the overrides are kept as they are
    result = await _to_events_step(hass, entry)
    assert CONF_EVENT_GATEWAY_URL not in _fields(result)
    result = dict(await hass.config_entries.options.async_configure(result["flow_id"], base))
    await hass.async_block_till_done()
    assert entry.options[CONF_EVENT_GATEWAY_URL] == "https://events.example.net/v3/events"
    assert await hass.config_entries.async_unload(entry.entry_id)
