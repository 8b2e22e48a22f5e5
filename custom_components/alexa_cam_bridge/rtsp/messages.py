"""RTSP/1.0 messages: a sans-IO parser and serializer (RFC 2326, with RFC 7826 reason phrases).

Nothing here touches sockets or asyncio. A connection owner feeds received bytes to an
:class:`RtspParser` and gets back complete :class:`RtspRequest`, :class:`RtspResponse` and
:class:`InterleavedFrame` objects (``$``-framed RTP/RTCP, RFC 2326 §10.12), in arrival
order. Violations raise :class:`RtspParseError`, whose ``status`` is the code to answer
with before closing the connection.

Header helpers parse and format ``Transport``, ``Session``, ``Range`` and ``RTP-Info``, and
:func:`split_rtsp_url` / :func:`resolve_control` handle RTSP URLs the way Android's
stagefright client (the Echo's player) builds them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal, overload
from urllib.parse import unquote

RTSP_VERSION = "RTSP/1.0"

REASON_PHRASES: dict[int, str] = {
    100: "Continue",
    200: "OK",
    201: "Created",
    250: "Low on Storage Space",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    303: "See Other",
    304: "Not Modified",
    305: "Use Proxy",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    451: "Parameter Not Understood",
    452: "Conference Not Found",
    453: "Not Enough Bandwidth",
    454: "Session Not Found",
    455: "Method Not Valid in This State",
    456: "Header Field Not Valid for Resource",
    457: "Invalid Range",
    458: "Parameter Is Read-Only",
    459: "Aggregate Operation Not Allowed",
    460: "Only Aggregate Operation Allowed",
    461: "Unsupported Transport",
    462: "Destination Unreachable",
    463: "Key Management Failure",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "RTSP Version Not Supported",
    551: "Option Not Supported",
}


def reason_phrase(status: int) -> str:
    """Return the standard reason phrase for ``status`` (a generic one for unknown codes)."""
    phrase = REASON_PHRASES.get(status)
    if phrase is not None:
        return phrase
    generic = {1: "Informational", 2: "Success", 3: "Redirection", 4: "Client Error"}
    return generic.get(status // 100, "Server Error")


# ---------------------------------------------------------------------------------------
# Headers


_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization"})


class Headers:
    """Case-insensitive, order-preserving multi-map of header fields.

    Names keep the spelling they were added with; lookups ignore case. ``h[name]`` returns
    the first value (``KeyError`` when absent), ``h[name] = v`` replaces every field of
    that name (keeping the position of the first one), :meth:`add` appends another field.
    """

    __slots__ = ("_fields",)

    def __init__(self, fields: Iterable[tuple[str, str]] | Mapping[str, str] | None = None):
        """Build from an iterable of ``(name, value)`` pairs or a mapping."""
        self._fields: list[tuple[str, str]] = []
        if fields is None:
            return
        pairs: Iterable[tuple[str, str]] = fields.items() if isinstance(fields, Mapping) else fields
        for name, value in pairs:
            self.add(name, value)

    @overload
    def get(self, name: str, default: None = None) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    def get(self, name: str, default: str | None = None) -> str | None:
        """Return the first value of ``name``, or ``default``."""
        key = name.lower()
        for field_name, value in self._fields:
            if field_name.lower() == key:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """Return every value of ``name`` in order (empty list when absent)."""
        key = name.lower()
        return [value for field_name, value in self._fields if field_name.lower() == key]

    def add(self, name: str, value: str) -> None:
        """Append a field, keeping existing fields of the same name."""
        self._fields.append((name, value))

    def copy(self) -> Headers:
        """Return an independent copy."""
        new = Headers()
        new._fields = list(self._fields)
        return new

    def items(self) -> list[tuple[str, str]]:
        """Return all ``(name, value)`` fields in order."""
        return list(self._fields)

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: str) -> None:
        key = name.lower()
        new: list[tuple[str, str]] = []
        placed = False
        for field_name, old in self._fields:
            if field_name.lower() != key:
                new.append((field_name, old))
            elif not placed:
                new.append((name, value))
                placed = True
        if not placed:
            new.append((name, value))
        self._fields = new

    def __delitem__(self, name: str) -> None:
        key = name.lower()
        kept = [(n, v) for n, v in self._fields if n.lower() != key]
        if len(kept) == len(self._fields):
            raise KeyError(name)
        self._fields = kept

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = name.lower()
        return any(field_name.lower() == key for field_name, _ in self._fields)

    def __iter__(self) -> Iterator[str]:
        """Iterate over field names (repeated names appear repeatedly)."""
        return iter([name for name, _ in self._fields])

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(n.lower(), v) for n, v in self._fields] == [
            (n.lower(), v) for n, v in other._fields
        ]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        """Representation with credentials redacted (requests get logged)."""
        shown = [
            (name, "<redacted>" if name.lower() in _SECRET_HEADERS else value)
            for name, value in self._fields
        ]
        return f"Headers({shown!r})"


def _parse_cseq(headers: Headers) -> int | None:
    value = headers.get("CSeq")
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit():
        return None
    return int(value)


# ---------------------------------------------------------------------------------------
# Messages


@dataclass
class RtspRequest:
    """An RTSP request."""

    method: str
    uri: str
    headers: Headers
    body: bytes = b""
    version: str = RTSP_VERSION

    @property
    def cseq(self) -> int | None:
        """The CSeq header as an integer (None when absent or not a number)."""
        return _parse_cseq(self.headers)


@dataclass
class RtspResponse:
    """An RTSP response."""

    status: int
    reason: str
    headers: Headers
    body: bytes = b""
    version: str = RTSP_VERSION

    @property
    def cseq(self) -> int | None:
        """The CSeq header as an integer (None when absent or not a number)."""
        return _parse_cseq(self.headers)

    @classmethod
    def make(
        cls,
        status: int,
        *,
        cseq: int | str | None = None,
        headers: Headers | Iterable[tuple[str, str]] | Mapping[str, str] | None = None,
        body: bytes = b"",
        reason: str | None = None,
    ) -> RtspResponse:
        """Build a response with the standard reason phrase.

        ``CSeq`` (when given) comes first, then ``headers`` in order; ``Content-Length`` is
        set when ``body`` is non-empty.
        """
        out = Headers()
        if cseq is not None:
            out.add("CSeq", str(cseq))
        extra = headers if isinstance(headers, Headers) else Headers(headers)
        for name, value in extra.items():
            if cseq is not None and name.lower() == "cseq":
                continue
            out.add(name, value)
        if body:
            out["Content-Length"] = str(len(body))
        return cls(status, reason if reason is not None else reason_phrase(status), out, body)


@dataclass(slots=True)
class InterleavedFrame:
    """One ``$``-framed binary packet (RTP or RTCP) on an interleaved channel."""

    channel: int
    payload: bytes


RtspMessage = RtspRequest | RtspResponse | InterleavedFrame


class RtspParseError(Exception):
    """The peer violated the protocol; answer ``status`` (if a server) and close."""

    def __init__(self, status: int, reason: str) -> None:
        """Record the status code to answer with and a human-readable reason."""
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


# ---------------------------------------------------------------------------------------
# Parser

_BLANK_LINE = re.compile(rb"\n\r?\n")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION = re.compile(r"RTSP/(\d+)\.(\d+)")
_CR_LF = b"\r\n"
_DOLLAR = 0x24


class RtspParser:
    """Incremental RTSP parser for one direction of one connection.

    ``role="server"`` parses what a server receives (requests); ``role="client"`` parses
    what a client receives: responses, and also requests, which RFC 2326 §10 lets a server
    send to a client (ANNOUNCE, GET_PARAMETER, ...). Both roles accept ``$`` interleaved
    frames anywhere between messages.

    Lines may end in CRLF or bare LF; empty lines between messages are skipped; a body is
    read only per ``Content-Length``; obsolete header folding (a line starting with space
    or tab) is joined to the previous field's value.

    Limits, all raising :class:`RtspParseError`:

    - ``max_line``: longest start line or header line (request line: 414, else 400);
    - ``max_header_bytes``: whole header block including the start line (400);
    - ``max_headers``: number of header fields (400);
    - ``max_body``: Content-Length (413);
    - ``max_interleaved``: size of a ``$`` frame including its 4-byte prefix (413).

    After an error the parser's state is undefined: close the connection.
    """

    def __init__(
        self,
        *,
        role: Literal["server", "client"],
        max_line: int = 4096,
        max_header_bytes: int = 16384,
        max_headers: int = 64,
        max_body: int = 1 << 20,
        max_interleaved: int = 65535 + 4,
    ) -> None:
        """Create a parser; see the class docstring for the limits."""
        if role not in ("server", "client"):
            raise ValueError(f"role must be 'server' or 'client', not {role!r}")
        self.role = role
        self.max_line = max_line
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        self.max_body = max_body
        self.max_interleaved = max_interleaved
        self._buf = bytearray()
        # Where the search for the blank line ending the current header block resumes.
        self._scan_from = 0
        # A message whose header block is parsed and whose body is still incomplete.
        self._pending: RtspRequest | RtspResponse | None = None
        self._body_len = 0

    @property
    def buffered(self) -> int:
        """Number of received bytes not yet returned as messages."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[RtspMessage]:
        """Add received bytes; return every message completed by them, in order."""
        if data:
            self._buf += data
        out: list[RtspMessage] = []
        buf = self._buf
        pos = 0
        end = len(buf)
        view = memoryview(buf)
        try:
            while pos < end:
                if self._pending is not None:
                    if end - pos < self._body_len:
                        break
                    message = self._pending
                    message.body = bytes(view[pos : pos + self._body_len])
                    pos += self._body_len
                    self._pending = None
                    out.append(message)
                    continue
                first = buf[pos]
                if first == _DOLLAR:
                    if end - pos < 4:
                        break
                    length = (buf[pos + 2] << 8) | buf[pos + 3]
                    if length + 4 > self.max_interleaved:
                        raise RtspParseError(413, "Interleaved frame too large")
                    if end - pos < length + 4:
                        break
                    out.append(
                        InterleavedFrame(buf[pos + 1], bytes(view[pos + 4 : pos + 4 + length]))
                    )
                    pos += 4 + length
                    continue
                if first in _CR_LF:
                    pos += 1
                    self._scan_from = pos
                    continue
                consumed = self._parse_head(buf, pos, end, out)
                if consumed == pos:
                    break
                pos = consumed
        finally:
            view.release()
            if pos:
                del buf[:pos]
                self._scan_from = max(0, self._scan_from - pos)
        return out

    def _parse_head(self, buf: bytearray, pos: int, end: int, out: list[RtspMessage]) -> int:
        """Parse a header block starting at ``pos``; return the new position.

        Returns ``pos`` unchanged when the block is still incomplete.
        """
        match = _BLANK_LINE.search(buf, max(pos, self._scan_from))
        if match is None:
            self._scan_from = max(pos, end - 2)
            self._check_incomplete_head(buf, pos, end)
            return pos
        head_end = match.start() + 1  # include the last header line's LF
        if head_end - pos > self.max_header_bytes:
            raise RtspParseError(400, "Request Header Fields Too Large")
        raw = bytes(buf[pos:head_end])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        lines = [line.removesuffix("\r") for line in text.split("\n")[:-1]]
        message = self._parse_message(lines)
        body_start = match.end()
        self._scan_from = body_start
        length = self._content_length(message.headers)
        if length == 0:
            out.append(message)
        else:
            self._pending = message
            self._body_len = length
        return body_start

    def _check_incomplete_head(self, buf: bytearray, pos: int, end: int) -> None:
        """Enforce the limits on a header block whose end has not arrived yet."""
        if end - pos > self.max_header_bytes:
            raise RtspParseError(400, "Request Header Fields Too Large")
        last_nl = buf.rfind(b"\n", pos, end)
        line_start = pos if last_nl < 0 else last_nl + 1
        if end - line_start > self.max_line:
            raise self._line_too_long(first_line=last_nl < 0)

    def _line_too_long(self, *, first_line: bool) -> RtspParseError:
        if first_line and self.role == "server":
            return RtspParseError(414, "Request line too long")
        return RtspParseError(400, "Line too long")

    def _parse_message(self, lines: list[str]) -> RtspRequest | RtspResponse:
        start = lines[0]
        if len(start) > self.max_line:
            raise self._line_too_long(first_line=True)
        headers = self._parse_headers(lines[1:])
        if start.startswith("RTSP/"):
            if self.role == "server":
                raise RtspParseError(400, "Expected a request, got a status line")
            return self._parse_status_line(start, headers)
        return self._parse_request_line(start, headers)

    def _parse_headers(self, lines: list[str]) -> Headers:
        fields: list[tuple[str, str]] = []
        for line in lines:
            if len(line) > self.max_line:
                raise self._line_too_long(first_line=False)
            if line[:1] in (" ", "\t"):
                if not fields:
                    raise RtspParseError(400, "Continuation line without a header")
                name, value = fields[-1]
                fields[-1] = (name, f"{value} {line.strip()}".strip())
                continue
            name, sep, value = line.partition(":")
            if not sep or _TOKEN.fullmatch(name) is None:
                raise RtspParseError(400, "Malformed header line")
            fields.append((name, value.strip()))
            if len(fields) > self.max_headers:
                raise RtspParseError(400, "Too many header fields")
        return Headers(fields)

    @staticmethod
    def _check_version(version: str) -> None:
        if version == RTSP_VERSION:
            return
        if _VERSION.fullmatch(version):
            raise RtspParseError(505, f"Unsupported version {version}")
        raise RtspParseError(400, "Not an RTSP message")

    def _parse_request_line(self, line: str, headers: Headers) -> RtspRequest:
        parts = line.split()
        if len(parts) != 3:
            raise RtspParseError(400, "Malformed request line")
        method, uri, version = parts
        if _TOKEN.fullmatch(method) is None:
            raise RtspParseError(400, "Malformed method")
        self._check_version(version)
        return RtspRequest(method, uri, headers, b"", version)

    def _parse_status_line(self, line: str, headers: Headers) -> RtspResponse:
        version, _, rest = line.partition(" ")
        self._check_version(version)
        code, _, reason = rest.strip().partition(" ")
        if len(code) != 3 or not code.isdigit() or not 100 <= int(code) <= 599:
            raise RtspParseError(400, "Malformed status line")
        return RtspResponse(int(code), reason.strip(), headers, b"", version)

    def _content_length(self, headers: Headers) -> int:
        values = {v.strip() for v in headers.get_all("Content-Length")}
        if not values:
            return 0
        if len(values) != 1:
            raise RtspParseError(400, "Conflicting Content-Length")
        value = values.pop()
        if not value.isdigit() or len(value) > 12:
            raise RtspParseError(400, "Invalid Content-Length")
        length = int(value)
        if length > self.max_body:
            raise RtspParseError(413, "Body too large")
        return length


