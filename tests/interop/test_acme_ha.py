"""The certificate life cycle in a real Home Assistant with Pebble standing in for Let's
Encrypt: a fresh set-up in TLS-ALPN-01 mode gets its certificate through its own port,
chained to the preferred root, and renews it without dropping a viewer; DNS-01 through
DuckDNS; the ACME server down keeps the old certificate and raises a repair."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from cryptography import x509
from homeassistant import config_entries
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.alexa_cam_bridge.certificates import STATUS_RENEWAL_FAILED, STATUS_VALID
from custom_components.alexa_cam_bridge.const import (
    CONF_AGREE_TOS,
    CONF_CA_BUNDLE,
    CONF_CAMERAS,
    CONF_CERT_MODE,
    CONF_DIRECTORY_URL,
    CONF_DNS_SERVERS,
    CONF_DUCKDNS_TOKEN,
    CONF_DUCKDNS_UPDATE_URL,
    CONF_EMAIL,
    CONF_GRACE_SECONDS,
    CONF_HOST,
    CONF_KEY_TYPE,
    CONF_PORT,
    CONF_PREFERRED_CHAIN,
    CONF_PROPAGATION_SECONDS,
    CONF_SCHEME,
    CONF_STAGING,
    DOMAIN,
    ISSUE_CERTIFICATE_RENEWAL_FAILED,
    LISTEN_RETRY_SECONDS,
    SERVICE_RENEW_CERTIFICATE,
)
from custom_components.alexa_cam_bridge.diagnostics import async_get_config_entry_diagnostics
from tests.certs import self_signed
from tests.conftest import STREAM_HOST, RtspCamera, setup_cameras
from tests.peers.duckdns import FakeDuckDns
from tests.peers.echo_client import EchoClient
from tests.peers.fixtures import CameraFactory
from tests.peers.pebble import Pebble, pebble_fixture, pebble_server_fixture  # noqa: F401
from tests.peers.process import free_port


async def _wait_for(condition: Callable[[], bool], limit: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def _root_context(pebble: Pebble, root: int) -> ssl.SSLContext:
    """A strict client context trusting only Pebble's root ``root``."""
    return ssl.create_default_context(cadata=pebble.root_pem(root).decode())


async def _served_leaf(port: int, ctx: ssl.SSLContext) -> x509.Certificate:
    """Handshake with the stream port as a viewer would; return the verified leaf."""
    _reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ctx, server_hostname=STREAM_HOST
    )
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    return x509.load_der_x509_certificate(der)


