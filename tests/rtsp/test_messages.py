"""Tests for the sans-IO RTSP message parser, serializer and header helpers."""

from __future__ import annotations

import random
import time

import pytest

from custom_components.alexa_cam_bridge.rtsp.messages import (
    Headers,
    InterleavedFrame,
    RtspMessage,
    RtspParseError,
    RtspParser,
    RtspRequest,
    RtspResponse,
    RtspUrl,
    TransportSpec,
    format_range,
    format_rtp_info,
    format_transport,
    parse_range,
    parse_rtp_info,
    parse_session,
    parse_transport,
    reason_phrase,
    resolve_control,
    serialize_interleaved,
    serialize_request,
    serialize_response,
    split_rtsp_url,
)

DESCRIBE = (
    b"DESCRIBE rtsps://cam.example.com:443/s/abc RTSP/1.0\r\n"
    b"CSeq: 1\r\n"
    b"Accept: application/sdp\r\n"
    b"User-Agent: stagefright/1.2 (Linux;Android 7.1.2)\r\n"
    b"\r\n"
)
SETUP = (
    b"SETUP rtsps://cam.example.com:443/s/abc/trackID=0 RTSP/1.0\r\n"
    b"CSeq: 2\r\n"
    b"Transport: RTP/AVP/TCP;interleaved=0-1\r\n"
    b"\r\n"
)
SET_PARAMETER = (
    b"SET_PARAMETER rtsp://cam/s RTSP/1.0\r\nCSeq: 3\r\nContent-Type: text/parameters\r\n"
    b"Content-Length: 13\r\n\r\nbarparam: foo"
)
SDP_BODY = b"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\n"
RESPONSE = (
    b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Base: rtsp://cam/s/\r\n"
    b"Content-Type: application/sdp\r\nContent-Length: " + str(len(SDP_BODY)).encode() + b"\r\n"
    b"\r\n" + SDP_BODY
)


def frame(channel: int, size: int, fill: int = 0x80) -> bytes:
    """A `$` frame whose payload is `size` bytes of `fill`."""
    return serialize_interleaved(channel, bytes([fill]) * size)


def summarize(messages: list[RtspMessage]) -> list[tuple[object, ...]]:
    """A comparable summary of parsed messages."""
    out: list[tuple[object, ...]] = []
    for m in messages:
        if isinstance(m, InterleavedFrame):
            out.append(("frame", m.channel, m.payload))
        elif isinstance(m, RtspRequest):
            out.append(("req", m.method, m.uri, tuple(m.headers.items()), m.body))
        else:
            out.append(("resp", m.status, m.reason, tuple(m.headers.items()), m.body))
    return out


def parse_in_chunks(data: bytes, sizes: list[int], role: str = "server") -> list[RtspMessage]:
    parser = RtspParser(role="server" if role == "server" else "client")
    out: list[RtspMessage] = []
    pos = 0
    for size in sizes:
        out += parser.feed(data[pos : pos + size])
        pos += size
    out += parser.feed(data[pos:])
    assert parser.buffered == 0
    return out


# --- Headers ---------------------------------------------------------------------------


def test_headers_case_insensitive_multimap() -> None:
    h = Headers([("CSeq", "1"), ("Foo", "a"), ("foo", "b")])
    assert h["cseq"] == "1"
    assert h.get("FOO") == "a"
    assert h.get_all("Foo") == ["a", "b"]
    assert h.get("missing") is None
    assert h.get("missing", "x") == "x"
    assert "CSEQ" in h
    assert "nope" not in h
    assert 1 not in h
    assert len(h) == 3
    with pytest.raises(KeyError):
        _ = h["missing"]
    h["FOO"] = "c"
    assert h.items() == [("CSeq", "1"), ("FOO", "c")]
    h["New"] = "n"
    h.add("new", "m")
    assert h.get_all("NEW") == ["n", "m"]
    del h["new"]
    assert "New" not in h
    with pytest.raises(KeyError):
        del h["new"]
    assert list(h) == ["CSeq", "FOO"]


