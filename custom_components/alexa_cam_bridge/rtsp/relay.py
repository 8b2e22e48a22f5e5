"""Camera relay: one upstream RTSP session per camera, fanned out to every viewer.

Life cycle
    The upstream starts on the first viewer (or :meth:`CameraRelay.prepare`) and stops
    ``grace_seconds`` after the last viewer has gone, unless the camera is ``keep_warm``.
    A lost or failed upstream is retried with exponential backoff plus jitter (1 s .. 30 s)
    while anyone wants the camera; a new viewer's DESCRIBE cuts a backoff wait short.
    When the upstream is lost its viewers are ended at once (their connections closed
    without a TEARDOWN): their RTP stream would otherwise continue with another SSRC and
    sequence space, which players handle badly.

Media path
    RTP is passed through untouched. The upstream's interleaved frames arrive in batches
    (one per received TCP chunk); each batch is framed once per packet and written to
    each viewer's transport in one ``write`` (the TLS transport's buffer is the viewer's
    bounded queue). A viewer whose backlog exceeds ``Limits.viewer_queue_bytes`` skips
    everything until the next keyframe (and until its backlog has halved); the camera and
    the other viewers never wait for it.

GOP cache
    Every packet since the latest keyframe start (SPS/IDR, :class:`~.h264.GopTracker`) is
    kept, preceded by the latest packet of every other track, so a new viewer starts on
    the keyframe at once with every track's first packet known (RTP-Info). The cache is
    bounded by ``Limits.gop_cache_bytes``: a GOP that grows past it is dropped and new
    viewers wait for the next keyframe. Memory per camera is therefore at most
    ``gop_cache_bytes`` plus one receive chunk, plus each viewer's own bounded backlog.

Sender Reports
    At PLAY every track of the viewer gets an SR first, mapping the RTP timestamp of the
    first packet it will receive (so the SR is never later than the cached IDR) to wall
    time: from the camera's latest SR when there is one, else from the arrival time of the
    track's first packet and its RTP clock. Camera SRs are forwarded; while a camera sends
    none (or stops sending them), the relay generates one per track every 2 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import struct
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import h264, sdp
from .client import ProbeResult, RtspClient, RtspClientError, probe_from_sdp
from .limits import Limits
from .messages import InterleavedFrame
from .rtp import SenderReport, build_sender_report, ntp_from_unix, parse_rtcp

_LOGGER = logging.getLogger(__name__)

SDP_WAIT = 5.0
"""Longest a DESCRIBE waits for the camera's SDP (every reply must come within 6 s)."""
SR_INTERVAL = 2.0
"""Seconds between generated Sender Reports while the camera sends none."""
CAMERA_SR_STALE = 5.0
"""A camera SR older than this no longer suppresses generated SRs."""
UPSTREAM_STALL = 10.0
"""Seconds without any data from the camera before the upstream is declared dead."""
BACKOFF_MIN = 1.0
BACKOFF_MAX = 30.0
CNAME = "alexa_cam_bridge"
SESSION_NAME = "alexa_cam_bridge"

_RTP_HEAD = struct.Struct("!BBHII")
_DOLLAR = 0x24


class RelayState(enum.StrEnum):
    """Upstream state of a relay."""

    IDLE = "idle"
    CONNECTING = "connecting"
    STREAMING = "streaming"
    BACKOFF = "backoff"
    UNSUPPORTED = "unsupported"
    STOPPED = "stopped"


class RelayUnavailable(Exception):
    """The relay cannot serve a viewer now; ``status`` is the RTSP code to answer."""

    def __init__(self, status: int, reason: str) -> None:
        """Record the RTSP status and a human-readable reason."""
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _frame(channel: int, payload: bytes) -> bytes:
    n = len(payload)
    return bytes((_DOLLAR, channel, n >> 8, n & 0xFF)) + payload


def _signed32(delta: int) -> int:
    delta &= 0xFFFFFFFF
    return delta - (1 << 32) if delta & 0x80000000 else delta


