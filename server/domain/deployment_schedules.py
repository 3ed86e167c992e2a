"""The schedules users write for a deployment, read into the scheduler's own clocks.

A deployment's `schedule` is a list of objects, each of one kind:

    {"interval": 3600, "anchor_date": "2030-01-01T09:00:00", "timezone": "Europe/Berlin"}
    {"cron": "0 9 * * 1-5", "timezone": "America/New_York", "day_or": true}
    {"rrule": "DTSTART:20300101T090000\\nRRULE:FREQ=WEEKLY;BYDAY=MO", "timezone": "Europe/Berlin"}

They are turned into the clock types of headwater.server.domain.clocks (IntervalClock, CronClock,
RRuleClock), so deployments get exactly the DST rules and search bounds flow schedules have:
an interval of a day or more keeps its wall-clock time, cron matches the zone's wall clock, and
an rrule's times are wall times in its zone. A naive `anchor_date` or DTSTART is read in the
schedule's `timezone` (UTC when none is given).

Errors name the schedule's index and field ("schedule[1].cron: invalid cron ..."), because the
same message reaches a user who wrote a YAML file with several schedules.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from functools import lru_cache
from typing import Any

from dateutil import rrule as dateutil_rrule

from headwater.server.domain.clocks import (
    CronClock,
    IntervalClock,
    RRuleClock,
    Schedule,
    ScheduleError,
    schedule_problem,
)
from headwater.server.domain.clocks.times import UTC, _wall_to_utc, _zone, _Zoned
from headwater.server.domain.errors import InvalidInput

KINDS = ("interval", "cron", "rrule")
_ALLOWED = {
    "interval": {"interval", "anchor_date", "timezone"},
    "cron": {"cron", "timezone", "day_or"},
    "rrule": {"rrule", "timezone"},
}
# When an interval has no anchor, it counts from this wall time in its zone (Core's default start).
DEFAULT_ANCHOR = dt.datetime(2019, 1, 1)
# A cron clock matches from here on; it only carries the zone, so any past time does.
_CRON_START = dt.datetime(2000, 1, 1)
# An rrule without DTSTART would start "now" (dateutil's default), which moves its times on every
# evaluation; this fixed start keeps them stable.
DEFAULT_RRULE_START = dt.datetime(2019, 1, 1)
# Core's minimum interval for flow schedules, kept for deployments.
MIN_INTERVAL_SECONDS = 60
# The most schedules one deployment may have.
MAX_SCHEDULES = 100


def as_schedule_list(value: Any) -> list[Any]:
    """`schedule` as given: None means none, one object means a list of one."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return value
    raise InvalidInput(f"schedule: expected a schedule object or a list of them, got {value!r}")


def _timezone(entry: dict[str, Any], where: str):
    name = entry.get("timezone")
    if name is None:
        return UTC
    if not isinstance(name, str) or not name:
        raise ScheduleError(f"{where}.timezone: expected a time zone name, got {name!r}")
    try:
        return _zone(name)
    except ScheduleError:
        raise ScheduleError(f"{where}.timezone: unknown time zone {name!r}") from None


def _local(moment: dt.datetime, tz) -> _Zoned:
    """A wall time in `tz` (or an aware time, kept as its instant) with the zone it is read in."""
    if moment.tzinfo is not None:
        return _Zoned(moment.astimezone(UTC), tz)
    return _Zoned(_wall_to_utc(moment, tz), tz)


def _interval_clock(entry: dict[str, Any], where: str) -> IntervalClock:
    tz = _timezone(entry, where)
    seconds = entry["interval"]
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise ScheduleError(f"{where}.interval: expected a number of seconds, got {seconds!r}")
    if seconds < MIN_INTERVAL_SECONDS:
        raise ScheduleError(f"{where}.interval: must be at least {MIN_INTERVAL_SECONDS} seconds, got {seconds!r}")
    try:
        interval = dt.timedelta(seconds=seconds)
    except OverflowError:
        raise ScheduleError(f"{where}.interval: {seconds!r} seconds is out of range") from None
    anchor = entry.get("anchor_date")
    if anchor is None:
        start = _local(DEFAULT_ANCHOR, tz)
    else:
        if not isinstance(anchor, str):
            raise ScheduleError(f"{where}.anchor_date: expected an ISO-8601 date and time, got {anchor!r}")
        try:
            start = _local(dt.datetime.fromisoformat(anchor), tz)
        except ValueError:
            raise ScheduleError(f"{where}.anchor_date: invalid ISO-8601 date and time {anchor!r}") from None
    return IntervalClock(interval=interval, start=start)


