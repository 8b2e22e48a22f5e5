"""Config-flow steps for the certificate modes: ACME (TLS-ALPN-01), DuckDNS, files, and
changing the mode with reconfigure. No certificate is ordered here (see
tests/interop/test_acme_ha.py for the real thing)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from homeassistant import config_entries
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.alexa_cam_bridge.const import (
    CONF_AGREE_TOS,
    CONF_CA_BUNDLE,
    CONF_CERT_FILE,
    CONF_CERT_MODE,
    CONF_DIRECTORY_URL,
    CONF_DNS_SERVERS,
    CONF_DUCKDNS_TOKEN,
    CONF_EMAIL,
    CONF_HOST,
    CONF_KEY_FILE,
    CONF_PORT,
    CONF_SCHEME,
    CONF_STAGING,
    DOMAIN,
)
from tests.conftest import STREAM_HOST
from tests.peers.process import free_port
from tests.peers.tls import TestPki


async def _user_step(
    hass: HomeAssistant, data: dict[str, Any], *, advanced: bool = False
) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": config_entries.SOURCE_USER, "show_advanced_options": advanced},
    )
    schema = result["data_schema"]
    assert schema is not None
    modes = {str(k): k.default() for k in schema.schema if str(k) == CONF_CERT_MODE}
    assert modes == {CONF_CERT_MODE: "acme_tls_alpn"}  # the default mode
    return dict(await hass.config_entries.flow.async_configure(result["flow_id"], data))


def _fields(result: dict[str, Any]) -> set[str]:
    return {str(k) for k in result["data_schema"].schema}


async def test_acme_step_errors_and_advanced_fields(
    hass: HomeAssistant, tmp_path: Path, test_pki: TestPki
) -> None:
    """E-mail, terms agreement, directory URL and CA bundle are checked; the advanced
    fields only show in advanced mode."""
    server = {CONF_HOST: STREAM_HOST, CONF_PORT: 443, CONF_SCHEME: "rtsp"}
    plain = await _user_step(hass, server)
    assert plain["step_id"] == "acme"
    assert _fields(plain) == {CONF_EMAIL, CONF_AGREE_TOS, CONF_STAGING}
    hass.config_entries.flow.async_abort(plain["flow_id"])

    result = await _user_step(hass, server, advanced=True)
    assert _fields(result) == {
        CONF_EMAIL, CONF_AGREE_TOS, CONF_STAGING, CONF_DIRECTORY_URL, CONF_CA_BUNDLE,
        "key_type", "preferred_chain",
    }  # fmt: skip
    flow_id = result["flow_id"]
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("no certificate here\n")
    result = dict(
        await hass.config_entries.flow.async_configure(
            flow_id,
            {
                CONF_EMAIL: "not-an-address",
                CONF_AGREE_TOS: False,
                CONF_STAGING: False,
                CONF_DIRECTORY_URL: "http://acme.example/dir",
                CONF_CA_BUNDLE: str(garbage),
                "key_type": "rsa_2048",
                "preferred_chain": "ISRG Root X1",
            },
        )
    )
    assert result["errors"] == {
        CONF_EMAIL: "invalid_email",
        CONF_AGREE_TOS: "must_agree_tos",
        CONF_DIRECTORY_URL: "invalid_directory_url",
        CONF_CA_BUNDLE: "ca_bundle_invalid",
    }
    result = dict(
        await hass.config_entries.flow.async_configure(
            flow_id,
            {
                CONF_EMAIL: "admin@example.com",
                CONF_AGREE_TOS: True,
                CONF_STAGING: True,
                CONF_DIRECTORY_URL: "https://acme.example/dir",
                CONF_CA_BUNDLE: str(test_pki.ca_pem_path(tmp_path)),
                "key_type": "rsa_2048",
                "preferred_chain": "ISRG Root X1",
            },
        )
    )
    assert result["step_id"] == "cameras"


async def test_duckdns_step(hass: HomeAssistant) -> None:
    """DuckDNS needs a duckdns.org host and a token; DNS servers must parse."""
    result = await _user_step(
        hass,
        {CONF_HOST: STREAM_HOST, CONF_PORT: 443, CONF_SCHEME: "rtsp",
         CONF_CERT_MODE: "acme_dns_duckdns"},
        advanced=True,
    )  # fmt: skip
    flow_id = result["flow_id"]
    acme = {
        CONF_EMAIL: "admin@example.com",
        CONF_AGREE_TOS: True,
        CONF_STAGING: False,
        "key_type": "ec_p256",
        "preferred_chain": "ISRG Root X1",
    }
    result = dict(await hass.config_entries.flow.async_configure(flow_id, acme))
    assert result["step_id"] == "duckdns"
    result = dict(
        await hass.config_entries.flow.async_configure(
            flow_id,
            {CONF_DUCKDNS_TOKEN: " ", CONF_DNS_SERVERS: "ns1.example:x", "propagation_seconds": 60},
        )
    )
    assert result["errors"] == {
        "base": "not_duckdns_host",
        CONF_DUCKDNS_TOKEN: "invalid_token",
        CONF_DNS_SERVERS: "invalid_dns_servers",
    }
    hass.config_entries.flow.async_abort(flow_id)

    result = await _user_step(
        hass,
        {CONF_HOST: "myhome.duckdns.org", CONF_PORT: 443, CONF_SCHEME: "rtsp",
         CONF_CERT_MODE: "acme_dns_duckdns"},
    )  # fmt: skip
    result = dict(
        await hass.config_entries.flow.async_configure(
            result["flow_id"],
            {CONF_EMAIL: "a@example.com", CONF_AGREE_TOS: True, CONF_STAGING: False},
        )
    )
    assert result["step_id"] == "duckdns"
    assert _fields(result) == {CONF_DUCKDNS_TOKEN}
    result = dict(
        await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_DUCKDNS_TOKEN: "abcd-1234"}
        )
    )
    assert result["step_id"] == "cameras"


async def test_reconfigure_switches_files_to_acme_and_back(
    hass: HomeAssistant,
    entry_factory: Callable[..., MockConfigEntry],
    cert_files: tuple[str, str],
) -> None:
    """Reconfigure changes the certificate mode: files → ACME asks the ACME step and
    saves; ACME → files asks for the files."""
    entry = entry_factory({})
    result: dict[str, Any] = dict(
        await entry.start_reconfigure_flow(hass, show_advanced_options=True)
    )
    assert CONF_CERT_FILE in _fields(result)
    dead = f"https://127.0.0.1:{free_port()}/dir"  # nothing listens: no order succeeds
    result = dict(
        await hass.config_entries.flow.async_configure(
            result["flow_id"],
            {CONF_HOST: STREAM_HOST, CONF_PORT: entry.data[CONF_PORT], CONF_SCHEME: "rtsp",
             CONF_CERT_MODE: "acme_tls_alpn", CONF_CERT_FILE: "", CONF_KEY_FILE: ""},
        )
    )  # fmt: skip
    assert result["step_id"] == "acme"
    result = dict(
        await hass.config_entries.flow.async_configure(
            result["flow_id"],
            {CONF_EMAIL: "admin@example.com", CONF_AGREE_TOS: True, CONF_STAGING: True,
             CONF_DIRECTORY_URL: dead, "key_type": "ec_p256", "preferred_chain": "X"},
        )
    )  # fmt: skip
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_CERT_MODE] == "acme_tls_alpn"
    assert entry.data[CONF_STAGING] is True
    assert entry.data[CONF_DIRECTORY_URL] == dead
    await hass.async_block_till_done()

    result = dict(await entry.start_reconfigure_flow(hass))
    assert CONF_CERT_FILE not in _fields(result)
    result = dict(
        await hass.config_entries.flow.async_configure(
            result["flow_id"],
            {CONF_HOST: STREAM_HOST, CONF_PORT: entry.data[CONF_PORT], CONF_SCHEME: "rtsp",
             CONF_CERT_MODE: "files"},
        )
    )  # fmt: skip
    assert result["step_id"] == "certificate_files"
    result = dict(
        await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_CERT_FILE: cert_files[0], CONF_KEY_FILE: cert_files[1]}
        )
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_CERT_MODE] == "files"
    await hass.async_block_till_done()
    if entry.state is config_entries.ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(entry.entry_id)
