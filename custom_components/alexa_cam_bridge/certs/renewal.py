"""When to renew: one third of the lifetime left, earlier on ACME Renewal Info, backoff.

Pure arithmetic on aware UTC datetimes; the Home Assistant glue turns the answers into
timers.
"""

from __future__ import annotations

import datetime as dt

REPAIR_THRESHOLD = dt.timedelta(days=14)
# Let's Encrypt allows 5 failed validations per name and account an hour: the first retry
# waits 5 min, so a broken set-up stays below that.
RETRY_FIRST = dt.timedelta(minutes=5)
RETRY_MAX = dt.timedelta(hours=6)


def renewal_time(
    not_before: dt.datetime,
    not_after: dt.datetime,
    *,
    ari_time: dt.datetime | None = None,
) -> dt.datetime:
    """When renewal is due: when a third of the lifetime remains, or ARI's time if earlier."""
    due = not_after - (not_after - not_before) / 3
    if ari_time is not None and ari_time < due:
        return ari_time
    return due


def retry_delay(failures: int) -> dt.timedelta:
    """Backoff after ``failures`` consecutive failed attempts (1 → 5 min, doubling, ≤ 6 h)."""
    if failures <= 0:
        return dt.timedelta(0)
    delay: dt.timedelta = RETRY_FIRST * (2 ** min(failures - 1, 20))
    return min(delay, RETRY_MAX)


def needs_repair(not_after: dt.datetime, now: dt.datetime) -> bool:
    """A failed renewal becomes a repair issue when less than 14 days remain."""
    return not_after - now < REPAIR_THRESHOLD
