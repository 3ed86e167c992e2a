"""Evaluate Prefect Core 1.x schedules the way Core 1.4.1 does, without importing Prefect.

The server stores a flow's schedule exactly as Core serialized it
(``flow.serialize()["schedule"]``, i.e. ``prefect.serialization.schedule.ScheduleSchema``)
and the flow-group schedule built by ``set_flow_group_schedule`` in the same shape::

    {"type": "Schedule",                       # optional; Core itself writes no "type" here
     "clocks": [{"type": "CronClock", "cron": "0 9 * * *", "day_or": true,
                 "start_date": {"dt": "2021-01-01T00:00:00", "tz": "America/New_York"},
                 "end_date": null, "parameter_defaults": {}, "labels": null},
                {"type": "IntervalClock", "interval": 3600000000, ...},   # microseconds
                {"type": "DatesClock", "dates": [{"dt": ..., "tz": ...}], ...},
                {"type": "RRuleClock", "rrule_obj": {"type": "rrule", "rr": "DTSTART:...",
                                                      "_dtstart": "<iso>", "_until": null}}],
     "filters": [{"fn": "prefect.schedules.filters.is_weekday", "kwargs": {}}],
     "or_filters": [], "not_filters": [],
     "adjustments": [{"fn": "prefect.schedules.adjustments.add",
                      "kwargs": {"interval": "//timedelta:300.0"}}]}

Public API: :func:`parse_schedule` (validate once, raise :class:`ScheduleError`),
:func:`next_events` (the next ``n`` :class:`ClockEvent` strictly after a time) and the
parsed :class:`Schedule` with its clock classes.

Semantics follow Core 1.4.1 as it ran with pendulum 2 (the pendulum its tests assume):

* Each event's local time lives in its clock's zone (the ``start_date`` zone, UTC by
  default); filters and adjustments see that local time, results are returned in UTC.
* Local wall times are resolved like pendulum: a repeated time means its *later*
  occurrence, a skipped time is read with the offset from before the gap.
* IntervalClock: ``start + k * interval``; once ``k * interval`` reaches a day it is added
  to the local wall clock, so a daily 09:00 New York clock stays at 09:00 across DST.
* CronClock: croniter matches on the local wall clock; a repeated match fires once (its
  later occurrence) and a skipped match moves to the end of the gap, unless the hour
  field is ``*`` (then it is dropped), exactly as croniter 7 + Core's re-localisation do.
* Schedule: clocks merged in time order (ties in clock order), consecutive identical
  events collapsed, then ``filters`` (all), ``or_filters`` (any), ``not_filters`` (none),
  then ``adjustments`` in order; at most ``max_checks`` merged events are examined.

Deliberate differences from Core, each a Core bug a server should not reproduce:

* Results are always strictly after ``after`` and a clock never skips one of its own
  events. Core's IntervalClock estimates its first event from elapsed UTC time, so when
  ``start_date`` and ``after`` are in different DST seasons it can return ``after``
  itself or skip the next event; Core's CronClock moves an ``after`` that falls in the
  first pass of a repeated hour forward by an hour (skipping the events in between).
* Each clock emits strictly increasing times. Core can emit a sub-hourly interval clock's
  events out of order around a spring-forward gap, and its CronClock de-duplication can
  drop a real event or loop forever after a fall-back hour with several matches.
* Core's CronClock stops after 1,000 events per query; here only ``max_checks`` bounds
  the search.
* Fixed-offset zones such as ``"+00:00"`` (what pendulum names ``datetime.timezone.utc``)
  are accepted; Core 1.4.1 cannot deserialize them.
* Naive RRule times are read as UTC throughout (Core compares them with the wall clock
  of whatever zone ``after``/``start_date`` happened to be in).
* A schedule-level ``start_date``/``end_date`` (never written by Core 1.4.1) bounds the
  merged clock events when present.
"""

from __future__ import annotations

import bisect
import copy
import heapq
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any, NamedTuple, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter
from dateutil import rrule as dateutil_rrule

__all__ = [
    "ClockEvent",
    "ScheduleError",
    "Schedule",
    "Clock",
    "IntervalClock",
    "CronClock",
    "DatesClock",
    "RRuleClock",
    "DEFAULT_MAX_CHECKS",
    "parse_schedule",
    "cached_schedule",
    "next_events",
]

UTC = timezone.utc
DEFAULT_MAX_CHECKS = 10_000
# Core's IntervalClock default start, and RRuleSchema's default `_dtstart`.
DEFAULT_INTERVAL_START = datetime(2019, 1, 1, tzinfo=UTC)
DEFAULT_RRULE_DTSTART = datetime(2018, 6, 20, tzinfo=UTC)

