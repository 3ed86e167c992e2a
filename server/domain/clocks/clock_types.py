"""The clock kinds (Interval, Cron, Dates, RRule): each turns its settings into strictly
increasing (UTC instant, local zone) pairs after a given time, with Core 1.4.1's DST rules.

Clocks are built from already-validated values; reading the serialized form is
:mod:`headwater.server.domain.clocks.parsing`'s job.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from dateutil import rrule as dateutil_rrule

from headwater.server.domain.clocks.bounds import SearchBounds
from headwater.server.domain.clocks.cron import _cron_pattern, _CronPattern
from headwater.server.domain.clocks.recurrence import bounded_occurrences, rebased, set_occurrences
from headwater.server.domain.clocks.times import (
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

    def instants(self, after: datetime, bounds: SearchBounds) -> Iterator[tuple[datetime, tzinfo]]:
        """Strictly increasing (UTC instant, local zone) pairs strictly after `after` (UTC),
        ending early (quietly) at the bounds' horizon or once their step budget is spent."""
        raise NotImplementedError

    def ended_by(self, moment: datetime) -> bool:
        """True when the clock's settings alone say it has no event after `moment` (an
        end_date, an rrule's UNTIL, the last of its dates), without searching."""
        end = getattr(self, "end", None)
        return end is not None and end <= moment

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

    def instants(self, after: datetime, bounds: SearchBounds) -> Iterator[tuple[datetime, tzinfo]]:
        tz, end = self.start.tz, self.end
        k, last = self._first_candidate(after), after
        while bounds.spend():
            try:
                instant = self.at(k)
            except OverflowError:
                return
            k += 1
            if (end is not None and instant > end) or bounds.beyond(instant):
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

    def instants(self, after: datetime, bounds: SearchBounds) -> Iterator[tuple[datetime, tzinfo]]:
        tz, end = self.tz, self.end
        last = self._threshold(after)
        if end is not None and last >= end:
            return
        for wall in self._pattern.iter_after(self._search_origin(last), bounds):
            instant = self._resolve(wall)
            if instant is None or instant <= last:
                continue
            if (end is not None and instant > end) or bounds.beyond(instant):
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

    def ended_by(self, moment: datetime) -> bool:
        return self._instants[-1] <= moment

    def instants(self, after: datetime, bounds: SearchBounds) -> Iterator[tuple[datetime, tzinfo]]:
        last = after
        for index in range(bisect.bisect_right(self._instants, after), len(self.dates)):
            zoned = self.dates[index]
            if not bounds.spend() or bounds.beyond(zoned.instant):
                return
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

    def __post_init__(self) -> None:
        # Decided from the rule's own times: iterating it to look would be unbounded.
        starts = _rule_starts(self.rule)
        object.__setattr__(self, "_naive", bool(starts) and starts[0].tzinfo is None)

    def ended_by(self, moment: datetime) -> bool:
        if super().ended_by(moment):
            return True
        rules = [self.rule] if isinstance(self.rule, dateutil_rrule.rrule) else self.rule._rrule
        dates = [] if isinstance(self.rule, dateutil_rrule.rrule) else self.rule._rdate
        try:
            return all(
                rule._until is not None and _as_utc(rule._until) <= moment for rule in rules
            ) and all(_as_utc(date) <= moment for date in dates)
        except TypeError:
            return False

    def _occurrences(self, origin: datetime, bounds: SearchBounds) -> Iterator[datetime]:
        """The rule's times from shortly before `origin` (UTC) on, within the bounds."""
        if isinstance(self.rule, dateutil_rrule.rruleset):
            return set_occurrences(self.rule, origin, bounds)
        return bounded_occurrences(rebased(self.rule, origin), bounds)

    def instants(self, after: datetime, bounds: SearchBounds) -> Iterator[tuple[datetime, tzinfo]]:
        inclusive = self.start is not None and after < self.start
        origin = self.start if inclusive else after
        if self.end is not None and origin > self.end:
            return
        threshold = origin.replace(tzinfo=None) if self._naive else origin
        last = after
        try:
            for moment in self._occurrences(origin, bounds):
                if moment < threshold or (moment == threshold and not inclusive):
                    continue
                tz = UTC if moment.tzinfo is None else moment.tzinfo
                instant = _as_utc(moment)
                if (self.end is not None and instant > self.end) or bounds.beyond(instant):
                    return
                if instant > last:
                    last = instant
                    yield instant, tz
        except TypeError:  # a rruleset mixing naive and aware times cannot be ordered
            return


def _rule_starts(rule: dateutil_rrule.rrulebase) -> list[datetime]:
    """The times a rule or rule set starts from (its DTSTARTs and RDATEs)."""
    if isinstance(rule, dateutil_rrule.rrule):
        return [rule._dtstart]
    starts = [member._dtstart for member in rule._rrule] + list(rule._rdate)
    try:
        return sorted(starts)
    except TypeError:  # mixed naive and aware: evaluation will find nothing
        return starts