def test_repr_redacts_credentials() -> None:
    req = RtspRequest(
        "DESCRIBE",
        "rtsp://h/s",
        Headers([("CSeq", "1"), ("Authorization", "Basic dTpzZWNyZXQ=")]),
    )
    assert "dTpzZWNyZXQ" not in repr(req)
    assert "<redacted>" in repr(req.headers)
    assert "'CSeq', '1'" in repr(req.headers)
    url = split_rtsp_url("rtsp://admin:hunter2@cam/live")
    assert "hunter2" not in repr(url)
    with pytest.raises(ValueError) as info:
        split_rtsp_url("rtsp://admin:hunter2@cam:99999/live")
    assert "hunter2" not in str(info.value)


def test_headers_from_mapping_copy_and_eq() -> None:
    h = Headers({"A": "1", "B": "2"})
    c = h.copy()
    c.add("C", "3")
    assert len(h) == 2
    assert len(c) == 3
    assert Headers([("a", "1"), ("b", "2")]) == h
    assert Headers([("b", "2"), ("a", "1")]) != h
    assert h != {"A": "1"}
    assert "Headers(" in repr(h)


# --- Parser: basics ----------------------------------------------------------------------


def test_parse_single_request() -> None:
    parser = RtspParser(role="server")
    (req,) = parser.feed(DESCRIBE)
    assert isinstance(req, RtspRequest)
    assert req.method == "DESCRIBE"
    assert req.uri == "rtsps://cam.example.com:443/s/abc"
    assert req.version == "RTSP/1.0"
    assert req.cseq == 1
    assert req.headers["accept"] == "application/sdp"
    assert req.body == b""
    assert parser.buffered == 0


def test_parse_response_with_body() -> None:
    parser = RtspParser(role="client")
    (resp,) = parser.feed(RESPONSE)
    assert isinstance(resp, RtspResponse)
    assert resp.status == 200
    assert resp.reason == "OK"
    assert resp.cseq == 1
    assert resp.body == SDP_BODY


def test_parse_status_line_without_reason_and_bad_cseq() -> None:
    parser = RtspParser(role="client")
    (resp,) = parser.feed(b"RTSP/1.0 404\r\nCSeq: x\r\n\r\n")
    assert isinstance(resp, RtspResponse)
    assert resp.status == 404
    assert resp.reason == ""
    assert resp.cseq is None


def test_client_role_accepts_server_requests() -> None:
    parser = RtspParser(role="client")
    (req,) = parser.feed(b"GET_PARAMETER rtsp://x/ RTSP/1.0\r\nCSeq: 9\r\n\r\n")
    assert isinstance(req, RtspRequest)
    assert req.cseq == 9


def test_bare_lf_and_leading_empty_lines() -> None:
    data = b"\r\n\n\r\nOPTIONS * RTSP/1.0\nCSeq: 5\nSession: 1234\n\n\r\n"
    parser = RtspParser(role="server")
    (req,) = parser.feed(data)
    assert isinstance(req, RtspRequest)
    assert req.uri == "*"
    assert req.headers["Session"] == "1234"
    assert parser.buffered == 0


def test_header_value_whitespace_and_folding() -> None:
    data = b"OPTIONS * RTSP/1.0\r\nCSeq:   7  \r\nX-Long: a\r\n  b\r\n\tc\r\n\r\n"
    (req,) = RtspParser(role="server").feed(data)
    assert isinstance(req, RtspRequest)
    assert req.headers["CSeq"] == "7"
    assert req.headers["X-Long"] == "a b c"


def test_non_utf8_header_falls_back_to_latin1() -> None:
    data = b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nServer: Cam\xe9ra\r\n\r\n"
    (resp,) = RtspParser(role="client").feed(data)
    assert isinstance(resp, RtspResponse)
    assert resp.headers["Server"] == "Caméra"


def test_pipelined_requests_in_one_feed() -> None:
    parser = RtspParser(role="server")
    messages = parser.feed(DESCRIBE + SETUP + SET_PARAMETER + DESCRIBE)
    assert [m.method for m in messages if isinstance(m, RtspRequest)] == [
        "DESCRIBE",
        "SETUP",
        "SET_PARAMETER",
        "DESCRIBE",
    ]
    assert isinstance(messages[2], RtspRequest)
    assert messages[2].body == b"barparam: foo"
    assert [m.cseq for m in messages if isinstance(m, RtspRequest)] == [1, 2, 3, 1]


