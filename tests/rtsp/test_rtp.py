"""Tests for RTP/RTCP parsing, Sender Report building and NTP helpers."""

from __future__ import annotations

import struct
import time

import pytest

from custom_components.alexa_cam_bridge.rtsp.rtp import (
    NTP_UNIX_OFFSET,
    RtcpGeneric,
    SenderReport,
    build_sender_report,
    ntp_from_unix,
    ntp_now,
    ntp_to_unix,
    parse_rtcp,
    parse_rtp_header,
    rtp_payload,
    rtp_sequence,
    rtp_timestamp,
    rtp_timestamp_at,
)


def rtp_packet(
    *,
    payload: bytes = b"\x65\x88\x84",
    marker: bool = True,
    pt: int = 96,
    seq: int = 0xBEEF,
    ts: int = 0x01020304,
    ssrc: int = 0xCAFEBABE,
    csrcs: tuple[int, ...] = (),
    extension: bytes | None = None,
    padding: int = 0,
) -> bytes:
    """Build an RTP packet by hand, independently of the module."""
    b0 = 0x80 | (0x20 if padding else 0) | (0x10 if extension is not None else 0) | len(csrcs)
    b1 = (0x80 if marker else 0) | pt
    out = struct.pack("!BBHII", b0, b1, seq, ts, ssrc)
    out += b"".join(struct.pack("!I", c) for c in csrcs)
    if extension is not None:
        out += struct.pack("!HH", 0xBEDE, len(extension) // 4) + extension
    out += payload
    if padding:
        out += b"\x00" * (padding - 1) + bytes([padding])
    return out


def test_parse_simple_header() -> None:
    packet = rtp_packet()
    header = parse_rtp_header(packet)
    assert header.version == 2
    assert not header.padding
    assert not header.extension
    assert header.csrc_count == 0
    assert header.marker
    assert header.payload_type == 96
    assert header.sequence == 0xBEEF
    assert header.timestamp == 0x01020304
    assert header.ssrc == 0xCAFEBABE
    assert header.header_length == 12
    assert bytes(rtp_payload(packet)) == b"\x65\x88\x84"
    assert rtp_sequence(packet) == 0xBEEF
    assert rtp_timestamp(packet) == 0x01020304


def test_csrc_extension_padding() -> None:
    packet = rtp_packet(
        csrcs=(1, 2), extension=b"\x10\xaa\x00\x00" * 2, padding=4, marker=False, pt=0
    )
    header = parse_rtp_header(packet)
    assert header.csrc_count == 2
    assert header.extension
    assert header.padding
    assert not header.marker
    assert header.payload_type == 0
    assert header.header_length == 12 + 8 + 4 + 8
    assert bytes(rtp_payload(packet)) == b"\x65\x88\x84"
    assert bytes(rtp_payload(memoryview(packet), header)) == b"\x65\x88\x84"
    assert bytes(rtp_payload(bytearray(packet))) == b"\x65\x88\x84"


@pytest.mark.parametrize(
    "packet",
    [
        b"",
        b"\x80" * 11,
        b"\x40" + b"\x00" * 11,  # version 1
        rtp_packet(csrcs=(1, 2, 3))[:20],
        rtp_packet(extension=b"", payload=b"")[:14],
        rtp_packet(extension=b"\x00" * 8, payload=b"")[:18],
    ],
)
def test_invalid_headers(packet: bytes) -> None:
    with pytest.raises(ValueError):
        parse_rtp_header(packet)


def test_invalid_padding() -> None:
    packet = bytearray(rtp_packet(padding=2))
    packet[-1] = 0
    with pytest.raises(ValueError):
        rtp_payload(bytes(packet))
    packet[-1] = 200
    with pytest.raises(ValueError):
        rtp_payload(bytes(packet))


def test_accessor_errors() -> None:
    with pytest.raises(ValueError):
        rtp_sequence(b"\x80\x60\x00")
    with pytest.raises(ValueError):
        rtp_timestamp(b"\x80\x60\x00\x01\x00")


def test_ntp_conversions() -> None:
    assert ntp_from_unix(0.0) == (NTP_UNIX_OFFSET, 0)
    assert ntp_from_unix(1.5) == (NTP_UNIX_OFFSET + 1, 1 << 31)
    seconds, fraction = ntp_from_unix(1_700_000_000.25)
    assert seconds == 1_700_000_000 + NTP_UNIX_OFFSET
    assert fraction == 1 << 30
    assert ntp_to_unix(seconds, fraction) == 1_700_000_000.25
    # Fractions never overflow into the seconds field.
    assert ntp_from_unix(0.9999999999999)[1] <= 0xFFFFFFFF
    # Across the 2036 NTP era wrap.
    after_wrap = 2_085_978_496 + 10.5  # 2036-02-07T06:28:16Z + 10.5 s
    s, f = ntp_from_unix(after_wrap)
    assert s == 10
    assert ntp_to_unix(s, f) == after_wrap
    before = time.time()
    now = ntp_to_unix(*ntp_now())
    assert before - 1 <= now <= time.time() + 1


def test_build_sender_report_by_hand() -> None:
    sr = SenderReport(
        ssrc=0x11223344,
        ntp_seconds=0xE1234567,
        ntp_fraction=0x80000000,
        rtp_timestamp=90000,
        packet_count=7,
        octet_count=9000,
    )
    data = build_sender_report(sr)
    assert len(data) == 28
    # Decode the bytes by hand: V=2, P=0, RC=0, PT=200, length=6 words.
    assert data[0] == 0x80
    assert data[1] == 200
    assert int.from_bytes(data[2:4], "big") == 6
    assert int.from_bytes(data[4:8], "big") == 0x11223344
    assert int.from_bytes(data[8:12], "big") == 0xE1234567
    assert int.from_bytes(data[12:16], "big") == 0x80000000
    assert int.from_bytes(data[16:20], "big") == 90000
    assert int.from_bytes(data[20:24], "big") == 7
    assert int.from_bytes(data[24:28], "big") == 9000
    assert parse_rtcp(data) == [sr]


def test_sender_report_with_cname() -> None:
    sr = SenderReport(1, 2, 3, 4, 5, 6)
    data = build_sender_report(sr, cname="alexa_cam_bridge")
    assert len(data) % 4 == 0
    sdes = data[28:]
    assert sdes[0] == 0x81  # V=2, SC=1
    assert sdes[1] == 202
    assert (int.from_bytes(sdes[2:4], "big") + 1) * 4 == len(sdes)
    assert int.from_bytes(sdes[4:8], "big") == 1
    assert sdes[8] == 1  # CNAME
    assert sdes[9] == len("alexa_cam_bridge")
    assert sdes[10:26] == b"alexa_cam_bridge"
    assert sdes[26:]
    assert set(sdes[26:]) == {0}
    parsed = parse_rtcp(data)
    assert parsed[0] == sr
    assert isinstance(parsed[1], RtcpGeneric)
    assert parsed[1].packet_type == 202
    assert parsed[1].count == 1
    # A CNAME whose chunk is already word-aligned still gets its terminating null word.
    aligned = build_sender_report(sr, cname="ab")
    assert aligned[28 + 4 + 4 + 2 + 2 :] == b"\x00" * 4
    assert len(build_sender_report(sr, cname="abcd")) % 4 == 0
    with pytest.raises(ValueError):
        build_sender_report(sr, cname="x" * 256)


def test_build_masks_to_32_bits() -> None:
    sr = SenderReport(2**32 + 1, 0, 0, 2**32 + 5, 0, 0)
    (parsed,) = parse_rtcp(build_sender_report(sr))
    assert isinstance(parsed, SenderReport)
    assert parsed.ssrc == 1
    assert parsed.rtp_timestamp == 5


def test_parse_compound_rr_sdes_bye_with_padding() -> None:
    rr = struct.pack("!BBHI", 0x80, 201, 1, 0xAABBCCDD)
    bye = struct.pack("!BBHI", 0xA1, 203, 2, 0xAABBCCDD) + b"\x00\x00\x00\x04"
    sr_with_block = struct.pack("!BBHIIIIII", 0x81, 200, 12, 9, 10, 11, 12, 13, 14) + b"\x01" * 24
    parsed = parse_rtcp(rr + sr_with_block + bye)
    assert parsed[0] == RtcpGeneric(201, 0, struct.pack("!I", 0xAABBCCDD))
    assert parsed[1] == SenderReport(9, 10, 11, 12, 13, 14)
    assert parsed[2] == RtcpGeneric(203, 1, struct.pack("!I", 0xAABBCCDD))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80\xc8\x00",
        b"\x40\xc8\x00\x00",
        b"\x80\xc8\x00\x06" + b"\x00" * 20,
        b"\x80\xc8\x00\x01" + b"\x00" * 4,
        b"\xa0\xc9\x00\x01\x00\x00\x00\x00",
        b"\xa0\xc9\x00\x01\x00\x00\x00\x09",
    ],
)
def test_parse_rtcp_errors(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse_rtcp(data)


def test_rtp_timestamp_at() -> None:
    base = 1_700_000_000.0
    sr = SenderReport(1, *ntp_from_unix(base), rtp_timestamp=1000, packet_count=0, octet_count=0)
    assert sr.unix_time == base
    assert rtp_timestamp_at(sr, 90000, base) == 1000
    assert rtp_timestamp_at(sr, 90000, base + 2.0) == 181000
    assert rtp_timestamp_at(sr, 8000, base - 0.5) == (1000 - 4000) % 2**32
    wrapping = SenderReport(1, *ntp_from_unix(base), 2**32 - 10, 0, 0)
    assert rtp_timestamp_at(wrapping, 90000, base + 1) == 90000 - 10