_ZERO = timedelta(0)
_MICROSECOND = timedelta(microseconds=1)
_SECOND = timedelta(seconds=1)
_MINUTE = timedelta(minutes=1)
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)
# Core's IntervalClockSchema rejects shorter intervals ("when deploying to Prefect Cloud").
_MIN_INTERVAL = timedelta(minutes=1)
# croniter's default `max_years_between_matches`: how far a cron search may look ahead.
_CRON_MAX_YEARS = 50
# Offsets sampled around a time to bound how far a DST change can shift wall clocks.
_OFFSET_SAMPLES = tuple(timedelta(hours=h) for h in (-48, -24, 24, 48))
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Z"})
_FIXED_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")

_FILTER_PREFIX = "prefect.schedules.filters."
_ADJUSTMENT_PREFIX = "prefect.schedules.adjustments."


class ScheduleError(ValueError):
    """A serialized schedule that cannot be evaluated; the message names the offending part."""


@dataclass(frozen=True)
class ClockEvent:
    """One scheduled run: when, with which parameter defaults, with which labels."""

    start_time: datetime  # tz-aware, UTC
    parameter_defaults: dict  # {} when the clock sets none
    labels: list[str] | None  # None = the clock sets no labels (distinct from [])


Predicate = Callable[[datetime], bool]  # receives the event's local, tz-aware time
Adjustment = Callable[[datetime], datetime]


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


def _parse_parameter_defaults(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise ScheduleError(f"{where}: expected an object with string keys, got {value!r}")
    return copy.deepcopy(dict(value))  # decoupled from the caller's (and the cache's) data


def _parse_labels(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(label, str) for label in value):
        raise ScheduleError(f"{where}: expected a list of strings, got {value!r}")
    return tuple(value)


def _parse_interval(value: Any, where: str) -> timedelta:
    """`interval` is a microsecond count (marshmallow TimeDelta, precision="microseconds")."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ScheduleError(f"{where}: expected a number of microseconds, got {value!r}")
    try:
        interval = timedelta(microseconds=value)
    except OverflowError:
        raise ScheduleError(f"{where}: interval {value!r} is out of range") from None
    if interval < _MIN_INTERVAL:
        raise ScheduleError(
            f"{where}: interval must be at least one minute (got {value!r} microseconds)"
        )
    return interval


# ---------------------------------------------------------------------------------------
# Clocks
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Clock:
    """What every event of a clock carries; subclasses produce the times."""

    parameter_defaults: dict = field(default_factory=dict)
    labels: tuple[str, ...] | None = None

    def instants(self, after: datetime) -> Iterator[tuple[datetime, tzinfo]]:
        """Strictly increasing (UTC instant, local zone) pairs strictly after `after` (UTC)."""
        raise NotImplementedError

    def same_payload(self, other: Clock) -> bool:
        """Events of two clocks at the same time are identical only if this matches."""
        return other is self or (
            self.parameter_defaults == other.parameter_defaults and self.labels == other.labels
        )


@dataclass(frozen=True, kw_only=True)
class IntervalClock(Clock):
    """`start + k * interval`; multiples of a day or more keep the local wall-clock time."""

    interval: timedelta
    start: _Zoned = _Zoned(DEFAULT_INTERVAL_START, UTC)
    end: datetime | None = None
    _start_wall: datetime = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        wall = self.start.instant.astimezone(self.start.tz).replace(tzinfo=None)
        object.__setattr__(self, "_start_wall", wall)

    def at(self, k: int) -> datetime:
        """The k-th event. Core adds whole days (and the rest) to the local wall clock, so
        DST moves UTC time; below one day it adds elapsed time."""
        offset = self.interval * k
        if offset < _DAY or _is_fixed(self.start.tz):
            return self.start.instant + offset
        return _wall_to_utc(self._start_wall + offset, self.start.tz)

    def _first_candidate(self, after: datetime) -> int:
        """A k no later than the first event after `after`, close enough to be cheap."""
        start = self.start.instant
        if after < start:
            return 0
        k_elapsed = (after - start) // self.interval + 1
        if _is_fixed(self.start.tz):
            return k_elapsed
        # Wall-clock events can land up to the zone's nearby offset rise earlier.
        wall_after = after.astimezone(self.start.tz).replace(tzinfo=None)
        slack = _offset_rise(self.start.tz, after)
        k_wall = max(0, (wall_after - slack - self._start_wall) // self.interval)
        return min(k_elapsed, k_wall) if after < start + _DAY else k_wall

    def instants(self, after: datetime) -> Iterator[tuple[datetime, tzinfo]]:
        tz, end = self.start.tz, self.end
        k, last = self._first_candidate(after), after
        while True:
            try:
                instant = self.at(k)
            except OverflowError:
                return
            k += 1
            if end is not None and instant > end:
                return
            if instant > last:  # drops repeats from wall times folded together by DST
                last = instant
                yield instant, tz


@dataclass(frozen=True, kw_only=True)
class CronClock(Clock):
    """Cron matches on the local wall clock of the start_date's zone (UTC by default)."""

    cron: str
    day_or: bool = True
    start: _Zoned | None = None
    end: datetime | None = None
    _pattern: _CronPattern = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.cron, str):
            raise ValueError(f"invalid cron string {self.cron!r}")
        object.__setattr__(self, "_pattern", _cron_pattern(self.cron, self.day_or))

    @property
    def tz(self) -> tzinfo:
        return UTC if self.start is None else self.start.tz

    def _threshold(self, after: datetime) -> datetime:
        """Events must be later than this. Core starts one second before start_date (so the
        start itself can fire) and rounds an `after` with microseconds up by a second."""
        threshold = after
        if self.start is not None:
            threshold = max(threshold, self.start.instant - _SECOND)
        if threshold.microsecond:
            threshold += _SECOND
        return threshold

    def _search_origin(self, threshold: datetime) -> datetime:
        """Wall time to search from: in the first pass of a repeated hour, back up to the
        hour's start, because matches there resolve to the (later) second pass."""
        local = threshold.astimezone(self.tz)
        wall = local.replace(tzinfo=None)
        if not _is_fixed(self.tz) and local.fold == 0:
            first, second = local.utcoffset(), local.replace(fold=1).utcoffset()
            if first > second:
                wall -= first - second
        return wall

    def _resolve(self, wall: datetime) -> datetime | None:
        """UTC instant for a wall-clock match (a repeated time fires at its later pass),
        or None when croniter would drop it."""
        tz = self.tz
        first, second = _wall_offsets(wall, tz)
        if first >= second:
            return (wall - second).replace(tzinfo=UTC)
        if self._pattern.hour_is_any:
            return None  # croniter skips a gap's matches when the hour field is '*'
        return _after_gap(wall, tz)

    def instants(self, after: datetime) -> Iterator[tuple[datetime, tzinfo]]:
        tz, end = self.tz, self.end
        last = self._threshold(after)
        for wall in self._pattern.iter_after(self._search_origin(last)):
            instant = self._resolve(wall)
            if instant is None or instant <= last:
                continue
            if end is not None and instant > end:
                return
            last = instant
            yield instant, tz


