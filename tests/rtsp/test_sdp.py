"""Tests for SDP parsing, track selection and the restream SDP."""

from __future__ import annotations

import base64
import socket

import pytest

from custom_components.alexa_cam_bridge.rtsp.h264 import parse_sprop_parameter_sets, parse_sps
from custom_components.alexa_cam_bridge.rtsp.messages import (
    Headers,
    RtspParser,
    RtspRequest,
    RtspResponse,
    serialize_request,
)
from custom_components.alexa_cam_bridge.rtsp.sdp import (
    FmtpParams,
    MediaDescription,
    RtpMap,
    SdpError,
    SessionDescription,
    Track,
    build_restream_sdp,
    parse_fmtp_params,
    parse_sdp,
    select_tracks,
    video_codec_name,
)
from tests.peers.camera import AudioCodec, FakeCamera, VideoCodec

# A 1280x720 baseline SPS and its PPS, as libx264 writes them.
SPS = bytes.fromhex("6742c01fd9005005bb011000000300100000030320f18324 80".replace(" ", ""))
PPS = bytes.fromhex("68cb83cb20")
SPROP = base64.b64encode(SPS).decode() + "," + base64.b64encode(PPS).decode()

# What gst-rtsp-server (rtph264pay + rtpmp4gpay) answers to DESCRIBE.
GST_SDP = f"""v=0
o=- 1188340656180883 1 IN IP4 127.0.0.1
s=Session streamed with GStreamer
i=rtsp-server
t=0 0
a=tool:GStreamer
a=type:broadcast
a=range:npt=now-
a=control:rtsp://127.0.0.1:8554/test
m=video 0 RTP/AVP 96
c=IN IP4 0.0.0.0
b=AS:2097
a=rtpmap:96 H264/90000
a=framerate:25
a=fmtp:96 packetization-mode=1;sprop-parameter-sets={SPROP};profile-level-id=42c01f;level-asymmetry-allowed=1
a=control:rtsp://127.0.0.1:8554/test/stream=0
a=ts-refclk:local
a=mediaclk:sender
m=audio 0 RTP/AVP 97
c=IN IP4 0.0.0.0
b=AS:128
a=rtpmap:97 MPEG4-GENERIC/48000/2
a=fmtp:97 streamtype=5;profile-level-id=2;mode=AAC-hbr;config=1190;sizelength=13;indexlength=3;indexdeltalength=3
a=control:rtsp://127.0.0.1:8554/test/stream=1
a=ts-refclk:local
a=mediaclk:sender
"""  # noqa: E501

# A Hikvision-like camera: H.265 main stream, PCMA audio, an ISAPI metadata track.
HIK_H265_SDP = """v=0\r
o=- 1109162014219182 1109162014219192 IN IP4 192.168.1.64\r
s=Media Presentation\r
e=NONE\r
b=AS:5050\r
t=0 0\r
a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/?transportmode=unicast\r
m=video 0 RTP/AVP 96\r
c=IN IP4 0.0.0.0\r
b=AS:5000\r
a=recvonly\r
a=x-dimensions:2560,1440\r
a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=1?transportmode=unicast\r
a=rtpmap:96 H265/90000\r
a=fmtp:96 sprop-vps=QAEMAf//AWAAAAMAsAAAAwAAAwB7rAk=; sprop-sps=QgEBAWAAAAMAsAAAAwAAAwB7oAPAgBDlja5JMvTcBAQEAg==; sprop-pps=RAHA8vA8kAA=\r
a=Media_header:MEDIAINFO=494D4B48010300000400050011710110401F000000FA000000000000000000000000000000000000;\r
a=appversion:1.0\r
m=audio 0 RTP/AVP 8\r
c=IN IP4 0.0.0.0\r
b=AS:50\r
a=recvonly\r
a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=2?transportmode=unicast\r
a=rtpmap:8 PCMA/8000\r
m=application 0 RTP/AVP 107\r
c=IN IP4 0.0.0.0\r
b=AS:50\r
a=recvonly\r
a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=3?transportmode=unicast\r
a=rtpmap:107 isapi.metadata/90000\r
"""  # noqa: E501