# ---------------------------------------------------------------------------------------
# Serializer


def _check_field(text: str) -> None:
    if "\r" in text or "\n" in text:
        raise ValueError("CR or LF inside an RTSP start line or header")


def _serialize(start_line: str, headers: Headers, body: bytes) -> bytes:
    _check_field(start_line)
    out = [start_line, "\r\n"]
    length_written = False
    for name, value in headers.items():
        _check_field(name)
        _check_field(value)
        if name.lower() == "content-length":
            if not body or length_written:
                continue
            length_written = True
            out += (name, ": ", str(len(body)), "\r\n")
            continue
        out += (name, ": ", value, "\r\n")
    if body and not length_written:
        out.append(f"Content-Length: {len(body)}\r\n")
    out.append("\r\n")
    return "".join(out).encode("utf-8") + body


def serialize_request(req: RtspRequest) -> bytes:
    """Encode a request (CRLF line ends, header order kept).

    ``Content-Length`` is written from the body when the body is non-empty and left out
    when it is empty. Raises ``ValueError`` on CR/LF inside a header (injection guard).
    """
    return _serialize(f"{req.method} {req.uri} {req.version}", req.headers, req.body)


def serialize_response(resp: RtspResponse) -> bytes:
    """Encode a response; same rules as :func:`serialize_request`."""
    return _serialize(f"{resp.version} {resp.status} {resp.reason}", resp.headers, resp.body)


