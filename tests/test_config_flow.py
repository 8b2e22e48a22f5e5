"""Config, options and reconfigure flows, with every form error."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from homeassistant import config_entries
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.alexa_cam_bridge.const import (
    CONF_CAMERAS,
    CONF_CERT_FILE,
    CONF_CERT_MODE,
    CONF_GRACE_SECONDS,
    CONF_HOST,
    CONF_KEEP_WARM,
    CONF_KEY_FILE,
    CONF_NAME,
    CONF_PORT,
    CONF_SCHEME,
    CONF_VIDEO_ONLY,
    DOMAIN,
)
from tests.certs import self_signed
from tests.conftest import STREAM_HOST, RtspCamera, setup_cameras
from tests.peers.process import free_port


async def _start(hass: HomeAssistant) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    return dict(result)


async def _configure(hass: HomeAssistant, flow_id: str, data: dict[str, Any]) -> dict[str, Any]:
    return dict(await hass.config_entries.flow.async_configure(flow_id, data))


SERVER = {CONF_HOST: STREAM_HOST, CONF_PORT: 443, CONF_SCHEME: "rtsp", CONF_CERT_MODE: "files"}


@pytest.mark.parametrize(
    ("host", "error"),
    [
        ("192.168.1.20", "host_is_ip"),
        ("[2001:db8::1]", "host_is_ip"),
        ("homeassistant", "invalid_host"),
        ("bad_name.example.com", "invalid_host"),
        ("-lead.example.com", "invalid_host"),
        ("a" * 64 + ".example.com", "invalid_host"),
        ("cam.example.123", "invalid_host"),
        ("", "invalid_host"),
    ],
)
async def test_user_step_rejects_bad_hosts(hass: HomeAssistant, host: str, error: str) -> None:
    """IP literals and invalid DNS names get a clear form error."""
    result = await _start(hass)
    result = await _configure(hass, result["flow_id"], {**SERVER, CONF_HOST: host})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_HOST: error}


async def test_full_flow_creates_entry(hass: HomeAssistant, cert_files: tuple[str, str]) -> None:
    """Host → certificate files → cameras → names → entry; the entry sets up."""
    await setup_cameras(hass, [RtspCamera("Front door", None), RtspCamera("Garage", None)])
    port = free_port()
    result = await _start(hass)
    result = await _configure(
        hass, result["flow_id"], {**SERVER, CONF_HOST: " Cam.Test. ", CONF_PORT: port}
    )
    assert result["step_id"] == "certificate_files"
    result = await _configure(
        hass, result["flow_id"], {CONF_CERT_FILE: cert_files[0], CONF_KEY_FILE: cert_files[1]}
    )
    assert result["step_id"] == "cameras"
    result = await _configure(hass, result["flow_id"], {CONF_CAMERAS: []})
    assert result["errors"] == {CONF_CAMERAS: "no_cameras"}
    result = await _configure(
        hass, result["flow_id"], {CONF_CAMERAS: ["camera.front_door", "camera.garage"]}
    )
    assert result["step_id"] == "names"
    # defaults are the entities' friendly names
    defaults = {str(k): k.default() for k in result["data_schema"].schema}
    assert defaults == {"camera.front_door": "Front door", "camera.garage": "Garage"}
    result = await _configure(
        hass, result["flow_id"], {"camera.front_door": "Door", "camera.garage": " door "}
    )
    assert result["errors"] == {"camera.garage": "duplicate_name"}
    result = await _configure(
        hass, result["flow_id"], {"camera.front_door": "Door", "camera.garage": "  "}
    )
    assert result["errors"] == {"camera.garage": "empty_name"}
    result = await _configure(
        hass, result["flow_id"], {"camera.front_door": "Front  door", "camera.garage": "Garage"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "cam.test"
    assert result["data"] == {
        CONF_HOST: "cam.test",
        CONF_PORT: port,
        CONF_SCHEME: "rtsp",
        CONF_CERT_MODE: "files",
        CONF_CERT_FILE: cert_files[0],
        CONF_KEY_FILE: cert_files[1],
    }
    assert result["options"][CONF_CAMERAS] == {
        "camera.front_door": {
            CONF_NAME: "Front door",
            CONF_VIDEO_ONLY: False,
            CONF_KEEP_WARM: False,
        },
        "camera.garage": {CONF_NAME: "Garage", CONF_VIDEO_ONLY: False, CONF_KEEP_WARM: False},
    }
    await hass.async_block_till_done()
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    assert entry.state is config_entries.ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(entry.entry_id)


async def _cert_step(hass: HomeAssistant) -> str:
    result = await _start(hass)
    result = await _configure(hass, result["flow_id"], SERVER)
    assert result["step_id"] == "certificate_files"
    return str(result["flow_id"])


async def test_certificate_errors(
    hass: HomeAssistant, cert_files: tuple[str, str], tmp_path: Path
) -> None:
    """Unreadable, not PEM, wrong key, expired, not yet valid, other host: each explained."""
    flow_id = await _cert_step(hass)
    now = dt.datetime.now(dt.UTC)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    expired = self_signed(
        tmp_path, "expired", host=STREAM_HOST, not_before=now - dt.timedelta(days=100),
        not_after=now - dt.timedelta(days=1),
    )  # fmt: skip
    future = self_signed(
        tmp_path, "future", host=STREAM_HOST,
        not_before=now + dt.timedelta(days=1), not_after=now + dt.timedelta(days=90),
    )  # fmt: skip
    other = self_signed(
        tmp_path, "other", host="other.example.com", not_before=now - dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=90),
    )  # fmt: skip
    cases = [
        ({CONF_CERT_FILE: str(tmp_path / "missing.pem"), CONF_KEY_FILE: cert_files[1]},
         {CONF_CERT_FILE: "cert_unreadable"}),
        ({CONF_CERT_FILE: cert_files[0], CONF_KEY_FILE: str(tmp_path / "missing.key")},
         {CONF_KEY_FILE: "key_unreadable"}),
        ({CONF_CERT_FILE: str(garbage), CONF_KEY_FILE: cert_files[1]},
         {CONF_CERT_FILE: "cert_invalid"}),
        ({CONF_CERT_FILE: cert_files[0], CONF_KEY_FILE: str(garbage)},
         {CONF_KEY_FILE: "key_invalid"}),
        ({CONF_CERT_FILE: cert_files[0], CONF_KEY_FILE: other[1]},
         {CONF_KEY_FILE: "key_mismatch"}),
        ({CONF_CERT_FILE: expired[0], CONF_KEY_FILE: expired[1]},
         {CONF_CERT_FILE: "cert_expired"}),
        ({CONF_CERT_FILE: future[0], CONF_KEY_FILE: future[1]},
         {CONF_CERT_FILE: "cert_not_yet_valid"}),
        ({CONF_CERT_FILE: other[0], CONF_KEY_FILE: other[1]},
         {CONF_CERT_FILE: "cert_host_mismatch"}),
    ]  # fmt: skip
    for data, errors in cases:
        result = await _configure(hass, flow_id, data)
        assert result["type"] is FlowResultType.FORM, data
        assert result["errors"] == errors, data
        assert result["description_placeholders"]["detail"], data
    result = await _configure(
        hass, flow_id, {CONF_CERT_FILE: cert_files[0], CONF_KEY_FILE: cert_files[1]}
    )
    assert result["step_id"] == "cameras"


async def test_single_instance(
    hass: HomeAssistant, entry_factory: Callable[..., MockConfigEntry]
) -> None:
    """A second set-up aborts with already_configured."""
    entry_factory({})
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_reconfigure(
    hass: HomeAssistant,
    entry_factory: Callable[..., MockConfigEntry],
    cert_files: tuple[str, str],
) -> None:
    """Reconfigure changes host/port after checking the certificate covers the new host."""
    entry = entry_factory({})
    result: dict[str, Any] = dict(await entry.start_reconfigure_flow(hass))
    assert result["step_id"] == "reconfigure"
    new_port = free_port()
    base = {
        CONF_HOST: "other.example.com",
        CONF_PORT: new_port,
        CONF_SCHEME: "rtsps",
        CONF_CERT_FILE: cert_files[0],
        CONF_KEY_FILE: cert_files[1],
    }
    result = await _configure(hass, result["flow_id"], {**base, CONF_HOST: "10.0.0.1"})
    assert result["errors"] == {CONF_HOST: "host_is_ip"}
    result = await _configure(hass, result["flow_id"], base)
    assert result["errors"] == {CONF_CERT_FILE: "cert_host_mismatch"}
    result = await _configure(hass, result["flow_id"], {**base, CONF_HOST: "cam.test"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_PORT] == new_port
    assert entry.data[CONF_SCHEME] == "rtsps"
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_options_flow(
    hass: HomeAssistant, entry_factory: Callable[..., MockConfigEntry]
) -> None:
    """Options change the camera set, names, audio and keep-warm; the entry reloads."""
    await setup_cameras(hass, [RtspCamera("Front door", None), RtspCamera("Garage", None)])
    entry = entry_factory({"camera.front_door": "Door"})
    assert await hass.config_entries.async_setup(entry.entry_id)
    result: dict[str, Any] = dict(await hass.config_entries.options.async_init(entry.entry_id))
    assert result["step_id"] == "init"
    result = dict(
        await hass.config_entries.options.async_configure(
            result["flow_id"], {CONF_CAMERAS: [], CONF_GRACE_SECONDS: 5}
        )
    )
    assert result["errors"] == {CONF_CAMERAS: "no_cameras"}
    result = dict(
        await hass.config_entries.options.async_configure(
            result["flow_id"],
            {
                CONF_CAMERAS: ["camera.front_door", "camera.garage"],
                CONF_VIDEO_ONLY: ["camera.garage"],
                CONF_KEEP_WARM: ["camera.front_door"],
                CONF_GRACE_SECONDS: 5,
            },
        )
    )
    assert result["step_id"] == "names"
    defaults = {str(k): k.default() for k in result["data_schema"].schema}
    assert defaults == {"camera.front_door": "Door", "camera.garage": "Garage"}
    result = dict(
        await hass.config_entries.options.async_configure(
            result["flow_id"], {"camera.front_door": "Door", "camera.garage": "Garage"}
        )
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options == {
        CONF_CAMERAS: {
            "camera.front_door": {CONF_NAME: "Door", CONF_VIDEO_ONLY: False, CONF_KEEP_WARM: True},
            "camera.garage": {CONF_NAME: "Garage", CONF_VIDEO_ONLY: True, CONF_KEEP_WARM: False},
        },
        CONF_GRACE_SECONDS: 5,
    }
    assert entry.state is config_entries.ConfigEntryState.LOADED
    names = {e.friendly_name for e in entry.runtime_data.backend.endpoints()}
    assert names == {"Door", "Garage"}
    assert await hass.config_entries.async_unload(entry.entry_id)
