"""A camera entity streaming from an RTSP URL; snapshots decoded by ffmpeg.

Only for script/develop (it is not part of the integration): HA's own generic camera
would need packages that are not installed offline.
"""

from __future__ import annotations

import asyncio

import voluptuous as vol
from homeassistant.components.camera import PLATFORM_SCHEMA, Camera, CameraEntityFeature
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.entity_platform import AddEntitiesCallback
from homeassistant.helpers.typing import ConfigType, DiscoveryInfoType

PLATFORM_SCHEMA = PLATFORM_SCHEMA.extend(
    {vol.Required("name"): cv.string, vol.Required("stream_source"): cv.string}
)


async def async_setup_platform(
    hass: HomeAssistant,
    config: ConfigType,
    async_add_entities: AddEntitiesCallback,
    discovery_info: DiscoveryInfoType | None = None,
) -> None:
    """Add one demo camera."""
    async_add_entities([DemoRtspCamera(config["name"], config["stream_source"])])


class DemoRtspCamera(Camera):
    """An RTSP stream as a camera entity."""

    _attr_supported_features = CameraEntityFeature.STREAM
    _attr_should_poll = False

    def __init__(self, name: str, source: str | None) -> None:
        """Name it and remember the stream URL (None: the camera has no stream)."""
        super().__init__()
        self._attr_name = name
        self._attr_unique_id = f"acb-demo-{name}"
        self.source = source

    async def stream_source(self) -> str | None:
        """The RTSP URL."""
        return self.source

    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        """One JPEG frame, decoded by ffmpeg."""
        if self.source is None:
            return None
        proc = await asyncio.create_subprocess_exec(
            "ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i", self.source,
            "-frames:v", "1", "-f", "image2", "-c:v", "mjpeg", "-",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return None
        return out or None
