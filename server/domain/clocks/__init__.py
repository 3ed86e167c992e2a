"""Evaluate Prefect Core 1.x schedules the way Core 1.4.1 does, without importing Prefect.

Schedules are stored exactly as Core serialized them (the shape is shown in
:mod:`headwater.server.domain.clocks.parsing`). Public API: :func:`parse_schedule` (validate once,
raise :class:`ScheduleError`), :func:`next_events` (the next ``n`` :class:`ClockEvent`
strictly after a time) and the parsed :class:`Schedule` with its clock classes.

Layout: ``errors`` (ScheduleError), ``times`` (zones, wall clocks, ISO values),
``bounds`` (the search horizon and step budget of one evaluation), ``cron`` (cron
matching on wall clocks), ``recurrence`` (bounded dateutil rrule iteration),
``clock_types`` (the clock kinds), ``rules`` (filters and adjustments), ``schedule``
(evaluation), ``parsing`` (serialized form, caching, next_events), ``validation``
(whether a schedule can fire at all).

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
* Core's CronClock stops after 1,000 events per query; here ``max_checks`` and the
  :class:`SearchBounds` (a horizon of ``SEARCH_HORIZON_YEARS`` past the start or the last
  event found, and ``DEFAULT_MAX_STEPS`` search steps) bound the search. Core's other
  clocks (and dateutil) search without bound: an impossible rrule ran to the year 9999.
* Fixed-offset zones such as ``"+00:00"`` (what pendulum names ``datetime.timezone.utc``)
  are accepted; Core 1.4.1 cannot deserialize them.
* Naive RRule times are read as UTC throughout (Core compares them with the wall clock
  of whatever zone ``after``/``start_date`` happened to be in).
* A schedule-level ``start_date``/``end_date`` (never written by Core 1.4.1) bounds the
  merged clock events when present.
"""

from headwater.server.domain.clocks.bounds import DEFAULT_MAX_STEPS, SEARCH_HORIZON_YEARS, SearchBounds
from headwater.server.domain.clocks.clock_types import (
    Clock,
    CronClock,
    DatesClock,
    IntervalClock,
    RRuleClock,
)
from headwater.server.domain.clocks.errors import ScheduleError
from headwater.server.domain.clocks.parsing import cached_schedule, next_events, parse_schedule
from headwater.server.domain.clocks.rules import _ADJUSTMENTS as _ADJUSTMENTS  # registries, for tests
from headwater.server.domain.clocks.rules import _FILTERS as _FILTERS
from headwater.server.domain.clocks.schedule import DEFAULT_MAX_CHECKS, ClockEvent, Schedule, SearchResult
from headwater.server.domain.clocks.validation import schedule_problem

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
    "DEFAULT_MAX_STEPS",
    "SEARCH_HORIZON_YEARS",
    "SearchBounds",
    "SearchResult",
    "schedule_problem",
    "parse_schedule",
    "cached_schedule",
    "next_events",
]
