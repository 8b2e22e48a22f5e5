"""DuckDNS helpers: subdomain mapping and the minimal DNS TXT query codec."""

from __future__ import annotations

import struct

import pytest

from custom_components.alexa_cam_bridge.certs.duckdns import (
    build_txt_query,
    duckdns_subdomain,
    parse_txt_answer,
)


def test_subdomain() -> None:
    """DuckDNS wants the label in front of duckdns.org."""
    assert duckdns_subdomain("home.duckdns.org") == "home"
    assert duckdns_subdomain("cam.home.duckdns.org.") == "home"
    assert duckdns_subdomain("Cam.Example.com") == "cam.example.com"


def _answer(query: bytes, texts: list[list[bytes]], qid: int, rcode: int = 0) -> bytes:
    header = struct.pack("!HHHHHH", qid, 0x8400 | rcode, 1, len(texts), 0, 0)
    out = header + query[12:]
    for parts in texts:
        rdata = b"".join(bytes([len(p)]) + p for p in parts)
        out += b"\xc0\x0c" + struct.pack("!HHIH", 16, 1, 60, len(rdata)) + rdata
    return out


def test_txt_query_round_trip() -> None:
    """The query asks IN TXT for the name; answers are decoded (multi-string joined)."""
    query = build_txt_query("_acme-challenge.home.duckdns.org", 0x1234)
    assert query[:2] == b"\x12\x34"
    assert b"\x0f_acme-challenge\x04home\x07duckdns\x03org\x00\x00\x10\x00\x01" in query
    answer = _answer(query, [[b"abc"], [b"de", b"f"]], 0x1234)
    assert parse_txt_answer(answer, 0x1234) == ["abc", "def"]
    assert parse_txt_answer(_answer(query, [], 0x1234, rcode=3), 0x1234) == []
    with pytest.raises(ValueError):
        parse_txt_answer(answer, 0x9999)
    with pytest.raises(ValueError):
        parse_txt_answer(_answer(query, [], 0x1234, rcode=2), 0x1234)
