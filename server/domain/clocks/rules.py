"""Core's schedule filters and adjustments: the registries of supported function names
(serialized as ``{"fn": qualified name, "kwargs": {...}}``) and their decoders.

Each builder validates its kwargs once and returns a plain callable on the event's
local, tz-aware time, so evaluating a schedule never re-reads the serialized form.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime, time, timedelta
from typing import Any

from headwater.server.domain.clocks.errors import ScheduleError
from headwater.server.domain.clocks.times import _DAY, UTC, _as_utc, _parse_iso, _wall_to_utc

Predicate = Callable[[datetime], bool]  # receives the event's local, tz-aware time
Adjustment = Callable[[datetime], datetime]

_FILTER_PREFIX = "prefect.schedules.filters."
_ADJUSTMENT_PREFIX = "prefect.schedules.adjustments."



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