def serialize_interleaved(channel: int, payload: bytes) -> bytes:
    """Encode a ``$`` interleaved frame; ``ValueError`` if the payload exceeds 65535 bytes."""
    if not 0 <= channel <= 255:
        raise ValueError(f"interleaved channel out of range: {channel}")
    length = len(payload)
    if length > 0xFFFF:
        raise ValueError(f"interleaved payload too large: {length} bytes")
    return bytes((_DOLLAR, channel, length >> 8, length & 0xFF)) + payload


# ---------------------------------------------------------------------------------------
# Transport


_TRANSPORT_KNOWN = frozenset(
    {"unicast", "multicast", "interleaved", "client_port", "server_port", "ssrc", "mode"}
)


@dataclass
class TransportSpec:
    """One transport specification of a ``Transport`` header (RFC 2326 §12.39).

    ``params`` holds every parameter as received (lower-cased names, ``None`` for flags);
    the typed fields are what :func:`format_transport` writes, followed by the ``params``
    entries that no typed field covers (e.g. ``ttl``, ``destination``).
    """

    protocol: str = "RTP/AVP/TCP"
    unicast: bool = True
    interleaved: tuple[int, int] | None = None
    client_port: tuple[int, int] | None = None
    server_port: tuple[int, int] | None = None
    ssrc: str | None = None
    mode: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def lower_transport(self) -> str:
        """``"TCP"`` or ``"UDP"`` (the default when the protocol names none)."""
        parts = self.protocol.upper().split("/")
        return parts[2] if len(parts) > 2 else "UDP"


