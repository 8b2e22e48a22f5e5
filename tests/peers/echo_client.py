"""An Echo-like RTSP client: the behaviour of Android's stagefright RTSP stack, measured.

This is an *independent* peer: it shares no code with the project's ``rtsp`` package.
It follows /work/shared/ECHO_CLIENT.md (AOSP ``MyHandler.h``/``ARTSPConnection.cpp``):

* TCP connect, optional TLS (an ``rtsp://…:443`` URL with ``ssl_context`` speaks TLS like
  the Echo; ``rtsps://`` always does);
* ``DESCRIBE`` first with ``CSeq: 1``, ``Accept: application/sdp`` and a stagefright
  ``User-Agent`` on every request; on 401 one retry with Basic, RFC 2617 Digest, or the
  stock AOSP Digest (``auth="aosp-digest"``: realm fixed to "Streaming Server", qop
  ignored, no realm field, and the request URL *with a trailing space* in ``uri="…"``
  and in the hash, because AOSP cuts the URL one character too long);
* the base URL is Content-Base, else Content-Location, else the request URL; track and
  session control URLs are built with AOSP's ``MakeURL`` (see :func:`make_url`);
* ``SETUP`` of every track in SDP order with ``RTP/AVP/TCP;unicast;interleaved=2i-2i+1``
  (``omit_interleaved=True`` sends ``RTP/AVP/TCP;unicast``), ``Session`` from the first
  reply; ``PLAY`` on the session control URL with ``Range: npt=0.000-`` (the Echo does;
  stock AOSP does not: ``play_range=False``); RTP-Info is recorded;
* keep-alive ``OPTIONS`` with the Session at 0.9 x the session timeout (default 60 s,
  announced values < 15 s ignored); ``TEARDOWN`` at the end.

When can the Echo show a picture? (``EchoResult.can_show``)
-----------------------------------------------------------
AOSP queues every access unit until *every* set-up track has received an RTCP Sender
Report and data (``mAllTracksHaveTime`` and ``dataReceivedOnAllChannels()``). Then it
stamps each queued unit with its track's SR mapping,
``ntp(AU) = ntp(SR) + (rtp(AU) - rtp(SR)) / clock_rate``, and drops units whose time is
earlier than the NTP time of the very first SR received on any track
(``mediaTimeUs < 0`` for a live stream). The decoder needs an IDR. So ``can_show`` is the
first moment at which all of this holds:

1. every set-up track has received at least one RTP packet and at least one SR;
2. a complete H.264 IDR access unit has arrived (no sequence gap, FU-A closed, ended by
   the RTP marker bit or by the next packet's different timestamp) and it was not
   dropped: its NTP time, through the video track's latest SR, is >= the first SR's NTP
   time on any track (IDRs that fail are discarded, later IDRs are tried);
3. (AOSP's fallback) if not every track has an SR 10 s after the PLAY reply, AOSP fakes
   timestamps and drops nothing: then ``timestamps_faked`` is True and condition 2 only
   needs a complete IDR.

All times in :class:`EchoResult` are seconds since the start of the TCP connect.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import re
import secrets
import socket
import ssl
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

DEFAULT_USER_AGENT = "stagefright/1.2 (Linux;Android 7.1.2)"
AOSP_REALM = "Streaming Server"
DEFAULT_SESSION_TIMEOUT = 60
NO_SR_FALLBACK_S = 10.0
"""AOSP fakes timestamps when not every track had an SR this long after PLAY."""

AuthMode = Literal["basic", "digest", "aosp-digest"]
Until = Literal["play", "first_rtp", "can_show", "duration"]

NAL_IDR = 5
NAL_SPS = 7
NAL_PPS = 8
NAL_STAP_A = 24
NAL_FU_A = 28
RTCP_SR = 200


class RtspError(Exception):
    """A protocol-level failure (bad status, malformed reply, closed connection)."""


@dataclass
class EchoResult:
    """Everything the Echo-like client observed; times in seconds since TCP connect start."""

    url: str
    connect_done: float | None = None
    tls_done: float | None = None
    describe_reply: float | None = None
    setup_replies: list[float] = field(default_factory=list)
    play_reply: float | None = None
    first_rtp: dict[int, float] = field(default_factory=dict)
    """Track index -> arrival of its first RTP packet."""
    first_sr: dict[int, float] = field(default_factory=dict)
    """Track index -> arrival of its first RTCP Sender Report."""
    first_idr_complete: float | None = None
    """Arrival of the last packet of the first complete IDR access unit."""
    can_show: float | None = None
    """When AOSP would hand an IDR to the decoder (see the module docstring)."""
    timestamps_faked: bool = False
    statuses: list[tuple[str, int]] = field(default_factory=list)
    """(method, status) of every reply, in order."""
    sdp: str = ""
    content_base: str | None = None
    session_control_url: str | None = None
    track_urls: list[str] = field(default_factory=list)
    track_media: list[str] = field(default_factory=list)
    """Per track: "<media>/<encoding>/<clock rate>", e.g. "video/H264/90000"."""
    transports: list[str] = field(default_factory=list)
    """Transport header of each SETUP reply."""
    session_id: str | None = None
    session_timeout: int = DEFAULT_SESSION_TIMEOUT
    rtp_info: str | None = None
    rtp_info_entries: list[dict[str, str]] = field(default_factory=list)
    sprop_present: bool = False
    packets: dict[int, int] = field(default_factory=dict)
    """Track index -> RTP packets received."""
    rtcp_packets: dict[int, int] = field(default_factory=dict)
    seq_gaps: dict[int, int] = field(default_factory=dict)
    """Track index -> number of missing sequence numbers (wrap-aware)."""
    reordered: dict[int, int] = field(default_factory=dict)
    rtp_backwards: dict[int, int] = field(default_factory=dict)
    """Track index -> packets whose RTP timestamp is earlier than the previous packet's
    (a restarted encoder/pipeline; H.264 here has no B-frames)."""
    first_rtp_seq: dict[int, int] = field(default_factory=dict)
    first_rtp_timestamp: dict[int, int] = field(default_factory=dict)
    first_video_au_is_idr: bool | None = None
    idr_timestamps: list[int] = field(default_factory=list)
    """RTP timestamps of every complete IDR access unit, in arrival order."""
    dropped_idrs: int = 0
    """Complete IDRs AOSP would drop: older than the first SR (see can_show)."""
    first_idr_has_parameter_sets: bool | None = None
    """Whether the first complete IDR access unit carried SPS and PPS in band."""
    video_access_units: int = 0
    keepalives_sent: int = 0
    stalled_at: float | None = None
    """When the client stopped reading (``stall_after_packets``)."""
    bytes_received: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One-line digest of the timings and counters (for assertion messages)."""
        keys = (
            "statuses", "play_reply", "first_rtp", "first_sr", "first_idr_complete",
            "can_show", "dropped_idrs", "timestamps_faked", "packets", "rtcp_packets", "seq_gaps",
            "rtp_backwards", "idr_timestamps", "video_access_units", "errors",
        )  # fmt: skip
        return ", ".join(f"{key}={getattr(self, key)!r}" for key in keys)

    def to_json(self) -> str:
        """Serialize (track-index keys become strings)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)


# -- small pure helpers ---------------------------------------------------------------


def make_url(base_url: str, url: str) -> str:
    """Combine a base and a control URL exactly like AOSP's ``MyHandler::MakeURL``.

    An absolute ``url`` wins; a base ending in "/" gets ``url`` appended; otherwise
    everything after the base's last "/" is dropped before "/" + ``url`` (so a
    Content-Base without a trailing slash loses its last path segment, as on a real
    Echo). AOSP only knows ``rtsp://``; ``rtsps://`` is accepted the same way here.
    """
    if re.match(r"(?i)rtsps?://", url):
        return url
    if base_url.endswith("/"):
        return base_url + url
    scheme_end = base_url.find("://") + 3
    slash = base_url.rfind("/")
    prefix = base_url[:slash] if slash >= scheme_end else base_url
    return prefix + "/" + url


def parse_sdp_tracks(sdp: str) -> tuple[str | None, list[dict[str, str]]]:
    """Return the session-level a=control and, per m= section, its attributes.

    Each track dict has ``media``, ``pt``, ``control`` (may be absent), ``encoding``,
    ``clock_rate`` and ``fmtp`` (may be empty).
    """
    session_control: str | None = None
    tracks: list[dict[str, str]] = []
    for raw_line in sdp.splitlines():
        line = raw_line.strip()
        if line.startswith("m="):
            parts = line[2:].split()
            tracks.append({"media": parts[0], "pt": parts[3] if len(parts) > 3 else ""})
            continue
        if not line.startswith("a="):
            continue
        name, _, value = line[2:].partition(":")
        if not tracks:
            if name == "control":
                session_control = value
            continue
        track = tracks[-1]
        if name == "control":
            track["control"] = value
        elif name == "rtpmap":
            pt, _, spec = value.partition(" ")
            if pt == track["pt"]:
                encoding, _, rest = spec.partition("/")
                track["encoding"] = encoding.upper()
                track["clock_rate"] = rest.split("/")[0]
        elif name == "fmtp":
            pt, _, params = value.partition(" ")
            if pt == track["pt"]:
                track["fmtp"] = params
    for track in tracks:
        track.setdefault("encoding", "")
        track.setdefault("clock_rate", "90000" if track["media"] == "video" else "8000")
        track.setdefault("fmtp", "")
    return session_control, tracks


def parse_auth_params(challenge: str) -> dict[str, str]:
    """Parse ``key="value"``/``key=value`` pairs of a WWW-Authenticate challenge."""
    return {
        key.lower(): quoted if quoted or not bare else bare
        for key, quoted, bare in re.findall(r'(\w+)=(?:"([^"]*)"|([^\s,]+))', challenge)
    }


def choose_challenge(mode: AuthMode, challenges: list[str]) -> str:
    """Pick the challenge a client in ``mode`` answers among repeated WWW-Authenticate.

    ``basic``: Basic always. ``digest``: the first Digest challenge, else the first one.
    ``aosp-digest``: the *last* header, as AOSP keeps only the last value of a header.
    """
    if mode == "aosp-digest":
        return challenges[-1]
    if mode == "digest":
        return next((c for c in challenges if c.lower().startswith("digest")), challenges[0])
    return "Basic"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def authorization_header(
    mode: AuthMode, challenge: str, *, method: str, url: str, user: str, password: str
) -> str:
    """Return the Authorization value for one request after a 401 ``challenge``."""
    if mode == "basic" or not challenge.lower().startswith("digest"):
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    params = parse_auth_params(challenge)
    nonce = params.get("nonce", "")
    if mode == "aosp-digest":
        uri = url + " "
        ha1 = _md5(f"{user}:{AOSP_REALM}:{password}")
        response = _md5(f"{ha1}:{nonce}:{_md5(f'{method}:{uri}')}")
        return f'Digest nonce="{nonce}", username="{user}", uri="{uri}", response="{response}"'
    realm = params.get("realm", "")
    ha1 = _md5(f"{user}:{realm}:{password}")
    ha2 = _md5(f"{method}:{url}")
    header = f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{url}"'
    qops = [q.strip() for q in params.get("qop", "").split(",") if q.strip()]
    if "auth" in qops:
        cnonce = secrets.token_hex(8)
        response = _md5(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}")
        header += f', qop=auth, nc=00000001, cnonce="{cnonce}"'
    else:
        response = _md5(f"{ha1}:{nonce}:{ha2}")
    header += f', response="{response}"'
    if "opaque" in params:
        header += f', opaque="{params["opaque"]}"'
    return header


def ntp_seconds(ntp: int) -> float:
    """Convert a 64-bit NTP timestamp to seconds."""
    return (ntp >> 32) + (ntp & 0xFFFFFFFF) / 2**32


def rtp_diff(a: int, b: int) -> int:
    """Signed difference ``a - b`` of two 32-bit RTP timestamps (wrap-aware)."""
    return ((a - b + 2**31) % 2**32) - 2**31


# -- per-track state --------------------------------------------------------------------


@dataclass
class _AccessUnit:
    timestamp: int
    nal_types: set[int] = field(default_factory=set)
    broken: bool = False
    fu_open: bool = False


@dataclass
class _Track:
    index: int
    media: str
    encoding: str
    clock_rate: int
    rtp_channel: int = -1
    rtcp_channel: int = -1
    next_seq: int | None = None
    last_timestamp: int | None = None
    sr_rtp: int | None = None
    sr_ntp: float | None = None
    au: _AccessUnit | None = None

    @property
    def is_h264(self) -> bool:
        return self.media == "video" and self.encoding == "H264"


# -- the client -------------------------------------------------------------------------


class EchoClient:
    """One Echo-like viewer; use :func:`run_echo_client`."""

    def __init__(
        self,
        url: str,
        *,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
        auth: AuthMode,
        user: str | None,
        password: str | None,
        user_agent: str,
        omit_interleaved: bool,
        play_range: bool,
        timeout: float,
    ) -> None:
        """Parse the URL and store the options (see :func:`run_echo_client`)."""
        parts = urlsplit(url)
        if parts.scheme not in ("rtsp", "rtsps"):
            raise ValueError(f"not an RTSP URL: {url}")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (322 if parts.scheme == "rtsps" else 554)
        netloc = self.host if parts.port is None else f"{self.host}:{parts.port}"
        if ":" in self.host:
            netloc = f"[{self.host}]" + (f":{parts.port}" if parts.port else "")
        self.url = parts._replace(netloc=netloc).geturl()
        self.user = user if user is not None else unquote(parts.username or "") or None
        self.password = password if password is not None else unquote(parts.password or "") or None
        if ssl_context is None and parts.scheme == "rtsps":
            ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ssl_context.check_hostname = False
            ssl_context.verify_mode = ssl.CERT_NONE
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self.auth: AuthMode = auth
        self.user_agent = user_agent
        self.omit_interleaved = omit_interleaved
        self.play_range = play_range
        self.timeout = timeout
        self.result = EchoResult(url=self.url)
        self.tracks: list[_Track] = []
        self._by_channel: dict[int, tuple[_Track, bool]] = {}
        self._cseq = 0
        self._challenge: str | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._t0 = 0.0
        self._frames = 0
        self._anchor_ntp: float | None = None
        self._pending_idrs: list[int] = []
        self._can_show_event = asyncio.Event()
        self._all_rtp_event = asyncio.Event()
        self._lost = asyncio.Event()
        self._stall_after: int | None = None
        self._pending_replies: dict[int, asyncio.Future[tuple[int, dict[str, str], bytes]]] = {}

    # -- timing ---------------------------------------------------------------------

    def _now(self) -> float:
        return asyncio.get_running_loop().time() - self._t0

    # -- connection -----------------------------------------------------------------

    async def connect(self, rcvbuf: int | None) -> None:
        """Open TCP (and TLS), recording connect_done and tls_done."""
        loop = asyncio.get_running_loop()
        self._t0 = loop.time()
        infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        family, type_, proto, _, address = infos[0]
        sock = socket.socket(family, type_, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if rcvbuf is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            await loop.sock_connect(sock, address)
        except BaseException:
            sock.close()
            raise
        self.result.connect_done = self._now()
        limit = 2**20 if rcvbuf is None else 2**16
        if self.ssl_context is not None:
            hostname = self.server_hostname or self.host
            self._reader, self._writer = await asyncio.open_connection(
                sock=sock, ssl=self.ssl_context, server_hostname=hostname, limit=limit
            )
            self.result.tls_done = self._now()
        else:
            self._reader, self._writer = await asyncio.open_connection(sock=sock, limit=limit)

    async def close(self) -> None:
        """Close the connection (no TEARDOWN)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    # -- RTSP messages --------------------------------------------------------------

    def _send(self, method: str, url: str, headers: dict[str, str]) -> int:
        assert self._writer is not None
        self._cseq += 1
        lines = [f"{method} {url} RTSP/1.0", f"CSeq: {self._cseq}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if self._challenge is not None and self.user is not None:
            value = authorization_header(
                self.auth,
                self._challenge,
                method=method,
                url=url,
                user=self.user,
                password=self.password or "",
            )
            lines.append(f"Authorization: {value}")
        lines.append(f"User-Agent: {self.user_agent}")
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        return self._cseq

    async def _read_message(self) -> tuple[int, dict[str, str], bytes] | None:
        """Read one item: an interleaved frame (handled here, returns None) or a reply."""
        assert self._reader is not None
        first = await self._reader.readexactly(1)
        if first == b"$":
            header = await self._reader.readexactly(3)
            length = int.from_bytes(header[1:3])
            payload = await self._reader.readexactly(length)
            self.result.bytes_received += 4 + length
            self._on_frame(header[0], payload)
            return None
        head = first + await self._reader.readuntil(b"\r\n\r\n")
        self.result.bytes_received += len(head)
        lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                key = name.strip().lower()
                value = value.strip()
                # Repeated headers (e.g. several WWW-Authenticate) are kept one per line.
                headers[key] = f"{headers[key]}\n{value}" if key in headers else value
        body = b""
        length = int(headers.get("content-length", "0") or "0")
        if length:
            body = await self._reader.readexactly(length)
            self.result.bytes_received += length
        start = lines[0].split(" ", 2)
        if not start[0].startswith("RTSP/"):
            # A request from the server (e.g. GET_PARAMETER): not an Echo feature.
            self.result.errors.append(f"server sent a request: {lines[0]!r}")
            return None
        if len(start) < 2 or not start[1].isdigit():
            raise RtspError(f"malformed status line {lines[0]!r}")
        return int(start[1]), headers, body

    async def _pump(self) -> None:
        """Read until the connection ends, resolving pending replies by CSeq."""
        while True:
            if self._stall_after is not None and self._frames >= self._stall_after:
                self.result.stalled_at = self._now()
                await asyncio.Event().wait()  # stop reading, keep the socket open
            message = await self._read_message()
            if message is None:
                continue
            _status, headers, _body = message
            cseq = int(headers.get("cseq", "-1") or "-1")
            future = self._pending_replies.pop(cseq, None)
            if future is not None and not future.done():
                future.set_result(message)

    async def request(
        self, method: str, url: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """Send a request and wait for its reply (one auth retry on 401)."""
        for attempt in range(2):
            cseq = self._send(method, url, headers or {})
            future: asyncio.Future[tuple[int, dict[str, str], bytes]] = (
                asyncio.get_running_loop().create_future()
            )
            self._pending_replies[cseq] = future
            status, reply_headers, body = await asyncio.wait_for(future, self.timeout)
            self.result.statuses.append((method, status))
            if status == 401 and attempt == 0 and self.user is not None:
                self._challenge = choose_challenge(
                    self.auth, reply_headers.get("www-authenticate", "").split("\n")
                )
                continue
            return status, reply_headers, body
        return status, reply_headers, body

    # -- the Echo's sequence ----------------------------------------------------------

    async def handshake(self) -> None:
        """DESCRIBE, SETUP every track, PLAY (raises RtspError on a failed step)."""
        status, headers, body = await self.request(
            "DESCRIBE", self.url, {"Accept": "application/sdp"}
        )
        self.result.describe_reply = self._now()
        if status != 200:
            raise RtspError(f"DESCRIBE failed: {status}")
        self.result.sdp = body.decode(errors="replace")
        self.result.content_base = headers.get("content-base")
        base = headers.get("content-base") or headers.get("content-location") or self.url
        if not re.match(r"(?i)rtsps?://", base):
            base = make_url(self.url, base)
        session_control, sdp_tracks = parse_sdp_tracks(self.result.sdp)
        if session_control is None:
            control_url = self.url
        elif session_control == "*":
            control_url = base
        else:
            control_url = make_url(base, session_control)
        self.result.session_control_url = control_url
        self.result.sprop_present = any(
            "sprop-parameter-sets=" in t["fmtp"] for t in sdp_tracks if t["media"] == "video"
        )
        if not sdp_tracks:
            raise RtspError("the SDP has no media")
        session: str | None = None
        for index, sdp_track in enumerate(sdp_tracks):
            track = _Track(
                index=index,
                media=sdp_track["media"],
                encoding=sdp_track["encoding"],
                clock_rate=int(sdp_track["clock_rate"] or "90000"),
            )
            track_url = make_url(base, sdp_track.get("control", ""))
            self.result.track_urls.append(track_url)
            self.result.track_media.append(f"{track.media}/{track.encoding}/{track.clock_rate}")
            transport = "RTP/AVP/TCP;unicast"
            if not self.omit_interleaved:
                transport += f";interleaved={2 * index}-{2 * index + 1}"
            setup_headers = {"Transport": transport}
            if session is not None:
                setup_headers["Session"] = session
            status, headers, _ = await self.request("SETUP", track_url, setup_headers)
            self.result.setup_replies.append(self._now())
            if status != 200:
                raise RtspError(f"SETUP of track {index} failed: {status}")
            reply_transport = headers.get("transport", "")
            self.result.transports.append(reply_transport)
            channels = re.search(r"interleaved=(\d+)(?:-(\d+))?", reply_transport)
            if channels:
                track.rtp_channel = int(channels.group(1))
                track.rtcp_channel = int(channels.group(2) or track.rtp_channel + 1)
            elif not self.omit_interleaved:
                track.rtp_channel, track.rtcp_channel = 2 * index, 2 * index + 1
            else:
                raise RtspError(f"SETUP reply of track {index} assigns no channels")
            if session is None:
                raw_session = headers.get("session", "")
                if not raw_session:
                    raise RtspError("SETUP reply has no Session header")
                session = raw_session.split(";")[0].strip()
                timeout_match = re.search(r"timeout=(\d+)", raw_session)
                if timeout_match and int(timeout_match.group(1)) >= 15:
                    self.result.session_timeout = int(timeout_match.group(1))
            self.tracks.append(track)
            self._by_channel[track.rtp_channel] = (track, False)
            self._by_channel[track.rtcp_channel] = (track, True)
            self.result.packets[index] = 0
            self.result.rtcp_packets[index] = 0
            self.result.seq_gaps[index] = 0
            self.result.reordered[index] = 0
            self.result.rtp_backwards[index] = 0
        assert session is not None
        self.result.session_id = session
        play_headers = {"Session": session}
        if self.play_range:
            play_headers["Range"] = "npt=0.000-"
        status, headers, _ = await self.request("PLAY", control_url, play_headers)
        self.result.play_reply = self._now()
        if status != 200:
            raise RtspError(f"PLAY failed: {status}")
        self.result.rtp_info = headers.get("rtp-info")
        if self.result.rtp_info:
            for entry in self.result.rtp_info.split(","):
                params = dict(
                    part.strip().split("=", 1) for part in entry.split(";") if "=" in part
                )
                self.result.rtp_info_entries.append(params)

    async def keepalive(self) -> None:
        """Send OPTIONS with the Session at 0.9 x the session timeout, forever."""
        while True:
            await asyncio.sleep(0.9 * self.result.session_timeout)
            session = self.result.session_id or ""
            self._send("OPTIONS", self.url, {"Session": session})
            self.result.keepalives_sent += 1

    def no_sr_fallback(self) -> None:
        """AOSP's 10 s fallback: fake timestamps when some track never had an SR."""
        if self.result.can_show is None and len(self.result.first_sr) < len(self.tracks):
            self.result.timestamps_faked = True
            self._evaluate()

    async def teardown(self) -> None:
        """Send TEARDOWN and wait briefly for its reply."""
        if self.result.session_id is None or self._writer is None:
            return
        with contextlib.suppress(TimeoutError, OSError, RtspError, ConnectionError):
            old_timeout, self.timeout = self.timeout, 1.0
            try:
                await self.request(
                    "TEARDOWN",
                    self.result.session_control_url or self.url,
                    {"Session": self.result.session_id},
                )
            finally:
                self.timeout = old_timeout

    # -- media ----------------------------------------------------------------------

    def _on_frame(self, channel: int, payload: bytes) -> None:
        self._frames += 1
        entry = self._by_channel.get(channel)
        if entry is None:
            self.result.errors.append(f"frame on unknown channel {channel}")
            return
        track, is_rtcp = entry
        if is_rtcp:
            self._on_rtcp(track, payload)
        else:
            self._on_rtp(track, payload)
        self._evaluate()

    def _on_rtcp(self, track: _Track, payload: bytes) -> None:
        self.result.rtcp_packets[track.index] += 1
        offset = 0
        while offset + 4 <= len(payload):
            packet_type = payload[offset + 1]
            length = (int.from_bytes(payload[offset + 2 : offset + 4]) + 1) * 4
            if packet_type == RTCP_SR and offset + 20 <= len(payload):
                ntp = ntp_seconds(int.from_bytes(payload[offset + 8 : offset + 16]))
                track.sr_ntp = ntp
                track.sr_rtp = int.from_bytes(payload[offset + 16 : offset + 20])
                if track.index not in self.result.first_sr:
                    self.result.first_sr[track.index] = self._now()
                if self._anchor_ntp is None:
                    self._anchor_ntp = ntp
            offset += length

    def _on_rtp(self, track: _Track, payload: bytes) -> None:
        if len(payload) < 12 or payload[0] >> 6 != 2:
            self.result.errors.append(f"malformed RTP packet on track {track.index}")
            return
        now = self._now()
        index = track.index
        seq = int.from_bytes(payload[2:4])
        timestamp = int.from_bytes(payload[4:8])
        marker = bool(payload[1] & 0x80)
        self.result.packets[index] += 1
        if index not in self.result.first_rtp:
            self.result.first_rtp[index] = now
            self.result.first_rtp_seq[index] = seq
            self.result.first_rtp_timestamp[index] = timestamp
            if len(self.result.first_rtp) == len(self.tracks):
                self._all_rtp_event.set()
        lost = False
        if track.next_seq is not None and seq != track.next_seq:
            gap = (seq - track.next_seq) % 65536
            if gap < 32768:
                self.result.seq_gaps[index] += gap
                lost = True
            else:
                self.result.reordered[index] += 1
                return
        track.next_seq = (seq + 1) % 65536
        if track.last_timestamp is not None and rtp_diff(timestamp, track.last_timestamp) < 0:
            self.result.rtp_backwards[index] += 1
        track.last_timestamp = timestamp
        if track.is_h264:
            self._on_h264(track, payload, timestamp=timestamp, marker=marker, lost=lost, now=now)

    def _on_h264(
        self, track: _Track, packet: bytes, *, timestamp: int, marker: bool, lost: bool, now: float
    ) -> None:
        csrc_count = packet[0] & 0x0F
        offset = 12 + 4 * csrc_count
        if packet[0] & 0x10 and len(packet) >= offset + 4:
            offset += 4 + 4 * int.from_bytes(packet[offset + 2 : offset + 4])
        end = len(packet)
        if packet[0] & 0x20 and end > offset:
            end -= packet[-1]
        body = packet[offset:end]
        if track.au is not None and track.au.timestamp != timestamp:
            self._finish_au(track, now)
        if track.au is None:
            track.au = _AccessUnit(timestamp=timestamp)
        au = track.au
        if lost:
            au.broken = True
        if not body:
            au.broken = True
        else:
            nal_type = body[0] & 0x1F
            if 1 <= nal_type <= 23:
                au.nal_types.add(nal_type)
            elif nal_type == NAL_STAP_A:
                pos = 1
                while pos + 2 <= len(body):
                    size = int.from_bytes(body[pos : pos + 2])
                    if size == 0 or pos + 2 + size > len(body):
                        au.broken = True
                        break
                    au.nal_types.add(body[pos + 2] & 0x1F)
                    pos += 2 + size
            elif nal_type == NAL_FU_A and len(body) >= 2:
                start, stop = bool(body[1] & 0x80), bool(body[1] & 0x40)
                if start:
                    if au.fu_open:
                        au.broken = True
                    au.fu_open = True
                    au.nal_types.add(body[1] & 0x1F)
                elif not au.fu_open:
                    au.broken = True
                if stop:
                    au.fu_open = False
            else:
                au.broken = True
                self.result.errors.append(f"unsupported H.264 packetization {nal_type}")
        if marker:
            self._finish_au(track, now)

    def _finish_au(self, track: _Track, now: float) -> None:
        au, track.au = track.au, None
        if au is None:
            return
        self.result.video_access_units += 1
        is_idr = NAL_IDR in au.nal_types
        if self.result.first_video_au_is_idr is None:
            self.result.first_video_au_is_idr = is_idr and not au.broken
        if not is_idr or au.broken or au.fu_open:
            return
        self.result.idr_timestamps.append(au.timestamp)
        if self.result.first_idr_complete is None:
            self.result.first_idr_complete = now
            self.result.first_idr_has_parameter_sets = {NAL_SPS, NAL_PPS} <= au.nal_types
        self._pending_idrs.append(au.timestamp)

    def _evaluate(self) -> None:
        """Apply the can_show rule of the module docstring after every event."""
        if self.result.can_show is not None or not self._pending_idrs:
            return
        if len(self.result.first_rtp) < len(self.tracks):
            return
        if not self.result.timestamps_faked:
            if len(self.result.first_sr) < len(self.tracks):
                return
            video = next(t for t in self.tracks if t.is_h264)
            assert video.sr_ntp is not None
            assert video.sr_rtp is not None
            assert self._anchor_ntp is not None
            while self._pending_idrs:
                timestamp = self._pending_idrs[0]
                ntp = video.sr_ntp + rtp_diff(timestamp, video.sr_rtp) / video.clock_rate
                if ntp >= self._anchor_ntp - 1e-6:
                    break
                self._pending_idrs.pop(0)  # AOSP drops units older than the first SR
                self.result.dropped_idrs += 1
            if not self._pending_idrs:
                return
        self.result.can_show = self._now()
        self._can_show_event.set()

    # -- run ------------------------------------------------------------------------

    async def run(
        self, *, duration: float | None, until: Until, stall_after_packets: int | None
    ) -> EchoResult:
        """Connect, play, read media until the stop condition, TEARDOWN, close."""
        self._stall_after = stall_after_packets
        pump: asyncio.Task[None] | None = None
        helpers: list[asyncio.Task[None]] = []
        try:
            await asyncio.wait_for(
                self.connect(65536 if stall_after_packets is not None else None), self.timeout
            )
            pump = asyncio.create_task(self._pump())
            pump.add_done_callback(self._pump_done)
            await self.handshake()
            helpers.append(asyncio.create_task(self.keepalive()))
            loop = asyncio.get_running_loop()
            fallback = loop.call_later(NO_SR_FALLBACK_S, self.no_sr_fallback)
            try:
                await self._wait_media(duration, until)
            finally:
                fallback.cancel()
            if stall_after_packets is None and not pump.done():
                await self.teardown()
        except TimeoutError:  # before OSError, of which it is a subclass
            self.result.errors.append("timeout waiting for the server")
        except (OSError, ssl.SSLError, RtspError, asyncio.IncompleteReadError) as err:
            self.result.errors.append(f"{type(err).__name__}: {err}")
        finally:
            for task in [*helpers, *([pump] if pump else [])]:
                task.cancel()
            for task in [*helpers, *([pump] if pump else [])]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.close()
        return self.result

    def _pump_done(self, task: asyncio.Task[None]) -> None:
        """Fail pending requests when the reader stops (connection closed or error)."""
        if not task.cancelled():
            self._lost.set()
        error: BaseException = RtspError("connection closed")
        if not task.cancelled() and task.exception() is not None:
            error = task.exception() or error
            if not isinstance(error, asyncio.IncompleteReadError):
                self.result.errors.append(f"reader: {type(error).__name__}: {error}")
        for future in self._pending_replies.values():
            if not future.done():
                future.set_exception(RtspError(f"connection lost: {error}"))
        self._pending_replies.clear()

    async def _wait_media(self, duration: float | None, until: Until) -> None:
        """Wait for can_show/duration; raise RtspError if the connection drops."""
        limit = duration if duration is not None else self.timeout
        if until == "play":
            return
        waiters: list[asyncio.Task[Any]] = [asyncio.create_task(self._lost.wait())]
        if until == "can_show":
            waiters.append(asyncio.create_task(self._can_show_event.wait()))
        elif until == "first_rtp":
            waiters.append(asyncio.create_task(self._all_rtp_event.wait()))
        try:
            await asyncio.wait(waiters, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        if until == "can_show" and self.result.can_show is None:
            self.result.errors.append(f"can_show not reached within {limit} s")
        if until == "first_rtp" and not self._all_rtp_event.is_set():
            self.result.errors.append(f"no RTP on every track within {limit} s")
        if self._lost.is_set():
            raise RtspError("connection lost while playing")


async def run_echo_client(
    url: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    duration: float | None = None,
    until: Until = "can_show",
    auth: AuthMode = "basic",
    user: str | None = None,
    password: str | None = None,
    stall_after_packets: int | None = None,
    user_agent: str = DEFAULT_USER_AGENT,
    omit_interleaved: bool = False,
    play_range: bool = True,
    timeout: float = 10.0,  # noqa: ASYNC109 - per-request bound, not a cancel scope
) -> EchoResult:
    """Play ``url`` like an Echo and report what happened; never raises for I/O errors.

    TLS is used when ``ssl_context`` is given or the scheme is ``rtsps`` (then an
    unverified context by default). Credentials come from ``user``/``password`` or the
    URL's userinfo. ``until`` chooses when to stop: ``"play"`` right after the PLAY reply,
    ``"first_rtp"`` once every track has had an RTP packet, ``"can_show"`` at
    ``can_show`` (each of these at the latest after ``duration``, default ``timeout``,
    counted from the PLAY reply, recording an error if not reached), ``"duration"``
    after reading for ``duration`` seconds. ``stall_after_packets`` stops reading after that many
    interleaved frames but keeps the connection open until the end (a stalled Echo).
    ``timeout`` bounds the connect and each request.
    """
    if until == "duration" and duration is None:
        raise ValueError('until="duration" needs a duration')
    client = EchoClient(
        url,
        ssl_context=ssl_context,
        server_hostname=server_hostname,
        auth=auth,
        user=user,
        password=password,
        user_agent=user_agent,
        omit_interleaved=omit_interleaved,
        play_range=play_range,
        timeout=timeout,
    )
    return await client.run(duration=duration, until=until, stall_after_packets=stall_after_packets)


def main(argv: list[str] | None = None) -> int:
    """CLI: play a URL like an Echo and print the EchoResult as JSON."""
    parser = argparse.ArgumentParser(description="Echo-like RTSP client (prints JSON)")
    parser.add_argument("url")
    parser.add_argument("--tls", action="store_true", help="TLS even for rtsp://")
    parser.add_argument("--insecure", action="store_true", help="TLS without verification")
    parser.add_argument("--ca", help="CA file to verify the server with (implies TLS)")
    parser.add_argument("--server-hostname", help="SNI / name to verify")
    parser.add_argument("--duration", type=float)
    parser.add_argument(
        "--until", choices=["play", "first_rtp", "can_show", "duration"], default="can_show"
    )
    parser.add_argument("--auth", choices=["basic", "digest", "aosp-digest"], default="basic")
    parser.add_argument("--omit-interleaved", action="store_true")
    parser.add_argument("--no-play-range", action="store_true")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    context: ssl.SSLContext | None = None
    if args.ca:
        context = ssl.create_default_context(cafile=args.ca)
    elif args.insecure or args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    result = asyncio.run(
        run_echo_client(
            args.url,
            ssl_context=context,
            server_hostname=args.server_hostname,
            duration=args.duration,
            until=args.until,
            auth=args.auth,
            omit_interleaved=args.omit_interleaved,
            play_range=not args.no_play_range,
            timeout=args.timeout,
        )
    )
    sys.stdout.write(result.to_json() + "\n")
    return 0 if not result.errors else 1


if __name__ == "__main__":
    sys.exit(main())