def test_interleaved_between_messages() -> None:
    data = frame(0, 10) + RESPONSE + frame(1, 0) + frame(2, 1400) + RESPONSE + frame(3, 3)
    messages = RtspParser(role="client").feed(data)
    kinds = [type(m).__name__ for m in messages]
    assert kinds == [
        "InterleavedFrame",
        "RtspResponse",
        "InterleavedFrame",
        "InterleavedFrame",
        "RtspResponse",
        "InterleavedFrame",
    ]
    assert messages[0] == InterleavedFrame(0, b"\x80" * 10)
    assert messages[2] == InterleavedFrame(1, b"")
    assert messages[3] == InterleavedFrame(2, b"\x80" * 1400)


def test_body_looking_like_frame_and_headers_is_body() -> None:
    body = b"$\x00\x00\x05\r\n\r\nRTSP/1.0 200 OK\r\n\r\n"
    data = b"ANNOUNCE rtsp://x/ RTSP/1.0\r\nCSeq: 1\r\nContent-Length: %d\r\n\r\n" % len(body)
    messages = RtspParser(role="server").feed(data + body + DESCRIBE)
    assert len(messages) == 2
    assert isinstance(messages[0], RtspRequest)
    assert messages[0].body == body


MIXED = (
    DESCRIBE
    + frame(0, 1)
    + SETUP
    + frame(1, 300, 0x81)
    + b"\r\n"
    + SET_PARAMETER
    + frame(0, 5)
    + b"OPTIONS * RTSP/1.0\nCSeq: 4\n\n"
    + frame(255, 65535)
)


def test_every_split_point_matches_whole_parse() -> None:
    small = DESCRIBE + frame(0, 3) + SET_PARAMETER + b"\n" + SETUP + frame(1, 2)
    expected = summarize(RtspParser(role="server").feed(small))
    assert len(expected) == 5
    for i in range(len(small) + 1):
        for j in range(i, len(small) + 1, 11):
            got = parse_in_chunks(small, [i, j - i])
            assert summarize(got) == expected, (i, j)


def test_byte_by_byte() -> None:
    expected = summarize(RtspParser(role="server").feed(MIXED))
    assert len(expected) == 8
    parser = RtspParser(role="server")
    got: list[RtspMessage] = []
    for i in range(len(MIXED)):
        got += parser.feed(MIXED[i : i + 1])
    assert summarize(got) == expected
    assert parser.buffered == 0


def test_random_chunks() -> None:
    rng = random.Random(2326)
    expected = summarize(RtspParser(role="server").feed(MIXED))
    for _ in range(200):
        sizes = [rng.randint(0, 700) for _ in range(rng.randint(1, 40))]
        assert summarize(parse_in_chunks(MIXED, sizes)) == expected


def test_random_chunks_client_role() -> None:
    rng = random.Random(7826)
    stream = b"".join(
        frame(rng.randrange(4), rng.randint(0, 1500), rng.randrange(256))
        if rng.random() < 0.8
        else RESPONSE
        for _ in range(300)
    )
    expected = summarize(RtspParser(role="client").feed(stream))
    assert len(expected) == 300
    for _ in range(20):
        sizes = [rng.randint(1, 3000) for _ in range(rng.randint(1, 400))]
        assert summarize(parse_in_chunks(stream, sizes, role="client")) == expected


def test_incomplete_data_stays_buffered() -> None:
    parser = RtspParser(role="server")
    assert parser.feed(DESCRIBE[:-1]) == []
    assert parser.buffered == len(DESCRIBE) - 1
    assert len(parser.feed(DESCRIBE[-1:])) == 1
    assert parser.feed(b"$\x00\x00") == []
    assert parser.buffered == 3
    assert parser.feed(b"\x02\xaa") == []
    assert parser.feed(b"\xbb") == [InterleavedFrame(0, b"\xaa\xbb")]
    assert parser.feed(b"") == []
    assert parser.buffered == 0


def test_many_small_frames_are_fast() -> None:
    packet = bytes(range(256)) * 4 + b"\x00" * 176  # 1200-byte RTP-sized payloads
    data = b"".join(serialize_interleaved(i % 4, packet) for i in range(10_000))
    parser = RtspParser(role="client")
    # Fed in 4 KiB reads, as a socket would deliver them.
    start = time.perf_counter()
    count = 0
    for pos in range(0, len(data), 4096):
        count += len(parser.feed(data[pos : pos + 4096]))
    elapsed = time.perf_counter() - start
    assert count == 10_000
    assert parser.buffered == 0
    # Generous bound (per-byte Python loops would take tens of seconds here).
    assert elapsed < 5.0


