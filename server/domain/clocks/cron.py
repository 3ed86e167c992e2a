"""Cron expressions matched on a naive wall clock (croniter's grammar and search horizon).

A fast field matcher handles plain expressions; croniter itself handles the rarer
syntax. Time zones are not this module's concern: CronClock resolves the wall-clock
matches it yields.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from croniter import CroniterBadDateError, croniter

from headwater.server.domain.clocks.bounds import SEARCH_HORIZON_YEARS, SearchBounds
from headwater.server.domain.clocks.times import _DAY, _HOUR, _MINUTE, _SECOND


class _CronPattern:
    """Enumerates a cron expression's matches on a naive wall clock (croniter grammar)."""

    hour_is_any: bool

    def iter_after(self, wall: datetime, bounds: SearchBounds) -> Iterator[datetime]:
        """Matches strictly after `wall`, in order, until the bounds stop the search."""
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

    def next_after(self, wall: datetime, bounds: SearchBounds) -> datetime | None:
        """First match strictly after `wall`, or None when the bounds stop the search (each
        field step costs one step: `0 0 30 2 *` walks February's days once a year)."""
        if self.has_seconds:
            moment = wall.replace(microsecond=0) + _SECOND
        else:
            moment = wall.replace(second=0, microsecond=0) + _MINUTE
        horizon = bounds.horizon_year
        while bounds.spend():
            if moment.year > horizon:
                bounds.horizon_reached = True
                return None
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

    def iter_after(self, wall: datetime, bounds: SearchBounds) -> Iterator[datetime]:
        while True:
            try:
                match = self.next_after(wall, bounds)
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

    def iter_after(self, wall: datetime, bounds: SearchBounds) -> Iterator[datetime]:
        matches = croniter(
            self.expression, wall, day_or=self.day_or, ret_type=datetime,
            max_years_between_matches=SEARCH_HORIZON_YEARS,
        )
        while bounds.spend():
            try:
                match = matches.get_next(datetime)
            except CroniterBadDateError:  # nothing within SEARCH_HORIZON_YEARS
                bounds.horizon_reached = True
                return
            except (OverflowError, ValueError):
                return
            if match.year > bounds.horizon_year:
                bounds.horizon_reached = True
                return
            yield match


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