def _cron_clock(entry: dict[str, Any], where: str) -> CronClock:
    tz = _timezone(entry, where)
    day_or = entry.get("day_or", True)
    if not isinstance(day_or, bool):
        raise ScheduleError(f"{where}.day_or: expected true or false, got {day_or!r}")
    cron = entry["cron"]
    if not isinstance(cron, str):
        raise ScheduleError(f"{where}.cron: expected a cron string, got {cron!r}")
    if len(cron.split()) != 5:
        raise ScheduleError(f"{where}.cron: invalid cron {cron!r}: expected 5 fields (minute hour day month weekday)")
    try:
        return CronClock(cron=cron, day_or=day_or, start=_local(_CRON_START, tz))
    except (ValueError, TypeError) as error:
        raise ScheduleError(f"{where}.cron: invalid cron {cron!r}: {error}") from None


def _rrule_clock(entry: dict[str, Any], where: str) -> RRuleClock:
    tz = _timezone(entry, where)
    text = entry["rrule"]
    if not isinstance(text, str) or not text.strip():
        raise ScheduleError(f"{where}.rrule: expected an RFC 5545 rrule string, got {text!r}")
    try:
        rule = dateutil_rrule.rrulestr(text, dtstart=DEFAULT_RRULE_START)
        if not isinstance(rule, dateutil_rrule.rrule):
            raise ValueError("expected a single RRULE (with an optional DTSTART)")
        start = rule._dtstart
        # Wall times in the schedule's zone (dateutil keeps the wall clock of an aware DTSTART);
        # a DTSTART with its own TZID keeps that zone unless `timezone` is given.
        if start.tzinfo is None:
            start = start.replace(tzinfo=tz)
        elif "timezone" in entry:
            start = start.astimezone(tz)
        until = rule._until
        if until is not None and until.tzinfo is None:
            until = until.replace(tzinfo=start.tzinfo)
        rule = rule.replace(dtstart=start, until=until)
    except (ValueError, TypeError, OverflowError) as error:
        raise ScheduleError(f"{where}.rrule: invalid rrule {text!r}: {error}") from None
    return RRuleClock(rule=rule)


_BUILDERS = {"interval": _interval_clock, "cron": _cron_clock, "rrule": _rrule_clock}


def _clock(entry: Any, where: str):
    if not isinstance(entry, dict):
        raise ScheduleError(f"{where}: expected an object with one of {', '.join(KINDS)}, got {entry!r}")
    kinds = [kind for kind in KINDS if kind in entry]
    if not kinds:
        raise ScheduleError(f"{where}: expected one of the keys {', '.join(KINDS)}, got {sorted(entry)}")
    if len(kinds) > 1:
        raise ScheduleError(f"{where}: has both {kinds[0]!r} and {kinds[1]!r}; write one schedule per kind")
    unknown = sorted(set(entry) - _ALLOWED[kinds[0]])
    if unknown:
        raise ScheduleError(
            f"{where}.{unknown[0]}: unknown field for a {kinds[0]} schedule "
            f"(allowed: {', '.join(sorted(_ALLOWED[kinds[0]]))})"
        )
    return _BUILDERS[kinds[0]](entry, where)


def build_schedule(schedules: list[Any]) -> Schedule:
    """The scheduler's Schedule for a list of deployment schedules; raises ScheduleError."""
    if len(schedules) > MAX_SCHEDULES:
        raise ScheduleError(f"schedule: {len(schedules)} schedules; the limit is {MAX_SCHEDULES}")
    return Schedule(clocks=tuple(_clock(entry, f"schedule[{i}]") for i, entry in enumerate(schedules)))


@lru_cache(maxsize=4096)
def _cached(key: str) -> Schedule | ScheduleError:
    try:
        return build_schedule(json.loads(key))
    except ScheduleError as error:
        return error


def cached_schedule(schedules: list[Any]) -> Schedule:
    """build_schedule, memoised by the list's JSON (the scheduler reads the same lists every pass)."""
    parsed = _cached(json.dumps(schedules, sort_keys=True, separators=(",", ":"), default=str))
    if isinstance(parsed, ScheduleError):
        raise ScheduleError(str(parsed))
    return parsed


def schedule_error(schedules: list[Any], now: dt.datetime) -> str | None:
    """Why these schedules are refused (unreadable, or one never fires), or None.

    Pure CPU work, bounded by the clocks' SearchBounds; callers run it in a worker thread."""
    try:
        parsed = build_schedule(schedules)
    except ScheduleError as error:
        return str(error)
    for index, clock in enumerate(parsed.clocks):
        problem = schedule_problem(Schedule(clocks=(clock,)), now)
        if problem is not None:
            kind = next(kind for kind in KINDS if kind in schedules[index])
            return f"schedule[{index}].{kind}: " + problem.replace(" (clocks[0])", "")
    return None