def _after_gap(wall: datetime, tz: tzinfo) -> datetime:
    """croniter moves a skipped match minute by minute to the first wall time that exists."""
    for _ in range(48 * 60):  # no zone has skipped more than a day
        wall += _MINUTE
        if _wall_exists(wall, tz):
            break
    return _wall_to_utc(wall, tz)


@dataclass(frozen=True, kw_only=True)
class DatesClock(Clock):
    """Fires on explicit dates; each date keeps its own zone for filters."""

    dates: tuple[_Zoned, ...]
    _instants: tuple[datetime, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.dates, key=lambda zoned: zoned.instant))  # stable
        object.__setattr__(self, "dates", ordered)
        object.__setattr__(self, "_instants", tuple(zoned.instant for zoned in ordered))

    def instants(self, after: datetime) -> Iterator[tuple[datetime, tzinfo]]:
        last = after
        for zoned in self.dates[bisect.bisect_right(self._instants, after) :]:
            if zoned.instant > last:
                last = zoned.instant
                yield zoned.instant, zoned.tz


@dataclass(frozen=True, kw_only=True)
class RRuleClock(Clock):
    """An iCalendar recurrence rule (dateutil rrule/rruleset); naive rule times are UTC."""

    rule: dateutil_rrule.rrulebase
    start: datetime | None = None
    end: datetime | None = None
    _naive: bool = field(init=False, repr=False, compare=False)
    _empty: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        first = next(iter(self.rule), None)
        object.__setattr__(self, "_empty", first is None)
        object.__setattr__(self, "_naive", first is not None and first.tzinfo is None)

    def instants(self, after: datetime) -> Iterator[tuple[datetime, tzinfo]]:
        if self._empty:
            return
        inclusive = self.start is not None and after < self.start
        origin = self.start if inclusive else after
        if self._naive:
            origin = origin.replace(tzinfo=None)
        last = after
        try:
            for moment in self.rule.xafter(origin, inc=inclusive):
                tz = UTC if moment.tzinfo is None else moment.tzinfo
                instant = _as_utc(moment)
                if self.end is not None and instant > self.end:
                    return
                if instant > last:
                    last = instant
                    yield instant, tz
        except TypeError:  # a rruleset mixing naive and aware times cannot be ordered
            return


# ---------------------------------------------------------------------------------------
# Cron matching on naive wall clocks
# ---------------------------------------------------------------------------------------


class _CronPattern:
    """Enumerates a cron expression's matches on a naive wall clock (croniter grammar)."""

    hour_is_any: bool

    def iter_after(self, wall: datetime) -> Iterator[datetime]:
        raise NotImplementedError


