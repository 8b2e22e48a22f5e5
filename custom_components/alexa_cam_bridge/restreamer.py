"""The restreamer facade: front door + RTSP server sessions + camera relays.

This is what the Home Assistant glue builds and drives. It never imports Home Assistant:
cameras come in as ids, their upstream URLs and snapshots through callbacks.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .broker import StreamBroker, StreamGrant
from .front_door import (
    ClientHelloInfo,
    Connection,
    FrontDoor,
    HttpReply,
    harden_server_context,
)
from .rtsp import auth
from .rtsp.client import ProbeResult, probe
from .rtsp.limits import Limits
from .rtsp.relay import CameraRelay
from .rtsp.server import RtspServerSession, ServerContext

__all__ = [
    "CameraConfig",
    "ClientHelloInfo",
    "Limits",
    "ProbeResult",
    "Restreamer",
]

_LOGGER = logging.getLogger(__name__)

SNAPSHOT_PREFIX = "/snapshot/"


@dataclass(frozen=True, slots=True)
class CameraConfig:
    """Per-camera restream options."""

    camera_id: str
    video_only: bool = False
    keep_warm: bool = False


class Restreamer:
    """RTSP-over-TLS restreamer for a set of cameras on one port."""

    def __init__(
        self,
        *,
        port: int,
        host: str | Sequence[str] | None = None,
        ssl_context: ssl.SSLContext,
        broker: StreamBroker,
        source: Callable[[str], Awaitable[str | None]],
        snapshot: Callable[[str], Awaitable[bytes | None]],
        cameras: Mapping[str, CameraConfig],
        grace_seconds: float = 30.0,
        limits: Limits | None = None,
        public_host: str,
    ) -> None:
        """Configure the restreamer; nothing is bound or started before :meth:`start`."""
        self._broker = broker
        self._source = source
        self._snapshot = snapshot
        self._cameras: dict[str, CameraConfig] = dict(cameras)
        self._grace = grace_seconds
        self.limits = limits if limits is not None else Limits()
        self.public_host = public_host
        self._port = port
        self._relays: dict[str, CameraRelay] = {}
        self._nonces = auth.DigestNonceStore(lifetime=max(60.0, 2.0 * self.limits.session_timeout))
        self._context = ServerContext(
            lookup=self._lookup,
            relay_for=self._relay_for,
            failures=broker.failures,
            nonces=self._nonces,
            limits=self.limits,
        )
        self._door = FrontDoor(
            port=port,
            host=host,
            ssl_context=harden_server_context(ssl_context),
            rtsp_handler=self._serve_rtsp,
            http_handler=self._serve_http,
            limits=self.limits,
        )
        self._sessions: set[RtspServerSession] = set()
        self._started_at: float | None = None
        self._pending: set[asyncio.Task[None]] = set()

    # -- life cycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the port; raises OSError (EADDRINUSE, EACCES, ...) when it cannot."""
        await self._door.start()
        self._started_at = time.time()

    async def stop(self) -> None:
        """Close the listener, every session and every relay; leave no task behind."""
        await self._door.stop()
        relays = list(self._relays.values())
        self._relays.clear()
        await asyncio.gather(
            *(relay.stop() for relay in relays), *self._pending, return_exceptions=True
        )
        self._started_at = None

    def relay(self, camera_id: str) -> CameraRelay | None:
        """The camera's relay if it exists (diagnostics, benchmarks)."""
        return self._relays.get(camera_id)

    async def stop_relay(self, camera_id: str) -> None:
        """Stop the camera's relay now (its viewers end); the next viewer starts it again."""
        relay = self._relays.pop(camera_id, None)
        if relay is not None:
            await relay.stop()

    @property
    def listening(self) -> bool:
        """True while the port is bound."""
        return self._door.listening

    @property
    def bound_ports(self) -> list[int]:
        """The port(s) bound (useful with ``port=0``)."""
        return self._door.bound_ports

    def set_ssl_context(self, ctx: ssl.SSLContext) -> None:
        """Use ``ctx`` for new TLS handshakes; live sessions keep theirs.

        The context is hardened in place (TLS 1.2+, ECDHE AEAD ciphers).
        """
        self._door.set_ssl_context(harden_server_context(ctx))

    def add_alpn_handler(
        self, protocol: str, handler: Callable[[ClientHelloInfo], ssl.SSLContext | None]
    ) -> None:
        """Handshake ClientHellos offering ``protocol`` with ``handler``'s context, then close."""
        self._door.add_alpn_handler(protocol, handler)

    def update_cameras(self, cameras: Mapping[str, CameraConfig]) -> None:
        """Replace the camera set; removed cameras' relays stop and their viewers end."""
        self._cameras = dict(cameras)
        for camera_id in list(self._relays):
            config = self._cameras.get(camera_id)
            relay = self._relays[camera_id]
            if config is None:
                del self._relays[camera_id]
                self._broker.revoke_camera(camera_id)
                task = asyncio.create_task(relay.stop(), name=f"stop relay {camera_id}")
                self._background(task)
            else:
                relay.set_options(video_only=config.video_only, keep_warm=config.keep_warm)
        for camera_id, config in self._cameras.items():
            if config.keep_warm:
                self._relay_for(camera_id)

    def _background(self, task: asyncio.Task[None]) -> None:
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def prepare(self, camera_id: str) -> None:
        """Start (or keep) the camera's upstream in the background; never blocks."""
        relay = self._relay_for(camera_id)
        if relay is not None:
            relay.prepare()

    def stream_uri(self, grant: StreamGrant, *, scheme: str = "rtsp") -> str:
        """The URL to hand to Alexa for ``grant`` (credentials included)."""
        port = self.bound_ports[0] if self.bound_ports else self._port
        return (
            f"{scheme}://{quote(grant.username, safe='')}:{quote(grant.password, safe='')}"
            f"@{self.public_host}:{port}/{grant.stream_id}"
        )

    def snapshot_uri(self, camera_id: str, *, ttl: float = 600.0) -> str:
        """An HTTPS URL serving the camera's current JPEG (signed, expiring)."""
        port = self.bound_ports[0] if self.bound_ports else self._port
        token = self._broker.sign_snapshot(camera_id, ttl)
        suffix = "" if port == 443 else f":{port}"
        return f"https://{self.public_host}{suffix}{SNAPSHOT_PREFIX}{token}"

    async def probe(self, camera_id: str, timeout: float = 8.0) -> ProbeResult:  # noqa: ASYNC109
        """Describe the camera (codecs, size, profile), reusing a running relay."""
        relay = self._relays.get(camera_id)
        if relay is not None:
            result = relay.probe_result()
            if result is not None:
                return result
        url = await self._source(camera_id)
        if not url:
            return ProbeResult(h264=False, video_codec=None, notes=["camera has no stream source"])
        return await probe(url, timeout=timeout)

    def stats(self) -> dict[str, Any]:
        """Diagnostics: listener, connections, per-camera relay state (no secrets)."""
        return {
            "listening": self.listening,
            "bound_ports": self.bound_ports,
            "bound_addresses": self._door.bound_addresses,
            "started_at": self._started_at,
            "connections": self._door.active_connections,
            "rtsp_sessions": len(self._sessions),
            "playing": sum(1 for s in self._sessions if s.playing),
            "front_door": dict(self._door.counters),
            "active_grants": self._broker.active_grants(),
            "cameras": {cid: relay.stats() for cid, relay in self._relays.items()},
        }

    # -- wiring ------------------------------------------------------------------------

    def _lookup(self, stream_id: str) -> StreamGrant | None:
        grant = self._broker.lookup(stream_id)
        if grant is None or grant.camera_id not in self._cameras:
            return None
        return grant

    def _relay_for(self, camera_id: str) -> CameraRelay | None:
        config = self._cameras.get(camera_id)
        if config is None:
            return None
        relay = self._relays.get(camera_id)
        if relay is None:
            relay = CameraRelay(
                camera_id,
                source=self._source,
                video_only=config.video_only,
                keep_warm=config.keep_warm,
                grace_seconds=self._grace,
                limits=self.limits,
            )
            self._relays[camera_id] = relay
            if config.keep_warm:
                relay.prepare()
        return relay

    async def _serve_rtsp(self, conn: Connection) -> None:
        session = RtspServerSession(
            conn.reader, conn.writer, peer=conn.peer, context=self._context, initial=conn.initial
        )
        self._sessions.add(session)
        try:
            await session.run()
        finally:
            self._sessions.discard(session)

    async def _serve_http(self, method: str, path: str) -> HttpReply:
        if not path.startswith(SNAPSHOT_PREFIX):
            return HttpReply(404, b"not found\n")
        camera_id = self._broker.verify_snapshot(path[len(SNAPSHOT_PREFIX) :].split("?", 1)[0])
        if camera_id is None or camera_id not in self._cameras:
            return HttpReply(404, b"not found\n")
        image: bytes | None = None
        try:
            async with asyncio.timeout(self.limits.request_timeout):
                image = await self._snapshot(camera_id)
        except Exception:
            _LOGGER.exception("Snapshot of camera %s failed", camera_id)
        if not image:
            return HttpReply(503, b"no image\n")
        return HttpReply(200, image, "image/jpeg")
