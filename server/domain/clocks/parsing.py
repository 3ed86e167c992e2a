"""Reading the serialized schedule (validated once into a :class:`Schedule`, memoised by
its canonical JSON) and :func:`next_events`, the entry point taking either form.

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
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Union

from dateutil import rrule as dateutil_rrule

from headwater.server.domain.clocks.bounds import SearchBounds
from headwater.server.domain.clocks.clock_types import (
    DEFAULT_INTERVAL_START,
    Clock,
    CronClock,
    DatesClock,
    IntervalClock,
    RRuleClock,
)
from headwater.server.domain.clocks.errors import ScheduleError
from headwater.server.domain.clocks.rules import _ADJUSTMENTS, _FILTERS, _parse_functions
from headwater.server.domain.clocks.schedule import DEFAULT_MAX_CHECKS, ClockEvent, Schedule
from headwater.server.domain.clocks.times import UTC, _parse_instant, _parse_iso, _parse_zoned, _Zoned

# RRuleSchema's default `_dtstart`.
DEFAULT_RRULE_DTSTART = datetime(2018, 6, 20, tzinfo=UTC)
# Core's IntervalClockSchema rejects shorter intervals ("when deploying to Prefect Cloud").
_MIN_INTERVAL = timedelta(minutes=1)


# ---------------------------------------------------------------------------------------
# Serialized values
# ---------------------------------------------------------------------------------------


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
    bounds: SearchBounds | None = None,
) -> list[ClockEvent]:
    """The next `n` events of a serialized (or parsed) schedule strictly after `after`
    (naive = UTC), searching within `bounds` (default: SearchBounds.from_time(after));
    raises ScheduleError for a schedule that cannot be evaluated."""
    parsed = schedule if isinstance(schedule, Schedule) else cached_schedule(schedule)
    return parsed.next_events(after=after, n=n, max_checks=max_checks, bounds=bounds)