def _field_values(values: Sequence[Any]) -> tuple[int, ...] | None:
    """croniter's expanded field: ['*'] means unrestricted (None)."""
    return None if values[0] == "*" else tuple(sorted(set(values)))


def _next_value(values: tuple[int, ...], current: int) -> int | None:
    """Smallest allowed value above `current`, or None to carry into the next unit."""
    index = bisect.bisect_right(values, current)
    return values[index] if index < len(values) else None


class _FieldPattern(_CronPattern):
    """Fast matcher for plain 5- and 6-field expressions (lists, ranges, steps, names)."""

    def __init__(self, expanded: Sequence[Sequence[Any]], day_or: bool) -> None:
        minutes, hours, days, months, weekdays = (_field_values(f) for f in expanded[:5])
        self.minutes, self.hours, self.days, self.months, self.weekdays = (
            minutes, hours, days, months, weekdays
        )
        self.seconds = _field_values(expanded[5]) if len(expanded) == 6 else None
        self.has_seconds = len(expanded) == 6
        # croniter (like cron) ORs the two day fields only when both are restricted.
        self.either_day = day_or and days is not None and weekdays is not None
        self.hour_is_any = hours is None

    def _day_matches(self, moment: datetime) -> bool:
        day_ok = self.days is None or moment.day in self.days
        weekday_ok = self.weekdays is None or moment.isoweekday() % 7 in self.weekdays
        return (day_ok or weekday_ok) if self.either_day else (day_ok and weekday_ok)

    def _next_month(self, moment: datetime) -> datetime:
        month = _next_value(self.months, moment.month)
        if month is None:
            return datetime(moment.year + 1, self.months[0], 1)
        return datetime(moment.year, month, 1)

    def next_after(self, wall: datetime) -> datetime | None:
        """First match strictly after `wall`, or None within croniter's search horizon."""
        if self.has_seconds:
            moment = wall.replace(microsecond=0) + _SECOND
        else:
            moment = wall.replace(second=0, microsecond=0) + _MINUTE
        horizon = moment.year + _CRON_MAX_YEARS
        while moment.year <= horizon:
            if self.months is not None and moment.month not in self.months:
                moment = self._next_month(moment)
            elif not self._day_matches(moment):
                moment = datetime(moment.year, moment.month, moment.day) + _DAY
            elif self.hours is not None and moment.hour not in self.hours:
                hour = _next_value(self.hours, moment.hour)
                moment = (
                    datetime(moment.year, moment.month, moment.day) + _DAY
                    if hour is None
                    else moment.replace(hour=hour, minute=0, second=0)
                )
            elif self.minutes is not None and moment.minute not in self.minutes:
                minute = _next_value(self.minutes, moment.minute)
                moment = (
                    moment.replace(minute=0, second=0) + _HOUR
                    if minute is None
                    else moment.replace(minute=minute, second=0)
                )
            elif self.seconds is not None and moment.second not in self.seconds:
                second = _next_value(self.seconds, moment.second)
                moment = (
                    moment.replace(second=0) + _MINUTE
                    if second is None
                    else moment.replace(second=second)
                )
            else:
                return moment
        return None

    def iter_after(self, wall: datetime) -> Iterator[datetime]:
        while True:
            try:
                match = self.next_after(wall)
            except (OverflowError, ValueError):  # past year 9999
                return
            if match is None:
                return
            yield match
            wall = match


class _CroniterPattern(_CronPattern):
    """Delegates to croniter for the rarer syntax (L, W, #, year field)."""

    def __init__(self, expression: str, expanded: Sequence[Sequence[Any]], day_or: bool) -> None:
        self.expression = expression
        self.day_or = day_or
        self.hour_is_any = expanded[1][0] == "*"

    def iter_after(self, wall: datetime) -> Iterator[datetime]:
        matches = croniter(self.expression, wall, day_or=self.day_or, ret_type=datetime)
        while True:
            try:
                yield matches.get_next(datetime)
            except (CroniterBadDateError, OverflowError, ValueError):
                return


@lru_cache(maxsize=4096)
def _cron_pattern(expression: str, day_or: bool) -> _CronPattern:
    """Validate and compile a cron expression once; raises ValueError for invalid ones."""
    if not croniter.is_valid(expression):
        raise ValueError(f"invalid cron string {expression!r}")
    expanded, nth_weekday = croniter.expand(expression)
    parts = expression.split()
    nearest_weekday = len(parts) >= 5 and "w" in parts[2].lower()
    special = nth_weekday or nearest_weekday or "l" in expanded[2] or len(expanded) > 6
    if special:
        return _CroniterPattern(expression, expanded, day_or)
    return _FieldPattern(expanded, day_or)


# ---------------------------------------------------------------------------------------
# Filters and adjustments (serialized as {"fn": qualified name, "kwargs": {...}})
# ---------------------------------------------------------------------------------------


