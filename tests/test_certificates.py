"""ACME mode before the first certificate: a temporary certificate is served, the state
is visible, failures raise a repair, and removing the entry deletes the stored keys."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from cryptography import x509
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.alexa_cam_bridge.certificates import STATUS_PENDING
from custom_components.alexa_cam_bridge.const import (
    CONF_AGREE_TOS,
    CONF_CAMERAS,
    CONF_CERT_MODE,
    CONF_DIRECTORY_URL,
    CONF_EMAIL,
    CONF_GRACE_SECONDS,
    CONF_HOST,
    CONF_PORT,
    CONF_SCHEME,
    DOMAIN,
    ISSUE_CERTIFICATE_RENEWAL_FAILED,
)
from custom_components.alexa_cam_bridge.diagnostics import async_get_config_entry_diagnostics
from tests.conftest import STREAM_HOST
from tests.peers.process import free_port


async def test_temporary_certificate_until_the_first_order(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """The ACME server cannot be reached: the port serves a temporary self-signed
    certificate, the sensor is unknown, a repair explains, diagnostics say so."""
    port = free_port()
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=DOMAIN,
        title=STREAM_HOST,
        data={
            CONF_HOST: STREAM_HOST,
            CONF_PORT: port,
            CONF_SCHEME: "rtsp",
            CONF_CERT_MODE: "acme_tls_alpn",
            CONF_EMAIL: "admin@example.com",
            CONF_AGREE_TOS: True,
            CONF_DIRECTORY_URL: f"https://127.0.0.1:{free_port()}/dir",
        },
        options={CONF_CAMERAS: {}, CONF_GRACE_SECONDS: 1},
    )
    entry.add_to_hass(hass)
    key = f"{DOMAIN}.{entry.entry_id}.certificates"
    # an account from an earlier directory: kept until the entry goes
    account = {"directory": "https://old.example/dir", "key": "unused", "uri": None}
    hass_storage[key] = {"version": 1, "minor_version": 1, "key": key, "data": {"account": account}}
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)  # the first order
    manager = entry.runtime_data.certificates
    assert manager.status == STATUS_PENDING
    issue = ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_CERTIFICATE_RENEWAL_FAILED)
    assert issue is not None
    assert issue.translation_key == "certificate_renewal_failed_first"
    state = hass.states.get("sensor.cam_test_certificate_expiry")
    assert state is not None
    assert state.state == "unknown"
    assert state.attributes["status"] == STATUS_PENDING

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    _reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ctx, server_hostname=STREAM_HOST
    )
    leaf = x509.load_der_x509_certificate(
        writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    )
    writer.close()
    assert "temporary" in leaf.subject.rfc4514_string()

    diag = await async_get_config_entry_diagnostics(hass, entry)
    assert diag["certificates"]["temporary_certificate"] is True
    assert diag["certificates"]["consecutive_failures"] == 1
    assert "admin@example.com" not in repr(diag)

    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert key not in hass_storage
    assert ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_CERTIFICATE_RENEWAL_FAILED) is None
