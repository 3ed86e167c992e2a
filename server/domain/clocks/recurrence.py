"""Bounded iteration of dateutil recurrence rules (rrule and rruleset).

dateutil's own iteration has two unbounded costs, both reachable from one registration:

* A rule that can never match (``FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30``) loops, one
  period at a time, until the year 9999 without yielding anything: about 20 s of CPU,
  with no chance for the caller to stop it, because nothing is yielded.
* ``xafter`` iterates from the rule's ``DTSTART``, so a valid minutely rule starting in
  2018 walks millions of occurrences before reaching today.

So the rule's period loop (dateutil's ``rrule._iter``, unchanged) runs with an
``_iterinfo`` that charges each period to a :class:`SearchBounds` and stops at its horizon
(and a ``divmod`` that charges the loop's search for the next allowed time of day),
and a rule without ``COUNT`` whose periods have a fixed length (weekly to secondly) starts
from the period just before the search origin instead of from ``DTSTART``; that is exact,
because such a rule's occurrences in a period depend only on the period. Rule sets are
merged here rather than by dateutil, so their exclusions are bounded too.
"""

from __future__ import annotations

import heapq
import types
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, tzinfo

from dateutil import rrule as dateutil_rrule

from headwater.server.domain.clocks.bounds import SearchBounds


class _OutOfBounds(Exception):
    """Raised inside dateutil's period loop to stop it (it never yields for impossible rules)."""