def _parse_pair(name: str, value: str | None) -> tuple[int, int]:
    if value is None:
        raise ValueError(f"Transport parameter {name} needs a value")
    first, sep, second = value.strip().partition("-")
    try:
        low = int(first)
        high = int(second) if sep else low + 1
    except ValueError:
        raise ValueError(f"Bad Transport {name}={value!r}") from None
    if not (0 <= low <= 65535 and 0 <= high <= 65535):
        raise ValueError(f"Transport {name} out of range: {value!r}")
    return (low, high)


def parse_transport(value: str) -> list[TransportSpec]:
    """Parse a ``Transport`` header value into its comma-separated specs.

    Raises ``ValueError`` on a malformed header.
    """
    specs: list[TransportSpec] = []
    for item in value.split(","):
        parts = [p.strip() for p in item.split(";")]
        protocol = parts[0]
        if not protocol:
            if len(parts) == 1:
                continue
            raise ValueError("Transport spec without a protocol")
        if not re.fullmatch(r"[A-Za-z0-9]+/[A-Za-z0-9]+(/[A-Za-z0-9]+)?", protocol):
            raise ValueError(f"Bad transport protocol {protocol!r}")
        spec = TransportSpec(protocol=protocol)
        for part in parts[1:]:
            if not part:
                continue
            name, sep, raw = part.partition("=")
            name = name.strip().lower()
            param: str | None = raw.strip().strip('"') if sep else None
            spec.params[name] = param
            if name == "unicast":
                spec.unicast = True
            elif name == "multicast":
                spec.unicast = False
            elif name in ("interleaved", "client_port", "server_port"):
                setattr(spec, name, _parse_pair(name, param))
            elif name == "ssrc":
                spec.ssrc = param
            elif name == "mode":
                spec.mode = param
        specs.append(spec)
    if not specs:
        raise ValueError("Empty Transport header")
    return specs


