"""Evaluating a parsed schedule: clocks merged in time order, identical events
collapsed, then Core's filter/adjustment pipeline, producing :class:`ClockEvent` values.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from headwater.server.domain.clocks.bounds import SearchBounds
from headwater.server.domain.clocks.clock_types import Clock
from headwater.server.domain.clocks.rules import Adjustment, Predicate
from headwater.server.domain.clocks.times import _MICROSECOND, _as_utc

DEFAULT_MAX_CHECKS = 10_000


@dataclass(frozen=True)
class SearchResult:
    """Events found and, when fewer than asked for, why the search stopped."""

    events: list["ClockEvent"]
    # "complete" (all n found), "ended" (the clocks have no more events), "checks"
    # (max_checks candidates examined), "horizon" or "steps" (a SearchBounds limit).
    stopped: str


@dataclass(frozen=True)
class ClockEvent:
    """One scheduled run: when, with which parameter defaults, with which labels."""

    start_time: datetime  # tz-aware, UTC
    parameter_defaults: dict  # {} when the clock sets none
    labels: list[str] | None  # None = the clock sets no labels (distinct from [])


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

    @property
    def _function_count(self) -> int:
        return len(self.filters) + len(self.or_filters) + len(self.not_filters) + len(self.adjustments)

    def _merged(self, after: datetime, bounds: SearchBounds) -> Iterator[tuple[datetime, tzinfo, Clock]]:
        """All clocks' events in time order; ties keep clock order, like heapq.merge in Core."""
        if len(self.clocks) == 1:
            clock = self.clocks[0]
            return ((instant, tz, clock) for instant, tz in clock.instants(after, bounds))
        streams = [_tagged(clock, index, after, bounds) for index, clock in enumerate(self.clocks)]
        return ((instant, tz, clock) for instant, _, tz, clock in heapq.merge(*streams))

    def _candidates(self, after: datetime, bounds: SearchBounds) -> Iterator[tuple[datetime, tzinfo, Clock]]:
        """Merged events within the schedule-level bounds, identical events collapsed.

        Core collapses only *adjacent* identical events, and heapq.merge cannot order
        same-time events with different payloads, so Core may repeat one; here an event
        identical to any already emitted at the same instant is dropped."""
        if self.start_date is not None and after < self.start_date:
            after = self.start_date - _MICROSECOND
        current: datetime | None = None
        emitted: list[Clock] = []  # clocks already emitted at `current`
        for instant, tz, clock in self._merged(after, bounds):
            if self.end_date is not None and instant > self.end_date:
                return
            if instant != current:
                current, emitted = instant, []
            elif any(clock.same_payload(other) for other in emitted):
                continue
            emitted.append(clock)
            yield instant, tz, clock

    def next_events(
        self,
        *,
        after: datetime,
        n: int,
        max_checks: int = DEFAULT_MAX_CHECKS,
        bounds: SearchBounds | None = None,
    ) -> list[ClockEvent]:
        """The next `n` events strictly after `after`, examining at most `max_checks`
        merged candidates so a filter that never passes cannot loop forever, and searching
        within `bounds` (by default SearchBounds.from_time(after))."""
        return self.search(after=after, n=n, max_checks=max_checks, bounds=bounds).events

    def search(
        self,
        *,
        after: datetime,
        n: int,
        max_checks: int = DEFAULT_MAX_CHECKS,
        bounds: SearchBounds | None = None,
    ) -> SearchResult:
        """next_events, also saying why the search stopped short of `n` events."""
        events: list[ClockEvent] = []
        if n <= 0 or max_checks <= 0:
            return SearchResult(events, "complete")
        after = _as_utc(after)
        bounds = bounds if bounds is not None else SearchBounds.from_time(after)
        local_needed = self._needs_local_time
        cost = self._function_count
        checks = 0
        for checks, (instant, tz, clock) in enumerate(self._candidates(after, bounds), 1):
            if not local_needed:
                events.append(_event(instant, clock))
                bounds.found(instant)
            elif not bounds.spend(cost):
                break
            else:
                local = instant.astimezone(tz)
                if self._passes(local):
                    try:
                        events.append(_event(_as_utc(self._adjust(local)), clock))
                        bounds.found(instant)
                    except (OverflowError, ValueError):  # adjusted past the year 9999
                        pass
            if len(events) >= n:
                return SearchResult(events, "complete")
            if checks >= max_checks:
                return SearchResult(events, "checks")
        if bounds.steps_exhausted:
            return SearchResult(events, "steps")
        return SearchResult(events, "horizon" if bounds.horizon_reached else "ended")


def _tagged(clock: Clock, index: int, after: datetime, bounds: SearchBounds) -> Iterator[tuple]:
    """(instant, clock index, zone, clock): sortable without comparing zones or clocks."""
    for instant, tz in clock.instants(after, bounds):
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
