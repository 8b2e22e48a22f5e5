"""RTSP server session: serves one viewer connection (after TLS, from the front door).

Methods: OPTIONS, DESCRIBE, SETUP (TCP interleaved only; channels assigned when the
client names none; UDP gets 461), PLAY (with or without ``Range``; ``RTP-Info`` for every
track with the URL exactly as the client set it up), TEARDOWN, GET_PARAMETER and OPTIONS
as keep-alives, SET_PARAMETER (200 for an empty body, else 451). Anything else: 501.

The stream id is the first path segment of the request URL (``rtsp://`` and ``rtsps://``
both accepted); its grant in the :class:`~..broker.StreamBroker` holds the credentials.
Basic and Digest are both accepted (the grant's type decides the challenge); Digest
nonces are bound to this connection, expire, and answer ``stale=true`` when old. Failed
logins are counted per client address; a blocked address gets 403 and is disconnected.

Timeouts: a request must complete within ``request_timeout`` of its first byte; a client
that is not playing is dropped after ``idle_timeout`` of silence; a playing client must
send something (keep-alive request or RTCP) within ``session_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote

from . import auth
from .limits import Limits
from .messages import (
    Headers,
    InterleavedFrame,
    RtspParseError,
    RtspParser,
    RtspRequest,
    RtspResponse,
    TransportSpec,
    format_rtp_info,
    format_transport,
    parse_session,
    parse_transport,
    serialize_response,
    split_rtsp_url,
)
from .relay import CameraRelay, RelayUnavailable, RestreamTrack, Viewer

_LOGGER = logging.getLogger(__name__)

SERVER_NAME = "alexa_cam_bridge"
PUBLIC_METHODS = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER, SET_PARAMETER"
KEYFRAME_WAIT = 4.0
"""Longest a PLAY waits for the first cached keyframe (replies must come within 6 s)."""
TRACK_WAIT = 1.0
"""Longest a PLAY also waits for every track's first packet (for exact RTP-Info)."""
TEARDOWN_LINGER = 2.0