def _encoded(value: Any, prefix: str, where: str) -> str:
    """Core's StatefulFunctionReference writes datetimes/times/timedeltas as '//kind:...'."""
    if not isinstance(value, str) or not value.startswith(prefix):
        raise ScheduleError(f"{where}: expected a '{prefix}...' value, got {value!r}")
    return value[len(prefix) :]


def _kw_datetime(value: Any, where: str) -> datetime:
    return _as_utc(_parse_iso(_encoded(value, "//datetime:", where), where))


def _kw_time(value: Any, where: str) -> time:
    text = _encoded(value, "//time:", where)
    try:
        return time.fromisoformat(text).replace(tzinfo=None)  # Core compares dt.time()
    except ValueError:
        raise ScheduleError(f"{where}: invalid time {text!r}") from None


def _kw_timedelta(value: Any, where: str) -> timedelta:
    text = _encoded(value, "//timedelta:", where)
    try:
        seconds = float(text)
        if not math.isfinite(seconds):
            raise ValueError(text)
        return timedelta(seconds=seconds)
    except (ValueError, OverflowError):
        raise ScheduleError(f"{where}: invalid timedelta {text!r}") from None


def _kw_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScheduleError(f"{where}: expected an integer, got {value!r}")
    return value


def _take(kwargs: Mapping[str, Any], where: str, **kinds: Callable[[Any, str], Any]) -> list:
    """Check a function's kwargs are exactly `kinds` and decode each one."""
    if set(kwargs) != set(kinds):
        raise ScheduleError(
            f"{where}: expected arguments {sorted(kinds)}, got {sorted(kwargs)}"
        )
    return [decode(kwargs[name], f"{where}.{name}") for name, decode in kinds.items()]


def _on_datetime(kwargs: Mapping[str, Any], where: str) -> Predicate:
    (moment,) = _take(kwargs, where, dt=_kw_datetime)
    # Compare in UTC: PEP 495 makes == between zones False inside a repeated hour.
    return lambda local: local.astimezone(UTC) == moment


def _between_datetimes(kwargs: Mapping[str, Any], where: str) -> Predicate:
    start, end = _take(kwargs, where, start=_kw_datetime, end=_kw_datetime)
    return lambda local: start <= local.astimezone(UTC) <= end


def _on_date(kwargs: Mapping[str, Any], where: str) -> Predicate:
    month, day = _take(kwargs, where, month=_kw_int, day=_kw_int)
    return lambda local: (local.month, local.day) == (month, day)


def _between_dates(kwargs: Mapping[str, Any], where: str) -> Predicate:
    start_month, start_day, end_month, end_day = _take(
        kwargs, where, start_month=_kw_int, start_day=_kw_int, end_month=_kw_int, end_day=_kw_int
    )
    start, end = (start_month, start_day), (end_month, end_day)
    if start_month <= end_month:  # Core compares months only to decide on wrapping
        return lambda local: start <= (local.month, local.day) <= end
    return lambda local: (local.month, local.day) >= start or (local.month, local.day) <= end


def _at_time(kwargs: Mapping[str, Any], where: str) -> Predicate:
    (moment,) = _take(kwargs, where, t=_kw_time)
    return lambda local: local.time() == moment


def _between_times(kwargs: Mapping[str, Any], where: str) -> Predicate:
    start, end = _take(kwargs, where, start=_kw_time, end=_kw_time)
    if start <= end:
        return lambda local: start <= local.time() <= end
    return lambda local: local.time() >= start or local.time() <= end


def _is_day_of_week(kwargs: Mapping[str, Any], where: str) -> Predicate:
    (weekday,) = _take(kwargs, where, day_of_week=_kw_int)
    return lambda local: local.weekday() == weekday  # Monday == 0, as Core's code does


def _is_weekday(local: datetime) -> bool:
    return local.weekday() < 5


def _is_weekend(local: datetime) -> bool:
    return local.weekday() > 4


def _is_month_end(local: datetime) -> bool:
    return (local.date() + _DAY).month != local.month


def _is_month_start(local: datetime) -> bool:
    return local.day == 1


def _stateless(function: Callable) -> Callable[[Mapping[str, Any], str], Callable]:
    """Builder for functions Core stores without arguments."""

    def build(kwargs: Mapping[str, Any], where: str) -> Callable:
        _take(kwargs, where)
        return function

    return build


def _add(kwargs: Mapping[str, Any], where: str) -> Adjustment:
    (interval,) = _take(kwargs, where, interval=_kw_timedelta)
    # pendulum adds a plain timedelta as elapsed time, keeping the zone.
    return lambda local: (local.astimezone(UTC) + interval).astimezone(local.tzinfo)


def _next_weekday(local: datetime) -> datetime:
    """Advance a day at a time on the local wall clock until Monday-Friday."""
    while local.weekday() > 4:
        wall = local.replace(tzinfo=None) + _DAY
        local = _wall_to_utc(wall, local.tzinfo).astimezone(local.tzinfo)
    return local