def format_transport(spec: TransportSpec) -> str:
    """Format one transport spec (e.g. ``RTP/AVP/TCP;unicast;interleaved=0-1``)."""
    parts = [spec.protocol, "unicast" if spec.unicast else "multicast"]
    for name in ("interleaved", "client_port", "server_port"):
        pair: tuple[int, int] | None = getattr(spec, name)
        if pair is not None:
            parts.append(f"{name}={pair[0]}-{pair[1]}")
    for name, param in spec.params.items():
        if name in _TRANSPORT_KNOWN:
            continue
        parts.append(name if param is None else f"{name}={param}")
    if spec.ssrc is not None:
        parts.append(f"ssrc={spec.ssrc}")
    if spec.mode is not None:
        parts.append(f'mode="{spec.mode}"')
    return ";".join(parts)


# ---------------------------------------------------------------------------------------
# Session, Range, RTP-Info


def parse_session(value: str) -> tuple[str, int | None]:
    """Parse a ``Session`` header: ``(session_id, timeout)``; timeout None when absent.

    Raises ``ValueError`` when the session id is empty.
    """
    session_id, *params = (p.strip() for p in value.split(";"))
    if not session_id:
        raise ValueError("Empty session id")
    timeout: int | None = None
    for param in params:
        name, _, raw = param.partition("=")
        if name.strip().lower() == "timeout" and raw.strip().isdigit():
            timeout = int(raw.strip())
    return session_id, timeout