@dataclass(slots=True)
class RelayPacket:
    """An RTP packet as relayed: framed for the default channel ``2 * track``."""

    track: int
    framed: bytes
    seq: int
    timestamp: int
    keyframe: bool = False


@dataclass(slots=True)
class RelayRtcp:
    """An RTCP packet for a track: framed for the default channel ``2 * track + 1``."""

    track: int
    framed: bytes


RelayItem = RelayPacket | RelayRtcp
SrFactory = Callable[[int, int], RelayRtcp | None]


@dataclass(slots=True)
class TrackState:
    """Per-track upstream state."""

    index: int
    kind: str
    codec: str
    clock_rate: int
    control: str
    ssrc: int | None = None
    last_seq: int | None = None
    last_ts: int | None = None
    last_arrival: float = 0.0
    anchor: tuple[int, float] | None = None
    camera_sr: SenderReport | None = None
    camera_sr_at: float = 0.0
    last_generated_sr: float = 0.0
    packets: int = 0
    octets: int = 0
    last_packet: RelayPacket | None = None

    def wall_time_of(self, rtp_ts: int) -> float:
        """Map an RTP timestamp of this track to Unix time."""
        if self.camera_sr is not None:
            delta = _signed32(rtp_ts - self.camera_sr.rtp_timestamp)
            return self.camera_sr.unix_time + delta / self.clock_rate
        if self.anchor is not None:
            delta = _signed32(rtp_ts - self.anchor[0])
            return self.anchor[1] + delta / self.clock_rate
        return time.time()

    def sender_report(self, rtp_ts: int) -> bytes | None:
        """Build an SR (with CNAME) mapping ``rtp_ts``; None before the first packet."""
        if self.ssrc is None:
            return None
        seconds, fraction = ntp_from_unix(self.wall_time_of(rtp_ts))
        report = SenderReport(
            ssrc=self.ssrc,
            ntp_seconds=seconds,
            ntp_fraction=fraction,
            rtp_timestamp=rtp_ts & 0xFFFFFFFF,
            packet_count=self.packets,
            octet_count=self.octets,
        )
        return build_sender_report(report, cname=CNAME)


class Viewer:
    """One playing client of a relay: a transport and the channels it set up.

    ``channels`` maps a relay track index to the client's RTP channel (RTCP is the next
    one). ``on_end`` is called once when the relay ends the viewer (camera lost/removed).
    """

    def __init__(
        self,
        transport: asyncio.WriteTransport,
        channels: dict[int, int],
        *,
        queue_limit: int,
        on_end: Callable[[str], None],
        video_track: int | None = 0,
    ) -> None:
        """Create a viewer (not yet attached to a relay)."""
        self.transport = transport
        self.channels = channels
        self.queue_limit = queue_limit
        self.on_end = on_end
        self.video_track = video_track if video_track in channels else None
        self._default = all(ch == 2 * track for track, ch in channels.items())
        self.skipping = False
        self.skips = 0
        self.dropped = 0
        self.sent = 0
        self.ended = False
        self.pending_sr: set[int] = set()

    def bytes_for(self, item: RelayItem) -> bytes:
        if self._default:
            return item.framed
        channel = self.channels[item.track] + (1 if isinstance(item, RelayRtcp) else 0)
        return bytes((_DOLLAR, channel)) + item.framed[2:]

    def send(self, items: Iterable[RelayItem], sr_for: SrFactory | None = None) -> None:
        """Write the items this viewer wants in one write, skipping while it lags.

        A track still waiting for its first Sender Report (``pending_sr``) gets one from
        ``sr_for`` right before its first packet.
        """
        if self.ended or self.transport.is_closing():
            return
        backlog = self.transport.get_write_buffer_size()
        if not self.skipping and backlog > self.queue_limit:
            self.skipping = True
            self.skips += 1
        parts: list[bytes] = []
        for item in items:
            if item.track not in self.channels:
                continue
            if isinstance(item, RelayPacket):
                if self.skipping:
                    if self._may_resume(item, backlog):
                        self.skipping = False
                    else:
                        self.dropped += 1
                        continue
                if self.pending_sr and item.track in self.pending_sr:
                    self.pending_sr.discard(item.track)
                    report = sr_for(item.track, item.timestamp) if sr_for else None
                    if report is not None:
                        parts.append(self.bytes_for(report))
            parts.append(self.bytes_for(item))
        if parts:
            self.sent += len(parts)
            self.transport.write(b"".join(parts) if len(parts) > 1 else parts[0])

    def _may_resume(self, item: RelayPacket, backlog: int) -> bool:
        if backlog > self.queue_limit // 2:
            return False
        if self.video_track is None:
            return True
        return item.keyframe and item.track == self.video_track

    def end(self, reason: str) -> None:
        """End this viewer (once)."""
        if not self.ended:
            self.ended = True
            self.on_end(reason)