# --- Parser: limits and errors -----------------------------------------------------------


def expect_error(data: bytes, status: int, *, role: str = "server", **limits: int) -> str:
    parser = RtspParser(role="server" if role == "server" else "client", **limits)
    with pytest.raises(RtspParseError) as info:
        parser.feed(data)
    assert info.value.status == status
    return info.value.reason


def expect_error_bytewise(data: bytes, status: int, **limits: int) -> None:
    """Feed byte by byte: the error must come before the whole input is buffered."""
    parser = RtspParser(role="server", **limits)
    error: RtspParseError | None = None
    for i in range(len(data)):
        try:
            parser.feed(data[i : i + 1])
        except RtspParseError as exc:
            error = exc
            break
    assert error is not None
    assert error.status == status


def test_request_line_too_long() -> None:
    line = b"DESCRIBE rtsp://x/" + b"a" * 5000 + b" RTSP/1.0\r\n"
    expect_error(line + b"CSeq: 1\r\n\r\n", 414)
    # Detected before the line ends, so a peer cannot make us buffer forever.
    expect_error(line[:4200], 414)
    expect_error_bytewise(line[:4200], 414)
    assert expect_error(b"RTSP/1.0 200 " + b"x" * 5000, 400, role="client")


def test_header_line_too_long() -> None:
    data = b"OPTIONS * RTSP/1.0\r\nX: " + b"a" * 200 + b"\r\n\r\n"
    expect_error(data, 400, max_line=100)
    expect_error(data[:150], 400, max_line=100)


def test_header_block_too_large() -> None:
    data = b"OPTIONS * RTSP/1.0\r\n" + b"X-A: " + b"a" * 90 + b"\r\n" * 1
    many = data + (b"X-B: " + b"b" * 90 + b"\r\n") * 30
    reason = expect_error(many + b"\r\n", 400, max_header_bytes=2000)
    assert "Too Large" in reason
    expect_error(many, 400, max_header_bytes=2000)
    expect_error_bytewise(many, 400, max_header_bytes=2000)


def test_too_many_headers() -> None:
    data = b"OPTIONS * RTSP/1.0\r\n" + b"X: 1\r\n" * 11 + b"\r\n"
    assert "many" in expect_error(data, 400, max_headers=10)
    assert len(RtspParser(role="server", max_headers=11).feed(data)) == 1


def test_body_too_large() -> None:
    data = b"ANNOUNCE rtsp://x/ RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 1001\r\n\r\n"
    expect_error(data, 413, max_body=1000)
    expect_error(data.replace(b"1001", b"99999999999999999999"), 400)


def test_interleaved_too_large() -> None:
    expect_error(frame(0, 200), 413, max_interleaved=100)
    assert len(RtspParser(role="server", max_interleaved=204).feed(frame(0, 200))) == 1


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"DESCRIBE rtsp://x/ RTSP/2.0\r\n\r\n", 505),
        (b"DESCRIBE rtsp://x/ RTSP/1.1\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"DESCRIBE rtsp://x/\r\n\r\n", 400),
        (b"DESCRIBE rtsp://x/ RTSP/1.0 extra\r\n\r\n", 400),
        (b"DESC(RIBE rtsp://x/ RTSP/1.0\r\n\r\n", 400),
        (b"OPTIONS * RTSP/1.0\r\nNo colon here\r\n\r\n", 400),
        (b"OPTIONS * RTSP/1.0\r\nBad Name: 1\r\n\r\n", 400),
        (b"OPTIONS * RTSP/1.0\r\n: empty\r\n\r\n", 400),
        (b"OPTIONS * RTSP/1.0\r\n folded-first\r\n\r\n", 400),
        (b"OPTIONS * RTSP/1.0\r\nContent-Length: -1\r\n\r\n", 400),
        (b"OPTIONS * RTSP/1.0\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"RTSP/1.0 200 OK\r\n\r\n", 400),
    ],
)
def test_server_role_errors(data: bytes, status: int) -> None:
    expect_error(data, status)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"RTSP/2.0 200 OK\r\n\r\n", 505),
        (b"RTSP/1.0 20 OK\r\n\r\n", 400),
        (b"RTSP/1.0 abc OK\r\n\r\n", 400),
        (b"RTSP/1.0 700 Huh\r\n\r\n", 400),
        (b"HTTP/1.0 200 OK\r\n\r\n", 400),
    ],
)
def test_client_role_errors(data: bytes, status: int) -> None:
    expect_error(data, status, role="client")