# The same camera on its H.264 sub stream: no sprop, framesize known, relative controls.
HIK_H264_SDP = """v=0
o=- 1109162014219182 1109162014219192 IN IP4 192.168.1.64
s=Media Presentation
e=NONE
b=AS:5050
t=0 0
m=video 0 RTP/AVP 96
c=IN IP4 0.0.0.0
a=recvonly
a=x-dimensions:640,480
a=control:trackID=1
a=rtpmap:96 H264/90000
a=fmtp:96 profile-level-id=420029; packetization-mode=1
m=audio 0 RTP/AVP 8
a=recvonly
a=control:trackID=2
m=application 0 RTP/AVP 107
a=control:trackID=3
a=rtpmap:107 isapi.metadata/90000
"""

# live555-style: aggregate control "*", relative track controls, AAC-lbr then PCMU.
LIVE555_SDP = """v=0
o=- 1700000000123456 1 IN IP4 10.0.0.5
s=H.264 Video, streamed by the LIVE555 Media Server
i=cam.264
t=0 0
a=tool:LIVE555 Streaming Media v2023.01.19
a=type:broadcast
a=control:*
a=range:npt=0-
m=video 0 RTP/AVP 96
c=IN IP4 0.0.0.0
b=AS:500
a=rtpmap:96 H264/90000
a=fmtp:96 packetization-mode=1;profile-level-id=4D401E;sprop-parameter-sets=Z01AHuygbB7zeAiAAAADAIAAABkHixbL,aOvjyyA=
a=control:track1
m=audio 0 RTP/AVP 97
a=rtpmap:97 MPEG4-GENERIC/16000/1
a=fmtp:97 streamtype=5;mode=AAC-lbr;config=1408
a=control:track2
m=audio 0 RTP/AVP 0
a=control:track3
"""  # noqa: E501


def test_parse_gst_sdp() -> None:
    sdp = parse_sdp(GST_SDP)
    assert sdp.value("s") == "Session streamed with GStreamer"
    assert sdp.value("x") is None
    assert sdp.control == "rtsp://127.0.0.1:8554/test"
    assert sdp.attribute("range") == "npt=now-"
    assert sdp.attributes("type") == ["broadcast"]
    assert len(sdp.media) == 2
    video, audio = sdp.media
    assert (video.kind, video.port, video.proto, video.formats) == ("video", 0, "RTP/AVP", ["96"])
    assert video.rtpmap(96) == RtpMap("H264", 90000, None)
    assert video.rtpmap("96") == RtpMap("H264", 90000, None)
    assert video.rtpmap(97) is None
    fmtp = video.fmtp(96)
    assert fmtp["sprop-parameter-sets"] == SPROP
    assert fmtp["Profile-Level-ID"] == "42c01f"
    assert "PACKETIZATION-MODE" in fmtp
    assert list(fmtp) == [
        "packetization-mode",
        "sprop-parameter-sets",
        "profile-level-id",
        "level-asymmetry-allowed",
    ]
    assert video.control == "rtsp://127.0.0.1:8554/test/stream=0"
    assert audio.rtpmap(97) == RtpMap("MPEG4-GENERIC", 48000, 2)
    assert audio.fmtp(97).get("MODE") == "AAC-hbr"
    assert audio.fmtp(96) == {}
    assert video.attribute("nothing") is None


def test_round_trip_to_text() -> None:
    sdp = parse_sdp(GST_SDP.encode())
    text = sdp.to_text()
    assert text == GST_SDP.replace("\n", "\r\n")
    assert parse_sdp(text) == sdp


def test_parse_tolerates_trailing_nul() -> None:
    sdp = parse_sdp(HIK_H264_SDP.encode() + b"\x00")
    assert len(sdp.media) == 3


