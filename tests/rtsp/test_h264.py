"""Tests for H.264 RTP inspection and SPS parsing, against streams made by ffmpeg/libx264."""

from __future__ import annotations

import base64
import functools
import re
import shutil
import subprocess

import pytest

from custom_components.alexa_cam_bridge.rtsp.h264 import (
    NAL_FU_A,
    NAL_IDR,
    NAL_PPS,
    NAL_SEI,
    NAL_SLICE,
    NAL_SPS,
    NAL_STAP_A,
    GopTracker,
    RtpNalInfo,
    extract_parameter_sets,
    inspect_rtp_payload,
    is_keyframe_start,
    nal_types_in_rtp,
    parse_sprop_parameter_sets,
    parse_sps,
    profile_level_id,
    profile_name,
    remove_emulation_prevention,
    sprop_parameter_sets,
)

FFMPEG = shutil.which("ffmpeg")


@functools.cache
def encode(size: str, *args: str, frames: int = 1) -> list[bytes]:
    """Encode `frames` test frames with libx264 and return the NAL units (Annex B split)."""
    assert FFMPEG is not None, "ffmpeg is needed for these tests"
    stream = subprocess.run(
        [
            FFMPEG,
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={size}:rate=25",
            "-frames:v",
            str(frames),
            "-c:v",
            "libx264",
            *args,
            "-f",
            "h264",
            "-",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    units = [u for u in re.split(rb"\x00\x00\x00?\x01", stream) if u]
    # A 4-byte start code leaves nothing behind; strip trailing_zero_8bits defensively.
    return [u.rstrip(b"\x00") if u[-1:] == b"\x00" else u for u in units]


def first_of(units: list[bytes], nal_type: int) -> bytes:
    return next(u for u in units if u[0] & 0x1F == nal_type)


@pytest.mark.parametrize(
    ("size", "args", "expected"),
    [
        (
            "1280x720",
            ("-profile:v", "baseline"),
            (66, "Constrained Baseline", 1280, 720, 1, True),
        ),
        ("1920x1080", ("-profile:v", "high"), (100, "High", 1920, 1080, 1, True)),
        ("854x480", ("-profile:v", "main"), (77, "Main", 854, 480, 1, True)),
        ("640x360", ("-profile:v", "high", "-level", "3.1"), (100, "High", 640, 360, 1, True)),
        (
            "720x576",
            ("-profile:v", "high", "-flags", "+ildct+ilme", "-x264-params", "interlaced=1"),
            (100, "High", 720, 576, 1, False),
        ),
        (
            "1918x1078",  # odd-ish cropping in both directions, 4:4:4 with scaling lists
            ("-pix_fmt", "yuv444p", "-profile:v", "high444", "-x264-params", "cqm=jvt"),
            (244, "High 4:4:4 Predictive", 1918, 1078, 3, True),
        ),
        (
            "1280x720",
            ("-pix_fmt", "yuv422p", "-profile:v", "high422", "-x264-params", "cqm=jvt"),
            (122, "High 4:2:2", 1280, 720, 2, True),
        ),
        (
            "320x240",
            ("-pix_fmt", "gray", "-profile:v", "high"),
            (100, "High", 320, 240, 0, True),
        ),
    ],
)
def test_parse_real_sps(
    size: str, args: tuple[str, ...], expected: tuple[int, str, int, int, int, bool]
) -> None:
    units = encode(size, *args)
    sps = first_of(units, NAL_SPS)
    info = parse_sps(sps)
    profile, name, width, height, chroma, progressive = expected
    assert info.profile_idc == profile
    assert info.profile_name == name
    assert (info.width, info.height) == (width, height)
    assert info.chroma_format_idc == chroma
    assert info.frame_mbs_only is progressive
    assert info.constraint_flags == sps[2]
    assert info.level_idc == sps[3]
    # Same result with an Annex-B start code in front.
    assert parse_sps(b"\x00\x00\x00\x01" + sps) == info
    assert parse_sps(b"\x00\x00\x01" + sps) == info


def test_sps_levels_and_profile_level_id() -> None:
    sps = first_of(encode("1280x720", "-profile:v", "baseline"), NAL_SPS)
    info = parse_sps(sps)
    assert info.level_idc == 31
    assert info.level == "3.1"
    assert profile_level_id(sps) == sps[1:4].hex()
    assert profile_level_id(sps).startswith("42")
    assert profile_level_id(b"\x00\x00\x00\x01" + sps) == sps[1:4].hex()
    hd = parse_sps(first_of(encode("1920x1080", "-profile:v", "high"), NAL_SPS))
    assert hd.level == "4.0"
    with pytest.raises(ValueError):
        profile_level_id(b"\x67\x42")


def test_level_1b() -> None:
    sps = bytearray(first_of(encode("1280x720", "-profile:v", "baseline"), NAL_SPS))
    sps[3] = 11
    sps[2] |= 0x10
    assert parse_sps(bytes(sps)).level == "1b"
    high = bytearray(first_of(encode("1280x720", "-profile:v", "high"), NAL_SPS))
    high[3] = 9
    assert parse_sps(bytes(high)).level == "1b"
    high[3] = 11
    high[2] |= 0x10  # constraint_set3 means "1b" only for Baseline/Main/Extended
    assert parse_sps(bytes(high)).level == "1.1"


@pytest.mark.parametrize(
    ("profile", "flags", "name"),
    [
        (66, 0x00, "Baseline"),
        (66, 0x40, "Constrained Baseline"),
        (77, 0x40, "Main"),
        (88, 0x00, "Extended"),
        (100, 0x08, "Progressive High"),
        (100, 0x0C, "Constrained High"),
        (110, 0x00, "High 10"),
        (110, 0x10, "High 10 Intra"),
        (244, 0x10, "High 4:4:4 Intra"),
        (1, 0, "Unknown (1)"),
    ],
)
def test_profile_names(profile: int, flags: int, name: str) -> None:
    assert profile_name(profile, flags) == name


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x68\xce\x38\x80",  # a PPS
        b"\x67\x42",  # too short
        b"\x67\x42\xc0\x1f",  # truncated after the level
        b"\x67\x42\xc0\x1f" + b"\x00" * 5,  # Exp-Golomb code longer than 32 bits
        b"\x67\x64\x00\x28\x98",  # chroma_format_idc = 4 (ue 00100)
    ],
)
def test_parse_sps_rejects(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse_sps(data)


def test_parse_sps_rejects_bad_poc_type_and_cropping() -> None:
    # Hand-built baseline SPS: id=0, log2_max_frame_num=0, poc type 3 (invalid).
    with pytest.raises(ValueError):
        parse_sps(bytes([0x67, 66, 0, 30, 0b11001000, 0x80]))
    # Cropping larger than the picture: 1 MB wide, crop_left = 8 (16 luma columns).
    # bits: id=1 | lmfn=1 | poc=011(2) | refs=1 | gaps=0 | w-1=1 | h-1=1 | fmo=1 | d8=1
    # | crop=1 | left=0001001(8) | right=1 | top=1 | bottom=1
    bits = "1" + "1" + "011" + "1" + "0" + "1" + "1" + "1" + "1" + "1" + "0001001" + "111"
    bits += "1" + "0" * (-(len(bits) + 1) % 8)
    with pytest.raises(ValueError):
        parse_sps(bytes([0x67, 66, 0, 30]) + int(bits, 2).to_bytes(len(bits) // 8, "big"))


def test_emulation_prevention() -> None:
    assert remove_emulation_prevention(b"\x00\x00\x03\x01\x00\x00\x03\x00\x00\x00\x03") == (
        b"\x00\x00\x01\x00\x00\x00\x00\x00"
    )
    assert remove_emulation_prevention(b"\x01\x02") == b"\x01\x02"
    assert remove_emulation_prevention(memoryview(b"\x00\x00\x03")) == b"\x00\x00"


def test_parse_sps_with_pic_order_cnt_type_1() -> None:
    # Hand-built baseline 176x144 SPS with poc type 1 and two offsets in the cycle:
    # id=0:1 lmfn=0:1 poc=1:010 always_zero=0 non_ref=se(1):010 t2b=se(-1):011
    # cycle=2:011 se(0):1 se(2):00100 refs=1:010 gaps=0 w-1=10:0001011 h-1=8:0001001
    # fmo=1 d8=1 crop=0 + rbsp stop bit
    bits = "1" + "1" + "010" + "0" + "010" + "011" + "011" + "1" + "00100" + "010" + "0"
    bits += "0001011" + "0001001" + "1" + "1" + "0" + "1"
    bits += "0" * (-len(bits) % 8)
    sps = bytes([0x67, 66, 0xC0, 11]) + int(bits, 2).to_bytes(len(bits) // 8, "big")
    info = parse_sps(sps)
    assert (info.width, info.height) == (176, 144)


# --- RTP payloads ----------------------------------------------------------------------


def stap_a(*units: bytes) -> bytes:
    out = bytes([(units[0][0] & 0x60) | NAL_STAP_A])
    for unit in units:
        out += len(unit).to_bytes(2, "big") + unit
    return out


def fu_a(unit: bytes, mtu: int = 1000) -> list[bytes]:
    """Fragment a NAL unit into FU-A payloads, as RFC 6184 §5.8 describes."""
    indicator = (unit[0] & 0xE0) | NAL_FU_A
    body = unit[1:]
    chunks = [body[i : i + mtu] for i in range(0, len(body), mtu)]
    out = []
    for index, chunk in enumerate(chunks):
        header = unit[0] & 0x1F
        if index == 0:
            header |= 0x80
        if index == len(chunks) - 1:
            header |= 0x40
        out.append(bytes([indicator, header]) + chunk)
    return out


@functools.cache
def gop_units() -> list[bytes]:
    """SPS, PPS, SEI, IDR, then P slices: a real 2-second-GOP stream's first frames."""
    return encode("640x360", "-profile:v", "main", "-g", "50", "-bf", "0", frames=4)


def test_real_stream_shape() -> None:
    types = [u[0] & 0x1F for u in gop_units()]
    assert types[:4] == [NAL_SPS, NAL_PPS, NAL_SEI, NAL_IDR]
    assert types[4:] == [NAL_SLICE] * 3


def test_single_nal_packets() -> None:
    sps, pps, sei, idr, p_slice, *_ = gop_units()
    assert inspect_rtp_payload(sps) == RtpNalInfo(NAL_SPS, (NAL_SPS,))
    assert nal_types_in_rtp(pps) == [NAL_PPS]
    assert nal_types_in_rtp(idr) == [NAL_IDR]
    assert is_keyframe_start(sps)
    assert not is_keyframe_start(pps)
    assert not is_keyframe_start(sei)
    assert is_keyframe_start(idr)
    assert not is_keyframe_start(p_slice)
    assert extract_parameter_sets(sps) == [sps]
    assert extract_parameter_sets(pps) == [pps]
    assert extract_parameter_sets(idr) == []
    info = inspect_rtp_payload(sps)
    assert info.starts_nal
    assert not info.is_fragment


def test_stap_a() -> None:
    sps, pps, sei, idr, p_slice, *_ = gop_units()
    packet = stap_a(sps, pps)
    info = inspect_rtp_payload(packet)
    assert info.packet_type == NAL_STAP_A
    assert info.types == (NAL_SPS, NAL_PPS)
    assert nal_types_in_rtp(packet) == [NAL_SPS, NAL_PPS]
    assert is_keyframe_start(packet)
    assert extract_parameter_sets(packet) == [sps, pps]
    assert extract_parameter_sets(memoryview(stap_a(sei, sps, pps))) == [sps, pps]
    # Leading AUD/SEI/PPS units do not matter; a slice before the SPS/IDR does.
    aud = b"\x09\xf0"
    assert is_keyframe_start(stap_a(aud, sps, pps))
    assert is_keyframe_start(stap_a(sei, sps, pps))
    assert is_keyframe_start(stap_a(aud, sei, idr[:40]))
    assert not is_keyframe_start(stap_a(pps, sei))
    assert not is_keyframe_start(stap_a(aud, p_slice[:40], sps))
    small_idr = idr[:50]
    assert is_keyframe_start(stap_a(small_idr))
    assert not is_keyframe_start(stap_a(p_slice[:50]))
    for bad in (b"\x18\x00", b"\x18\x00\x05\x67", b"\x18\x00\x00", stap_a(sps) + b"\x00"):
        with pytest.raises(ValueError):
            inspect_rtp_payload(bad)
        assert not is_keyframe_start(bad)
        assert extract_parameter_sets(bad) == []


def test_fu_a() -> None:
    _, _, _, idr, p_slice, *_ = gop_units()
    fragments = fu_a(idr)
    assert len(fragments) > 2
    first, middle, last = fragments[0], fragments[1], fragments[-1]
    assert inspect_rtp_payload(first) == RtpNalInfo(NAL_FU_A, (NAL_IDR,), True, False)
    assert inspect_rtp_payload(middle) == RtpNalInfo(NAL_FU_A, (NAL_IDR,), False, False)
    assert inspect_rtp_payload(last) == RtpNalInfo(NAL_FU_A, (NAL_IDR,), False, True)
    assert inspect_rtp_payload(first).starts_nal
    assert not inspect_rtp_payload(middle).starts_nal
    assert inspect_rtp_payload(middle).is_fragment
    assert nal_types_in_rtp(first) == [NAL_IDR]
    assert nal_types_in_rtp(middle) == [NAL_FU_A]
    assert is_keyframe_start(first)
    assert not any(is_keyframe_start(f) for f in fragments[1:])
    assert not is_keyframe_start(fu_a(p_slice, 100)[0])
    assert extract_parameter_sets(first) == []
    with pytest.raises(ValueError):
        inspect_rtp_payload(b"\x7c")


def test_multi_slice_idr_starts_once() -> None:
    # Four slices per picture: only the slice with first_mb_in_slice == 0 starts a GOP.
    units = encode("640x360", "-profile:v", "main", "-x264-params", "slices=4", frames=1)
    idr_slices = [u for u in units if u[0] & 0x1F == NAL_IDR]
    assert len(idr_slices) == 4
    starts = [is_keyframe_start(fu_a(s)[0]) for s in idr_slices]
    assert starts == [True, False, False, False]


def test_other_packet_types() -> None:
    assert inspect_rtp_payload(b"\x19\x00") == RtpNalInfo(25, ())
    assert nal_types_in_rtp(b"\x19\x00") == [25]
    assert not is_keyframe_start(b"\x19\x00")
    assert not is_keyframe_start(b"")
    with pytest.raises(ValueError):
        inspect_rtp_payload(b"")


def test_gop_tracker() -> None:
    sps, pps, sei, idr, *p_slices = gop_units()
    tracker = GopTracker()
    packets = [p_slices[0], sps, pps, sei, *fu_a(idr), *p_slices, sps, pps, *fu_a(idr)]
    starts = [tracker.is_gop_start(p) for p in packets]
    assert [i for i, s in enumerate(starts) if s] == [1, 4 + len(fu_a(idr)) + 3]
    # Without in-band parameter sets every IDR starts a GOP.
    tracker = GopTracker()
    packets = [*fu_a(idr), p_slices[0], *fu_a(idr)]
    assert [tracker.is_gop_start(p) for p in packets].count(True) == 2
    # A STAP-A with SPS+PPS+IDR is one start; garbage is ignored.
    tracker = GopTracker()
    assert tracker.is_gop_start(stap_a(sps, pps, idr[:40]))
    assert not tracker.is_gop_start(b"")
    assert tracker.is_gop_start(sps)


def test_gop_tracker_parameter_sets_before_every_picture() -> None:
    sps, pps, _sei, idr, *p_slices = gop_units()
    tracker = GopTracker()
    packets = [sps, pps, *fu_a(idr)]
    for p_slice in p_slices:
        packets += [sps, pps, p_slice]
    packets += [sps, pps, *fu_a(idr), sps, pps, p_slices[0]]
    starts = [i for i, p in enumerate(packets) if tracker.is_gop_start(p)]
    idr_count = len(fu_a(idr))
    second_idr = 2 + idr_count + 3 * len(p_slices) + 2
    # SPS packets are trusted until one turns out to precede a P slice (the false start at
    # the second SPS); from then on only IDR starts count.
    assert starts == [0, 2 + idr_count, second_idr]
    assert inspect_rtp_payload(packets[second_idr]).types == (NAL_IDR,)


def test_sprop_parameter_sets() -> None:
    sps, pps, *_ = gop_units()
    value = sprop_parameter_sets(sps, pps)
    assert value == f"{base64.b64encode(sps).decode()},{base64.b64encode(pps).decode()}"
    assert parse_sprop_parameter_sets(value) == [sps, pps]
    # Unpadded base64 and stray spaces/commas are tolerated.
    unpadded = ",".join(base64.b64encode(n).decode().rstrip("=") for n in (sps, pps))
    assert parse_sprop_parameter_sets(f" {unpadded} ,") == [sps, pps]
    assert parse_sprop_parameter_sets("") == []
    with pytest.raises(ValueError):
        parse_sprop_parameter_sets("Z0L!AB")