def _loopback(uri: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit(
        parts._replace(netloc=parts.netloc.replace(f"@{STREAM_HOST}:", "@127.0.0.1:"))
    )


def _acme_entry(hass: HomeAssistant, pebble: Pebble) -> MockConfigEntry:
    """A TLS-ALPN-01 entry (no cameras) on Pebble's tlsPort, added but not set up."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=DOMAIN,
        title=STREAM_HOST,
        data={
            CONF_HOST: STREAM_HOST,
            CONF_PORT: pebble.tls_port,
            CONF_SCHEME: "rtsp",
            CONF_CERT_MODE: "acme_tls_alpn",
            CONF_EMAIL: "admin@example.com",
            CONF_AGREE_TOS: True,
            CONF_DIRECTORY_URL: pebble.directory_url,
            CONF_CA_BUNDLE: pebble.ca_bundle,
        },
        options={CONF_CAMERAS: {}, CONF_GRACE_SECONDS: 1},
    )
    entry.add_to_hass(hass)
    return entry


async def test_fresh_setup_issues_through_own_port_and_renews_without_dropping_a_viewer(
    hass: HomeAssistant, pebble: Pebble, fake_camera_factory: CameraFactory
) -> None:
    """The "Done" scenario of issue 4, through the config flow and a real viewer."""
    camera = await fake_camera_factory.astart()
    await setup_cameras(hass, [RtspCamera("Front door", camera.url)])
    preferred = pebble.root_name(1)
    result: dict[str, Any] = dict(
        await hass.config_entries.flow.async_init(
            DOMAIN,
            context={"source": config_entries.SOURCE_USER, "show_advanced_options": True},
        )
    )
    flow_id = result["flow_id"]
    # the certificate mode is left at its default: ACME TLS-ALPN-01
    result = dict(
        await hass.config_entries.flow.async_configure(
            flow_id, {CONF_HOST: STREAM_HOST, CONF_PORT: pebble.tls_port, CONF_SCHEME: "rtsp"}
        )
    )
    assert result["step_id"] == "acme"
    result = dict(
        await hass.config_entries.flow.async_configure(
            flow_id,
            {
                CONF_EMAIL: "admin@example.com",
                CONF_AGREE_TOS: True,
                CONF_STAGING: False,
                CONF_DIRECTORY_URL: pebble.directory_url,
                CONF_CA_BUNDLE: pebble.ca_bundle,
                CONF_KEY_TYPE: "ec_p256",
                CONF_PREFERRED_CHAIN: preferred,
            },
        )
    )
    assert result["step_id"] == "cameras"
    result = dict(
        await hass.config_entries.flow.async_configure(
            flow_id, {CONF_CAMERAS: ["camera.front_door"]}
        )
    )
    result = dict(
        await hass.config_entries.flow.async_configure(flow_id, {"camera.front_door": "front door"})
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_CERT_MODE] == "acme_tls_alpn"
    await hass.async_block_till_done()
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    assert entry.state is ConfigEntryState.LOADED
    runtime = entry.runtime_data
    manager = runtime.certificates

    # issued through the stream port itself, chained to the preferred root
    await _wait_for(lambda: manager.status == STATUS_VALID)
    assert runtime.restreamer.stats()["front_door"]["alpn_challenges"] >= 1
    ctx = _root_context(pebble, 1)
    first = await _served_leaf(pebble.tls_port, ctx)
    assert manager.top_issuer == preferred
    assert manager.preferred_matched
    state = hass.states.get("sensor.cam_test_certificate_expiry")
    assert state is not None
    assert dt_util.parse_datetime(state.state) == first.not_valid_after_utc
    assert state.attributes["issuer"] == preferred
    # renewal is planned when a third of the lifetime remains
    lifetime = first.not_valid_after_utc - first.not_valid_before_utc
    assert manager.next_renewal == first.not_valid_after_utc - lifetime / 3

    diag = await async_get_config_entry_diagnostics(hass, entry)
    text = repr(diag)
    assert "PRIVATE KEY" not in text
    assert "admin@example.com" not in text
    assert STREAM_HOST not in text
    assert diag["certificates"]["issuer_chain"][-1] == preferred
    assert diag["certificates"]["status"] == STATUS_VALID

    # a viewer plays; the certificate is renewed under it
    grant = runtime.broker.mint("camera.front_door", ttl=120, auth_type="BASIC")
    viewer = EchoClient(
        _loopback(runtime.restreamer.stream_uri(grant)),
        ssl_context=ctx,
        server_hostname=STREAM_HOST,
        auth="basic",
        user=None,
        password=None,
        user_agent="stagefright/1.2 (Linux;Android 9)",
        omit_interleaved=False,
        play_range=True,
        timeout=10.0,
    )
    # plays for as long as the test needs; stopped below once the point is made
    session = asyncio.create_task(
        viewer.run(duration=60.0, until="duration", stall_after_packets=None)
    )
    await _wait_for(lambda: sum(viewer.result.packets.values()) > 20, limit=15)
    await hass.services.async_call(DOMAIN, SERVICE_RENEW_CERTIFICATE, blocking=True)
    packets_at_swap = sum(viewer.result.packets.values())
    second = await _served_leaf(pebble.tls_port, ctx)
    assert second.serial_number != first.serial_number
    # the viewer that started on the old certificate keeps receiving media
    await _wait_for(lambda: sum(viewer.result.packets.values()) > packets_at_swap + 20, limit=15)
    assert not session.done()
    assert runtime.restreamer.stats()["playing"] == 1
    assert not viewer.result.errors, viewer.result.errors
    session.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await session

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


@pytest.fixture
def duckdns(pebble: Pebble) -> Iterator[FakeDuckDns]:
    """A fake DuckDNS accepting the token ``duck-token``."""
    fake = FakeDuckDns(pebble, "duck-token")
    yield fake
    fake.close()


async def test_dns01_duckdns_mode(
    hass: HomeAssistant, pebble: Pebble, duckdns: FakeDuckDns
) -> None:
    """A LAN-only set-up: DuckDNS mode gets its certificate through DNS-01."""
    host = "myhome.duckdns.org"
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=DOMAIN,
        title=host,
        data={
            CONF_HOST: host,
            CONF_PORT: free_port(),
            CONF_SCHEME: "rtsp",
            CONF_CERT_MODE: "acme_dns_duckdns",
            CONF_EMAIL: "admin@example.com",
            CONF_AGREE_TOS: True,
            CONF_DIRECTORY_URL: pebble.directory_url,
            CONF_CA_BUNDLE: pebble.ca_bundle,
            CONF_PREFERRED_CHAIN: "ISRG Root X1",
            CONF_DUCKDNS_TOKEN: "duck-token",
            CONF_DUCKDNS_UPDATE_URL: duckdns.url,
            CONF_DNS_SERVERS: f"127.0.0.1:{pebble.dns_port}",
            CONF_PROPAGATION_SECONDS: 10,
        },
        options={CONF_CAMERAS: {}, CONF_GRACE_SECONDS: 1},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    manager = entry.runtime_data.certificates
    await _wait_for(lambda: manager.status == STATUS_VALID)
    assert manager.served_info.names == (host,)
    assert not manager.preferred_matched  # Pebble has no ISRG Root X1: default chain
    assert manager.top_issuer == pebble.root_name(0)
    assert [c.get("clear") for c in duckdns.calls] == [None, "true"]
    diag = await async_get_config_entry_diagnostics(hass, entry)
    assert "duck-token" not in repr(diag)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_acme_server_down_keeps_old_certificate_and_raises_repair(
    hass: HomeAssistant, hass_storage: dict[str, Any], socket_enabled: None, tmp_path: Path
) -> None:
    """A stored certificate with 10 days left is due; the ACME server is down: the old
    certificate stays in use with a repair issue; when the server is back the retry
    renews it and the issue goes away."""
    now = dt.datetime.now(dt.UTC)
    cert_path, key_path = self_signed(
        tmp_path, "old", host=STREAM_HOST,
        not_before=now - dt.timedelta(days=80), not_after=now + dt.timedelta(days=10),
    )  # fmt: skip
    old_chain = await hass.async_add_executor_job(Path(cert_path).read_text)
    old_key = await hass.async_add_executor_job(Path(key_path).read_text)
    with Pebble() as pebble:
        port = pebble.tls_port
        entry = _acme_entry(hass, pebble)
        key = f"{DOMAIN}.{entry.entry_id}.certificates"
        hass_storage[key] = {
            "version": 1,
            "minor_version": 1,
            "key": key,
            "data": {
                "certificate": {
                    "host": STREAM_HOST,
                    "directory": pebble.directory_url,
                    "chain": old_chain,
                    "key": old_key,
                    "top_issuer": STREAM_HOST,
                    "preferred_matched": False,
                }
            },
        }
        pebble.kill()
        assert await hass.config_entries.async_setup(entry.entry_id)
        manager = entry.runtime_data.certificates
        await _wait_for(lambda: manager.status == STATUS_RENEWAL_FAILED)
        issue = ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_CERTIFICATE_RENEWAL_FAILED)
        assert issue is not None
        assert issue.translation_key == ISSUE_CERTIFICATE_RENEWAL_FAILED
        old = x509.load_pem_x509_certificate(old_chain.encode())
        insecure = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        assert (await _served_leaf(port, insecure)).serial_number == old.serial_number
        assert manager.next_renewal is not None
        assert manager.next_renewal - dt_util.utcnow() <= dt.timedelta(minutes=5)
        state = hass.states.get("sensor.cam_test_certificate_expiry")
        assert state is not None
        assert state.attributes["status"] == STATUS_RENEWAL_FAILED

        await hass.async_add_executor_job(pebble.revive)
        async_fire_time_changed(hass, dt_util.utcnow() + dt.timedelta(minutes=6))
        await _wait_for(lambda: manager.status == STATUS_VALID)
        assert ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_CERTIFICATE_RENEWAL_FAILED) is None
        renewed = await _served_leaf(port, _root_context(pebble, 0))
        assert renewed.serial_number != old.serial_number
        # the new key and chain were stored for the next start
        assert hass_storage[key]["data"]["certificate"]["chain"] != old_chain
        # a day later the plan is checked again (ACME Renewal Info), nothing is ordered
        issued, planned = manager.last_issued, manager.next_renewal
        directory_reads = pebble.logs().count("GET /dir ")
        async_fire_time_changed(hass, dt_util.utcnow() + dt.timedelta(days=1, minutes=1))
        await hass.async_block_till_done(wait_background_tasks=True)
        assert pebble.logs().count("GET /dir ") == directory_reads + 1
        assert manager.last_issued == issued
        assert manager.next_renewal == planned
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()


async def test_port_freed_after_failed_bind_orders_at_once(
    hass: HomeAssistant, socket_enabled: None
) -> None:
    """The stream port is taken at set-up, so the first TLS-ALPN-01 order fails and waits
    on its backoff; when the port opens (listen retry) the order starts at once."""
    with Pebble() as pebble:
        port = pebble.tls_port
        blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        blocker.bind(("0.0.0.0", port))
        blocker.listen()
        entry = _acme_entry(hass, pebble)
        try:
            assert await hass.config_entries.async_setup(entry.entry_id)
            manager = entry.runtime_data.certificates
            assert not entry.runtime_data.restreamer.listening
            await _wait_for(lambda: manager.failures >= 1)
            assert manager.status != STATUS_VALID
        finally:
            blocker.close()
        async_fire_time_changed(
            hass, dt_util.utcnow() + dt.timedelta(seconds=LISTEN_RETRY_SECONDS + 1)
        )
        # the backoff timer (5 min) has not fired: the open port started the order
        await _wait_for(lambda: manager.status == STATUS_VALID)
        assert entry.runtime_data.restreamer.listening
        assert await hass.config_entries.async_unload(entry.entry_id)
