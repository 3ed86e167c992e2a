"""Time zones, wall clocks and serialized datetimes, resolved the way pendulum 2 does.

Everything here works on plain ``datetime``/``tzinfo`` values and knows nothing of
clocks or schedules; the other modules build their DST handling on these helpers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from headwater.server.domain.clocks.errors import ScheduleError

UTC = timezone.utc

_ZERO = timedelta(0)
_MICROSECOND = timedelta(microseconds=1)
_SECOND = timedelta(seconds=1)
_MINUTE = timedelta(minutes=1)
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)
# Offsets sampled around a time to bound how far a DST change can shift wall clocks.
_OFFSET_SAMPLES = tuple(timedelta(hours=h) for h in (-48, -24, 24, 48))
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Z"})
_FIXED_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


class _Zoned(NamedTuple):
    """A serialized DateTimeTZ: the instant (UTC) and the zone its wall clock is read in."""

    instant: datetime
    tz: tzinfo


# ---------------------------------------------------------------------------------------
# Time zones and wall clocks
# ---------------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _zone(name: str) -> tzinfo:
    """Resolve a serialized zone name once: "UTC", an IANA key, or a "+05:00" offset."""
    if name in _UTC_NAMES:
        return UTC
    fixed = _FIXED_OFFSET.match(name)
    if fixed:
        sign, hours, minutes = fixed.groups()
        offset = timedelta(hours=int(hours), minutes=int(minutes))
        return UTC if not offset else timezone(-offset if sign == "-" else offset)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(f"unknown time zone {name!r}") from None


def _is_fixed(tz: tzinfo) -> bool:
    """Fixed-offset zones need no DST handling, which keeps UTC schedules cheap."""
    return isinstance(tz, timezone)


# (zone, day ordinal, hour) -> the zone's offset throughout that wall-clock hour, or None
# when a DST change touches it. Every schedule evaluated around "now" shares these hours.
_STEADY_HOURS: dict[tuple[tzinfo, int, int], timedelta | None] = {}
_STEADY_HOURS_LIMIT = 100_000
_HOUR_END = timedelta(minutes=59, seconds=59, microseconds=999_999)
_UNKNOWN: Any = object()


def _steady_offset(wall: datetime, tz: tzinfo) -> timedelta | None:
    """The offset for any wall time in `wall`'s hour, if no DST change touches that hour.
    Exact because a transition inside an hour changes the offset between its ends (or
    makes fold matter at one of them), and no zone changes twice within an hour."""
    key = (tz, wall.toordinal(), wall.hour)
    offset = _STEADY_HOURS.get(key, _UNKNOWN)
    if offset is not _UNKNOWN:
        return offset
    start = datetime(wall.year, wall.month, wall.day, wall.hour)
    offsets = {
        moment.replace(tzinfo=tz, fold=fold).utcoffset()
        for moment in (start, start + _HOUR_END)
        for fold in (0, 1)
    }
    offset = offsets.pop() if len(offsets) == 1 else None
    if len(_STEADY_HOURS) >= _STEADY_HOURS_LIMIT:
        _STEADY_HOURS.clear()
    _STEADY_HOURS[key] = offset
    return offset


def _wall_offsets(wall: datetime, tz: tzinfo) -> tuple[timedelta, timedelta]:
    """The offsets of a wall time's first and second reading (fold=0, fold=1); they differ
    only in a DST change: the first is larger for a repeated time, smaller for a skipped one."""
    if _is_fixed(tz):
        offset = tz.utcoffset(None)
        return offset, offset
    steady = _steady_offset(wall, tz)
    if steady is not None:
        return steady, steady
    return wall.replace(tzinfo=tz).utcoffset(), wall.replace(tzinfo=tz, fold=1).utcoffset()


def _wall_offset(wall: datetime, tz: tzinfo) -> timedelta:
    """The offset pendulum uses for a naive wall time: the later occurrence of a repeated
    time, the pre-gap offset for a skipped one (02:30 on a spring-forward night = 03:30)."""
    return min(_wall_offsets(wall, tz))


def _wall_to_utc(wall: datetime, tz: tzinfo) -> datetime:
    """Resolve a naive local wall time to a UTC instant with pendulum's DST rule."""
    return (wall - _wall_offset(wall, tz)).replace(tzinfo=UTC)


def _wall_exists(wall: datetime, tz: tzinfo) -> bool:
    """False for wall times skipped by a DST gap (fold=0 then has the smaller offset)."""
    first, second = _wall_offsets(wall, tz)
    return first >= second


def _as_utc(value: datetime) -> datetime:
    """A plain UTC datetime (naive input is UTC, as pendulum.instance reads it). Rebuilt
    field by field so subclasses such as pendulum's, which override arithmetic, drop out."""
    plain = datetime(
        value.year, value.month, value.day,
        value.hour, value.minute, value.second, value.microsecond,
    )
    offset = value.utcoffset()
    return (plain if offset is None else plain - offset).replace(tzinfo=UTC)


def _offset_rise(tz: tzinfo, when: datetime) -> timedelta:
    """How far `tz`'s offset at `when` exceeds its lowest offset within two days of it: the
    most a DST change can make wall-clock arithmetic land earlier than expected."""
    if _is_fixed(tz):
        return _ZERO
    current = when.astimezone(tz).utcoffset()
    lowest = min((when + shift).astimezone(tz).utcoffset() for shift in _OFFSET_SAMPLES)
    return max(current - lowest, _ZERO)


# ---------------------------------------------------------------------------------------
# Serialized values
# ---------------------------------------------------------------------------------------


def _parse_iso(value: Any, where: str) -> datetime:
    """ISO-8601 text as written by pendulum/marshmallow; naive stays naive."""
    if not isinstance(value, str):
        raise ScheduleError(f"{where}: expected an ISO-8601 datetime string, got {value!r}")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ScheduleError(f"{where}: invalid datetime {value!r}") from None


def _parse_zoned(value: Any, where: str) -> _Zoned | None:
    """A DateTimeTZ field ({"dt": naive iso, "tz": zone}) or None."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ScheduleError(f"{where}: expected {{'dt': ..., 'tz': ...}}, got {value!r}")
    tz_name = value.get("tz")
    if not isinstance(tz_name, str):
        raise ScheduleError(f"{where}: missing time zone name ('tz')")
    try:
        tz = _zone(tz_name)
    except ScheduleError as error:
        raise ScheduleError(f"{where}: {error}") from None
    moment = _parse_iso(value.get("dt"), f"{where}.dt")
    if moment.tzinfo is not None:  # tolerate an explicit offset in "dt"
        return _Zoned(moment.astimezone(UTC), tz)
    return _Zoned(_wall_to_utc(moment, tz), tz)


def _parse_instant(value: Any, where: str) -> datetime | None:
    """A DateTimeTZ field reduced to its UTC instant (end dates only need the instant)."""
    zoned = _parse_zoned(value, where)
    return None if zoned is None else zoned.instant
