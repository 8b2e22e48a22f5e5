"""Renewal schedule math."""

from __future__ import annotations

import datetime as dt

from custom_components.alexa_cam_bridge.certs.renewal import (
    needs_repair,
    renewal_time,
    retry_delay,
)

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_one_third_of_lifetime_remaining() -> None:
    """A 90-day certificate renews after 60 days; a 6-day one after 4 days."""
    assert renewal_time(START, START + dt.timedelta(days=90)) == START + dt.timedelta(days=60)
    assert renewal_time(START, START + dt.timedelta(days=6)) == START + dt.timedelta(days=4)


def test_renewal_info_only_moves_renewal_earlier() -> None:
    """ARI's suggested time wins when earlier; a later one is ignored."""
    end = START + dt.timedelta(days=90)
    early = START + dt.timedelta(days=10)
    late = START + dt.timedelta(days=80)
    assert renewal_time(START, end, ari_time=early) == early
    assert renewal_time(START, end, ari_time=late) == START + dt.timedelta(days=60)


def test_backoff_doubles_and_caps() -> None:
    """5 min, 10 min, 20 min, ... at most 6 h."""
    assert retry_delay(0) == dt.timedelta(0)
    assert [retry_delay(n) for n in (1, 2, 3)] == [
        dt.timedelta(minutes=5),
        dt.timedelta(minutes=10),
        dt.timedelta(minutes=20),
    ]
    assert retry_delay(50) == dt.timedelta(hours=6)


def test_repair_threshold_is_fourteen_days() -> None:
    """A failed renewal is a repair issue when less than 14 days remain."""
    end = START + dt.timedelta(days=90)
    assert not needs_repair(end, end - dt.timedelta(days=15))
    assert needs_repair(end, end - dt.timedelta(days=13, hours=23))
