"""RTP/RTCP helpers (RFC 3550): RTP header parsing, RTCP parsing, Sender Reports, NTP time.

The relay passes RTP packets through untouched; it only needs to look at headers, find
payloads, read the cameras' Sender Reports and build its own (AOSP holds playback until
every track has had an SR, so the relay sends one per track right at PLAY).
"""

from __future__ import annotations

import math
import struct
import time
from dataclasses import dataclass

RTP_VERSION = 2
RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
RTCP_APP = 204
SDES_CNAME = 1

# Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
NTP_UNIX_OFFSET = 2_208_988_800
_TWO_32 = 1 << 32

BytesLike = bytes | bytearray | memoryview


@dataclass(slots=True, frozen=True)
class RtpHeader:
    """The fixed RTP header plus the total header length (CSRCs and extension included)."""

    version: int
    padding: bool
    extension: bool
    csrc_count: int
    marker: bool
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    header_length: int


_RTP_FIXED = struct.Struct("!BBHII")


def parse_rtp_header(packet: BytesLike) -> RtpHeader:
    """Parse an RTP header; ``ValueError`` if the packet is short or not RTP version 2."""
    if len(packet) < 12:
        raise ValueError("RTP packet shorter than 12 bytes")
    b0, b1, sequence, timestamp, ssrc = _RTP_FIXED.unpack_from(packet)
    version = b0 >> 6
    if version != RTP_VERSION:
        raise ValueError(f"not RTP version 2 (version {version})")
    csrc_count = b0 & 0x0F
    header_length = 12 + 4 * csrc_count
    extension = bool(b0 & 0x10)
    if extension:
        if len(packet) < header_length + 4:
            raise ValueError("RTP header extension truncated")
        ext_words = (packet[header_length + 2] << 8) | packet[header_length + 3]
        header_length += 4 + 4 * ext_words
    if header_length > len(packet):
        raise ValueError("RTP header longer than the packet")
    return RtpHeader(
        version=version,
        padding=bool(b0 & 0x20),
        extension=extension,
        csrc_count=csrc_count,
        marker=bool(b1 & 0x80),
        payload_type=b1 & 0x7F,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        header_length=header_length,
    )


def rtp_payload(packet: BytesLike, header: RtpHeader | None = None) -> memoryview:
    """Return the RTP payload as a zero-copy view, skipping CSRCs/extension and padding.

    Pass ``header`` when it is already parsed. ``ValueError`` on an invalid padding count.
    """
    if header is None:
        header = parse_rtp_header(packet)
    end = len(packet)
    if header.padding:
        pad = packet[end - 1]
        if pad == 0 or header.header_length + pad > end:
            raise ValueError("invalid RTP padding")
        end -= pad
    return memoryview(packet)[header.header_length : end]


def rtp_sequence(packet: BytesLike) -> int:
    """The sequence number of an RTP packet (no validation beyond length)."""
    if len(packet) < 4:
        raise ValueError("RTP packet too short")
    return (packet[2] << 8) | packet[3]


def rtp_timestamp(packet: BytesLike) -> int:
    """The timestamp of an RTP packet (no validation beyond length)."""
    if len(packet) < 8:
        raise ValueError("RTP packet too short")
    return int.from_bytes(packet[4:8], "big")


# ---------------------------------------------------------------------------------------
# NTP time


def ntp_from_unix(t: float) -> tuple[int, int]:
    """Convert Unix time to a 64-bit NTP timestamp ``(seconds, fraction)``.

    Seconds wrap modulo 2**32 (NTP era 1 starts in 2036).
    """
    whole = math.floor(t)
    fraction = min(int((t - whole) * _TWO_32), _TWO_32 - 1)
    return (whole + NTP_UNIX_OFFSET) % _TWO_32, fraction


def ntp_to_unix(seconds: int, fraction: int) -> float:
    """Convert an NTP timestamp to Unix time.

    Seconds with the top bit clear are taken to be in NTP era 1 (from 2036), as RFC 4330
    §3 suggests, so the mapping stays monotonic across the 2036 wrap.
    """
    if not seconds & 0x8000_0000:
        seconds += _TWO_32
    return seconds - NTP_UNIX_OFFSET + fraction / _TWO_32