def test_parse_tolerates_blank_lines_and_whitespace() -> None:
    sdp = parse_sdp("\r\n v=0 \r\n\r\ns=x\nm=video 5000/2 RTP/AVP 26\n\na=control:x \n")
    assert sdp.lines == [("v", "0"), ("s", "x")]
    (media,) = sdp.media
    assert (media.port, media.port_count) == (5000, 2)
    assert media.media_line() == "video 5000/2 RTP/AVP 26"
    assert media.rtpmap(26) == RtpMap("JPEG", 90000, None)
    assert media.control == "x"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\r\n\r\n",
        "<html><body>Not found</body></html>",
        "v=0\r\nthis is not sdp\r\n",
        "V=0\r\n",
        "s=no version\r\n",
        "v=0\r\nm=video\r\n",
        "v=0\r\nm=video x RTP/AVP 96\r\n",
        b"RTSP/1.0 200 OK\r\n",
    ],
)
def test_parse_garbage(text: str | bytes) -> None:
    with pytest.raises(SdpError):
        parse_sdp(text)
    assert issubclass(SdpError, ValueError)


def test_attribute_editing() -> None:
    sdp = parse_sdp(GST_SDP)
    video = sdp.media[0]
    video.set_attribute("control", "trackID=0")
    assert video.attributes("control") == ["trackID=0"]
    assert video.lines.index(("a", "control:trackID=0")) == 5
    video.set_attribute("recvonly")
    assert video.lines[-1] == ("a", "recvonly")
    assert video.attribute("recvonly") == ""
    video.remove_attribute("ts-refclk")
    video.remove_attribute("MEDIACLK")
    assert video.attribute("ts-refclk") is None
    assert video.attribute("mediaclk") is None
    sdp.set_attribute("control", "*")
    assert sdp.control == "*"


def test_rtpmap_edge_cases() -> None:
    media = MediaDescription(
        "audio",
        0,
        "RTP/AVP",
        ["0", "8", "97", "98", "99"],
        [
            ("a", "rtpmap:97 L16/44100/2"),
            ("a", "rtpmap:98 broken"),
            ("a", "rtpmap:99 opus/48000/"),
            ("a", "fmtp:97 flag; a = b ;"),
        ],
    )
    assert media.rtpmap(0) == RtpMap("PCMU", 8000, 1)
    assert media.rtpmap(8) == RtpMap("PCMA", 8000, 1)
    assert media.rtpmap(97) == RtpMap("L16", 44100, 2)
    assert media.rtpmap(98) is None
    assert media.rtpmap(99) == RtpMap("OPUS", 48000, None)
    assert media.rtpmap(100) is None
    assert media.rtpmap("x") is None
    assert media.fmtp(97) == {"flag": "", "a": "b"}


def test_fmtp_params() -> None:
    params = parse_fmtp_params("Mode=AAC-hbr; config=1190 ;SizeLength=13")
    assert params["mode"] == "AAC-hbr"
    assert params.get("sizelength") == "13"
    assert params.get("missing") is None
    assert params.get("missing", "d") == "d"
    not_a_key: object = 1
    assert not_a_key not in params
    with pytest.raises(KeyError):
        _ = params["missing"]
    params.set("MODE", "x")
    params.set("new", "1")
    assert params.to_text() == "Mode=x;config=1190;SizeLength=13;new=1"
    assert isinstance(params, dict)
    assert FmtpParams({"a": ""}).to_text() == "a"


# --- select_tracks -------------------------------------------------------------------------


def test_select_gst_tracks() -> None:
    sdp = parse_sdp(GST_SDP)
    tracks, notes = select_tracks(sdp, "rtsp://127.0.0.1:8554/test/", video_only=False)
    assert notes == []
    video, audio = tracks
    assert video == Track(
        0,
        "video",
        96,
        "H264",
        90000,
        None,
        "rtsp://127.0.0.1:8554/test/stream=0",
        sdp.media[0].fmtp(96),
        0,
    )
    assert (audio.index, audio.kind, audio.payload_type, audio.encoding) == (
        1,
        "audio",
        97,
        "MPEG4-GENERIC",
    )
    assert (audio.clock_rate, audio.channels, audio.media_index) == (48000, 2, 1)
    assert audio.control == "rtsp://127.0.0.1:8554/test/stream=1"
    assert audio.fmtp["config"] == "1190"

    tracks, notes = select_tracks(sdp, "rtsp://127.0.0.1:8554/test/", video_only=True)
    assert [t.kind for t in tracks] == ["video"]
    assert notes == ["dropped audio track #1 (MPEG4-GENERIC): audio is disabled for this camera"]


