"""Shared fixtures: a real Home Assistant (pytest-homeassistant-custom-component) with
camera entities that stream from real RTSP cameras, a test PKI and a configured entry."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    setup_test_component_platform,
)

from custom_components.alexa_cam_bridge.const import (
    CERT_MODE_FILES,
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
from script.dev.acb_demo_camera.camera import DemoRtspCamera
from tests.peers.process import free_port
from tests.peers.tls import TestPki

pytest_plugins = ["tests.peers.fixtures"]

STREAM_HOST = "cam.test"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(request: pytest.FixtureRequest) -> None:
    """Let Home Assistant load custom_components/alexa_cam_bridge in tests that run HA
    (pure tests do not pay for a Home Assistant instance)."""
    if "hass" in request.fixturenames:
        request.getfixturevalue("enable_custom_integrations")


@pytest.fixture(autouse=True)
def auto_socket_enabled(socket_enabled: None) -> None:
    """Real network peers on loopback: pytest-socket still limits connects to 127.0.0.1."""


class RtspCamera(DemoRtspCamera):
    """script/develop's demo camera entity, with availability under the test's control."""

    def __init__(self, name: str, source: str | None, *, available: bool = True) -> None:
        """Name the entity and point it at an RTSP URL (None: no stream)."""
        super().__init__(name, source)
        self._attr_available = available

    def set_available(self, available: bool) -> None:
        """Flip availability and write the state."""
        self._attr_available = available
        self.async_write_ha_state()


@dataclass
class CameraSet:
    """The camera entities a test set up, by entity id."""

    entities: dict[str, RtspCamera]


async def setup_cameras(hass: HomeAssistant, cameras: list[RtspCamera]) -> CameraSet:
    """Set up the camera integration with the given entities."""
    setup_test_component_platform(hass, "camera", cameras)
    assert await async_setup_component(hass, "camera", {"camera": {"platform": "test"}})
    await hass.async_block_till_done()
    return CameraSet({cam.entity_id: cam for cam in cameras})


@pytest.fixture
def cert_files(test_pki: TestPki, tmp_path: Path) -> tuple[str, str]:
    """The test PKI's server chain (leaf + intermediate) for cam.test and its key, as files."""
    chain, key = test_pki.write_chain_and_key(tmp_path)
    return str(chain), str(key)


@pytest.fixture
def entry_factory(
    hass: HomeAssistant, cert_files: tuple[str, str]
) -> Callable[..., MockConfigEntry]:
    """Make (not yet set up) config entries for the bridge."""

    def make(
        cameras: dict[str, str], *, port: int | None = None, **camera_options: Any
    ) -> MockConfigEntry:
        entry = MockConfigEntry(
            domain=DOMAIN,
            unique_id=DOMAIN,
            title=STREAM_HOST,
            data={
                CONF_HOST: STREAM_HOST,
                CONF_PORT: port if port is not None else free_port(),
                CONF_SCHEME: "rtsp",
                CONF_CERT_MODE: CERT_MODE_FILES,
                CONF_CERT_FILE: cert_files[0],
                CONF_KEY_FILE: cert_files[1],
            },
            options={
                CONF_CAMERAS: {
                    entity_id: {
                        CONF_NAME: name,
                        CONF_VIDEO_ONLY: entity_id in camera_options.get("video_only", ()),
                        CONF_KEEP_WARM: entity_id in camera_options.get("keep_warm", ()),
                    }
                    for entity_id, name in cameras.items()
                },
                CONF_GRACE_SECONDS: camera_options.get("grace_seconds", 1),
            },
        )
        entry.add_to_hass(hass)
        return entry

    return make


@pytest.fixture
async def loaded_entry(
    hass: HomeAssistant, entry_factory: Callable[..., MockConfigEntry]
) -> AsyncGenerator[MockConfigEntry]:
    """A loaded bridge exposing one camera with no stream (unit-level HA tests)."""
    await setup_cameras(hass, [RtspCamera("Front door", None)])
    entry = entry_factory({"camera.front_door": "front door"})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    yield entry
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
