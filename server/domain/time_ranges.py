"""Timestamps and durations a request may give: ones Python, the driver and Postgres all hold.

Python's datetime stops at year 9999 and its timedelta at 999,999,999 days. A timestamp whose
offset pushes it past either end in UTC (`0001-01-01T00:00+05:00`), or a number of seconds
beyond a timedelta (`1e308`, NaN, infinity), used to fail deep in the driver with its repr in
the message, or as an internal error. These functions refuse them up front with a `ValueError`
that says what is wrong; callers add which field it was.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

# Python's bounds, in seconds (Postgres' interval and timestamptz reach further).
MAX_SECONDS = dt.timedelta(days=dt.timedelta.max.days).total_seconds()


def utc_timestamp(value: dt.datetime) -> dt.datetime:
    """`value` in UTC (naive means UTC), refusing one that UTC cannot represent."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    try:
        return value.astimezone(dt.timezone.utc)
    except OverflowError:
        raise ValueError(f"{value.isoformat()} is out of range (in UTC it falls before year 1 or after 9999)") from None


def duration_from_seconds(value: Any, max_seconds: float = MAX_SECONDS) -> dt.timedelta:
    """A timedelta of `value` seconds: a finite, non-boolean number of at most `max_seconds`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number of seconds, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number of seconds, got {value!r}")
    if abs(value) > max_seconds:
        raise ValueError(f"{value!r} seconds is out of range (at most {max_seconds:.0f})")
    return dt.timedelta(seconds=value)