def test_identical_duplicate_content_length_is_fine() -> None:
    data = b"ANNOUNCE * RTSP/1.0\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nab"
    (req,) = RtspParser(role="server").feed(data)
    assert isinstance(req, RtspRequest)
    assert req.body == b"ab"


def test_invalid_role() -> None:
    with pytest.raises(ValueError):
        RtspParser(role="proxy")  # type: ignore[arg-type]


def test_parse_error_str() -> None:
    err = RtspParseError(505, "Unsupported version RTSP/2.0")
    assert str(err) == "505 Unsupported version RTSP/2.0"


# --- Serializer ----------------------------------------------------------------------------


def test_serialize_request_round_trip() -> None:
    req = RtspRequest(
        "ANNOUNCE",
        "rtsp://cam/s",
        Headers([("CSeq", "4"), ("Content-Type", "application/sdp"), ("X", "1")]),
        SDP_BODY,
    )
    data = serialize_request(req)
    assert data.startswith(b"ANNOUNCE rtsp://cam/s RTSP/1.0\r\nCSeq: 4\r\n")
    assert b"\r\nContent-Length: %d\r\n\r\n" % len(SDP_BODY) in data
    (parsed,) = RtspParser(role="server").feed(data)
    assert isinstance(parsed, RtspRequest)
    assert parsed.body == SDP_BODY
    assert parsed.headers["Content-Length"] == str(len(SDP_BODY))
    assert parsed.method == req.method
    assert parsed.uri == req.uri


def test_serialize_content_length_rules() -> None:
    stale = Headers([("CSeq", "1"), ("Content-Length", "99"), ("Content-Length", "5")])
    no_body = serialize_request(RtspRequest("OPTIONS", "*", stale))
    assert no_body == b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n"
    with_body = serialize_request(RtspRequest("X", "*", stale, b"abc"))
    assert with_body == b"X * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 3\r\n\r\nabc"


def test_serialize_rejects_header_injection() -> None:
    bad = RtspResponse.make(200, cseq=1, headers=[("Session", "1\r\nX-Evil: 1")])
    with pytest.raises(ValueError):
        serialize_response(bad)
    with pytest.raises(ValueError):
        serialize_request(RtspRequest("OPTIONS", "* RTSP/1.0\r\n", Headers()))


def test_response_make() -> None:
    resp = RtspResponse.make(
        200,
        cseq=3,
        headers=[("CSeq", "999"), ("Content-Type", "application/sdp")],
        body=b"v=0\r\n",
    )
    assert resp.reason == "OK"
    assert resp.headers.items() == [
        ("CSeq", "3"),
        ("Content-Type", "application/sdp"),
        ("Content-Length", "5"),
    ]
    assert serialize_response(resp) == (
        b"RTSP/1.0 200 OK\r\nCSeq: 3\r\nContent-Type: application/sdp\r\n"
        b"Content-Length: 5\r\n\r\nv=0\r\n"
    )
    assert RtspResponse.make(454).headers.items() == []
    assert RtspResponse.make(401, reason="Nope").reason == "Nope"
    assert RtspResponse.make(200, headers={"A": "b"}).headers.items() == [("A", "b")]


@pytest.mark.parametrize(
    ("status", "phrase"),
    [
        (451, "Parameter Not Understood"),
        (454, "Session Not Found"),
        (455, "Method Not Valid in This State"),
        (459, "Aggregate Operation Not Allowed"),
        (461, "Unsupported Transport"),
        (501, "Not Implemented"),
        (503, "Service Unavailable"),
        (505, "RTSP Version Not Supported"),
        (401, "Unauthorized"),
        (414, "Request-URI Too Long"),
        (299, "Success"),
        (599, "Server Error"),
    ],
)
def test_reason_phrases(status: int, phrase: str) -> None:
    assert reason_phrase(status) == phrase
    assert RtspResponse.make(status).reason == phrase