def _parse_npt_time(text: str) -> float | None:
    text = text.strip()
    if not text or text == "now":
        return None
    try:
        if ":" in text:
            hours, minutes, seconds = text.split(":")
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        return float(text)
    except ValueError:
        raise ValueError(f"Bad npt time {text!r}") from None


def parse_range(value: str) -> tuple[float | None, float | None] | None:
    """Parse an npt ``Range`` value into ``(start, end)`` seconds.

    ``None`` for a missing bound or ``now``; returns ``None`` for non-npt ranges (smpte,
    clock) or unparsable values.
    """
    spec = value.split(";", maxsplit=1)[0].strip()
    unit, sep, rest = spec.partition("=")
    if not sep or unit.strip().lower() != "npt":
        return None
    start, dash, stop = rest.partition("-")
    if not dash:
        return None
    try:
        return _parse_npt_time(start), _parse_npt_time(stop)
    except ValueError:
        return None


def format_range(start: float = 0.0, end: float | None = None) -> str:
    """Format an npt range, e.g. ``npt=0.000-``."""
    return f"npt={start:.3f}-" + ("" if end is None else f"{end:.3f}")


def format_rtp_info(entries: Iterable[tuple[str, int, int]]) -> str:
    """Format an ``RTP-Info`` value from ``(url, seq, rtptime)`` entries."""
    return ",".join(
        f"url={url};seq={seq & 0xFFFF};rtptime={rtptime & 0xFFFFFFFF}"
        for url, seq, rtptime in entries
    )


