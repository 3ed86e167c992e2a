"""Whether a schedule can ever fire: checked when a schedule is registered or set, so one
that cannot produce an event within the search bounds is refused with a reason instead of
being evaluated (and found empty) on every scheduler pass.

A schedule whose clocks have all simply ended (an end date, the last of its dates, an
rrule's UNTIL or COUNT, all in the past) is accepted, as Prefect Server accepted it: it
produces no runs, which is what its author wrote.
"""

from __future__ import annotations

from datetime import datetime

from headwater.server.domain.clocks.bounds import DEFAULT_MAX_STEPS, SEARCH_HORIZON_YEARS, SearchBounds
from headwater.server.domain.clocks.clock_types import Clock, CronClock, DatesClock, IntervalClock, RRuleClock
from headwater.server.domain.clocks.schedule import DEFAULT_MAX_CHECKS, Schedule
from headwater.server.domain.clocks.times import _as_utc

_KINDS = {IntervalClock: "interval", CronClock: "cron", DatesClock: "dates", RRuleClock: "rrule"}


def _clock_name(clock: Clock, index: int) -> str:
    return f"{_KINDS.get(type(clock), 'unknown')} clock (clocks[{index}])"


def _why(stopped: str) -> str:
    if stopped == "horizon":
        return f"in the next {SEARCH_HORIZON_YEARS} years"
    if stopped == "checks":
        return f"among its first {DEFAULT_MAX_CHECKS:,} clock events"
    return f"within the search limit of {DEFAULT_MAX_STEPS:,} steps"


def schedule_problem(schedule: Schedule, now: datetime) -> str | None:
    """Why `schedule` can produce no event after `now`, or None when it can (or has ended).

    Each clock is searched on its own first, so the message names the clock that never
    fires; then the whole schedule, whose filters may reject every event of its clocks.
    All these searches share one step budget, so validating costs no more than one
    evaluation's limit."""
    now = _as_utc(now)
    bounds = SearchBounds.from_time(now)
    running = 0
    for index, clock in enumerate(schedule.clocks):
        if clock.ended_by(now):
            continue
        bounds.restart(now)
        result = Schedule(clocks=(clock,)).search(after=now, n=1, bounds=bounds)
        if result.events:
            running += 1
        elif result.stopped != "ended":
            return f"The schedule's {_clock_name(clock, index)} produces no event {_why(result.stopped)}."
    if not running:
        return None  # every clock has ended
    if not (schedule.filters or schedule.or_filters or schedule.not_filters or schedule.adjustments):
        return None
    bounds.restart(now)
    result = schedule.search(after=now, n=1, bounds=bounds)
    if result.events or result.stopped == "ended":
        return None
    return f"The schedule's filters and adjustments leave no event of its clocks {_why(result.stopped)}."
