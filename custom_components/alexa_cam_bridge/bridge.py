"""Home Assistant's side of the Alexa Smart Home layer: cameras, probes, stream sessions."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from homeassistant.components.camera import async_get_image, async_get_stream_source
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.storage import Store

from .broker import StreamBroker
from .const import (
    CONF_CAMERAS,
    CONF_DOORBELL_KEEP_WARM,
    CONF_DOORBELLS,
    CONF_HOST,
    CONF_KEEP_WARM,
    CONF_NAME,
    CONF_PORT,
    CONF_SCHEME,
    CONF_VIDEO_ONLY,
    DEFAULT_HEIGHT,
    DEFAULT_WIDTH,
    DOMAIN,
    MANUFACTURER,
    PROBE_CACHE_SECONDS,
    PROBE_TIMEOUT_SECONDS,
    SNAPSHOT_TTL_SECONDS,
    STREAM_IDLE_TIMEOUT_SECONDS,
    STREAM_TTL_SECONDS,
)
from .restreamer import CameraConfig, Restreamer
from .rtsp.client import ProbeResult
from .smart_home import (
    AlexaError,
    CameraEndpoint,
    StreamInfo,
    StreamRequest,
    StreamSession,
    make_endpoint_id,
)

_LOGGER = logging.getLogger(__name__)

# A failed probe is retried sooner than a good one is refreshed.
PROBE_FAILURE_CACHE_SECONDS = 30.0
GRANT_STORAGE_VERSION = 1

# ChangeReport causes: a probe run in the background vs. one a directive asked for.
CAUSE_PERIODIC_POLL = "PERIODIC_POLL"
CAUSE_APP_INTERACTION = "APP_INTERACTION"

#: Called with (camera entity_id, reachable, cause) after every probe.
type ReachabilityListener = Callable[[str, bool, str], None]
#: Exchanges an AcceptGrant code for Event Gateway tokens (raises AlexaError).
type GrantExchanger = Callable[[str], Awaitable[None]]


@dataclass(slots=True)
class _Probe:
    at: float
    info: StreamInfo
    error: str | None = None


def doorbell_links(options: Mapping[str, Any]) -> dict[str, str]:
    """Exposed camera entity_id -> its doorbell trigger entity (binary_sensor / event)."""
    cameras: Mapping[str, Any] = options.get(CONF_CAMERAS, {})
    links: Mapping[str, Any] = options.get(CONF_DOORBELLS) or {}
    return {
        camera: str(trigger) for camera, trigger in links.items() if camera in cameras and trigger
    }


def camera_configs(options: Mapping[str, Any]) -> dict[str, CameraConfig]:
    """The restreamer's per-camera settings from the entry options.

    A doorbell camera is kept warm when the user asked for that (``doorbell_keep_warm``),
    so the Echo's doorbell popup starts at once.
    """
    cameras: Mapping[str, Mapping[str, Any]] = options.get(CONF_CAMERAS, {})
    warm_doorbells = set(doorbell_links(options)) if options.get(CONF_DOORBELL_KEEP_WARM) else set()
    return {
        entity_id: CameraConfig(
            camera_id=entity_id,
            video_only=bool(cfg.get(CONF_VIDEO_ONLY, False)),
            keep_warm=bool(cfg.get(CONF_KEEP_WARM, False)) or entity_id in warm_doorbells,
        )
        for entity_id, cfg in cameras.items()
    }


def stream_info_from_probe(result: ProbeResult, *, video_only: bool) -> StreamInfo:
    """What Discovery may advertise for a probed camera."""
    audio: tuple[str, ...] = ()
    if result.audio_codec and not video_only:
        audio = (result.audio_codec,)
    return StreamInfo(
        width=result.width or DEFAULT_WIDTH,
        height=result.height or DEFAULT_HEIGHT,
        video_codec=result.video_codec or "H264",
        h264=result.h264,
        profile=result.profile,
        audio_codecs=audio,
        reachable=True,
        probed=True,
    )


async def camera_stream_source(hass: HomeAssistant, camera_id: str) -> str | None:
    """Upstream RTSP URL of a camera entity (the restreamer's ``source``)."""
    try:
        return await async_get_stream_source(hass, camera_id)
    except HomeAssistantError as err:
        _LOGGER.warning("No stream source for %s: %s", camera_id, err)
        return None


async def camera_snapshot(hass: HomeAssistant, camera_id: str) -> bytes | None:
    """Current JPEG of a camera entity (the restreamer's ``snapshot``)."""
    try:
        image = await async_get_image(hass, camera_id, timeout=5)
    except HomeAssistantError as err:
        _LOGGER.debug("No snapshot for %s: %s", camera_id, err)
        return None
    return image.content


class HaBackend:
    """Implements smart_home.SmartHomeBackend on top of Home Assistant and the restreamer."""

    def __init__(
        self,
        hass: HomeAssistant,
        data: Mapping[str, Any],
        options: Mapping[str, Any],
        broker: StreamBroker,
        restreamer: Restreamer,
    ) -> None:
        """Bind to one config entry's data and options."""
        self._hass = hass
        self._host: str = data[CONF_HOST]
        self._port: int = data[CONF_PORT]
        self._scheme: str = data[CONF_SCHEME]
        self._broker = broker
        self._restreamer = restreamer
        cameras: Mapping[str, Mapping[str, Any]] = options.get(CONF_CAMERAS, {})
        self._cameras = {make_endpoint_id(e): (e, dict(c)) for e, c in cameras.items()}
        self._doorbells = doorbell_links(options)
        self._probes: dict[str, _Probe] = {}
        self._probing: dict[str, asyncio.Future[StreamInfo]] = {}
        self._grants: Store[dict[str, Any]] = Store(
            hass, GRANT_STORAGE_VERSION, f"{DOMAIN}.grant", private=True
        )
        #: Set by the Alexa events glue: told about every probe result.
        self.reachability_listener: ReachabilityListener | None = None
        #: Set by the Alexa events glue when the skill's LWA credentials are configured.
        self.grant_exchanger: GrantExchanger | None = None

    # -- helpers for the HA glue -------------------------------------------------------

    def entity_id(self, endpoint_id: str) -> str:
        """The camera entity behind an endpoint id (AlexaError NO_SUCH_ENDPOINT if none)."""
        try:
            return self._cameras[endpoint_id][0]
        except KeyError:
            raise AlexaError.no_such_endpoint(endpoint_id) from None

    async def refresh_all(self) -> None:
        """Probe every camera whose probe is due and wait for the results (in the
        background: set-up, periodic)."""
        await asyncio.gather(
            *(
                self._start_probe(entity_id, CAUSE_PERIODIC_POLL)
                for entity_id, _cfg in self._cameras.values()
                if self._probe_due(entity_id)
            )
        )

    def _probe_due(self, entity_id: str) -> bool:
        """Never probed, or the last result is older than its cache time."""
        probe = self._probes.get(entity_id)
        if probe is None:
            return True
        ttl = PROBE_CACHE_SECONDS if probe.error is None else PROBE_FAILURE_CACHE_SECONDS
        return time.monotonic() - probe.at >= ttl

    def probed_reachable(self, endpoint_id: str) -> bool:
        """Whether the camera's last probe reached its stream (True before any probe)."""
        probe = self._probes.get(self.entity_id(endpoint_id))
        return probe is None or probe.info.reachable

    def warm_up(self, entity_id: str) -> None:
        """Start the camera's upstream now (a doorbell press: Alexa will ask for it)."""
        self._restreamer.prepare(entity_id)

    @property
    def probing(self) -> list[str]:
        """Cameras with a probe under way."""
        return sorted(self._probing)

    def diagnostics(self) -> dict[str, Any]:
        """Probe results per camera (no credentials: URLs are never stored here)."""
        now = time.monotonic()
        return {
            entity_id: {
                "age_seconds": round(now - probe.at, 1),
                "error": probe.error,
                "info": {
                    "width": probe.info.width,
                    "height": probe.info.height,
                    "h264": probe.info.h264,
                    "video_codec": probe.info.video_codec,
                    "profile": probe.info.profile,
                    "audio_codecs": list(probe.info.audio_codecs),
                    "probed": probe.info.probed,
                },
            }
            for entity_id, probe in self._probes.items()
        }

    # -- SmartHomeBackend ----------------------------------------------------------------

    def endpoints(self) -> Sequence[CameraEndpoint]:
        """The exposed cameras, with the names Alexa hears."""
        return [
            CameraEndpoint(
                endpoint_id=endpoint_id,
                friendly_name=cfg[CONF_NAME],
                description=f"{cfg[CONF_NAME]} via Home Assistant",
                manufacturer=MANUFACTURER,
                entity_id=entity_id,
                doorbell=entity_id in self._doorbells,
            )
            for endpoint_id, (entity_id, cfg) in self._cameras.items()
        ]

    def is_available(self, endpoint_id: str) -> bool:
        """False when the camera entity is missing, unavailable or unknown."""
        state = self._hass.states.get(self.entity_id(endpoint_id))
        return state is not None and state.state not in (STATE_UNAVAILABLE, STATE_UNKNOWN)

    async def stream_info(self, endpoint_id: str) -> StreamInfo:
        """Probed stream facts, cached; configured defaults while a camera is offline."""
        return await self._stream_info(endpoint_id, CAUSE_APP_INTERACTION)

    async def _stream_info(self, endpoint_id: str, cause: str) -> StreamInfo:
        """Stale-while-revalidate: a camera probed before is answered at once (an expired
        result starts a probe in the background), so a slow camera never delays
        InitializeCameraStreams or ReportState; only a never-probed camera is waited for."""
        entity_id = self.entity_id(endpoint_id)
        probe = self._probes.get(entity_id)
        if probe is None:
            return await asyncio.shield(self._start_probe(entity_id, cause))
        if self._probe_due(entity_id):
            self._start_probe(entity_id, cause)
        return probe.info

    def _start_probe(self, entity_id: str, cause: str) -> asyncio.Future[StreamInfo]:
        """The camera's running probe, or a new one (one at a time per camera)."""
        pending = self._probing.get(entity_id)
        if pending is None:
            pending = asyncio.ensure_future(self._probe(entity_id, cause))
            self._probing[entity_id] = pending
            pending.add_done_callback(lambda _: self._probing.pop(entity_id, None))
        return pending

    async def async_close(self) -> None:
        """Cancel probes still running (at unload)."""
        pending = list(self._probing.values())
        for future in pending:
            future.cancel()
        if pending:
            await asyncio.wait(pending)

    async def _probe(self, entity_id: str, cause: str) -> StreamInfo:
        info = await self._probe_once(entity_id)
        if self.reachability_listener is not None:
            self.reachability_listener(entity_id, info.reachable, cause)
        return info

    async def _probe_once(self, entity_id: str) -> StreamInfo:
        video_only = bool(self._cameras[make_endpoint_id(entity_id)][1].get(CONF_VIDEO_ONLY))
        error: str | None = None
        result: ProbeResult | None = None
        try:
            result = await self._restreamer.probe(entity_id, timeout=PROBE_TIMEOUT_SECONDS)
        except (OSError, TimeoutError, ValueError) as err:
            error = str(err) or type(err).__name__
        if result is not None and result.video_codec is None:  # no source, or no video
            error = "; ".join(result.notes) or "no video stream"
        if result is None or error is not None:
            previous = self._probes.get(entity_id)
            base = previous.info if previous else StreamInfo(DEFAULT_WIDTH, DEFAULT_HEIGHT)
            info = replace(base, reachable=False)
            self._probes[entity_id] = _Probe(time.monotonic(), info, error)
            _LOGGER.info("Camera %s did not answer a probe: %s", entity_id, error)
            return info
        info = stream_info_from_probe(result, video_only=video_only)
        self._probes[entity_id] = _Probe(time.monotonic(), info)
        return info

    async def initialize_streams(self, endpoint_id: str, request: StreamRequest) -> StreamSession:
        """Mint credentials for one viewing and start the camera's relay in the background."""
        entity_id = self.entity_id(endpoint_id)
        if not self._restreamer.listening:
            raise AlexaError.endpoint_unreachable(
                endpoint_id, f"the stream port {self._port} is not open; see Repairs in HA"
            )
        info = await self.stream_info(endpoint_id)
        auth_type = next(
            (t for t in request.authorization_types if t in ("BASIC", "DIGEST")), "BASIC"
        )
        grant = self._broker.mint(entity_id, ttl=STREAM_TTL_SECONDS, auth_type=auth_type)
        self._restreamer.prepare(entity_id)
        token = self._broker.sign_snapshot(entity_id, SNAPSHOT_TTL_SECONDS)
        authority = f"{self._host}:{self._port}"
        userinfo = f"{quote(grant.username, safe='')}:{quote(grant.password, safe='')}"
        audio = info.audio_codecs[0] if info.audio_codecs else "NONE"
        return StreamSession(
            uri=f"{self._scheme}://{userinfo}@{authority}/{grant.stream_id}",
            expiration=datetime.fromtimestamp(grant.expires_at, UTC).replace(microsecond=0),
            idle_timeout_seconds=STREAM_IDLE_TIMEOUT_SECONDS,
            protocol="RTSP",
            width=info.width,
            height=info.height,
            authorization_type=auth_type,
            video_codec="H264",
            audio_codec=audio,
            image_uri=f"https://{authority}/snapshot/{token}",
        )

    async def accept_grant(self, code: str, grantee_token: str) -> None:
        """Exchange the grant for Event Gateway tokens when Alexa events are configured.

        Without the skill's LWA credentials the link still succeeds (events are optional):
        the code is kept, unused, and directives work as before.
        """
        del grantee_token  # an HA access token; never stored
        if self.grant_exchanger is not None:
            await self.grant_exchanger(code)
            return
        await self._grants.async_save({"code": code, "received": datetime.now(UTC).isoformat()})