def test_select_hikvision_h265_gives_clear_note() -> None:
    sdp = parse_sdp(HIK_H265_SDP)
    tracks, notes = select_tracks(
        sdp, "rtsp://192.168.1.64:554/Streaming/Channels/101/", video_only=False
    )
    assert tracks == []
    assert notes[0] == "dropped video track #0 (H265): only H.264 video is supported"
    assert (
        notes[1]
        == "dropped application track #2 (ISAPI.METADATA): application tracks are not restreamed"
    )
    assert notes[-1] == "no H.264 video track: its video codec is H265"
    assert video_codec_name(sdp) == "H265"


def test_select_hikvision_h264_relative_controls() -> None:
    sdp = parse_sdp(HIK_H264_SDP)
    base = "rtsp://192.168.1.64:554/Streaming/Channels/102/"
    tracks, notes = select_tracks(sdp, base, video_only=False)
    assert [(t.kind, t.encoding, t.payload_type, t.control) for t in tracks] == [
        ("video", "H264", 96, base + "trackID=1"),
        ("audio", "PCMA", 8, base + "trackID=2"),
    ]
    assert tracks[1].clock_rate == 8000
    assert tracks[1].channels == 1
    assert notes == [
        "dropped application track #2 (ISAPI.METADATA): application tracks are not restreamed"
    ]


def test_select_live555_audio_fallback_and_aggregate_control() -> None:
    sdp = parse_sdp(LIVE555_SDP)
    tracks, notes = select_tracks(sdp, "rtsp://10.0.0.5:8554/cam.264/", video_only=False)
    assert [(t.encoding, t.control) for t in tracks] == [
        ("H264", "rtsp://10.0.0.5:8554/cam.264/track1"),
        ("PCMU", "rtsp://10.0.0.5:8554/cam.264/track3"),
    ]
    assert tracks[1].index == 1
    assert notes == [
        "dropped audio track #1 (MPEG4-GENERIC): mpeg4-generic mode AAC-lbr is not AAC-hbr"
    ]


def test_select_more_cases() -> None:
    sdp = parse_sdp(
        "v=0\r\ns=-\r\nt=0 0\r\n"
        "m=video 0 RTP/AVP 98\r\na=rtpmap:98 H265/90000\r\na=control:v0\r\n"
        "m=video 0 RTP/AVP 97 96\r\na=rtpmap:97 VP8/90000\r\na=rtpmap:96 H264/90000\r\n"
        "a=control:v1\r\n"
        "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:v2\r\n"
        "m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/8000\r\na=fmtp:97 mode=AAC-hbr\r\n"
        "m=audio 0 RTP/AVP 0 8\r\na=control:a1\r\n"
        "m=audio 0 RTP/AVP 8\r\na=control:a2\r\n"
        "m=audio 0 RTP/AVP 101 102\r\na=rtpmap:102 opus/48000/2\r\n"
    )
    assert video_codec_name(sdp) == "H264"
    tracks, notes = select_tracks(sdp, "rtsp://h/s", video_only=False)
    assert [(t.payload_type, t.encoding, t.control) for t in tracks] == [
        (96, "H264", "rtsp://h/s/v1"),
        (0, "PCMU", "rtsp://h/s/a1"),
    ]
    assert notes == [
        "dropped video track #0 (H265): only H.264 video is supported",
        "dropped video track #2 (H264): only the first H.264 video track is used",
        "dropped audio track #3 (MPEG4-GENERIC): AAC without a config parameter",
        "dropped audio track #5 (PCMA): only one audio track is used",
        "dropped audio track #6 (PT 101/OPUS): only one audio track is used",
    ]
    sdp = parse_sdp("v=0\r\nm=audio 0 RTP/AVP 101 102\r\na=rtpmap:102 opus/48000/2\r\n")
    tracks, notes = select_tracks(sdp, "rtsp://h/s", video_only=False)
    assert tracks == []
    assert notes == [
        "dropped audio track #0 (PT 101/OPUS): payload type 101 has no rtpmap; "
        "codec OPUS is not AAC, PCMU or PCMA",
        "no H.264 video track: it has no video track",
    ]
    assert video_codec_name(sdp) is None
    mjpeg = parse_sdp("v=0\r\nm=video 0 RTP/AVP 26\r\nm=audio 0 RTP/AVP\r\n")
    tracks, notes = select_tracks(mjpeg, "rtsp://h/s", video_only=False)
    assert tracks == []
    assert notes == [
        "dropped video track #0 (JPEG): only H.264 video is supported",
        "dropped audio track #1 (RTP/AVP): no payload types",
        "no H.264 video track: its video codec is JPEG",
    ]


