"""Sensor: when the stream certificate expires (timestamp), with its state."""

from __future__ import annotations

import datetime as dt
from typing import Any

from homeassistant.components.sensor import SensorDeviceClass, SensorEntity
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import AlexaCamBridgeConfigEntry
from .certificates import CertificateManager
from .const import DOMAIN, MANUFACTURER


async def async_setup_entry(
    hass: HomeAssistant,
    entry: AlexaCamBridgeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the certificate expiry sensor."""
    async_add_entities([CertificateExpirySensor(entry, entry.runtime_data.certificates)])


class CertificateExpirySensor(SensorEntity):
    """Expiry of the certificate the stream port serves; unknown while only a temporary
    self-signed certificate is served (the first ACME order is still running)."""

    _attr_has_entity_name = True
    _attr_translation_key = "certificate_expiry"
    _attr_device_class = SensorDeviceClass.TIMESTAMP
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_should_poll = False

    def __init__(self, entry: AlexaCamBridgeConfigEntry, manager: CertificateManager) -> None:
        """Follow ``manager``."""
        self._manager = manager
        self._attr_unique_id = f"{entry.entry_id}_certificate_expiry"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, entry.entry_id)},
            name=entry.title,
            manufacturer=MANUFACTURER,
            entry_type=DeviceEntryType.SERVICE,
        )

    async def async_added_to_hass(self) -> None:
        """Update whenever the certificate or its renewal state changes."""
        self.async_on_remove(self._manager.async_add_listener(self.async_write_ha_state))

    @property
    def native_value(self) -> dt.datetime | None:
        """The served certificate's notAfter (None while temporary)."""
        return self._manager.expires

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Mode, state, issuer and the next renewal (no host name, no keys)."""
        return {
            "mode": self._manager.mode,
            "status": self._manager.status,
            "issuer": self._manager.top_issuer,
            "next_renewal": self._manager.next_renewal.isoformat()
            if self._manager.next_renewal
            else None,
            "last_error": self._manager.last_error,
        }