class _BoundedIterInfo(dateutil_rrule._iterinfo):
    """dateutil's per-iteration calendar state, charging every period to the bounds.

    Each pass of ``rrule._iter``'s loop asks for exactly one day set, so these methods see
    every period, yielding or not."""

    def __init__(self, rule: dateutil_rrule.rrule, bounds: SearchBounds) -> None:
        super().__init__(rule)
        self.bounds = bounds
        self.positions = len(rule._bysetpos or ())
        # Daily and coarser rules combine every day of a period with the whole time set
        # (BYHOUR x BYMINUTE x BYSECOND), yielding or not (times before DTSTART).
        self.times = len(rule._timeset or ()) if rule._freq < dateutil_rrule.HOURLY else 1

    def _charged(self, year: int, dayset: tuple) -> tuple:
        """Charge one period before dateutil works through it: its days (each is
        filtered) times its time set, and again per BYSETPOS position (each one scans the
        period's days); a step is about 32 days x times."""
        if year > self.bounds.horizon_year:
            self.bounds.horizon_reached = True
            raise _OutOfBounds
        _, start, end = dayset
        cost = (1 + (end - start) * self.times // 32) * (1 + self.positions)
        if not self.bounds.spend(cost):
            raise _OutOfBounds
        return dayset

    def ydayset(self, year, month, day):
        return self._charged(year, super().ydayset(year, month, day))

    def mdayset(self, year, month, day):
        return self._charged(year, super().mdayset(year, month, day))

    def wdayset(self, year, month, day):
        return self._charged(year, super().wdayset(year, month, day))

    def ddayset(self, year, month, day):
        return self._charged(year, super().ddayset(year, month, day))


_RRULE_ITER = dateutil_rrule.rrule._iter
_NEEDED_NAMES = {"_iterinfo", "divmod"}
if not _NEEDED_NAMES <= set(_RRULE_ITER.__code__.co_names) or _RRULE_ITER.__code__.co_freevars:
    # Fail at import, in the tests, rather than evaluate rules unbounded after an upgrade.
    raise ImportError("this dateutil version's rrule._iter cannot be bounded")
_RRULE_GLOBALS = dict(_RRULE_ITER.__globals__)
# Inner-loop iterations per search step: an iteration costs a fraction of a period.
_ITERATIONS_PER_STEP = 16


def _bounded_period_loop(rule: dateutil_rrule.rrule, bounds: SearchBounds) -> Iterator[datetime]:
    """dateutil's own `rrule._iter`, run with the bounded `_iterinfo` (a fresh namespace per
    call, so concurrent evaluations in different threads never share bounds).

    Between two periods, a minutely or secondly rule with BYHOUR/BYMINUTE looks for its
    next allowed time one interval at a time (up to 86,400 tries per period); each try
    calls `divmod`, so a counting `divmod` charges those tries too."""
    namespace = dict(_RRULE_GLOBALS)
    namespace["_iterinfo"] = lambda owner: _BoundedIterInfo(owner, bounds)
    calls = 0

    def counted_divmod(a, b):
        nonlocal calls
        calls += 1
        if calls % _ITERATIONS_PER_STEP == 0 and not bounds.spend():
            raise _OutOfBounds
        return divmod(a, b)

    namespace["divmod"] = counted_divmod
    loop = types.FunctionType(_RRULE_ITER.__code__, namespace, "_iter", _RRULE_ITER.__defaults__)
    return loop(rule)


def bounded_occurrences(rule: dateutil_rrule.rrule, bounds: SearchBounds) -> Iterator[datetime]:
    """The rule's occurrences in order, stopping (quietly) at the bounds. Each occurrence
    costs a step too: one period can hold thousands (BYHOUR x BYMINUTE x BYSECOND)."""
    try:
        for moment in _bounded_period_loop(rule, bounds):
            if not bounds.spend():
                return
            yield moment
    except _OutOfBounds:
        return
    except ValueError:  # dateutil's mid-iteration "empty rule" detection
        return


# Period lengths of the frequencies whose periods do not depend on the calendar.
_FIXED_PERIODS = {
    dateutil_rrule.WEEKLY: timedelta(weeks=1),
    dateutil_rrule.DAILY: timedelta(days=1),
    dateutil_rrule.HOURLY: timedelta(hours=1),
    dateutil_rrule.MINUTELY: timedelta(minutes=1),
    dateutil_rrule.SECONDLY: timedelta(seconds=1),
}
_OFFSET_WINDOW = (timedelta(days=-3), timedelta(days=-2), timedelta(days=-1), timedelta(0))


def _offset_swing(tz: tzinfo | None, around: datetime) -> timedelta:
    """How much the zone's UTC offset varies in the days before `around`: the most a wall
    time before the rebased start can still lie after `around`."""
    if tz is None:
        return timedelta(0)
    offsets = [(around + shift).astimezone(tz).utcoffset() or timedelta(0) for shift in _OFFSET_WINDOW]
    return max(offsets) - min(offsets)


def rebased(rule: dateutil_rrule.rrule, origin: datetime) -> dateutil_rrule.rrule:
    """An equivalent rule for occurrences after `origin` (UTC) that starts a few periods
    before it, when that is exact: no COUNT (it counts from DTSTART) and fixed-length
    periods. Adding whole periods keeps DTSTART's defaults (weekday, hour, minute, second)
    and the period alignment; occurrences dropped from the new first period all lie
    before `origin`."""
    period = _FIXED_PERIODS.get(rule._freq)
    if period is None or rule._count is not None:
        return rule
    start = rule._dtstart
    period *= rule._interval
    tz = start.tzinfo
    local_origin = origin.astimezone(tz) if tz is not None else origin.replace(tzinfo=None)
    slack = 2 * period + _offset_swing(tz, origin)
    try:
        periods = (local_origin.replace(tzinfo=None) - slack - start.replace(tzinfo=None)) // period
        if periods <= 0:
            return rule
        return rule.replace(dtstart=start + periods * period)
    except (OverflowError, ValueError):
        return rule


def _merged(streams: Iterable[Iterator[datetime]]) -> Iterator[datetime]:
    return heapq.merge(*streams)


def set_occurrences(
    rule_set: dateutil_rrule.rruleset, origin: datetime, bounds: SearchBounds
) -> Iterator[datetime]:
    """A rule set's occurrences (rules and dates, minus exclusion rules and dates) in order,
    without repeats, each rule bounded and rebased towards `origin` like a single rule."""
    includes = [bounded_occurrences(rebased(rule, origin), bounds) for rule in rule_set._rrule]
    includes.append(iter(sorted(rule_set._rdate)))
    exclusion_rules = [bounded_occurrences(rebased(rule, origin), bounds) for rule in rule_set._exrule]
    exclusion_heads: list[datetime | None] = [next(stream, None) for stream in exclusion_rules]
    excluded_dates = set(rule_set._exdate)
    last: datetime | None = None
    for moment in _merged(includes):
        if moment == last:
            continue
        last = moment
        if moment in excluded_dates:
            continue
        excluded = False
        for index, stream in enumerate(exclusion_rules):
            head = exclusion_heads[index]
            while head is not None and head < moment:
                head = next(stream, None)
            exclusion_heads[index] = head
            excluded = excluded or head == moment
        if bounds.steps_exhausted:  # an exclusion rule was cut short: `moment` is unchecked
            return
        if not excluded:
            yield moment
