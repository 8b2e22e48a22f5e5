"""SDP (RFC 4566) parsing and serialization, track selection, and the restream SDP.

The relay DESCRIBEs a camera, picks what the Echo can play with :func:`select_tracks`
(the first H.264 video track, and at most one AAC/PCMU/PCMA audio track), and serves
viewers the SDP built by :func:`build_restream_sdp`: video first, controls ``trackID=N``,
``sprop-parameter-sets`` filled in from the stream's own SPS/PPS when the camera's SDP
lacks it (AOSP refuses an H.264 track without it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from .h264 import NAL_SPS, parse_sprop_parameter_sets, profile_level_id
from .messages import resolve_control

_T = TypeVar("_T")


class SdpError(ValueError):
    """The text is not a usable session description."""


# Static RTP payload types (RFC 3551) that cameras use without an a=rtpmap line.
_STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int, int | None]] = {
    0: ("PCMU", 8000, 1),
    8: ("PCMA", 8000, 1),
    14: ("MPA", 90000, None),
    26: ("JPEG", 90000, None),
    32: ("MPV", 90000, None),
    33: ("MP2T", 90000, None),
}

_LINE = re.compile(r"([a-z])=(.*)")


@dataclass(frozen=True)
class RtpMap:
    """An ``a=rtpmap`` value (or a static payload type's defaults)."""

    encoding: str  # upper-case, e.g. "H264", "MPEG4-GENERIC"
    clock_rate: int
    channels: int | None = None


class FmtpParams(dict[str, str]):
    """``a=fmtp`` parameters: keys keep their case, lookups ignore it."""

    def _key(self, key: object) -> str | None:
        if not isinstance(key, str):
            return None
        if dict.__contains__(self, key):
            return key
        lower = key.lower()
        return next((k for k in self if k.lower() == lower), None)

    def __missing__(self, key: str) -> str:
        found = self._key(key)
        if found is None:
            raise KeyError(key)
        return dict.__getitem__(self, found)

    def __contains__(self, key: object) -> bool:
        return self._key(key) is not None

    @overload
    def get(self, key: str, default: None = None, /) -> str | None: ...
    @overload
    def get(self, key: str, default: str, /) -> str: ...
    @overload
    def get(self, key: str, default: _T, /) -> str | _T: ...
    def get(self, key: str, default: Any = None, /) -> Any:
        """Case-insensitive ``dict.get``."""
        found = self._key(key)
        return default if found is None else dict.__getitem__(self, found)

    def set(self, key: str, value: str) -> None:
        """Set ``key``, replacing an entry spelled with different case in place."""
        found = self._key(key)
        self[key if found is None else found] = value

    def to_text(self) -> str:
        """Format as ``a=fmtp`` parameters (``k=v;k2=v2``)."""
        return ";".join(f"{k}={v}" if v else k for k, v in self.items())


def parse_fmtp_params(text: str) -> FmtpParams:
    """Parse ``k=v;k2=v2`` (spaces tolerated; a bare ``k`` gets an empty value)."""
    params = FmtpParams()
    for raw in text.split(";"):
        item = raw.strip()
        if item:
            key, _, value = item.partition("=")
            params[key.strip()] = value.strip()
    return params


class _Attributes:
    """``a=`` helpers shared by session and media descriptions."""

    lines: list[tuple[str, str]]

    def attributes(self, name: str) -> list[str]:
        """Values of every ``a=<name>[:value]`` line (``""`` for flag attributes)."""
        lower = name.lower()
        out = []
        for kind, value in self.lines:
            if kind == "a":
                attr, _, rest = value.partition(":")
                if attr.strip().lower() == lower:
                    out.append(rest.strip())
        return out

    def attribute(self, name: str) -> str | None:
        """Value of the first ``a=<name>`` line, or None."""
        values = self.attributes(name)
        return values[0] if values else None

    def set_attribute(self, name: str, value: str | None = None) -> None:
        """Replace every ``a=<name>`` line by one (at the first one's place, else at the end).

        ``value=None`` writes a flag attribute (``a=<name>``).
        """
        text = name if value is None else f"{name}:{value}"
        lower = name.lower()
        new: list[tuple[str, str]] = []
        placed = False
        for kind, old in self.lines:
            if kind == "a" and old.partition(":")[0].strip().lower() == lower:
                if not placed:
                    new.append(("a", text))
                    placed = True
                continue
            new.append((kind, old))
        if not placed:
            new.append(("a", text))
        self.lines[:] = new

    def remove_attribute(self, name: str) -> None:
        """Remove every ``a=<name>`` line."""
        lower = name.lower()
        self.lines[:] = [
            (kind, value)
            for kind, value in self.lines
            if not (kind == "a" and value.partition(":")[0].strip().lower() == lower)
        ]

    @property
    def control(self) -> str | None:
        """The ``a=control`` value, or None."""
        return self.attribute("control")


@dataclass
class MediaDescription(_Attributes):
    """One ``m=`` section: its media line fields and the lines that follow it."""

    kind: str
    port: int
    proto: str
    formats: list[str]
    lines: list[tuple[str, str]] = field(default_factory=list)
    port_count: int | None = None

    def _pt_attribute(self, name: str, pt: int | str) -> str | None:
        prefix = str(pt)
        for value in self.attributes(name):
            head, _, rest = value.partition(" ")
            if head == prefix:
                return rest.strip()
        return None

    def rtpmap(self, pt: int | str) -> RtpMap | None:
        """The payload type's ``a=rtpmap`` (static types need none); None if unknown."""
        value = self._pt_attribute("rtpmap", pt)
        if value is None:
            static = _STATIC_PAYLOAD_TYPES.get(int(pt)) if str(pt).isdigit() else None
            return RtpMap(*static) if static else None
        parts = value.split("/")
        try:
            channels = int(parts[2]) if len(parts) > 2 and parts[2].strip() else None
            return RtpMap(parts[0].strip().upper(), int(parts[1]), channels)
        except (IndexError, ValueError):
            return None

    def fmtp(self, pt: int | str) -> FmtpParams:
        """The payload type's ``a=fmtp`` parameters (empty when absent)."""
        value = self._pt_attribute("fmtp", pt)
        return parse_fmtp_params(value) if value else FmtpParams()

    def media_line(self) -> str:
        """The ``m=`` value."""
        port = f"{self.port}/{self.port_count}" if self.port_count is not None else str(self.port)
        return " ".join([self.kind, port, self.proto, *self.formats])


@dataclass
class SessionDescription(_Attributes):
    """A parsed SDP: session-level lines in order, then the media sections."""

    lines: list[tuple[str, str]] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)

    def value(self, kind: str) -> str | None:
        """The first session-level ``<kind>=`` value (e.g. ``"s"``), or None."""
        return next((v for k, v in self.lines if k == kind), None)

    def to_text(self) -> str:
        """Serialize with CRLF line ends."""
        out = [f"{k}={v}\r\n" for k, v in self.lines]
        for media in self.media:
            out.append(f"m={media.media_line()}\r\n")
            out += [f"{k}={v}\r\n" for k, v in media.lines]
        return "".join(out)


