"""Diagnostics for Alexa Camera Bridge (secrets redacted)."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from . import AlexaCamBridgeConfigEntry
from .const import (
    CONF_CA_BUNDLE,
    CONF_CERT_FILE,
    CONF_DIRECTORY_URL,
    CONF_DNS_SERVERS,
    CONF_DUCKDNS_TOKEN,
    CONF_DUCKDNS_UPDATE_URL,
    CONF_EMAIL,
    CONF_EVENT_GATEWAY_URL,
    CONF_HOST,
    CONF_KEY_FILE,
    CONF_LWA_CLIENT_ID,
    CONF_LWA_CLIENT_SECRET,
    CONF_LWA_TOKEN_URL,
)

# The public host name identifies the user's home; file paths may carry user names; the
# skill's LWA credentials and tokens are secrets; private gateway URLs name hosts.
TO_REDACT = {
    CONF_HOST,
    CONF_CERT_FILE,
    CONF_KEY_FILE,
    CONF_LWA_CLIENT_ID,
    CONF_LWA_CLIENT_SECRET,
    CONF_EVENT_GATEWAY_URL,
    CONF_LWA_TOKEN_URL,
    CONF_EMAIL,
    CONF_DUCKDNS_TOKEN,
    CONF_DUCKDNS_UPDATE_URL,
    CONF_DNS_SERVERS,
    CONF_DIRECTORY_URL,
    CONF_CA_BUNDLE,
    "access_token",
    "refresh_token",
    "title",
    "unique_id",
    "names",
    "subject",
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: AlexaCamBridgeConfigEntry
) -> dict[str, Any]:
    """Return what helps debugging: settings, certificate facts, port and camera state."""
    runtime = entry.runtime_data
    return {
        "entry": async_redact_data(entry.as_dict(), TO_REDACT),
        "certificate": async_redact_data(runtime.certificate.as_dict(), TO_REDACT),
        # state, expiry and issuer chain of the served certificate; never key material
        "certificates": async_redact_data(runtime.certificates.diagnostics(), TO_REDACT),
        "listen_error": runtime.listen_error,
        "restreamer": runtime.restreamer.stats(),
        "streams_granted": runtime.broker.active_grants(),
        "probes": runtime.backend.diagnostics(),
        "events": runtime.events.diagnostics() if runtime.events is not None else None,
    }