_FILTERS: dict[str, Callable[[Mapping[str, Any], str], Predicate]] = {
    _FILTER_PREFIX + "on_datetime": _on_datetime,
    _FILTER_PREFIX + "on_date": _on_date,
    _FILTER_PREFIX + "at_time": _at_time,
    _FILTER_PREFIX + "between_datetimes": _between_datetimes,
    _FILTER_PREFIX + "between_dates": _between_dates,
    _FILTER_PREFIX + "between_times": _between_times,
    _FILTER_PREFIX + "is_weekday": _stateless(_is_weekday),
    _FILTER_PREFIX + "is_weekend": _stateless(_is_weekend),
    _FILTER_PREFIX + "is_month_end": _stateless(_is_month_end),
    _FILTER_PREFIX + "is_day_of_week": _is_day_of_week,
    _FILTER_PREFIX + "is_month_start": _stateless(_is_month_start),
}

_ADJUSTMENTS: dict[str, Callable[[Mapping[str, Any], str], Adjustment]] = {
    _ADJUSTMENT_PREFIX + "add": _add,
    _ADJUSTMENT_PREFIX + "next_weekday": _stateless(_next_weekday),
}


def _parse_functions(value: Any, where: str, registry: Mapping[str, Callable], kind: str) -> tuple:
    """A list of function references; unknown names are rejected like Core's schema does."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ScheduleError(f"{where}: expected a list, got {value!r}")
    functions = []
    for index, entry in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("fn"), str):
            raise ScheduleError(f"{at}: expected {{'fn': ..., 'kwargs': ...}}, got {entry!r}")
        build = registry.get(entry["fn"])
        if build is None:
            raise ScheduleError(f"{at}: unknown {kind} {entry['fn']!r}")
        kwargs = entry.get("kwargs") or {}
        if not isinstance(kwargs, Mapping):
            raise ScheduleError(f"{at}.kwargs: expected an object, got {kwargs!r}")
        functions.append(build(kwargs, f"{at} ({entry['fn'].rsplit('.', 1)[-1]})"))
    return tuple(functions)


# ---------------------------------------------------------------------------------------
# Schedule
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: clocks plus Core's filter/adjustment pipeline."""

    clocks: tuple[Clock, ...]
    filters: tuple[Predicate, ...] = ()
    or_filters: tuple[Predicate, ...] = ()
    not_filters: tuple[Predicate, ...] = ()
    adjustments: tuple[Adjustment, ...] = ()
    start_date: datetime | None = None  # schedule-level bounds; Core 1.4.1 never writes them
    end_date: datetime | None = None

    @property
    def _needs_local_time(self) -> bool:
        return bool(self.filters or self.or_filters or self.not_filters or self.adjustments)

    def _passes(self, local: datetime) -> bool:
        """Core's order: all `filters`, any `or_filters` (if given), no `not_filters`."""
        return (
            all(check(local) for check in self.filters)
            and (not self.or_filters or any(check(local) for check in self.or_filters))
            and not any(check(local) for check in self.not_filters)
        )

    def _adjust(self, local: datetime) -> datetime:
        for adjust in self.adjustments:
            local = adjust(local)
        return local

    def _merged(self, after: datetime) -> Iterator[tuple[datetime, tzinfo, Clock]]:
        """All clocks' events in time order; ties keep clock order, like heapq.merge in Core."""
        if len(self.clocks) == 1:
            clock = self.clocks[0]
            return ((instant, tz, clock) for instant, tz in clock.instants(after))
        streams = [_tagged(clock, index, after) for index, clock in enumerate(self.clocks)]
        return ((instant, tz, clock) for instant, _, tz, clock in heapq.merge(*streams))

    def _candidates(self, after: datetime) -> Iterator[tuple[datetime, tzinfo, Clock]]:
        """Merged events within the schedule-level bounds, identical events collapsed.

        Core collapses only *adjacent* identical events, and heapq.merge cannot order
        same-time events with different payloads, so Core may repeat one; here an event
        identical to any already emitted at the same instant is dropped."""
        if self.start_date is not None and after < self.start_date:
            after = self.start_date - _MICROSECOND
        current: datetime | None = None
        emitted: list[Clock] = []  # clocks already emitted at `current`
        for instant, tz, clock in self._merged(after):
            if self.end_date is not None and instant > self.end_date:
                return
            if instant != current:
                current, emitted = instant, []
            elif any(clock.same_payload(other) for other in emitted):
                continue
            emitted.append(clock)
            yield instant, tz, clock

    def next_events(
        self, *, after: datetime, n: int, max_checks: int = DEFAULT_MAX_CHECKS
    ) -> list[ClockEvent]:
        """The next `n` events strictly after `after`, examining at most `max_checks`
        merged candidates so a filter that never passes cannot loop forever."""
        events: list[ClockEvent] = []
        if n <= 0 or max_checks <= 0:
            return events
        local_needed = self._needs_local_time
        for checks, (instant, tz, clock) in enumerate(self._candidates(_as_utc(after)), 1):
            if not local_needed:
                events.append(_event(instant, clock))
            else:
                local = instant.astimezone(tz)
                if self._passes(local):
                    events.append(_event(_as_utc(self._adjust(local)), clock))
            if len(events) >= n or checks >= max_checks:
                break
        return events


