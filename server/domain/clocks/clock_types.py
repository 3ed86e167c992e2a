"""The clock kinds (Interval, Cron, Dates, RRule): each turns its settings into strictly
increasing (UTC instant, local zone) pairs after a given time, with Core 1.4.1's DST rules.

Clocks are built from already-validated values; reading the serialized form is
:mod:`server.domain.clocks.parsing`'s job.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from dateutil import rrule as dateutil_rrule

from server.domain.clocks.cron import _cron_pattern, _CronPattern
from server.domain.clocks.times import (
    _DAY,
    _MINUTE,
    _SECOND,
    UTC,
    _as_utc,
    _is_fixed,
    _offset_rise,
    _wall_exists,
    _wall_offsets,
    _wall_to_utc,
    _Zoned,
)

# Core's IntervalClock default start.
DEFAULT_INTERVAL_START = datetime(2019, 1, 1, tzinfo=UTC)



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
