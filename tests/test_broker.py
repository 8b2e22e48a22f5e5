"""Tests of the stream broker: grants, expiry, snapshot tokens, failure limiting."""

from __future__ import annotations

import re

import pytest

from custom_components.alexa_cam_bridge.broker import FailureLimiter, StreamBroker


class Clock:
    """A manual clock."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_mint_and_lookup() -> None:
    clock = Clock()
    broker = StreamBroker(clock=clock)
    grant = broker.mint("camera.front", ttl=300, auth_type="DIGEST")
    assert grant.camera_id == "camera.front"
    assert grant.expires_at == clock.now + 300
    assert grant.auth_type == "DIGEST"
    for value in (grant.stream_id, grant.username, grant.password):
        assert re.fullmatch(r"[A-Za-z0-9_-]{10,}", value)
    assert broker.lookup(grant.stream_id) == grant
    assert broker.lookup("nope") is None
    assert broker.active_grants() == 1
    other = broker.mint("camera.front", ttl=300, auth_type="BASIC")
    assert len({grant.stream_id, other.stream_id}) == 2
    assert grant.password not in repr(grant)
    assert grant.username not in repr(grant)


def test_grant_expiry_purges() -> None:
    clock = Clock()
    broker = StreamBroker(clock=clock)
    short = broker.mint("a", ttl=10, auth_type="BASIC")
    long = broker.mint("a", ttl=100, auth_type="BASIC")
    clock.now += 10
    assert broker.lookup(short.stream_id) is None
    assert broker.lookup(long.stream_id) == long
    assert broker.active_grants() == 1


def test_revoke_camera() -> None:
    broker = StreamBroker()
    a = broker.mint("a", ttl=10, auth_type="BASIC")
    b = broker.mint("b", ttl=10, auth_type="BASIC")
    broker.revoke_camera("a")
    assert broker.lookup(a.stream_id) is None
    assert broker.lookup(b.stream_id) == b


def test_mint_rejects_unknown_auth_type() -> None:
    with pytest.raises(ValueError):
        StreamBroker().mint("a", ttl=1, auth_type="NONE")


def test_snapshot_tokens() -> None:
    clock = Clock()
    broker = StreamBroker(clock=clock, secret=b"k" * 32)
    token = broker.sign_snapshot("camera.front:door", ttl=60)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert broker.verify_snapshot(token) == "camera.front:door"
    # Another key does not accept it.
    assert StreamBroker(clock=clock, secret=b"x" * 32).verify_snapshot(token) is None
    # Tampering anywhere breaks it.
    for index in range(len(token)):
        flipped = token[:index] + ("A" if token[index] != "A" else "B") + token[index + 1 :]
        assert broker.verify_snapshot(flipped) in (None, "camera.front:door")
        if flipped != token:
            assert broker.verify_snapshot(flipped) is None
    clock.now += 60
    assert broker.verify_snapshot(token) is None
    for junk in ("", "!!!", "a", "A" * 5000, "AAAA"):
        assert broker.verify_snapshot(junk) is None


def test_failure_limiter_window() -> None:
    clock = Clock()
    limiter = FailureLimiter(max_failures=3, window=60, clock=clock)
    for _ in range(2):
        limiter.record_failure("10.0.0.1")
    assert not limiter.blocked("10.0.0.1")
    limiter.record_failure("10.0.0.1")
    assert limiter.blocked("10.0.0.1")
    assert not limiter.blocked("10.0.0.2")
    clock.now += 59
    assert limiter.blocked("10.0.0.1")
    clock.now += 2
    assert not limiter.blocked("10.0.0.1")
    assert limiter.tracked_addresses() == 0


def test_failure_limiter_bounded_memory() -> None:
    clock = Clock()
    limiter = FailureLimiter(max_failures=2, window=60, clock=clock, max_addresses=5)
    for n in range(20):
        clock.now += 1
        limiter.record_failure(f"10.0.0.{n}")
    assert limiter.tracked_addresses() == 5


def test_broker_has_limiter() -> None:
    broker = StreamBroker()
    for _ in range(10):
        broker.failures.record_failure("1.2.3.4")
    assert broker.failures.blocked("1.2.3.4")
