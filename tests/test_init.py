"""Set-up, unload, reload, repairs and diagnostics of the integration."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Callable
from pathlib import Path

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.alexa_cam_bridge.const import (
    CONF_CERT_FILE,
    CONF_KEY_FILE,
    DOMAIN,
    ISSUE_CERTIFICATE_INVALID,
    ISSUE_PORT_UNAVAILABLE,
    LISTEN_RETRY_SECONDS,
)
from custom_components.alexa_cam_bridge.diagnostics import async_get_config_entry_diagnostics
from tests.certs import self_signed
from tests.conftest import STREAM_HOST, RtspCamera, setup_cameras
from tests.peers.process import free_port


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def test_setup_and_unload(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    """A loaded entry listens on its port; unloading closes it and leaves nothing behind."""
    port = loaded_entry.data["port"]
    assert loaded_entry.state is ConfigEntryState.LOADED
    assert loaded_entry.runtime_data.restreamer.listening
    assert await hass.async_add_executor_job(_port_open, port)
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    state: ConfigEntryState = loaded_entry.state
    assert state is ConfigEntryState.NOT_LOADED
    assert not await hass.async_add_executor_job(_port_open, port)


async def test_reload(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    """Reloading rebinds the same port."""
    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.LOADED
    assert await hass.async_add_executor_job(_port_open, loaded_entry.data["port"])


async def test_port_in_use_raises_repair_and_retries(
    hass: HomeAssistant, entry_factory: Callable[..., MockConfigEntry]
) -> None:
    """The entry loads, a repair says what to do, and the port opens once it is free."""
    await setup_cameras(hass, [RtspCamera("Front door", None)])
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("0.0.0.0", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    entry = entry_factory({"camera.front_door": "front door"}, port=port)
    try:
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.LOADED
        assert not entry.runtime_data.restreamer.listening
        issue = ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_PORT_UNAVAILABLE)
        assert issue is not None
        assert issue.translation_key == "port_unavailable_in_use"
        assert issue.translation_placeholders == {
            "port": str(port),
            "error": "Address already in use",
        }
        assert entry.runtime_data.listen_error is not None
    finally:
        blocker.close()
    async_fire_time_changed(hass, dt_util.utcnow() + dt.timedelta(seconds=LISTEN_RETRY_SECONDS + 1))
    await hass.async_block_till_done()
    assert entry.runtime_data.restreamer.listening
    assert ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_PORT_UNAVAILABLE) is None
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_unload_cancels_pending_retry(
    hass: HomeAssistant, entry_factory: Callable[..., MockConfigEntry]
) -> None:
    """Unloading while a bind retry is scheduled leaves no timer behind."""
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("0.0.0.0", 0))
    blocker.listen()
    try:
        entry = entry_factory({}, port=blocker.getsockname()[1])
        assert await hass.config_entries.async_setup(entry.entry_id)
        assert entry.runtime_data.cancel_retry is not None
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
    finally:
        blocker.close()


async def test_expired_certificate_is_a_repair(
    hass: HomeAssistant, entry_factory: Callable[..., MockConfigEntry], tmp_path: Path
) -> None:
    """An unusable certificate stops set-up with a repair issue explaining why."""
    now = dt.datetime.now(dt.UTC)
    chain, key = self_signed(
        tmp_path, "old", host=STREAM_HOST, not_before=now - dt.timedelta(days=90),
        not_after=now - dt.timedelta(days=1),
    )  # fmt: skip
    entry = entry_factory({})
    hass.config_entries.async_update_entry(
        entry, data={**entry.data, CONF_CERT_FILE: str(chain), CONF_KEY_FILE: str(key)}
    )
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    issue = ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_CERTIFICATE_INVALID)
    assert issue is not None
    assert "expired" in (issue.translation_placeholders or {})["detail"]


async def test_missing_certificate_retries_setup(
    hass: HomeAssistant, entry_factory: Callable[..., MockConfigEntry], tmp_path: Path
) -> None:
    """Files that cannot be read (e.g. a share not mounted yet) make HA retry set-up."""
    entry = entry_factory({})
    hass.config_entries.async_update_entry(
        entry, data={**entry.data, CONF_CERT_FILE: str(tmp_path / "nope.pem")}
    )
    await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY


async def test_diagnostics_redact_secrets(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """Diagnostics show state but no host name, paths or stream credentials."""
    backend = loaded_entry.runtime_data.backend
    grant = loaded_entry.runtime_data.broker.mint("camera.front_door", ttl=60, auth_type="BASIC")
    diag = await async_get_config_entry_diagnostics(hass, loaded_entry)
    text = repr(diag)
    assert STREAM_HOST not in text
    assert loaded_entry.data[CONF_CERT_FILE] not in text
    assert grant.password not in text
    assert grant.username not in text
    assert grant.stream_id not in text
    assert diag["streams_granted"] == 1
    assert diag["listen_error"] is None
    assert "restreamer" in diag
    assert "intermediates" in diag["certificate"]
    assert backend.diagnostics() == diag["probes"]


def test_free_port_helper() -> None:
    """The helper gives a port nothing listens on."""
    assert not _port_open(free_port())
