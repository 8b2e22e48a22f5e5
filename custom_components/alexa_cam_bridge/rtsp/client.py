"""Upstream RTSP client: talks to a camera over TCP (interleaved RTP), and probes it.

:class:`RtspClient` is an ``asyncio.Protocol``: received bytes go straight into the
sans-IO :class:`~.messages.RtspParser`; responses resolve the pending request's future;
``$`` frames are handed in batches (one call per received chunk) to ``on_frames``, which
the relay fans out to its viewers. Basic and Digest authentication to the camera are
answered once per 401; a keep-alive (GET_PARAMETER when offered, else OPTIONS) runs at
half the session timeout while a session exists.

:func:`probe` DESCRIBEs a camera and reports its codecs and video size
(:class:`ProbeResult`), reading the SPS from ``sprop-parameter-sets`` or - when the SDP
has none - from the first in-band SPS after a short SETUP/PLAY.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from . import auth, h264, sdp
from .messages import (
    Headers,
    InterleavedFrame,
    RtspParseError,
    RtspParser,
    RtspRequest,
    RtspResponse,
    TransportSpec,
    format_transport,
    parse_session,
    parse_transport,
    serialize_request,
    serialize_response,
    split_rtsp_url,
)

_LOGGER = logging.getLogger(__name__)

USER_AGENT = "alexa_cam_bridge"
FramesCallback = Callable[[list[InterleavedFrame]], None]


class RtspClientError(Exception):
    """The camera could not be reached or answered with an error."""

    def __init__(self, message: str, status: int | None = None) -> None:
        """Record a message and the RTSP status (None for transport errors)."""
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class ProbeResult:
    """What a camera offers, for the Alexa discovery/stream answer."""

    h264: bool
    video_codec: str | None
    width: int | None = None
    height: int | None = None
    profile: str | None = None
    audio_codec: str | None = None
    sdp: str = ""
    notes: list[str] = field(default_factory=list)


def _insecure_tls_context() -> ssl.SSLContext:
    """Return the context for ``rtsps://`` cameras: LAN devices with self-signed certs."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class RtspClient(asyncio.Protocol):
    """One RTSP/TCP connection to a camera."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        on_frames: FramesCallback | None = None,
    ) -> None:
        """Prepare a client for ``url`` (credentials in the URL are used for auth)."""
        parts = split_rtsp_url(url)
        self.url = parts.without_credentials()
        self._parts = parts
        self._user = parts.user
        self._password = parts.password
        self.timeout = timeout
        self.on_frames = on_frames
        self._parser = RtspParser(role="client", max_body=1 << 20)
        self._transport: asyncio.Transport | None = None
        self._cseq = 0
        self._pending: dict[int, asyncio.Future[RtspResponse]] = {}
        self._lock = asyncio.Lock()
        self._challenge: list[str] | None = None
        self._nc = 0
        self.session: str | None = None
        self.session_timeout = 60
        self.public: set[str] = set()
        self._keepalive: asyncio.Task[None] | None = None
        self.closed: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
        self.bytes_received = 0

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Remember the transport."""
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        """Parse received bytes; dispatch responses and frames."""
        self.bytes_received += len(data)
        try:
            messages = self._parser.feed(data)
        except RtspParseError as err:
            self._fail(RtspClientError(f"bad data from camera: {err}"))
            return
        frames: list[InterleavedFrame] = []
        for message in messages:
            if isinstance(message, InterleavedFrame):
                frames.append(message)
            elif isinstance(message, RtspResponse):
                cseq = message.cseq
                fut = self._pending.pop(cseq, None) if cseq is not None else None
                if fut is not None and not fut.done():
                    fut.set_result(message)
            else:
                self._answer_server_request(message)
        if frames and self.on_frames is not None:
            self.on_frames(frames)

    def connection_lost(self, exc: Exception | None) -> None:
        """Fail pending requests and signal the end of the connection."""
        self._fail(exc or RtspClientError("camera closed the connection"))

    # -- API ---------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the TCP (or TLS for rtsps://) connection."""
        loop = asyncio.get_running_loop()
        ssl_ctx = _insecure_tls_context() if self._parts.scheme == "rtsps" else None
        try:
            async with asyncio.timeout(self.timeout):
                await loop.create_connection(
                    lambda: self, self._parts.host, self._parts.port, ssl=ssl_ctx
                )
        except (OSError, TimeoutError) as err:
            raise RtspClientError(f"cannot connect to camera: {err}") from err
        sock = self._transport.get_extra_info("socket") if self._transport else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def request(
        self, method: str, uri: str | None = None, headers: Headers | None = None
    ) -> RtspResponse:
        """Send a request (authenticating after a 401) and return the final response."""
        uri = uri or self.url
        response = await self._send(method, uri, headers)
        if response.status == 401 and self._user is not None:
            self._challenge = response.headers.get_all("WWW-Authenticate")
            self._nc = 0
            response = await self._send(method, uri, headers)
        return response

    async def _send(self, method: str, uri: str, headers: Headers | None) -> RtspResponse:
        if self._transport is None or self.closed.done():
            raise RtspClientError("not connected")
        hdrs = headers.copy() if headers is not None else Headers()
        async with self._lock:
            self._cseq += 1
            cseq = self._cseq
            hdrs["CSeq"] = str(cseq)
            hdrs["User-Agent"] = USER_AGENT
            if self.session is not None and "Session" not in hdrs:
                hdrs["Session"] = self.session
            if self._challenge and self._user is not None:
                self._nc += 1
                value = auth.client_authorization(
                    self._challenge,
                    method=method,
                    uri=uri,
                    username=self._user,
                    password=self._password or "",
                    nc=self._nc,
                )
                if value is not None:
                    hdrs["Authorization"] = value
            fut: asyncio.Future[RtspResponse] = asyncio.get_running_loop().create_future()
            self._pending[cseq] = fut
            self._transport.write(serialize_request(RtspRequest(method, uri, hdrs)))
        try:
            async with asyncio.timeout(self.timeout):
                return await asyncio.shield(fut)
        except TimeoutError as err:
            raise RtspClientError(f"camera did not answer {method} in time") from err
        finally:
            self._pending.pop(cseq, None)

    async def describe(self) -> tuple[str, str]:
        """DESCRIBE the URL; return ``(sdp_text, base_url)``."""
        response = await self.request("DESCRIBE", headers=Headers({"Accept": "application/sdp"}))
        _check(response, "DESCRIBE")
        base = response.headers.get("Content-Base") or response.headers.get("Content-Location")
        public = response.headers.get("Public")
        if public:
            self.public = {m.strip().upper() for m in public.split(",")}
        return response.body.decode("utf-8", "replace"), base or self.url

    async def setup(self, track_url: str, channels: tuple[int, int]) -> TransportSpec:
        """SETUP a track over TCP interleaved ``channels``; return the camera's transport."""
        spec = TransportSpec(protocol="RTP/AVP/TCP", interleaved=channels)
        response = await self.request(
            "SETUP", track_url, Headers({"Transport": format_transport(spec)})
        )
        _check(response, "SETUP")
        session = response.headers.get("Session")
        if session and self.session is None:
            session_id, timeout = parse_session(session)
            self.session = session_id
            if timeout:
                self.session_timeout = timeout
        transport = response.headers.get("Transport")
        if not transport:
            return spec
        return parse_transport(transport)[0]

    async def play(self, url: str | None = None) -> RtspResponse:
        """PLAY the session (no Range: live); start the keep-alive."""
        response = await self.request("PLAY", url, Headers({"Range": "npt=0.000-"}))
        _check(response, "PLAY")
        if self._keepalive is None:
            self._keepalive = asyncio.create_task(self._keep_alive(), name="rtsp keepalive")
        return response

    async def _keep_alive(self) -> None:
        interval = max(5.0, self.session_timeout / 2)
        method = "GET_PARAMETER" if "GET_PARAMETER" in self.public else "OPTIONS"
        while True:
            await asyncio.sleep(interval)
            try:
                await self.request(method)
            except RtspClientError as err:
                _LOGGER.debug("camera keep-alive failed: %s", err)
                return

    async def close(self, *, teardown: bool = True) -> None:
        """TEARDOWN (best effort, bounded) and close the connection."""
        if self._keepalive is not None:
            self._keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keepalive
            self._keepalive = None
        if teardown and self.session is not None and not self.closed.done():
            with contextlib.suppress(RtspClientError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._send("TEARDOWN", self.url, None)
        if self._transport is not None:
            self._transport.close()
        self._fail(None)

    # -- internals ---------------------------------------------------------------------

    def _answer_server_request(self, request: RtspRequest) -> None:
        if self._transport is None:
            return
        response = RtspResponse.make(
            501 if request.method != "OPTIONS" else 200, cseq=request.headers.get("CSeq")
        )
        self._transport.write(serialize_response(response))

    def _fail(self, exc: Exception | None) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(RtspClientError(f"connection lost: {exc}"))
        self._pending.clear()
        if not self.closed.done():
            self.closed.set_result(exc)
        if self._keepalive is not None and self._keepalive is not asyncio.current_task():
            self._keepalive.cancel()
        if exc is not None and self._transport is not None:
            self._transport.abort()


def _check(response: RtspResponse, what: str) -> None:
    if response.status != 200:
        raise RtspClientError(
            f"camera answered {what} with {response.status} {response.reason}",
            status=response.status,
        )


def probe_from_sdp(sdp_text: str, base_url: str, in_band: Iterable[bytes] = ()) -> ProbeResult:
    """Build a :class:`ProbeResult` from a camera SDP (+ parameter sets seen in-band)."""
    description = sdp.parse_sdp(sdp_text)
    codec = sdp.video_codec_name(description)
    selected, notes = sdp.select_tracks(description, base_url, video_only=False)
    result = ProbeResult(h264=bool(selected), video_codec=codec, sdp=sdp_text, notes=notes)
    parameter_sets = list(in_band)
    for track in selected:
        if track.kind == "audio":
            result.audio_codec = "AAC" if track.encoding == "MPEG4-GENERIC" else "G711"
        else:
            try:
                sprop = h264.parse_sprop_parameter_sets(track.fmtp.get("sprop-parameter-sets", ""))
            except ValueError:
                notes.append("invalid sprop-parameter-sets")
                sprop = []
            parameter_sets = [*sprop, *parameter_sets]
    for nal in parameter_sets:
        if nal and nal[0] & 0x1F == h264.NAL_SPS:
            try:
                info = h264.parse_sps(nal)
            except ValueError:
                notes.append("unreadable SPS")
                continue
            result.width, result.height = info.width, info.height
            result.profile = info.profile_name
            break
    return result


async def probe(url: str, *, timeout: float = 8.0) -> ProbeResult:  # noqa: ASYNC109
    """DESCRIBE a camera and report what it offers.

    Width, height and profile come from the SDP's ``sprop-parameter-sets``; when it has
    none, the video track is played briefly until the first in-band SPS (without one in
    time the size stays None, with a note). Never raises: a camera that cannot be
    described is reported as ``h264=False, video_codec=None`` with a note.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    found: list[bytes] = []
    got_sps = asyncio.Event()

    def on_frames(frames: list[InterleavedFrame]) -> None:
        for frame in frames:
            if frame.channel != 0 or len(frame.payload) <= 12:
                continue
            for nal in h264.extract_parameter_sets(
                frame.payload[12 + 4 * (frame.payload[0] & 0x0F) :]
            ):
                found.append(nal)
                if nal[0] & 0x1F == h264.NAL_SPS:
                    got_sps.set()

    client = RtspClient(url, timeout=timeout, on_frames=on_frames)
    result: ProbeResult | None = None
    try:
        async with asyncio.timeout(timeout):
            await client.connect()
            sdp_text, base = await client.describe()
            result = probe_from_sdp(sdp_text, base)
            if not result.h264 or result.width is not None:
                return result
            tracks, _ = sdp.select_tracks(sdp.parse_sdp(sdp_text), base, video_only=True)
            await client.setup(tracks[0].control, (0, 1))
            await client.play(base)
            async with asyncio.timeout(max(0.1, deadline - loop.time())):
                await got_sps.wait()
            return probe_from_sdp(sdp_text, base, found)
    except (RtspClientError, OSError, ValueError, TimeoutError) as err:
        reason = "timed out" if isinstance(err, TimeoutError) else str(err)
        if result is not None:  # described fine; only the size is unknown
            result.notes.append(f"no SPS in the SDP or in band ({reason})")
            return result
        return ProbeResult(h264=False, video_codec=None, notes=[f"probe failed: {reason}"])
    finally:
        await client.close()