def test_serialize_response_round_trip() -> None:
    resp = RtspResponse.make(
        200, cseq=1, headers=[("Content-Base", "rtsp://cam/s/")], body=SDP_BODY
    )
    (parsed,) = RtspParser(role="client").feed(serialize_response(resp))
    assert parsed == resp


def test_serialize_interleaved() -> None:
    assert serialize_interleaved(1, b"ab") == b"$\x01\x00\x02ab"
    assert len(serialize_interleaved(0, b"x" * 65535)) == 65539
    with pytest.raises(ValueError):
        serialize_interleaved(0, b"x" * 65536)
    with pytest.raises(ValueError):
        serialize_interleaved(256, b"")


# --- Transport ---------------------------------------------------------------------------


def test_parse_transport_tcp() -> None:
    (spec,) = parse_transport("RTP/AVP/TCP;unicast;interleaved=0-1")
    assert spec.protocol == "RTP/AVP/TCP"
    assert spec.lower_transport == "TCP"
    assert spec.unicast
    assert spec.interleaved == (0, 1)
    assert spec.client_port is None
    assert spec.params == {"unicast": None, "interleaved": "0-1"}


def test_parse_transport_without_interleaved_and_lists() -> None:
    specs = parse_transport(
        "RTP/AVP/TCP;unicast, RTP/AVP;multicast;ttl=4, RTP/AVP/UDP;unicast;client_port=5000"
        ';server_port=6000-6001;ssrc=1A2B3C4D;mode="PLAY"'
    )
    assert [s.lower_transport for s in specs] == ["TCP", "UDP", "UDP"]
    assert specs[0].interleaved is None
    assert not specs[1].unicast
    assert specs[1].params["ttl"] == "4"
    assert specs[2].client_port == (5000, 5001)
    assert specs[2].server_port == (6000, 6001)
    assert specs[2].ssrc == "1A2B3C4D"
    assert specs[2].mode == "PLAY"


@pytest.mark.parametrize(
    "value",
    [
        "",
        ";unicast",
        "RTP/AVP/TCP;interleaved=a-b",
        "RTP/AVP;client_port",
        "RTP AVP",
        "x;y",
        "RTP/AVP;client_port=70000-70001",
    ],
)
def test_parse_transport_errors(value: str) -> None:
    with pytest.raises(ValueError):
        parse_transport(value)


def test_format_transport() -> None:
    spec = TransportSpec(protocol="RTP/AVP/TCP", interleaved=(2, 3), ssrc="0000ABCD")
    assert format_transport(spec) == "RTP/AVP/TCP;unicast;interleaved=2-3;ssrc=0000ABCD"
    (parsed,) = parse_transport(
        "RTP/AVP;multicast;destination=224.2.0.1;ttl=16;client_port=4588-4589"
    )
    assert format_transport(parsed) == (
        "RTP/AVP;multicast;client_port=4588-4589;destination=224.2.0.1;ttl=16"
    )
    spec = TransportSpec(protocol="RTP/AVP", client_port=(1, 2), server_port=(3, 4), mode="PLAY")
    assert format_transport(spec) == 'RTP/AVP;unicast;client_port=1-2;server_port=3-4;mode="PLAY"'
    assert parse_transport(format_transport(spec))[0].server_port == (3, 4)


# --- Session / Range / RTP-Info -------------------------------------------------------------


def test_parse_session() -> None:
    assert parse_session("12345678") == ("12345678", None)
    assert parse_session(" abcDEF ; timeout=60") == ("abcDEF", 60)
    assert parse_session("a;timeout=x") == ("a", None)
    with pytest.raises(ValueError):
        parse_session(";timeout=5")


def test_parse_range() -> None:
    assert parse_range("npt=0.000-") == (0.0, None)
    assert parse_range("npt=now-") == (None, None)
    assert parse_range("npt=1.5-20") == (1.5, 20.0)
    assert parse_range("npt=00:01:02.5-") == (62.5, None)
    assert parse_range("NPT = 3 - 4;time=19970123T143720Z") == (3.0, 4.0)
    assert parse_range("clock=19961108T142300Z-") is None
    assert parse_range("npt=abc-") is None
    assert parse_range("npt=5") is None
    assert format_range() == "npt=0.000-"
    assert format_range(1.25, 3) == "npt=1.250-3.000"