def parse_rtp_info(value: str) -> list[tuple[str, int | None, int | None]]:
    """Parse an ``RTP-Info`` value into ``(url, seq, rtptime)`` entries (None if absent)."""
    entries: list[tuple[str, int | None, int | None]] = []
    for item in re.split(r",\s*(?=url=)", value.strip()):
        url = ""
        seq: int | None = None
        rtptime: int | None = None
        for part in item.split(";"):
            name, _, raw = part.strip().partition("=")
            name = name.lower()
            raw = raw.strip()
            if name == "url":
                url = raw.strip('"')
            elif name == "seq" and raw.isdigit():
                seq = int(raw)
            elif name == "rtptime" and raw.isdigit():
                rtptime = int(raw)
        if url:
            entries.append((url, seq, rtptime))
    return entries


# ---------------------------------------------------------------------------------------
# URLs

DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "rtspu": 554}


@dataclass(frozen=True)
class RtspUrl:
    """The parts of an ``rtsp://``, ``rtsps://`` or ``rtspu://`` URL.

    ``user``/``password`` are percent-decoded (None when absent); ``host`` has no IPv6
    brackets; ``port`` is the explicit port or the scheme's default (``port_given`` tells
    which); ``path`` includes the query and is ``"/"`` when the URL has none.
    """

    scheme: str
    host: str
    port: int
    path: str = "/"
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    port_given: bool = False

    @property
    def netloc(self) -> str:
        """``host[:port]`` as written in a URL (brackets for IPv6; port only if given)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.port_given else host

    def without_credentials(self) -> str:
        """The URL without user info."""
        return f"{self.scheme}://{self.netloc}{self.path}"


def split_rtsp_url(url: str) -> RtspUrl:
    """Split an RTSP URL; ``ValueError`` if it is not one.

    The authority ends at the first ``/`` and its user info at its last ``@``, so
    passwords may contain unencoded ``@``, ``#``, ``?`` and ``:`` (but not ``/``).
    Error messages never include the URL (it may hold a password).
    """
    scheme, sep, rest = url.strip().partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in DEFAULT_PORTS:
        raise ValueError("not an rtsp://, rtsps:// or rtspu:// URL")
    slash = rest.find("/")
    authority, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    if not path and "?" in authority and "@" not in authority:
        authority, _, query = authority.partition("?")
        path = "/?" + query
    user: str | None = None
    password: str | None = None
    at = authority.rfind("@")
    if at >= 0:
        userinfo, authority = authority[:at], authority[at + 1 :]
        raw_user, colon, raw_password = userinfo.partition(":")
        user = unquote(raw_user)
        password = unquote(raw_password) if colon else None
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            raise ValueError("unterminated IPv6 address in URL")
        host, port_text = authority[1:close], authority[close + 1 :]
        if port_text and not port_text.startswith(":"):
            raise ValueError("garbage after IPv6 address in URL")
        port_text = port_text[1:]
    else:
        host, _, port_text = authority.partition(":")
    if not host:
        raise ValueError("URL without a host")
    port_given = bool(port_text)
    if port_given:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError("invalid port in URL")
        port = int(port_text)
    else:
        port = DEFAULT_PORTS[scheme]
    return RtspUrl(scheme, host, port, path or "/", user, password, port_given)


def resolve_control(base: str, control: str) -> str:
    """Build a track URL from a base URL (``Content-Base`` or request URL) and ``a=control``.

    An absolute control URL is kept as is, ``*`` (or an empty control) means the base
    itself (RFC 2326 C.1.1), anything else is appended to the base with exactly one ``/``
    between them, as ffmpeg and live555 do for cameras.

    Android's stagefright (``MakeURL``) appends the same way only when the base ends with
    ``/``; otherwise it replaces the base's last path segment, and it treats only
    ``rtsp://`` controls as absolute. A server should therefore send a ``Content-Base``
    ending in ``/`` and relative controls, so that every client builds the same URLs.
    """
    control = control.strip()
    if re.match(r"(?i)rtsp[su]?://", control):
        return control
    if control in ("", "*"):
        return base
    return base.rstrip("/") + "/" + control.lstrip("/")