@dataclass(slots=True)
class ViewerStart:
    """What a PLAY needs: first (seq, rtptime) per track and the bytes to send first."""

    rtp_info: dict[int, tuple[int, int]]
    initial: bytes
    from_cache: bool
    cached_packets: int = 0


@dataclass(slots=True)
class RestreamTrack:
    """A track as the relay offers it to viewers (``control`` is ``trackID=N``)."""

    index: int
    kind: str
    codec: str
    control: str


@dataclass(slots=True)
class _Upstream:
    sdp_text: str
    base_url: str
    description: sdp.SessionDescription
    tracks: list[TrackState] = field(default_factory=list)
    upstream_tracks: list[sdp.Track] = field(default_factory=list)
    has_sprop: bool = False
    parameter_sets: list[bytes] = field(default_factory=list)


def _sprop_nals(track: sdp.Track) -> list[bytes]:
    """The parameter sets in a track's ``sprop-parameter-sets`` (empty when invalid)."""
    try:
        nals = h264.parse_sprop_parameter_sets(track.fmtp.get("sprop-parameter-sets", ""))
    except ValueError:
        return []
    return [n for n in nals if n]


class CameraRelay:
    """The shared upstream of one camera and its viewers."""

    def __init__(
        self,
        camera_id: str,
        *,
        source: Callable[[str], Awaitable[str | None]],
        video_only: bool = False,
        keep_warm: bool = False,
        grace_seconds: float = 30.0,
        limits: Limits | None = None,
    ) -> None:
        """Configure a relay; nothing runs before :meth:`prepare` or a viewer."""
        self.camera_id = camera_id
        self._source = source
        self.video_only = video_only
        self.keep_warm = keep_warm
        self.grace_seconds = grace_seconds
        self.limits = limits if limits is not None else Limits()
        self.state = RelayState.IDLE
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._grace: asyncio.TimerHandle | None = None
        self._leases = 0
        self._viewers: set[Viewer] = set()
        self._client: RtspClient | None = None
        self._up: _Upstream | None = None
        self._by_channel: dict[int, tuple[TrackState, bool]] = {}
        self._restream_sdp: str | None = None
        self._gop: list[RelayPacket] = []
        self._gop_bytes = 0
        self._gop_valid = False
        self._gop_tracker = h264.GopTracker()
        self._changed = asyncio.Event()
        self._last_data = 0.0
        self.reconnects = 0
        self.packets_in = 0
        self._closed = False
        self._wake = asyncio.Event()

    # -- life cycle --------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the upstream task exists (connecting, streaming or backing off)."""
        return self._task is not None and not self._task.done()

    def prepare(self) -> None:
        """Start the upstream in the background (or keep it); grace-stop if nobody comes."""
        self._ensure_running()
        if self._leases == 0:
            self._arm_grace()

    def acquire(self) -> None:
        """Register interest (a viewer session); starts the upstream if needed."""
        self._leases += 1
        self._cancel_grace()
        self._ensure_running()

    def release(self) -> None:
        """Drop interest; the last release arms the grace timer."""
        self._leases = max(0, self._leases - 1)
        if self._leases == 0:
            self._arm_grace()

    def _ensure_running(self) -> None:
        if self.running or self._closed:
            return
        if self.state is RelayState.UNSUPPORTED:
            self.last_error = None
        self.state = RelayState.CONNECTING
        self._task = asyncio.create_task(self._run(), name=f"relay {self.camera_id}")

    def _arm_grace(self) -> None:
        self._cancel_grace()
        if self.keep_warm or self._closed:
            return
        loop = asyncio.get_running_loop()
        self._grace = loop.call_later(self.grace_seconds, self._grace_expired)

    def _cancel_grace(self) -> None:
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None

    def _grace_expired(self) -> None:
        self._grace = None
        if self._leases == 0 and not self.keep_warm and self._task is not None:
            self._task.cancel()

    def set_options(self, *, video_only: bool, keep_warm: bool) -> None:
        """Apply new camera options; a video_only change restarts the upstream."""
        restart = video_only != self.video_only and self.running
        self.video_only = video_only
        self.keep_warm = keep_warm
        if keep_warm:
            self._cancel_grace()
            self._ensure_running()
        elif self._leases == 0 and self.running:
            self._arm_grace()
        if restart and self._client is not None:
            self._client.connection_lost(RtspClientError("camera options changed"))

    async def stop(self) -> None:
        """Stop for good: end the upstream and every viewer; no task or timer is left.

        A stopped relay never starts again (the restreamer makes a new one if needed).
        """
        self._closed = True
        self._cancel_grace()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._end_viewers("camera stream stopped")
        self.state = RelayState.STOPPED

    # -- upstream ----------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = BACKOFF_MIN
        try:
            while True:
                streamed = False
                try:
                    streamed = await self._session()
                except RelayUnavailable as err:
                    self.last_error = err.reason
                    self.state = RelayState.UNSUPPORTED
                    self._pulse()
                    _LOGGER.warning("Camera %s cannot be relayed: %s", self.camera_id, err)
                    return
                except Exception as err:  # source() may raise anything
                    self.last_error = str(err) or type(err).__name__
                    _LOGGER.debug("Camera %s upstream failed: %s", self.camera_id, err)
                if streamed:
                    backoff = BACKOFF_MIN
                self.state = RelayState.BACKOFF
                self._pulse()
                self.reconnects += 1
                self._wake.clear()
                delay = backoff * random.uniform(0.8, 1.2)  # noqa: S311
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()  # a new viewer cuts the wait short
                backoff = min(backoff * 2, BACKOFF_MAX)
                self.state = RelayState.CONNECTING
        finally:
            if self.state is not RelayState.UNSUPPORTED:
                self.state = RelayState.IDLE
            self._pulse()
            if self._task is asyncio.current_task():
                self._task = None

    async def _session(self) -> bool:
        """Run one upstream session; return True if media flowed."""
        url = await self._source(self.camera_id)
        if not url:
            raise RtspClientError("camera has no stream source")
        client = RtspClient(url, timeout=5.0, on_frames=self._on_frames)
        self._client = client
        streamed = False
        packets_before = self.packets_in
        try:
            await client.connect()
            sdp_text, base = await client.describe()
            up = self._select(sdp_text, base)
            for track, upstream in zip(up.tracks, up.upstream_tracks, strict=True):
                channels = (2 * track.index, 2 * track.index + 1)
                await client.setup(upstream.control, channels)
                self._by_channel[channels[0]] = (track, False)
                self._by_channel[channels[1]] = (track, True)
            self._up = up
            self._last_data = time.monotonic()
            await client.play(base)
            self.state = RelayState.STREAMING
            self.last_error = None
            self._maybe_build_sdp()
            self._ticker = asyncio.create_task(self._tick(), name=f"relay tick {self.camera_id}")
            error = await client.closed
            streamed = self.packets_in > packets_before
            self.last_error = f"camera connection ended: {error or 'closed'}"
        finally:
            if self._ticker is not None:
                self._ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._ticker
                self._ticker = None
            self._client = None
            self._reset_stream()
            self._end_viewers("camera connection lost")
            await asyncio.shield(client.close())
        return streamed

    def _select(self, sdp_text: str, base: str) -> _Upstream:
        description = sdp.parse_sdp(sdp_text)
        selected, notes = sdp.select_tracks(description, base, video_only=self.video_only)
        for note in notes:
            _LOGGER.debug("Camera %s: %s", self.camera_id, note)
        if not selected:
            codec = sdp.video_codec_name(description)
            raise RelayUnavailable(
                415, f"camera video codec {codec or '(none)'} is not supported (needs H.264)"
            )
        up = _Upstream(sdp_text=sdp_text, base_url=base, description=description)
        for track in selected:
            up.tracks.append(
                TrackState(
                    index=track.index,
                    kind=track.kind,
                    codec=track.encoding,
                    clock_rate=track.clock_rate,
                    control=f"trackID={track.index}",
                )
            )
            up.upstream_tracks.append(track)
        up.has_sprop = bool(selected[0].fmtp.get("sprop-parameter-sets"))
        up.parameter_sets = _sprop_nals(selected[0])
        return up

    def _maybe_build_sdp(self) -> None:
        up = self._up
        if up is None or self._restream_sdp is not None:
            return
        sprop: str | None = None
        if not up.has_sprop:
            sps = [p for p in up.parameter_sets if p[0] & 0x1F == h264.NAL_SPS]
            pps = [p for p in up.parameter_sets if p[0] & 0x1F == h264.NAL_PPS]
            if not sps or not pps:
                return  # wait for the in-band parameter sets
            sprop = h264.sprop_parameter_sets(sps[-1], pps[-1])
        self._restream_sdp = sdp.build_restream_sdp(
            up.description,
            up.upstream_tracks,
            sprop=sprop,
            session_name=SESSION_NAME,
            origin_address="0.0.0.0",  # noqa: S104 - SDP origin, not a bind
        )
        self._pulse()

    def _reset_stream(self) -> None:
        self._by_channel = {}
        self._up = None
        self._restream_sdp = None
        self._gop = []
        self._gop_bytes = 0
        self._gop_valid = False
        self._gop_tracker = h264.GopTracker()

    async def _tick(self) -> None:
        """Once a second: generate SRs where the camera sends none; detect a stall."""
        while True:
            await asyncio.sleep(1.0)
            now_mono = time.monotonic()
            if now_mono - self._last_data > UPSTREAM_STALL and self._client is not None:
                self._client.connection_lost(RtspClientError("camera stopped sending"))
                return
            up = self._up
            if up is None or not self._viewers:
                continue
            items: list[RelayItem] = []
            for track in up.tracks:
                if (
                    track.last_ts is None
                    or now_mono - track.camera_sr_at < CAMERA_SR_STALE
                    or now_mono - track.last_generated_sr < SR_INTERVAL
                ):
                    continue
                report = track.sender_report(track.last_ts)
                if report is not None:
                    track.last_generated_sr = now_mono
                    items.append(RelayRtcp(track.index, _frame(2 * track.index + 1, report)))
            if items:
                for viewer in list(self._viewers):
                    viewer.send(items)

    # -- media path --------------------------------------------------------------------

    def _on_frames(self, frames: list[InterleavedFrame]) -> None:
        now = time.time()
        self._last_data = time.monotonic()
        items: list[RelayItem] = []
        for frame in frames:
            entry = self._by_channel.get(frame.channel)
            if entry is None:
                continue
            track, is_rtcp = entry
            payload = frame.payload
            if is_rtcp:
                self._on_rtcp(track, payload)
                items.append(RelayRtcp(track.index, _frame(2 * track.index + 1, payload)))
                continue
            if len(payload) < 12 or payload[0] >> 6 != 2:
                continue
            _, _, seq, ts, ssrc = _RTP_HEAD.unpack_from(payload)
            if track.ssrc != ssrc:
                track.ssrc = ssrc
                track.anchor = (ts, now)
            track.last_seq = seq
            track.last_ts = ts
            track.last_arrival = now
            track.packets += 1
            track.octets += len(payload) - 12
            packet = RelayPacket(track.index, _frame(2 * track.index, payload), seq, ts)
            if track.kind == "video":
                self._inspect_video(packet, payload)
            track.last_packet = packet
            self._cache(packet)
            items.append(packet)
        self.packets_in += len(items)
        if items:
            for viewer in list(self._viewers):
                viewer.send(items, self._sr_item)

    def _inspect_video(self, packet: RelayPacket, payload: bytes) -> None:
        header_len = 12 + 4 * (payload[0] & 0x0F)
        if payload[0] & 0x10 and len(payload) >= header_len + 4:
            header_len += 4 + 4 * int.from_bytes(payload[header_len + 2 : header_len + 4])
        body = memoryview(payload)[header_len:]
        if payload[0] & 0x20 and body:
            body = body[: len(body) - payload[-1]]
        if not body:
            return
        packet.keyframe = self._gop_tracker.is_gop_start(body)
        nal_type = body[0] & 0x1F
        if nal_type in (h264.NAL_SPS, h264.NAL_PPS, h264.NAL_STAP_A):
            found = h264.extract_parameter_sets(body)
            up = self._up
            if found and up is not None:
                for nal in found:
                    kind = nal[0] & 0x1F
                    if not any(p == nal for p in up.parameter_sets):
                        up.parameter_sets = [
                            p for p in up.parameter_sets if p[0] & 0x1F != kind
                        ] + [nal]
                if self._restream_sdp is None:
                    self._maybe_build_sdp()

    def _on_rtcp(self, track: TrackState, payload: bytes) -> None:
        try:
            packets = parse_rtcp(payload)
        except ValueError:
            return
        for packet in packets:
            if isinstance(packet, SenderReport) and (
                track.ssrc is None or packet.ssrc == track.ssrc
            ):
                track.camera_sr = packet
                track.camera_sr_at = time.monotonic()

    def _cache(self, packet: RelayPacket) -> None:
        if packet.keyframe:
            seeds = [
                t.last_packet
                for t in (self._up.tracks if self._up else [])
                if t.index != packet.track and t.last_packet is not None
            ]
            self._gop = [*seeds, packet]
            self._gop_bytes = sum(len(p.framed) for p in self._gop)
            self._gop_valid = True
            self._pulse()
            return
        if not self._gop_valid:
            return
        self._gop.append(packet)
        self._gop_bytes += len(packet.framed)
        if self._gop_bytes > self.limits.gop_cache_bytes:
            _LOGGER.debug("Camera %s GOP exceeds the cache bound; dropped", self.camera_id)
            self._gop = []
            self._gop_bytes = 0
            self._gop_valid = False

    def _pulse(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # -- viewers -----------------------------------------------------------------------

    async def wait_sdp(self, timeout: float = SDP_WAIT) -> tuple[str, list[RestreamTrack]]:  # noqa: ASYNC109
        """Return the restream SDP and its tracks, waiting up to ``timeout`` seconds.

        Raises :class:`RelayUnavailable` (415 unsupported codec, 503 camera unreachable).
        """
        self._ensure_running()
        if self.state is RelayState.BACKOFF:
            self._wake.set()  # someone wants the camera now: retry at once
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._restream_sdp is None:
            if self._closed:
                raise RelayUnavailable(503, "camera stream stopped")
            if self.state is RelayState.UNSUPPORTED:
                raise RelayUnavailable(415, self.last_error or "unsupported camera")
            remaining = deadline - loop.time()
            if remaining <= 0:
                reason = self.last_error or "camera stream not available yet"
                raise RelayUnavailable(503, reason)
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await changed.wait()
        assert self._up is not None
        tracks = [RestreamTrack(t.index, t.kind, t.codec, t.control) for t in self._up.tracks]
        return self._restream_sdp, tracks

    async def wait_keyframe(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait until a keyframe is cached (True) or ``timeout`` passes (False)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._gop_valid:
            remaining = deadline - loop.time()
            if remaining <= 0 or self._up is None:
                return self._gop_valid
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await changed.wait()
        return True

    def attach(self, viewer: Viewer) -> ViewerStart:
        """Start ``viewer``: plan its first packets and SRs, then fan out to it.

        From the GOP cache when there is one: every track starts on its first cached
        packet (a track with none in the cache starts on its latest packet), each preceded
        by an SR mapping exactly that packet's timestamp. Without a cached keyframe the
        viewer waits for the next one (RTP-Info then predicts the next sequence number).
        The caller writes its PLAY response, then ``ViewerStart.initial``, before yielding
        to the event loop, so no packet is lost or reordered in between.
        """
        up = self._up
        if up is None:
            raise RelayUnavailable(503, "camera stream not available")
        tracks = {t.index: t for t in up.tracks if t.index in viewer.channels}
        first: dict[int, tuple[int, int]] = {}
        cached: list[RelayPacket] = []
        if self._gop_valid:
            in_gop = {p.track for p in self._gop}
            for index, track in tracks.items():
                if index not in in_gop and track.last_packet is not None:
                    cached.append(track.last_packet)
            cached += [p for p in self._gop if p.track in tracks]
            for packet in cached:
                first.setdefault(packet.track, (packet.seq, packet.timestamp))
        else:
            viewer.skipping = True
            for index, track in tracks.items():
                if track.last_seq is not None and track.last_ts is not None:
                    first[index] = ((track.last_seq + 1) & 0xFFFF, track.last_ts)
        srs: list[RelayItem] = []
        for index in tracks:
            report = self._sr_item(index, first[index][1]) if index in first else None
            if report is None or not cached:
                viewer.pending_sr.add(index)
            else:
                srs.append(report)
        parts = [viewer.bytes_for(item) for item in (*srs, *cached)]
        self._viewers.add(viewer)
        return ViewerStart(
            rtp_info=first,
            initial=b"".join(parts),
            from_cache=bool(cached),
            cached_packets=len(cached),
        )

    def _sr_item(self, index: int, rtp_ts: int) -> RelayRtcp | None:
        up = self._up
        if up is None or index >= len(up.tracks):
            return None
        report = up.tracks[index].sender_report(rtp_ts)
        return None if report is None else RelayRtcp(index, _frame(2 * index + 1, report))

    def has_all_tracks(self) -> bool:
        """True when every track has delivered at least one packet."""
        up = self._up
        return up is not None and all(t.last_packet is not None for t in up.tracks)

    async def wait_all_tracks(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait (bounded) until every track has delivered a packet."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.has_all_tracks():
            if loop.time() >= deadline or self._up is None:
                return False
            await asyncio.sleep(0.02)
        return True

    def detach(self, viewer: Viewer) -> None:
        """Stop sending to ``viewer``."""
        self._viewers.discard(viewer)

    def _end_viewers(self, reason: str) -> None:
        viewers, self._viewers = self._viewers, set()
        for viewer in viewers:
            viewer.end(reason)

    # -- diagnostics -------------------------------------------------------------------

    def probe_result(self) -> ProbeResult | None:
        """Describe the camera from the running upstream (None when not streaming)."""
        up = self._up
        if up is None:
            return None
        return probe_from_sdp(up.sdp_text, up.base_url, up.parameter_sets)

    def stats(self) -> dict[str, Any]:
        """Return diagnostics (no secrets, no URLs)."""
        return {
            "state": str(self.state),
            "last_error": self.last_error,
            "viewers": len(self._viewers),
            "leases": self._leases,
            "keep_warm": self.keep_warm,
            "video_only": self.video_only,
            "gop_cached": self._gop_valid,
            "gop_packets": len(self._gop),
            "gop_bytes": self._gop_bytes,
            "packets_in": self.packets_in,
            "reconnects": self.reconnects,
            "tracks": [
                {"kind": t.kind, "codec": t.codec, "camera_sr": t.camera_sr is not None}
                for t in (self._up.tracks if self._up else [])
            ],
            "viewer_skips": sum(v.skips for v in self._viewers),
        }