def test_rtp_info() -> None:
    value = format_rtp_info(
        [("rtsp://h/s/trackID=0", 100, 123456), ("rtsp://h/s/trackID=1", 70000, 2**32 + 5)]
    )
    assert value == (
        "url=rtsp://h/s/trackID=0;seq=100;rtptime=123456,"
        "url=rtsp://h/s/trackID=1;seq=4464;rtptime=5"
    )
    assert parse_rtp_info(value) == [
        ("rtsp://h/s/trackID=0", 100, 123456),
        ("rtsp://h/s/trackID=1", 4464, 5),
    ]
    assert parse_rtp_info("url=rtsp://h/a,b;seq=1, url=rtsp://h/c") == [
        ("rtsp://h/a,b", 1, None),
        ("rtsp://h/c", None, None),
    ]


# --- URLs ----------------------------------------------------------------------------------


def test_split_rtsp_url() -> None:
    url = split_rtsp_url("rtsp://admin:p%40ss%3Aword@192.168.1.10:8554/Streaming/Channels/101?x=1")
    assert url == RtspUrl(
        "rtsp", "192.168.1.10", 8554, "/Streaming/Channels/101?x=1", "admin", "p@ss:word", True
    )
    assert url.without_credentials() == "rtsp://192.168.1.10:8554/Streaming/Channels/101?x=1"

    url = split_rtsp_url("RTSPS://cam.example.com/s/abc")
    assert (url.scheme, url.port, url.port_given, url.user, url.password) == (
        "rtsps",
        322,
        False,
        None,
        None,
    )
    assert url.without_credentials() == "rtsps://cam.example.com/s/abc"

    url = split_rtsp_url("rtsp://user@[fe80::1]:554")
    assert (url.host, url.port, url.path, url.user, url.password) == (
        "fe80::1",
        554,
        "/",
        "user",
        None,
    )
    assert url.without_credentials() == "rtsp://[fe80::1]:554/"
    assert split_rtsp_url("rtsp://[::1]/a").netloc == "[::1]"
    assert split_rtsp_url("rtspu://h").port == 554
    assert split_rtsp_url("rtsp://h?q=1").path == "/?q=1"

    # Unencoded '@', '#', '?' and ':' in a password.
    url = split_rtsp_url("rtsp://u:a@b#c?d:e@cam:554/live")
    assert (url.user, url.password, url.host, url.path) == ("u", "a@b#c?d:e", "cam", "/live")
    url = split_rtsp_url("rtsp://:@cam/")
    assert (url.user, url.password) == ("", "")


@pytest.mark.parametrize(
    "value",
    [
        "http://cam/",
        "rtsp:/cam",
        "rtsp://",
        "rtsp://u:p@/x",
        "rtsp://cam:0/",
        "rtsp://cam:99999/",
        "rtsp://cam:ab/",
        "rtsp://[::1/",
        "rtsp://[::1]x/",
    ],
)
def test_split_rtsp_url_errors(value: str) -> None:
    with pytest.raises(ValueError):
        split_rtsp_url(value)


@pytest.mark.parametrize(
    ("base", "control", "expected"),
    [
        ("rtsp://h/s/", "trackID=0", "rtsp://h/s/trackID=0"),
        ("rtsp://h/s", "trackID=0", "rtsp://h/s/trackID=0"),
        ("rtsp://h/s/", "/trackID=0", "rtsp://h/s/trackID=0"),
        ("rtsp://h/s", "*", "rtsp://h/s"),
        ("rtsp://h/s", "", "rtsp://h/s"),
        ("rtsp://h/s/", "rtsp://other/x/track1", "rtsp://other/x/track1"),
        ("rtsp://h/s/", "RTSPS://other/y", "RTSPS://other/y"),
        ("rtsp://h/live?ch=1", "track1", "rtsp://h/live?ch=1/track1"),
    ],
)
def test_resolve_control(base: str, control: str, expected: str) -> None:
    assert resolve_control(base, control) == expected