def _tagged(clock: Clock, index: int, after: datetime) -> Iterator[tuple]:
    """(instant, clock index, zone, clock): sortable without comparing zones or clocks."""
    for instant, tz in clock.instants(after):
        yield instant, index, tz, clock


def _event(start_time: datetime, clock: Clock) -> ClockEvent:
    """Copies the payload so callers may mutate results without touching cached schedules."""
    labels = None if clock.labels is None else list(clock.labels)
    return ClockEvent(start_time, _fresh_copy(clock.parameter_defaults), labels)


def _fresh_copy(value: Any) -> Any:
    """New dicts and lists around shared scalars: a deep copy of JSON data, without
    copy.deepcopy's cost (it dominated evaluation time)."""
    if isinstance(value, dict):
        return {key: _fresh_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_fresh_copy(item) for item in value]
    return value


# ---------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------


def _payload(entry: Mapping[str, Any], where: str) -> dict[str, Any]:
    return {
        "parameter_defaults": _parse_parameter_defaults(
            entry.get("parameter_defaults"), f"{where}.parameter_defaults"
        ),
        "labels": _parse_labels(entry.get("labels"), f"{where}.labels"),
    }


def _parse_interval_clock(entry: Mapping[str, Any], where: str) -> IntervalClock:
    start = _parse_zoned(entry.get("start_date"), f"{where}.start_date")
    return IntervalClock(
        interval=_parse_interval(entry.get("interval"), f"{where}.interval"),
        start=start if start is not None else _Zoned(DEFAULT_INTERVAL_START, UTC),
        end=_parse_instant(entry.get("end_date"), f"{where}.end_date"),
        **_payload(entry, where),
    )


def _parse_cron_clock(entry: Mapping[str, Any], where: str) -> CronClock:
    day_or = entry.get("day_or")
    if day_or is not None and not isinstance(day_or, bool):
        raise ScheduleError(f"{where}.day_or: expected a boolean, got {day_or!r}")
    try:
        return CronClock(
            cron=entry.get("cron"),
            day_or=True if day_or is None else day_or,
            start=_parse_zoned(entry.get("start_date"), f"{where}.start_date"),
            end=_parse_instant(entry.get("end_date"), f"{where}.end_date"),
            **_payload(entry, where),
        )
    except (ValueError, TypeError) as error:
        if isinstance(error, ScheduleError):
            raise
        raise ScheduleError(f"{where}.cron: {error}") from None


def _parse_dates_clock(entry: Mapping[str, Any], where: str) -> DatesClock:
    dates = entry.get("dates")
    if not isinstance(dates, list) or not dates:
        raise ScheduleError(f"{where}.dates: expected a non-empty list of dates")
    parsed = tuple(
        _parse_zoned(value, f"{where}.dates[{index}]") for index, value in enumerate(dates)
    )
    if any(zoned is None for zoned in parsed):
        raise ScheduleError(f"{where}.dates: dates may not be null")
    return DatesClock(dates=parsed, **_payload(entry, where))


def _optional_iso(value: Mapping[str, Any], key: str, default: Any, where: str) -> Any:
    """A nullable marshmallow DateTime field; `default` when the key is absent."""
    if key not in value:
        return default
    return None if value[key] is None else _parse_iso(value[key], f"{where}.{key}")


def _parse_rrule(value: Any, where: str) -> dateutil_rrule.rrule:
    """RRuleSchema: the rule's text plus `_dtstart`/`_until`, which carry the time zone."""
    if not isinstance(value, Mapping) or not isinstance(value.get("rr"), str):
        raise ScheduleError(f"{where}: expected {{'rr': <rrule text>, ...}}, got {value!r}")
    changes = {"dtstart": _optional_iso(value, "_dtstart", DEFAULT_RRULE_DTSTART, where)}
    if "_until" in value:
        changes["until"] = _optional_iso(value, "_until", None, where)
    try:
        rule = dateutil_rrule.rrulestr(value["rr"])
        if not isinstance(rule, dateutil_rrule.rrule):
            raise ValueError("expected a single RRULE")
        return rule.replace(**changes)
    except (ValueError, TypeError) as error:
        raise ScheduleError(f"{where}: invalid rrule {value['rr']!r}: {error}") from None