class GrantLike(Protocol):
    """What the server needs from a stream grant."""

    @property
    def camera_id(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def password(self) -> str: ...
    @property
    def auth_type(self) -> str: ...


class FailureCounter(Protocol):
    """Per-address failed-login accounting (``broker.FailureLimiter``)."""

    def blocked(self, address: str) -> bool: ...
    def record_failure(self, address: str) -> None: ...


@dataclass(slots=True)
class ServerContext:
    """Everything a session needs from the restreamer.

    ``lookup`` finds a grant by stream id; ``relay_for`` returns the camera's relay (None
    when the camera is not exposed).
    """

    lookup: Callable[[str], GrantLike | None]
    relay_for: Callable[[str], CameraRelay | None]
    failures: FailureCounter
    nonces: auth.DigestNonceStore
    limits: Limits = field(default_factory=Limits)


class _Reply(Exception):
    """Answer the current request with ``status`` (and optionally close)."""

    def __init__(
        self, status: int, *, headers: Headers | None = None, close: bool = False, why: str = ""
    ) -> None:
        super().__init__(why or str(status))
        self.status = status
        self.headers = headers
        self.close = close


@dataclass(slots=True)
class _SetupTrack:
    track: RestreamTrack
    url: str
    channels: tuple[int, int]


class RtspServerSession:
    """One client connection speaking RTSP."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        peer: str,
        context: ServerContext,
        initial: bytes = b"",
    ) -> None:
        """Bind a session to a connection; ``initial`` are bytes already read."""
        self._reader = reader
        self._writer = writer
        self._peer = peer
        self._ctx = context
        self._initial = initial
        limits = context.limits
        self._parser = RtspParser(
            role="server",
            max_line=limits.max_line,
            max_header_bytes=limits.max_header_bytes,
            max_headers=limits.max_headers,
            max_body=65536,
        )
        self._connection_id = secrets.token_hex(8)
        self._session_id = secrets.token_hex(8).upper()
        self._stream_id: str | None = None
        self._grant: GrantLike | None = None
        self._relay: CameraRelay | None = None
        self._leased = False
        self._tracks: list[RestreamTrack] = []
        self._setup: dict[int, _SetupTrack] = {}
        self._viewer: Viewer | None = None
        self._ended = asyncio.Event()
        self._close_after_reply = False
        self._end_reason = ""

    @property
    def playing(self) -> bool:
        """True once PLAY started the media."""
        return self._viewer is not None

    async def run(self) -> None:
        """Serve requests until the client leaves, a limit trips or the stream ends."""
        try:
            await self._serve()
        except (ConnectionError, ssl.SSLError, OSError) as err:
            _LOGGER.debug("RTSP client %s: %s", self._peer, err)
        finally:
            self._cleanup()

    def _cleanup(self) -> None:
        self._ctx.nonces.forget_connection(self._connection_id)
        if self._viewer is not None and self._relay is not None:
            self._relay.detach(self._viewer)
        self._viewer = None
        if self._leased and self._relay is not None:
            self._relay.release()
            self._leased = False

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        limits = self._ctx.limits
        data = self._initial
        request_started: float | None = None
        last_activity = loop.time()
        while True:
            if data:
                last_activity = loop.time()
                try:
                    messages = self._parser.feed(data)
                except RtspParseError as err:
                    self._write(
                        RtspResponse.make(err.status, headers=Headers({"Connection": "close"}))
                    )
                    return
                for message in messages:
                    if isinstance(message, InterleavedFrame):
                        continue  # RTCP receiver reports: liveness only
                    if isinstance(message, RtspResponse):
                        continue
                    if not await self._handle(message):
                        return
                # Timeouts count from our last reply (a PLAY may have waited for a keyframe);
                # a partial request keeps the time its first byte came (slowloris bound).
                last_activity = loop.time()
                if not self._parser.buffered:
                    request_started = None
                elif request_started is None or messages:
                    request_started = last_activity
            # How long may we wait for the next bytes?
            if request_started is not None:
                timeout = request_started + limits.request_timeout - loop.time()
                reason = "request timeout"
            elif self.playing:
                timeout = last_activity + limits.session_timeout - loop.time()
                reason = "session timeout"
            else:
                timeout = last_activity + limits.idle_timeout - loop.time()
                reason = "idle timeout"
            read = asyncio.ensure_future(self._reader.read(65536))
            ended = asyncio.ensure_future(self._ended.wait())
            try:
                done, _ = await asyncio.wait(
                    {read, ended}, timeout=max(0.0, timeout), return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                ended.cancel()
                if not read.done():
                    read.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await read
            if self._ended.is_set():
                _LOGGER.debug("RTSP client %s: %s", self._peer, self._end_reason)
                return
            if read not in done:
                _LOGGER.debug("RTSP client %s: %s", self._peer, reason)
                if request_started is not None:
                    self._write(RtspResponse.make(408, headers=Headers({"Connection": "close"})))
                return
            data = read.result()
            if not data:
                return

    def _write(self, response: RtspResponse) -> None:
        if "Server" not in response.headers:
            response.headers.add("Server", SERVER_NAME)
        self._writer.write(serialize_response(response))

    async def _handle(self, request: RtspRequest) -> bool:
        """Answer one request; return False to close the connection."""
        cseq = request.headers.get("CSeq")
        handler = {
            "OPTIONS": self._options,
            "DESCRIBE": self._describe,
            "SETUP": self._setup_track,
            "PLAY": self._play,
            "TEARDOWN": self._teardown,
            "GET_PARAMETER": self._keepalive,
            "SET_PARAMETER": self._set_parameter,
        }.get(request.method)
        after: Callable[[], None] | None = None
        try:
            if handler is None:
                response = RtspResponse.make(501, headers=Headers({"Allow": PUBLIC_METHODS}))
            else:
                result = await handler(request)
                response, after = result if isinstance(result, tuple) else (result, None)
        except _Reply as reply:
            response = RtspResponse.make(reply.status, headers=reply.headers)
            if reply.close:
                self._close_after_reply = True
        if cseq is not None:
            response.headers["CSeq"] = cseq
        if self._setup and response.status < 300 and "Session" not in response.headers:
            response.headers["Session"] = self._session_header()
        if self._close_after_reply:
            response.headers["Connection"] = "close"
        self._write(response)
        if after is not None:
            after()
        if self._close_after_reply:
            with contextlib.suppress(ConnectionError, ssl.SSLError, OSError, TimeoutError):
                async with asyncio.timeout(TEARDOWN_LINGER):
                    await self._writer.drain()
            return False
        return True

    def _session_header(self) -> str:
        return f"{self._session_id};timeout={self._ctx.limits.session_timeout}"

    # -- helpers -----------------------------------------------------------------------

    def _stream_id_of(self, uri: str) -> tuple[str, str]:
        """Return ``(stream_id, rest_of_path)`` of a request URL."""
        try:
            parts = split_rtsp_url(uri)
        except ValueError as err:
            raise _Reply(400, why="bad URL") from err
        path = unquote(parts.path.split("?", 1)[0]).strip()
        stream_id, _, rest = path.lstrip("/").partition("/")
        if not stream_id:
            raise _Reply(404)
        return stream_id, rest

    def _check_session(self, request: RtspRequest) -> None:
        value = request.headers.get("Session")
        if value is None:
            raise _Reply(454)
        try:
            session_id, _ = parse_session(value)
        except ValueError as err:
            raise _Reply(454) from err
        if session_id.upper() != self._session_id:
            raise _Reply(454)

    def _authenticate(self, request: RtspRequest) -> GrantLike:
        """Check the request's credentials against its stream's grant."""
        stream_id, _ = self._stream_id_of(request.uri)
        failures = self._ctx.failures
        if failures.blocked(self._peer):
            raise _Reply(403, close=True, why="too many failed logins")
        grant: GrantLike | None
        if self._grant is not None and stream_id == self._stream_id:
            # Authenticated earlier on this connection: later requests may omit
            # credentials (the TLS connection is the proof), but wrong ones still fail.
            grant = self._grant
            if "Authorization" not in request.headers:
                return grant
            verdict = self._verify(request, grant)
            if verdict == "stale":
                # AOSP reuses its first nonce for the whole session and gives up after a
                # second 401; on the connection that nonce was issued for, an aged nonce
                # with correct credentials is still proof enough.
                return grant
        else:
            grant = self._ctx.lookup(stream_id)
            verdict = "missing" if grant is None else self._verify(request, grant)
        if grant is not None and verdict == "ok":
            if self._stream_id is not None and stream_id != self._stream_id:
                raise _Reply(459, why="one stream per connection")
            self._grant = grant
            self._stream_id = stream_id
            return grant
        stale = verdict == "stale"
        if not stale and "Authorization" in request.headers:
            failures.record_failure(self._peer)
            _LOGGER.info("RTSP login failed from %s", self._peer)
        headers = Headers()
        for value in auth.www_authenticate_headers(
            self._ctx.nonces.issue(self._connection_id),
            stale=stale,
            digest=grant is None or grant.auth_type == "DIGEST",
        ):
            headers.add("WWW-Authenticate", value)
        raise _Reply(401, headers=headers)

    def _verify(self, request: RtspRequest, grant: GrantLike) -> str:
        """Return "ok", "stale" or "bad" for the request's Authorization header."""
        value = request.headers.get("Authorization")
        credentials = auth.parse_authorization(value) if value is not None else None
        if credentials is None:
            return "bad"
        if isinstance(credentials, auth.BasicCredentials):
            ok = auth.verify_basic(credentials, grant.username, grant.password)
            return "ok" if ok else "bad"
        nonce = self._ctx.nonces.check(credentials.nonce, credentials.nc, self._connection_id)
        valid = auth.verify_digest(
            credentials, method=request.method, password=grant.password, username=grant.username
        )
        if not valid:
            return "bad"
        return {"ok": "ok", "stale": "stale"}.get(nonce, "bad")

    def _relay_or_fail(self, grant: GrantLike) -> CameraRelay:
        relay = self._ctx.relay_for(grant.camera_id)
        if relay is None:
            raise _Reply(404, why="camera not exposed")
        if not self._leased:
            relay.acquire()
            self._leased = True
            self._relay = relay
        return relay

    # -- methods -----------------------------------------------------------------------

    async def _options(self, request: RtspRequest) -> RtspResponse:
        if "Session" in request.headers and self._setup:
            self._check_session(request)
        return RtspResponse.make(200, headers=Headers({"Public": PUBLIC_METHODS}))

    async def _keepalive(self, request: RtspRequest) -> RtspResponse:
        if "Session" in request.headers:
            self._check_session(request)
        else:
            self._authenticate(request)
        return RtspResponse.make(200)

    async def _set_parameter(self, request: RtspRequest) -> RtspResponse:
        if "Session" in request.headers:
            self._check_session(request)
        else:
            self._authenticate(request)
        if request.body.strip():
            raise _Reply(451)
        return RtspResponse.make(200)

    async def _describe(self, request: RtspRequest) -> RtspResponse:
        grant = self._authenticate(request)
        relay = self._relay_or_fail(grant)
        try:
            sdp_text, tracks = await relay.wait_sdp()
        except RelayUnavailable as err:
            _LOGGER.info("DESCRIBE of camera %s refused: %s", grant.camera_id, err.reason)
            return RtspResponse.make(err.status, reason=_reason(err.status, err.reason))
        self._tracks = tracks
        base = request.uri.rstrip("/") + "/"
        body = sdp_text.encode()
        return RtspResponse.make(
            200,
            headers=Headers({"Content-Base": base, "Content-Type": "application/sdp"}),
            body=body,
        )

    async def _setup_track(self, request: RtspRequest) -> RtspResponse:
        grant = self._authenticate(request)
        if self._setup and "Session" in request.headers:
            self._check_session(request)
        if self.playing:
            raise _Reply(455)
        relay = self._relay_or_fail(grant)
        if not self._tracks:
            try:
                _, self._tracks = await relay.wait_sdp()
            except RelayUnavailable as err:
                return RtspResponse.make(err.status, reason=_reason(err.status, err.reason))
        track = self._track_for(request.uri)
        spec = self._transport_for(request, track)
        self._setup[track.index] = _SetupTrack(
            track, request.uri.strip(), spec.interleaved or (0, 1)
        )
        reply = TransportSpec(protocol="RTP/AVP/TCP", interleaved=spec.interleaved)
        return RtspResponse.make(
            200,
            headers=Headers(
                {"Transport": format_transport(reply), "Session": self._session_header()}
            ),
        )

    def _track_for(self, uri: str) -> RestreamTrack:
        _, rest = self._stream_id_of(uri)
        rest = rest.strip().strip("/")
        if not rest and len(self._tracks) == 1:
            return self._tracks[0]
        for track in self._tracks:
            if rest == track.control:
                return track
        raise _Reply(404, why="unknown track")

    def _transport_for(self, request: RtspRequest, track: RestreamTrack) -> TransportSpec:
        value = request.headers.get("Transport")
        if not value:
            raise _Reply(461)
        try:
            specs = parse_transport(value)
        except ValueError as err:
            raise _Reply(461) from err
        for spec in specs:
            if spec.lower_transport != "TCP" or not spec.unicast:
                continue
            used = {ch for idx, s in self._setup.items() if idx != track.index for ch in s.channels}
            pair = spec.interleaved
            if pair is None or pair[0] in used or pair[1] in used:
                pair = (2 * track.index, 2 * track.index + 1)
                while pair[0] in used or pair[1] in used:
                    pair = (pair[0] + 2, pair[1] + 2)
            return TransportSpec(protocol="RTP/AVP/TCP", interleaved=pair)
        raise _Reply(461)

    async def _play(
        self, request: RtspRequest
    ) -> RtspResponse | tuple[RtspResponse, Callable[[], None]]:
        grant = self._authenticate(request)
        self._check_session(request)
        if not self._setup:
            raise _Reply(455)
        relay = self._relay_or_fail(grant)
        if self._viewer is not None:
            return RtspResponse.make(200, headers=Headers({"Range": "npt=0.000-"}))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + KEYFRAME_WAIT
        await relay.wait_keyframe(KEYFRAME_WAIT)
        await relay.wait_all_tracks(max(0.0, min(TRACK_WAIT, deadline - loop.time())))
        transport = self._writer.transport
        assert isinstance(transport, asyncio.WriteTransport)
        video = next((t.index for t in self._tracks if t.kind == "video"), None)
        viewer = Viewer(
            transport,
            {idx: s.channels[0] for idx, s in self._setup.items()},
            queue_limit=self._ctx.limits.viewer_queue_bytes,
            on_end=self._on_viewer_end,
            video_track=video,
        )
        try:
            start = relay.attach(viewer)
        except RelayUnavailable as err:
            return RtspResponse.make(err.status, reason=_reason(err.status, err.reason))
        self._viewer = viewer
        entries = [
            (self._setup[idx].url, seq, rtptime)
            for idx, (seq, rtptime) in sorted(start.rtp_info.items())
            if idx in self._setup
        ]
        headers = Headers({"Range": "npt=0.000-"})
        if entries:
            headers["RTP-Info"] = format_rtp_info(entries)
        initial = start.initial

        def send_initial() -> None:
            if initial:
                transport.write(initial)

        return RtspResponse.make(200, headers=headers), send_initial

    async def _teardown(self, request: RtspRequest) -> RtspResponse:
        if self._setup:
            self._check_session(request)
        self._cleanup()
        self._close_after_reply = True
        return RtspResponse.make(200)

    def _on_viewer_end(self, reason: str) -> None:
        self._end_reason = reason
        self._ended.set()


def _reason(status: int, detail: str) -> str:
    """A reason phrase carrying a short, single-line detail."""
    base = {415: "Unsupported Media Type", 503: "Service Unavailable"}.get(status, "Error")
    detail = " ".join(detail.split())[:120]
    return f"{base} ({detail})" if detail else base