def _parse_media_line(value: str) -> MediaDescription:
    parts = value.split()
    if len(parts) < 3:
        raise SdpError(f"malformed m= line: {value!r}")
    port_text, _, count_text = parts[1].partition("/")
    try:
        port = int(port_text)
        count = int(count_text) if count_text else None
    except ValueError:
        raise SdpError(f"malformed port in m= line: {value!r}") from None
    return MediaDescription(parts[0].lower(), port, parts[2], parts[3:], [], count)


def parse_sdp(text: str | bytes) -> SessionDescription:
    """Parse an SDP (CRLF or LF line ends, blank lines ignored); ``SdpError`` on garbage.

    NUL bytes are dropped: some cameras count a C string terminator in Content-Length.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = text.replace("\x00", "")
    sdp = SessionDescription()
    current: MediaDescription | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise SdpError(f"malformed SDP line: {line[:80]!r}")
        kind, value = match.group(1), match.group(2).strip()
        if kind == "m":
            current = _parse_media_line(value)
            sdp.media.append(current)
        elif current is None:
            sdp.lines.append((kind, value))
        else:
            current.lines.append((kind, value))
    if not sdp.lines and not sdp.media:
        raise SdpError("empty SDP")
    if sdp.value("v") is None:
        raise SdpError("SDP without a v= line")
    return sdp


# ---------------------------------------------------------------------------------------
# Track selection and the restream SDP

SUPPORTED_AUDIO = ("MPEG4-GENERIC", "PCMU", "PCMA")


@dataclass
class Track:
    """A track the relay restreams.

    ``index`` is the output position (``trackID=<index>``); ``control`` the absolute
    upstream URL to SETUP; ``media_index`` the section's position in the upstream SDP.
    """

    index: int
    kind: str  # "video" | "audio"
    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None
    control: str
    fmtp: FmtpParams = field(default_factory=FmtpParams)
    media_index: int | None = None


def _payload_types(media: MediaDescription) -> list[tuple[int, RtpMap | None]]:
    return [(int(f), media.rtpmap(f)) for f in media.formats if f.isdigit()]


def _describe(media: MediaDescription) -> str:
    names = [rtpmap.encoding if rtpmap else f"PT {pt}" for pt, rtpmap in _payload_types(media)]
    return "/".join(names) or media.proto


def _audio_problem(rtpmap: RtpMap, fmtp: FmtpParams) -> str | None:
    if rtpmap.encoding not in SUPPORTED_AUDIO:
        return f"codec {rtpmap.encoding} is not AAC, PCMU or PCMA"
    if rtpmap.encoding == "MPEG4-GENERIC":
        mode = fmtp.get("mode", "")
        if mode.lower() != "aac-hbr":
            return f"mpeg4-generic mode {mode or '(none)'} is not AAC-hbr"
        if not fmtp.get("config"):
            return "AAC without a config parameter"
    return None


def select_tracks(
    sdp: SessionDescription, base_url: str, *, video_only: bool
) -> tuple[list[Track], list[str]]:
    """Choose the tracks to restream: the first H.264 video, then at most one audio.

    Audio must be AAC (mpeg4-generic, mode AAC-hbr, with config), PCMU or PCMA.
    ``base_url`` is the DESCRIBE answer's ``Content-Base`` (else the request URL); an
    absolute session-level ``a=control`` overrides it as the base, as ffmpeg does.
    Returns the tracks in output order and notes on everything dropped. Without an H.264
    video track the list is empty.
    """
    session_control = sdp.control
    if session_control and re.match(r"(?i)rtsp[su]?://", session_control):
        base_url = session_control
    notes: list[str] = []
    video: Track | None = None
    audio: Track | None = None
    for media_index, media in enumerate(sdp.media):
        label = f"{media.kind} track #{media_index} ({_describe(media)})"
        control = resolve_control(base_url, media.control or "")
        if media.kind == "video":
            h264 = next(
                ((pt, m) for pt, m in _payload_types(media) if m and m.encoding == "H264"), None
            )
            if h264 is None:
                notes.append(f"dropped {label}: only H.264 video is supported")
            elif video is not None:
                notes.append(f"dropped {label}: only the first H.264 video track is used")
            else:
                pt, rtpmap = h264
                video = Track(
                    0,
                    "video",
                    pt,
                    rtpmap.encoding,
                    rtpmap.clock_rate,
                    rtpmap.channels,
                    control,
                    media.fmtp(pt),
                    media_index,
                )
        elif media.kind == "audio":
            if video_only:
                notes.append(f"dropped {label}: audio is disabled for this camera")
                continue
            if audio is not None:
                notes.append(f"dropped {label}: only one audio track is used")
                continue
            problems: list[str] = []
            for pt, audio_map in _payload_types(media):
                if audio_map is None:
                    problems.append(f"payload type {pt} has no rtpmap")
                    continue
                fmtp = media.fmtp(pt)
                problem = _audio_problem(audio_map, fmtp)
                if problem is not None:
                    problems.append(problem)
                    continue
                audio = Track(
                    1,
                    "audio",
                    pt,
                    audio_map.encoding,
                    audio_map.clock_rate,
                    audio_map.channels,
                    control,
                    fmtp,
                    media_index,
                )
                break
            else:
                notes.append(f"dropped {label}: " + ("; ".join(problems) or "no payload types"))
        else:
            notes.append(f"dropped {label}: {media.kind} tracks are not restreamed")
    if video is None:
        codec = video_codec_name(sdp)
        reason = f"its video codec is {codec}" if codec else "it has no video track"
        notes.append(f"no H.264 video track: {reason}")
        return [], notes
    return [video] if audio is None else [video, audio], notes


def video_codec_name(sdp: SessionDescription) -> str | None:
    """Encoding of the first video section's first payload type (e.g. ``"H265"``).

    Returns ``"H264"`` when any video section offers H.264, None without video.
    """
    first: str | None = None
    for media in sdp.media:
        if media.kind != "video":
            continue
        for pt, rtpmap in _payload_types(media):
            name = rtpmap.encoding if rtpmap else f"PT {pt}"
            if name == "H264":
                return name
            first = first or name
    return first


# Media-level attributes copied from upstream into the restream SDP.
_KEPT_ATTRIBUTES = ("framerate", "framesize", "x-dimensions")
_DIRECTIONS = ("sendonly", "recvonly", "sendrecv", "inactive")


def _h264_fmtp(upstream: FmtpParams, sprop: str | None) -> FmtpParams:
    fmtp = FmtpParams(upstream)
    fmtp.set("packetization-mode", "1")
    if not fmtp.get("sprop-parameter-sets") and sprop:
        fmtp.set("sprop-parameter-sets", sprop)
    if not fmtp.get("profile-level-id"):
        try:
            nals = parse_sprop_parameter_sets(fmtp.get("sprop-parameter-sets", ""))
        except ValueError:
            nals = []
        sps = next((n for n in nals if n and n[0] & 0x1F == NAL_SPS and len(n) >= 4), None)
        if sps is not None:
            fmtp.set("profile-level-id", profile_level_id(sps))
    return fmtp


def build_restream_sdp(
    upstream: SessionDescription,
    tracks: list[Track],
    *,
    sprop: str | None,
    session_name: str,
    origin_address: str,
    session_id: int = 0,
) -> str:
    """The SDP served to viewers for ``tracks`` (from :func:`select_tracks`).

    Payload types are kept (RTP passes through untouched). H.264 gets
    ``packetization-mode=1``, the upstream ``sprop-parameter-sets`` or else ``sprop``
    (the relay's in-band SPS/PPS), and the upstream ``profile-level-id`` or one derived
    from the SPS. Other fmtp parameters, framerate/framesize and direction attributes are
    copied from upstream.
    """
    address_type = "IP6" if ":" in origin_address else "IP4"
    out = SessionDescription(
        [
            ("v", "0"),
            ("o", f"- {session_id} 1 IN {address_type} {origin_address}"),
            ("s", session_name.replace("\r", " ").replace("\n", " ") or "Stream"),
            ("c", "IN IP4 0.0.0.0"),
            ("t", "0 0"),
            ("a", "control:*"),
            ("a", "range:npt=0-"),
        ]
    )
    for track in tracks:
        source = (
            upstream.media[track.media_index]
            if track.media_index is not None and 0 <= track.media_index < len(upstream.media)
            else None
        )
        pt = track.payload_type
        media = MediaDescription(track.kind, 0, "RTP/AVP", [str(pt)])
        encoding = "mpeg4-generic" if track.encoding == "MPEG4-GENERIC" else track.encoding
        rtpmap = f"{pt} {encoding}/{track.clock_rate}"
        if track.channels is not None:
            rtpmap += f"/{track.channels}"
        media.lines.append(("a", f"rtpmap:{rtpmap}"))
        fmtp = _h264_fmtp(track.fmtp, sprop) if track.encoding == "H264" else track.fmtp
        if fmtp:
            media.lines.append(("a", f"fmtp:{pt} {fmtp.to_text()}"))
        if source is not None:
            for name in _KEPT_ATTRIBUTES:
                for value in source.attributes(name):
                    media.lines.append(("a", f"{name}:{value}"))
            for name in _DIRECTIONS:
                if source.attribute(name) is not None:
                    media.lines.append(("a", name))
        media.lines.append(("a", f"control:trackID={track.index}"))
        out.media.append(media)
    return out.to_text()
