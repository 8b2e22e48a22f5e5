"""H.264 over RTP (RFC 6184): NAL unit inspection, keyframe detection, SPS parsing.

Only what the relay and the prober need: which NAL units an RTP payload carries, where a
GOP cache may start, the parameter sets carried in-band, the picture size and profile
from an SPS, and the ``sprop-parameter-sets`` / ``profile-level-id`` fmtp values.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

BytesLike = bytes | bytearray | memoryview

NAL_SLICE = 1
NAL_SLICE_DPA = 2
NAL_SLICE_DPB = 3
NAL_SLICE_DPC = 4
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
NAL_END_OF_SEQUENCE = 10
NAL_END_OF_STREAM = 11
NAL_FILLER = 12
NAL_STAP_A = 24
NAL_STAP_B = 25
NAL_MTAP16 = 26
NAL_MTAP24 = 27
NAL_FU_A = 28
NAL_FU_B = 29

VCL_TYPES = frozenset(range(NAL_SLICE, NAL_IDR + 1))


@dataclass(frozen=True, slots=True)
class RtpNalInfo:
    """What one H.264 RTP payload carries.

    ``packet_type`` is the type in the payload's own NAL header: 1-23 for a single NAL
    unit, 24 for STAP-A, 28 for FU-A (others are returned as-is with no inner types).
    ``types`` are the NAL unit types carried: the one unit of a single-NAL packet, every
    aggregated unit of a STAP-A, and the fragmented unit's type for an FU-A (every
    fragment repeats it). ``fu_start``/``fu_end`` are the FU header's S and E bits
    (False for unfragmented packets).
    """

    packet_type: int
    types: tuple[int, ...]
    fu_start: bool = False
    fu_end: bool = False

    @property
    def is_fragment(self) -> bool:
        """True for FU-A/FU-B packets."""
        return self.packet_type in (NAL_FU_A, NAL_FU_B)

    @property
    def starts_nal(self) -> bool:
        """True when at least one NAL unit begins in this packet."""
        return bool(self.types) and (not self.is_fragment or self.fu_start)


def _stap_a_units(payload: BytesLike) -> list[memoryview]:
    """The NAL units aggregated in a STAP-A payload; ``ValueError`` when malformed."""
    view = memoryview(payload)
    units: list[memoryview] = []
    pos = 1
    end = len(view)
    while pos + 2 <= end:
        size = (view[pos] << 8) | view[pos + 1]
        pos += 2
        if size == 0 or pos + size > end:
            raise ValueError("malformed STAP-A")
        units.append(view[pos : pos + size])
        pos += size
    if pos != end:
        raise ValueError("trailing bytes in STAP-A")
    return units


def inspect_rtp_payload(payload: BytesLike) -> RtpNalInfo:
    """Describe an H.264 RTP payload; ``ValueError`` if empty or malformed."""
    if len(payload) == 0:
        raise ValueError("empty H.264 RTP payload")
    packet_type = payload[0] & 0x1F
    if 1 <= packet_type <= 23:
        return RtpNalInfo(packet_type, (packet_type,))
    if packet_type == NAL_STAP_A:
        return RtpNalInfo(packet_type, tuple(u[0] & 0x1F for u in _stap_a_units(payload)))
    if packet_type == NAL_FU_A:
        if len(payload) < 2:
            raise ValueError("truncated FU-A")
        fu_header = payload[1]
        return RtpNalInfo(
            packet_type,
            (fu_header & 0x1F,),
            fu_start=bool(fu_header & 0x80),
            fu_end=bool(fu_header & 0x40),
        )
    return RtpNalInfo(packet_type, ())


def nal_types_in_rtp(payload: BytesLike) -> list[int]:
    """NAL unit types that *begin* in this RTP payload.

    Single NAL: ``[type]``; STAP-A: every aggregated type; FU-A: ``[inner type]`` for the
    first fragment and ``[28]`` for the others (nothing new begins there).
    """
    info = inspect_rtp_payload(payload)
    if info.is_fragment and not info.fu_start:
        return [info.packet_type]
    return list(info.types) or [info.packet_type]


def is_keyframe_start(payload: BytesLike) -> bool:
    """True when a GOP cache may start with this packet.

    The rule: the packet is not an FU continuation, and the first NAL unit that begins in
    it is either an SPS (7) or the first slice of an IDR picture (type 5 with
    ``first_mb_in_slice == 0``), as a single NAL unit or as the first fragment of an
    FU-A; or it is a STAP-A that carries an SPS or such an IDR slice before any other
    slice (leading AUD, SEI or PPS units are fine: ``SPS, PPS[, IDR]`` and
    ``AUD, SPS, PPS`` qualify). A lone PPS, SEI or AUD does not: encoders also send those
    before non-IDR pictures; nor do the second and later slices of a multi-slice IDR
    picture. Encoders put SPS and PPS right before each IDR, so the cache starts at the
    first packet of the SPS/PPS/IDR run; when the stream has no in-band SPS it starts at
    the IDR itself (the SDP's sprop-parameter-sets then provide the parameter sets).

    An SPS packet is followed by the IDR start packet, which also matches: use
    :class:`GopTracker` to get one start per keyframe.
    """
    try:
        return _keyframe_trigger(payload, inspect_rtp_payload(payload)) is not None
    except ValueError:
        return False


def _first_slice_starts_picture(slice_data: BytesLike) -> bool:
    """True if a slice header (after the NAL header byte) has ``first_mb_in_slice == 0``.

    first_mb_in_slice is ue(v), which is 0 exactly when its first bit is 1.
    """
    return len(slice_data) > 0 and bool(slice_data[0] & 0x80)


def _keyframe_trigger(payload: BytesLike, info: RtpNalInfo) -> int | None:
    """NAL_SPS or NAL_IDR when the packet starts a keyframe by that unit, else None."""
    if not info.starts_nal:
        return None
    if info.packet_type == NAL_STAP_A:
        for unit in _stap_a_units(payload):
            kind = unit[0] & 0x1F
            if kind == NAL_SPS:
                return NAL_SPS
            if kind == NAL_IDR and _first_slice_starts_picture(unit[1:]):
                return NAL_IDR
            if kind in VCL_TYPES:
                return None
        return None
    first = info.types[0]
    if first == NAL_SPS:
        return NAL_SPS
    # The slice header follows the NAL header (single NAL) or the FU indicator and header.
    offset = 2 if info.packet_type == NAL_FU_A else 1
    if first == NAL_IDR and _first_slice_starts_picture(memoryview(payload)[offset:]):
        return NAL_IDR
    return None


class GopTracker:
    """Finds the packets at which a new GOP begins, once per keyframe.

    :meth:`is_gop_start` applies the rule of :func:`is_keyframe_start`, with two
    refinements that need the packets before:

    - a match is ignored while the current GOP has not yet begun a slice, so the IDR
      start packet that follows the SPS/PPS packets of the same keyframe does not restart
      the GOP;
    - some encoders repeat SPS/PPS before every picture. When a GOP that began at an SPS
      continues with a non-IDR slice, the tracker stops trusting SPS packets and from then
      on starts GOPs at the first slice of each IDR picture only. (That one false start,
      before the pattern is known, is unavoidable without looking ahead.)

    Feed it every payload of the video track, in order. The per-packet cost is a few
    byte tests for FU-A continuation fragments, the bulk of the packets.
    """

    __slots__ = ("_open", "_trust_sps")

    def __init__(self) -> None:
        """Start with no GOP open, trusting SPS packets to announce an IDR."""
        self._open = False  # a GOP start was reported and no slice has begun since
        self._trust_sps = True

    def is_gop_start(self, payload: BytesLike) -> bool:
        """Feed the next H.264 RTP payload; True if a new GOP begins with it."""
        if len(payload) >= 2 and payload[0] & 0x1F == NAL_FU_A and not payload[1] & 0x80:
            return False  # FU-A continuation: nothing begins here
        try:
            info = inspect_rtp_payload(payload)
        except ValueError:
            return False
        if not info.starts_nal:
            return False
        trigger = _keyframe_trigger(payload, info)
        if trigger == NAL_SPS and not self._trust_sps:
            trigger = None
        started = trigger is not None and not self._open
        if started:
            self._open = True
        first_slice = next((t for t in info.types if t in VCL_TYPES), None)
        if first_slice is not None and self._open:
            if first_slice != NAL_IDR:
                self._trust_sps = False
            self._open = False
        return started


def extract_parameter_sets(payload: BytesLike) -> list[bytes]:
    """SPS and PPS NAL units carried whole in a single-NAL or STAP-A payload."""
    try:
        info = inspect_rtp_payload(payload)
    except ValueError:
        return []
    if info.packet_type in (NAL_SPS, NAL_PPS):
        return [bytes(payload)]
    if info.packet_type == NAL_STAP_A:
        return [bytes(u) for u in _stap_a_units(payload) if u[0] & 0x1F in (NAL_SPS, NAL_PPS)]
    return []


# ---------------------------------------------------------------------------------------
# SPS


def remove_emulation_prevention(data: BytesLike) -> bytes:
    """Turn a NAL unit payload into its RBSP: drop each 0x03 that follows 0x00 0x00."""
    raw = bytes(data)
    if b"\x00\x00\x03" not in raw:
        return raw
    out = bytearray()
    pos = 0
    while True:
        hit = raw.find(b"\x00\x00\x03", pos)
        if hit < 0:
            out += raw[pos:]
            return bytes(out)
        out += raw[pos : hit + 2]
        pos = hit + 3


class _BitReader:
    """MSB-first bit reader with Exp-Golomb decoding; ``ValueError`` past the end."""

    __slots__ = ("_bits", "_pos", "_value")

    def __init__(self, data: bytes) -> None:
        self._value = int.from_bytes(data, "big")
        self._bits = len(data) * 8
        self._pos = 0

    def u(self, count: int) -> int:
        if count == 0:
            return 0
        if self._pos + count > self._bits:
            raise ValueError("SPS truncated")
        self._pos += count
        return (self._value >> (self._bits - self._pos)) & ((1 << count) - 1)

    def flag(self) -> bool:
        return self.u(1) == 1

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("invalid Exp-Golomb code in SPS")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        code = self.ue()
        return (code + 1) // 2 if code & 1 else -(code // 2)


# Profiles whose SPS carries chroma_format_idc, bit depths and scaling matrices.
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})

_PROFILE_NAMES = {
    44: "CAVLC 4:4:4 Intra",
    66: "Baseline",
    77: "Main",
    83: "Scalable Baseline",
    86: "Scalable High",
    88: "Extended",
    100: "High",
    110: "High 10",
    118: "Multiview High",
    122: "High 4:2:2",
    128: "Stereo High",
    134: "MFC High",
    135: "MFC Depth High",
    138: "Multiview Depth High",
    139: "Enhanced Multiview Depth High",
    244: "High 4:4:4 Predictive",
}


def profile_name(profile_idc: int, constraint_flags: int) -> str:
    """Human name of an H.264 profile, honouring the constraint_set flags that rename it."""
    set1 = bool(constraint_flags & 0x40)
    set3 = bool(constraint_flags & 0x10)
    set4 = bool(constraint_flags & 0x08)
    set5 = bool(constraint_flags & 0x04)
    if profile_idc == 66 and set1:
        return "Constrained Baseline"
    if profile_idc == 100 and set4 and set5:
        return "Constrained High"
    if profile_idc == 100 and set4:
        return "Progressive High"
    if profile_idc in (110, 122, 244) and set3:
        return f"{_PROFILE_NAMES[profile_idc].replace(' Predictive', '')} Intra"
    return _PROFILE_NAMES.get(profile_idc, f"Unknown ({profile_idc})")


@dataclass(frozen=True)
class SpsInfo:
    """What an SPS says about the stream (the displayed size, after cropping)."""

    profile_idc: int
    constraint_flags: int
    level_idc: int
    width: int
    height: int
    profile_name: str
    chroma_format_idc: int = 1
    frame_mbs_only: bool = True

    @property
    def level(self) -> str:
        """The level as written in the spec, e.g. ``"3.1"`` (``"1b"`` for level 1b)."""
        if self.level_idc == 9 or (
            self.level_idc == 11
            and self.profile_idc in (66, 77, 88)
            and self.constraint_flags & 0x10
        ):
            return "1b"
        return f"{self.level_idc // 10}.{self.level_idc % 10}"


def _skip_scaling_list(reader: _BitReader, size: int) -> None:
    last = 8
    following = 8
    for _ in range(size):
        if following != 0:
            delta = reader.se()
            following = (last + delta + 256) % 256
        last = last if following == 0 else following


def _strip_start_code(nal: BytesLike) -> bytes:
    raw = bytes(nal)
    for prefix in (b"\x00\x00\x00\x01", b"\x00\x00\x01"):
        if raw.startswith(prefix):
            return raw[len(prefix) :]
    return raw


def parse_sps(nal: BytesLike) -> SpsInfo:
    """Parse an SPS NAL unit (with its 1-byte header; an Annex-B start code is tolerated).

    ``ValueError`` when it is not an SPS or is truncated/invalid.
    """
    raw = _strip_start_code(nal)
    if len(raw) < 4 or raw[0] & 0x1F != NAL_SPS:
        raise ValueError("not an SPS NAL unit")
    reader = _BitReader(remove_emulation_prevention(raw[1:]))
    profile_idc = reader.u(8)
    constraint_flags = reader.u(8)
    level_idc = reader.u(8)
    reader.ue()  # seq_parameter_set_id
    chroma_format_idc = 1
    separate_colour_plane = False
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = reader.ue()
        if chroma_format_idc > 3:
            raise ValueError("invalid chroma_format_idc")
        if chroma_format_idc == 3:
            separate_colour_plane = reader.flag()
        reader.ue()  # bit_depth_luma_minus8
        reader.ue()  # bit_depth_chroma_minus8
        reader.flag()  # qpprime_y_zero_transform_bypass_flag
        if reader.flag():  # seq_scaling_matrix_present_flag
            for index in range(8 if chroma_format_idc != 3 else 12):
                if reader.flag():
                    _skip_scaling_list(reader, 16 if index < 6 else 64)
    reader.ue()  # log2_max_frame_num_minus4
    pic_order_cnt_type = reader.ue()
    if pic_order_cnt_type == 0:
        reader.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif pic_order_cnt_type == 1:
        reader.flag()  # delta_pic_order_always_zero_flag
        reader.se()  # offset_for_non_ref_pic
        reader.se()  # offset_for_top_to_bottom_field
        for _ in range(reader.ue()):  # num_ref_frames_in_pic_order_cnt_cycle
            reader.se()
    elif pic_order_cnt_type != 2:
        raise ValueError("invalid pic_order_cnt_type")
    reader.ue()  # max_num_ref_frames
    reader.flag()  # gaps_in_frame_num_value_allowed_flag
    width_mbs = reader.ue() + 1
    height_map_units = reader.ue() + 1
    frame_mbs_only = reader.flag()
    if not frame_mbs_only:
        reader.flag()  # mb_adaptive_frame_field_flag
    reader.flag()  # direct_8x8_inference_flag
    crop_left = crop_right = crop_top = crop_bottom = 0
    if reader.flag():  # frame_cropping_flag
        crop_left, crop_right, crop_top, crop_bottom = (reader.ue() for _ in range(4))
    field_factor = 1 if frame_mbs_only else 2
    chroma_array_type = 0 if separate_colour_plane else chroma_format_idc
    if chroma_array_type == 0:
        crop_unit_x, crop_unit_y = 1, field_factor
    else:
        sub_width = 1 if chroma_array_type == 3 else 2
        sub_height = 2 if chroma_array_type == 1 else 1
        crop_unit_x, crop_unit_y = sub_width, sub_height * field_factor
    width = width_mbs * 16 - crop_unit_x * (crop_left + crop_right)
    height = height_map_units * 16 * field_factor - crop_unit_y * (crop_top + crop_bottom)
    if width <= 0 or height <= 0:
        raise ValueError("SPS cropping exceeds the picture")
    return SpsInfo(
        profile_idc=profile_idc,
        constraint_flags=constraint_flags,
        level_idc=level_idc,
        width=width,
        height=height,
        profile_name=profile_name(profile_idc, constraint_flags),
        chroma_format_idc=chroma_format_idc,
        frame_mbs_only=frame_mbs_only,
    )


# ---------------------------------------------------------------------------------------
# fmtp values


def sprop_parameter_sets(sps: bytes, pps: bytes) -> str:
    """The ``sprop-parameter-sets`` fmtp value: base64 SPS and PPS, comma-separated."""
    return ",".join(base64.b64encode(nal).decode("ascii") for nal in (sps, pps))


def parse_sprop_parameter_sets(value: str) -> list[bytes]:
    """Decode ``sprop-parameter-sets`` into NAL units; ``ValueError`` on invalid base64."""
    out: list[bytes] = []
    for raw in value.split(","):
        item = raw.strip()
        if not item:
            continue
        padded = item + "=" * (-len(item) % 4)
        try:
            out.append(base64.b64decode(padded, validate=True))
        except binascii.Error:
            raise ValueError("invalid base64 in sprop-parameter-sets") from None
    return out


def profile_level_id(sps: BytesLike) -> str:
    """The ``profile-level-id`` fmtp value: SPS bytes 1-3 as six lower-case hex digits."""
    raw = _strip_start_code(sps)
    if len(raw) < 4:
        raise ValueError("SPS too short")
    return raw[1:4].hex()
