"""Certificate files mode: watched, reloaded when they change, a repair when they turn
bad (the old certificate stays), the renew action re-reads them, the expiry sensor."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from pathlib import Path

from cryptography import x509
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
    CONF_PORT,
    DOMAIN,
    FILES_POLL_SECONDS,
    ISSUE_CERTIFICATE_INVALID,
    SERVICE_RENEW_CERTIFICATE,
)
from tests.peers.tls import TestPki


async def _served_serial(port: int) -> int:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    return x509.load_der_x509_certificate(der).serial_number


def _replace_files(entry: MockConfigEntry, pki: TestPki) -> int:
    """Write a new certificate + key over the entry's files; return the new serial."""
    cert = pki.intermediate_ca.issue_cert("cam.test", "127.0.0.1")
    chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
    Path(entry.data[CONF_KEY_FILE]).write_bytes(cert.private_key_pem.bytes())
    Path(entry.data[CONF_CERT_FILE]).write_bytes(chain)
    return x509.load_pem_x509_certificate(chain).serial_number


class Clock:
    """Fires the file watch: each tick is one poll interval later than the previous."""

    def __init__(self) -> None:
        self.now = dt_util.utcnow()

    async def tick(self, hass: HomeAssistant) -> None:
        self.now += dt.timedelta(seconds=FILES_POLL_SECONDS + 1)
        async_fire_time_changed(hass, self.now)
        # interval listeners run as background tasks
        await hass.async_block_till_done(wait_background_tasks=True)


async def test_files_are_watched_and_reloaded(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, test_pki: TestPki
) -> None:
    """New valid files are served after the next check; bad files raise a repair and the
    previous certificate stays; the renew action re-reads fixed files at once."""
    port = loaded_entry.data[CONF_PORT]
    clock = Clock()
    first = await _served_serial(port)
    state = hass.states.get("sensor.cam_test_certificate_expiry")
    assert state is not None
    assert state.attributes["mode"] == "files"
    assert state.attributes["status"] == "valid"
    root = x509.load_pem_x509_certificate(test_pki.ca_pem)
    assert state.attributes["issuer"] == root.subject.rfc4514_string()  # where the chain ends

    await clock.tick(hass)  # unchanged files: nothing happens
    assert await _served_serial(port) == first

    second = await hass.async_add_executor_job(_replace_files, loaded_entry, test_pki)
    await clock.tick(hass)
    assert await _served_serial(port) == second

    await hass.async_add_executor_job(
        Path(loaded_entry.data[CONF_CERT_FILE]).write_text, "-----BEGIN nonsense\n"
    )
    await clock.tick(hass)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_CERTIFICATE_INVALID)
    assert issue is not None
    assert await _served_serial(port) == second  # the old certificate stays
    state = hass.states.get("sensor.cam_test_certificate_expiry")
    assert state is not None
    assert state.attributes["status"] == "invalid"

    third = await hass.async_add_executor_job(_replace_files, loaded_entry, test_pki)
    await hass.services.async_call(DOMAIN, SERVICE_RENEW_CERTIFICATE, blocking=True)
    assert await _served_serial(port) == third
    assert ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_CERTIFICATE_INVALID) is None
    state = hass.states.get("sensor.cam_test_certificate_expiry")
    assert state is not None
    assert state.attributes["status"] == "valid"