def ntp_now() -> tuple[int, int]:
    """The current wall-clock time as an NTP timestamp."""
    return ntp_from_unix(time.time())


# ---------------------------------------------------------------------------------------
# RTCP


@dataclass
class SenderReport:
    """An RTCP Sender Report's sender info (reception report blocks are not kept)."""

    ssrc: int
    ntp_seconds: int
    ntp_fraction: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int

    @property
    def unix_time(self) -> float:
        """The SR's wall-clock time as Unix time."""
        return ntp_to_unix(self.ntp_seconds, self.ntp_fraction)


@dataclass(frozen=True)
class RtcpGeneric:
    """Any RTCP packet other than a Sender Report: its type, count field and body.

    ``body`` is everything after the 4-byte common header, padding removed.
    """

    packet_type: int
    count: int
    body: bytes


RtcpPacket = SenderReport | RtcpGeneric

_SR = struct.Struct("!BBHIIIIII")


def build_sender_report(sr: SenderReport, cname: str | None = None) -> bytes:
    """Build an RTCP SR (no reception reports), followed by an SDES CNAME when given.

    RFC 3550 §6.1 wants every compound RTCP packet to carry an SDES CNAME; pass ``cname``
    unless the caller appends its own SDES.
    """
    out = _SR.pack(
        0x80,
        RTCP_SR,
        6,
        sr.ssrc & 0xFFFFFFFF,
        sr.ntp_seconds & 0xFFFFFFFF,
        sr.ntp_fraction & 0xFFFFFFFF,
        sr.rtp_timestamp & 0xFFFFFFFF,
        sr.packet_count & 0xFFFFFFFF,
        sr.octet_count & 0xFFFFFFFF,
    )
    if cname is None:
        return out
    text = cname.encode("utf-8")
    if len(text) > 255:
        raise ValueError("CNAME longer than 255 bytes")
    chunk = struct.pack("!IBB", sr.ssrc & 0xFFFFFFFF, SDES_CNAME, len(text)) + text
    # The item list ends with at least one null octet, padded to a 32-bit boundary.
    chunk += b"\x00" * (4 - len(chunk) % 4)
    sdes = struct.pack("!BBH", 0x81, RTCP_SDES, len(chunk) // 4) + chunk
    return out + sdes


def parse_rtcp(packet: BytesLike) -> list[RtcpPacket]:
    """Split a compound RTCP packet; ``ValueError`` when malformed.

    Sender Reports (PT 200) come back as :class:`SenderReport`, every other packet as
    :class:`RtcpGeneric`.
    """
    data = bytes(packet)
    out: list[RtcpPacket] = []
    pos = 0
    if not data:
        raise ValueError("empty RTCP packet")
    while pos < len(data):
        if len(data) - pos < 4:
            raise ValueError("truncated RTCP header")
        b0, packet_type, words = struct.unpack_from("!BBH", data, pos)
        if b0 >> 6 != RTP_VERSION:
            raise ValueError("not RTCP version 2")
        size = (words + 1) * 4
        if pos + size > len(data):
            raise ValueError("RTCP length exceeds the packet")
        end = pos + size
        if b0 & 0x20:
            pad = data[end - 1]
            if pad == 0 or pad > size - 4:
                raise ValueError("invalid RTCP padding")
            end -= pad
        count = b0 & 0x1F
        if packet_type == RTCP_SR:
            if end - pos < 28:
                raise ValueError("truncated Sender Report")
            _, _, _, ssrc, ntp_s, ntp_f, rtp_ts, packets, octets = _SR.unpack_from(data, pos)
            out.append(SenderReport(ssrc, ntp_s, ntp_f, rtp_ts, packets, octets))
        else:
            out.append(RtcpGeneric(packet_type, count, data[pos + 4 : end]))
        pos += size
    return out


def rtp_timestamp_at(sr: SenderReport, clock_rate: int, unix_time: float) -> int:
    """Extrapolate the RTP timestamp at ``unix_time`` from an SR's NTP↔RTP mapping.

    Returns a value modulo 2**32; ``unix_time`` may precede the SR.
    """
    delta = unix_time - sr.unix_time
    return (sr.rtp_timestamp + round(delta * clock_rate)) % _TWO_32