def _parse_rrule_obj(value: Any, where: str) -> dateutil_rrule.rrulebase:
    """RRuleBaseSchema: a single rule, or a set of rules, dates and exclusions."""
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind == "rrule":
        return _parse_rrule(value, where)
    if kind != "rruleset":
        raise ScheduleError(f"{where}: expected an rrule or rruleset, got {value!r}")
    rules = dateutil_rrule.rruleset()
    for name, add, parse in (
        ("_rrule", rules.rrule, _parse_rrule),
        ("_rdate", rules.rdate, _parse_iso),
        ("_exrule", rules.exrule, _parse_rrule),
        ("_exdate", rules.exdate, _parse_iso),
    ):
        items = value.get(name) or []
        if not isinstance(items, list):
            raise ScheduleError(f"{where}.{name}: expected a list, got {items!r}")
        for index, item in enumerate(items):
            add(parse(item, f"{where}.{name}[{index}]"))
    return rules


def _parse_rrule_clock(entry: Mapping[str, Any], where: str) -> RRuleClock:
    try:
        return RRuleClock(
            rule=_parse_rrule_obj(entry.get("rrule_obj"), f"{where}.rrule_obj"),
            start=_parse_instant(entry.get("start_date"), f"{where}.start_date"),
            end=_parse_instant(entry.get("end_date"), f"{where}.end_date"),
            **_payload(entry, where),
        )
    except TypeError as error:  # e.g. mixing naive and aware datetimes inside a rruleset
        raise ScheduleError(f"{where}: cannot evaluate rrule: {error}") from None


_CLOCK_PARSERS: dict[str, Callable[[Mapping[str, Any], str], Clock]] = {
    "IntervalClock": _parse_interval_clock,
    "CronClock": _parse_cron_clock,
    "DatesClock": _parse_dates_clock,
    "RRuleClock": _parse_rrule_clock,
}


def _parse_clock(entry: Any, where: str) -> Clock:
    if not isinstance(entry, Mapping):
        raise ScheduleError(f"{where}: expected a clock object, got {entry!r}")
    parse = _CLOCK_PARSERS.get(entry.get("type"))
    if parse is None:
        raise ScheduleError(
            f"{where}: unknown clock type {entry.get('type')!r} "
            f"(expected one of {', '.join(_CLOCK_PARSERS)})"
        )
    return parse(entry, f"{where} ({entry['type']})")


def parse_schedule(serialized: Mapping[str, Any]) -> Schedule:
    """Validate a serialized Core schedule and compile it; raises ScheduleError."""
    if not isinstance(serialized, Mapping):
        raise ScheduleError(f"schedule: expected an object, got {serialized!r}")
    kind = serialized.get("type")
    if kind not in (None, "Schedule"):
        raise ScheduleError(f"schedule: unsupported schedule type {kind!r}")
    clocks = serialized.get("clocks")
    if not isinstance(clocks, list):
        raise ScheduleError("schedule.clocks: expected a list of clocks")
    return Schedule(
        clocks=tuple(_parse_clock(entry, f"clocks[{i}]") for i, entry in enumerate(clocks)),
        filters=_parse_functions(serialized.get("filters"), "filters", _FILTERS, "filter"),
        or_filters=_parse_functions(serialized.get("or_filters"), "or_filters", _FILTERS, "filter"),
        not_filters=_parse_functions(
            serialized.get("not_filters"), "not_filters", _FILTERS, "filter"
        ),
        adjustments=_parse_functions(
            serialized.get("adjustments"), "adjustments", _ADJUSTMENTS, "adjustment"
        ),
        start_date=_parse_instant(serialized.get("start_date"), "schedule.start_date"),
        end_date=_parse_instant(serialized.get("end_date"), "schedule.end_date"),
    )


@lru_cache(maxsize=32_768)
def _parse_by_key(key: str) -> Union[Schedule, ScheduleError]:
    """Parsed schedules (and their errors) by canonical JSON, so repeat passes skip parsing."""
    try:
        return parse_schedule(json.loads(key))
    except ScheduleError as error:
        return error


def cached_schedule(serialized: Mapping[str, Any]) -> Schedule:
    """parse_schedule, memoised by the schedule's canonical JSON text."""
    try:
        key = json.dumps(serialized, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):  # not plain JSON data: parse without caching
        return parse_schedule(serialized)
    parsed = _parse_by_key(key)
    if isinstance(parsed, ScheduleError):
        raise ScheduleError(str(parsed))
    return parsed


def next_events(
    schedule: Union[Mapping[str, Any], Schedule],
    *,
    after: datetime,
    n: int,
    max_checks: int = DEFAULT_MAX_CHECKS,
) -> list[ClockEvent]:
    """The next `n` events of a serialized (or parsed) schedule strictly after `after`
    (naive = UTC); raises ScheduleError for a schedule that cannot be evaluated."""
    parsed = schedule if isinstance(schedule, Schedule) else cached_schedule(schedule)
    return parsed.next_events(after=after, n=n, max_checks=max_checks)
