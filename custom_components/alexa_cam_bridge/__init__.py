"""Alexa Camera Bridge: play Home Assistant cameras on Echo Show and Fire TV."""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryError, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.typing import ConfigType

from .bridge import HaBackend, camera_configs, camera_snapshot, camera_stream_source
from .broker import StreamBroker
from .certfiles import CertificateError, CertificateInfo
from .certificates import (
    CertificateManager,
    async_raise_certificate_invalid,
    async_remove_storage,
    async_setup_services,
)
from .const import (
    CONF_GRACE_SECONDS,
    CONF_HOST,
    CONF_PORT,
    DEFAULT_GRACE_SECONDS,
    DOMAIN,
    ISSUE_CERTIFICATE_INVALID,
    ISSUE_CERTIFICATE_RENEWAL_FAILED,
    ISSUE_EVENTS_CLIENT_REJECTED,
    ISSUE_EVENTS_RELINK,
    ISSUE_EVENTS_SKILL_DISABLED,
    ISSUE_PORT_UNAVAILABLE,
    LISTEN_RETRY_SECONDS,
)
from .events import AlexaEvents
from .http import AlexaSmartHomeView
from .restreamer import Restreamer

_LOGGER = logging.getLogger(__name__)

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)
PLATFORMS: list[Platform] = [Platform.SENSOR]


@dataclass(slots=True)
class BridgeRuntime:
    """Everything one loaded entry runs."""

    broker: StreamBroker
    restreamer: Restreamer
    backend: HaBackend
    certificates: CertificateManager
    listen_error: str | None = None
    cancel_retry: CALLBACK_TYPE | None = None
    events: AlexaEvents | None = None

    @property
    def certificate(self) -> CertificateInfo:
        """The certificate being served (a temporary one while the first order runs)."""
        return self.certificates.served_info


type AlexaCamBridgeConfigEntry = ConfigEntry[BridgeRuntime]


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the Alexa endpoint once; it finds the loaded entry per request."""
    hass.http.register_view(AlexaSmartHomeView())
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: AlexaCamBridgeConfigEntry) -> bool:
    """Load certificate, start the stream port and expose the cameras."""
    certificates = CertificateManager(hass, entry)
    try:
        ssl_context = await certificates.async_initial_context()
    except CertificateError as err:
        if err.reason in ("cert_unreadable", "key_unreadable"):
            raise ConfigEntryNotReady(err.detail) from err
        async_raise_certificate_invalid(hass, err.detail)
        raise ConfigEntryError(err.detail) from err
    ir.async_delete_issue(hass, DOMAIN, ISSUE_CERTIFICATE_INVALID)

    broker = StreamBroker()
    restreamer = Restreamer(
        port=entry.data[CONF_PORT],
        ssl_context=ssl_context,
        broker=broker,
        source=partial(camera_stream_source, hass),
        snapshot=partial(camera_snapshot, hass),
        cameras=camera_configs(entry.options),
        grace_seconds=float(entry.options.get(CONF_GRACE_SECONDS, DEFAULT_GRACE_SECONDS)),
        public_host=entry.data[CONF_HOST],
    )
    backend = HaBackend(hass, entry.data, entry.options, broker, restreamer)
    # The ACME challenge handler is registered before the port opens.
    certificates.attach(restreamer)
    entry.runtime_data = BridgeRuntime(broker, restreamer, backend, certificates)

    await _async_listen(hass, entry)
    await certificates.async_start()
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    # Before the first probe, so the events glue sees its result.
    entry.runtime_data.events = AlexaEvents(hass, entry, backend)
    await entry.runtime_data.events.async_start()
    entry.async_on_unload(entry.add_update_listener(_async_options_updated))
    entry.async_create_background_task(
        hass, backend.refresh_all(), f"{DOMAIN} probe cameras", eager_start=False
    )
    return True


async def _async_listen(hass: HomeAssistant, entry: AlexaCamBridgeConfigEntry) -> None:
    """Bind the stream port; on failure raise a repair issue and retry later."""
    runtime = entry.runtime_data
    port = entry.data[CONF_PORT]
    try:
        await runtime.restreamer.start()
    except OSError as err:
        reason = {
            errno.EADDRINUSE: "in_use",
            errno.EACCES: "not_allowed",
            errno.EPERM: "not_allowed",
        }.get(err.errno or 0, "other")
        error = os.strerror(err.errno) if err.errno else str(err)
        first = runtime.listen_error is None
        runtime.listen_error = f"{reason}: {error}"
        if first:
            _LOGGER.error(
                "Cannot listen on stream port %s (%s); Alexa cannot play cameras until this "
                "is fixed. Retrying every %s s",
                port,
                error,
                LISTEN_RETRY_SECONDS,
            )
        ir.async_create_issue(
            hass,
            DOMAIN,
            ISSUE_PORT_UNAVAILABLE,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=f"{ISSUE_PORT_UNAVAILABLE}_{reason}",
            translation_placeholders={"port": str(port), "error": error},
        )

        @callback
        def _retry(_now: Any) -> None:
            runtime.cancel_retry = None
            entry.async_create_task(hass, _async_listen(hass, entry), f"{DOMAIN} listen retry")

        runtime.cancel_retry = async_call_later(
            hass, timedelta(seconds=LISTEN_RETRY_SECONDS), _retry
        )
        return
    if runtime.listen_error is not None:
        _LOGGER.info("Stream port %s is open now", port)
        runtime.certificates.port_opened()
    runtime.listen_error = None
    ir.async_delete_issue(hass, DOMAIN, ISSUE_PORT_UNAVAILABLE)


async def _async_options_updated(hass: HomeAssistant, entry: AlexaCamBridgeConfigEntry) -> None:
    await hass.config_entries.async_reload(entry.entry_id)


async def async_unload_entry(hass: HomeAssistant, entry: AlexaCamBridgeConfigEntry) -> bool:
    """Close the stream port, every viewer and every camera connection."""
    if not await hass.config_entries.async_unload_platforms(entry, PLATFORMS):
        return False
    runtime = entry.runtime_data
    await runtime.certificates.async_stop()
    if runtime.cancel_retry is not None:
        runtime.cancel_retry()
        runtime.cancel_retry = None
    if runtime.events is not None:
        await runtime.events.async_stop()
    await runtime.backend.async_close()
    await runtime.restreamer.stop()
    return True


async def async_remove_entry(hass: HomeAssistant, entry: AlexaCamBridgeConfigEntry) -> None:
    """Forget repair issues and the stored keys when the entry goes."""
    ir.async_delete_issue(hass, DOMAIN, ISSUE_PORT_UNAVAILABLE)
    ir.async_delete_issue(hass, DOMAIN, ISSUE_CERTIFICATE_INVALID)
    ir.async_delete_issue(hass, DOMAIN, ISSUE_CERTIFICATE_RENEWAL_FAILED)
    await async_remove_storage(hass, entry)
    for issue in (ISSUE_EVENTS_RELINK, ISSUE_EVENTS_CLIENT_REJECTED, ISSUE_EVENTS_SKILL_DISABLED):
        ir.async_delete_issue(hass, DOMAIN, issue)