def test_select_absolute_session_control_is_base() -> None:
    sdp = parse_sdp(
        "v=0\r\na=control:rtsp://cam/live/\r\nm=video 0 RTP/AVP 96\r\n"
        "a=rtpmap:96 H264/90000\r\na=control:track1\r\n"
    )
    (track,), _ = select_tracks(sdp, "rtsp://cam/other/", video_only=False)
    assert track.control == "rtsp://cam/live/track1"
    # No media control: the base itself.
    sdp.media[0].remove_attribute("control")
    (track,), _ = select_tracks(sdp, "rtsp://cam/other/", video_only=False)
    assert track.control == "rtsp://cam/live/"


# --- build_restream_sdp --------------------------------------------------------------------


def test_build_restream_sdp_gst() -> None:
    upstream = parse_sdp(GST_SDP)
    tracks, _ = select_tracks(upstream, "rtsp://127.0.0.1:8554/test/", video_only=False)
    text = build_restream_sdp(
        upstream, tracks, sprop=None, session_name="Front door", origin_address="203.0.113.7"
    )
    assert text == (
        "v=0\r\n"
        "o=- 0 1 IN IP4 203.0.113.7\r\n"
        "s=Front door\r\n"
        "c=IN IP4 0.0.0.0\r\n"
        "t=0 0\r\n"
        "a=control:*\r\n"
        "a=range:npt=0-\r\n"
        "m=video 0 RTP/AVP 96\r\n"
        "a=rtpmap:96 H264/90000\r\n"
        f"a=fmtp:96 packetization-mode=1;sprop-parameter-sets={SPROP};profile-level-id=42c01f;"
        "level-asymmetry-allowed=1\r\n"
        "a=framerate:25\r\n"
        "a=control:trackID=0\r\n"
        "m=audio 0 RTP/AVP 97\r\n"
        "a=rtpmap:97 mpeg4-generic/48000/2\r\n"
        "a=fmtp:97 streamtype=5;profile-level-id=2;mode=AAC-hbr;config=1190;sizelength=13;"
        "indexlength=3;indexdeltalength=3\r\n"
        "a=control:trackID=1\r\n"
    )
    # What a client (AOSP-like) reads back from it.
    served = parse_sdp(text)
    assert [m.control for m in served.media] == ["trackID=0", "trackID=1"]
    sps = parse_sprop_parameter_sets(served.media[0].fmtp(96)["sprop-parameter-sets"])[0]
    assert (parse_sps(sps).width, parse_sps(sps).height) == (1280, 720)


def test_build_restream_sdp_fills_sprop_and_profile() -> None:
    upstream = parse_sdp(HIK_H264_SDP)
    tracks, _ = select_tracks(upstream, "rtsp://cam/ch/", video_only=False)
    text = build_restream_sdp(
        upstream, tracks, sprop=SPROP, session_name="Garage\r\nX: y", origin_address="2001:db8::1"
    )
    served = parse_sdp(text)
    assert served.value("o") == "- 0 1 IN IP6 2001:db8::1"
    assert served.value("s") == "Garage  X: y"
    video, audio = served.media
    fmtp = video.fmtp(96)
    # Upstream's profile-level-id is kept; packetization-mode kept at 1; sprop filled in.
    assert (
        fmtp.to_text()
        == f"profile-level-id=420029;packetization-mode=1;sprop-parameter-sets={SPROP}"
    )
    assert video.attributes("x-dimensions") == ["640,480"]
    assert video.attribute("recvonly") == ""
    assert audio.rtpmap(8) == RtpMap("PCMA", 8000, 1)
    assert "a=rtpmap:8 PCMA/8000/1\r\n" in text
    assert audio.fmtp(8) == {}
    assert audio.control == "trackID=1"


def test_build_restream_sdp_derives_profile_and_forces_mode_1() -> None:
    upstream = parse_sdp(
        "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
        "a=fmtp:96 Packetization-Mode=0\r\na=framesize:96 1280-720\r\n"
    )
    tracks, _ = select_tracks(upstream, "rtsp://cam/", video_only=False)
    text = build_restream_sdp(upstream, tracks, sprop=SPROP, session_name="", origin_address="h")
    video = parse_sdp(text).media[0]
    assert video.fmtp(96).to_text() == (
        f"Packetization-Mode=1;sprop-parameter-sets={SPROP};profile-level-id=42c01f"
    )
    assert video.attribute("framesize") == "96 1280-720"
    assert parse_sdp(text).value("s") == "Stream"
    # Without any SPS there is nothing to derive from.
    text = build_restream_sdp(upstream, tracks, sprop=None, session_name="x", origin_address="h")
    assert parse_sdp(text).media[0].fmtp(96).to_text() == "Packetization-Mode=1"
    text = build_restream_sdp(upstream, tracks, sprop="!!", session_name="x", origin_address="h")
    assert parse_sdp(text).media[0].fmtp(96).to_text() == (
        "Packetization-Mode=1;sprop-parameter-sets=!!"
    )


def test_build_restream_sdp_without_media_index() -> None:
    track = Track(0, "video", 96, "H264", 90000, None, "rtsp://cam/", FmtpParams())
    text = build_restream_sdp(
        SessionDescription(),
        [track],
        sprop=SPROP,
        session_name="x",
        origin_address="h",
        session_id=42,
    )
    served = parse_sdp(text)
    assert served.value("o") == "- 42 1 IN IP4 h"
    assert served.media[0].lines == [
        ("a", "rtpmap:96 H264/90000"),
        ("a", f"fmtp:96 packetization-mode=1;sprop-parameter-sets={SPROP};profile-level-id=42c01f"),
        ("a", "control:trackID=0"),
    ]


# --- a real camera (gst-rtsp-server) ---------------------------------------------------------


def describe(port: int, url: str) -> RtspResponse:
    """DESCRIBE ``url`` on a fresh connection."""
    request = RtspRequest("DESCRIBE", url, Headers([("CSeq", "1"), ("Accept", "application/sdp")]))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(serialize_request(request))
        parser = RtspParser(role="client")
        while data := conn.recv(65536):
            for message in parser.feed(data):
                if isinstance(message, RtspResponse):
                    return message
    raise AssertionError("no response")


@pytest.mark.parametrize(
    ("video", "audio", "encodings"),
    [
        ("h264", "aac", ["H264", "MPEG4-GENERIC"]),
        ("h264", "pcmu", ["H264", "PCMU"]),
        ("h265", "pcma", []),
    ],
)
def test_real_camera_sdp(video: VideoCodec, audio: AudioCodec, encodings: list[str]) -> None:
    with FakeCamera(video=video, audio=audio, width=854, height=480) as cam:
        response = describe(cam.port, cam.url)
    assert response.status == 200
    base = response.headers.get("Content-Base", cam.url)
    upstream = parse_sdp(response.body)
    tracks, notes = select_tracks(upstream, base, video_only=False)
    assert [t.encoding for t in tracks] == encodings
    if not tracks:
        assert video_codec_name(upstream) == "H265"
        assert notes[-1] == "no H.264 video track: its video codec is H265"
        return
    assert notes == []
    assert [t.control for t in tracks] == [base + "stream=0", base + "stream=1"]
    served = parse_sdp(
        build_restream_sdp(
            upstream, tracks, sprop=None, session_name="Cam", origin_address="127.0.0.1"
        )
    )
    video_media = served.media[0]
    fmtp = video_media.fmtp(tracks[0].payload_type)
    assert fmtp["packetization-mode"] == "1"
    sps = parse_sprop_parameter_sets(fmtp["sprop-parameter-sets"])[0]
    info = parse_sps(sps)
    assert (info.width, info.height) == (854, 480)
    assert fmtp["profile-level-id"].lower() == sps[1:4].hex()
    assert [m.control for m in served.media] == ["trackID=0", "trackID=1"]
