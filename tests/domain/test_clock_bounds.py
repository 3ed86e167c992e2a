"""Every clock kind, filter and adjustment searches within SearchBounds: pathological
schedules return (empty) quickly, and validation says which clock never fires and why."""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta, timezone

import pytest
from dateutil import rrule

from headwater.server.domain.clocks import (
    SearchBounds,
    next_events,
    parse_schedule,
    schedule_problem,
)
from headwater.server.domain.clocks.recurrence import rebased

pytestmark = pytest.mark.pure  # no database

UTC = timezone.utc
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
FAST = 2.0  # seconds; generous for a loaded machine (each case takes well under 0.5 s alone)


def rrule_clock(text: str, **extra) -> dict:
    return {"type": "RRuleClock", "rrule_obj": {"type": "rrule", "rr": text, **extra}}


def every_minute() -> dict:
    return {"type": "IntervalClock", "interval": 60_000_000}


def fn(name: str, **kwargs) -> dict:
    kind = "adjustments" if name in ("add", "next_weekday") else "filters"
    return {"fn": f"prefect.schedules.{kind}.{name}", "kwargs": kwargs}


PATHOLOGICAL = {
    "rrule-impossible-secondly": {"clocks": [rrule_clock("FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30")]},
    "rrule-impossible-minutely": {"clocks": [rrule_clock("FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30")]},
    "rrule-impossible-yearly-setpos": {"clocks": [rrule_clock(
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30;BYSETPOS=" + ",".join(str(i) for i in range(1, 367)))]},
    "rrule-never-matching-setpos": {"clocks": [rrule_clock("FREQ=SECONDLY;BYSETPOS=2")]},
    "rrule-huge-count-from-2018": {"clocks": [rrule_clock("FREQ=SECONDLY;COUNT=1000000000")]},
    "rrule-every-second-of-the-year": {"clocks": [rrule_clock(
        "FREQ=YEARLY;BYMONTH=1,2,3,4,5,6,7,8,9,10,11,12;BYHOUR=" + ",".join(map(str, range(24)))
        + ";BYMINUTE=" + ",".join(map(str, range(60))) + ";BYSECOND=" + ",".join(map(str, range(60))))]},
    "rrule-weekly-step-off-its-day": {"clocks": [rrule_clock(
        "FREQ=DAILY;INTERVAL=7;BYDAY=TU", _dtstart="2018-06-18T00:00:00")]},
    "rruleset-excluding-itself": {"clocks": [{"type": "RRuleClock", "rrule_obj": {
        "type": "rruleset", "_rrule": [{"type": "rrule", "rr": "FREQ=SECONDLY"}],
        "_exrule": [{"type": "rrule", "rr": "FREQ=SECONDLY"}]}}]},
    # The exclusion rule runs out of budget first: what it could not check is not an event.
    "rruleset-excluding-itself-every-3s": {"clocks": [{"type": "RRuleClock", "rrule_obj": {
        "type": "rruleset", "_rrule": [{"type": "rrule", "rr": "FREQ=SECONDLY;INTERVAL=3"}],
        "_exrule": [{"type": "rrule", "rr": "FREQ=SECONDLY;INTERVAL=3"}]}}]},
    "rrule-secondly-in-one-hour-of-february-30": {"clocks": [rrule_clock("FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30;BYHOUR=1")]},
    "cron-february-30": {"clocks": [{"type": "CronClock", "cron": "0 0 30 2 *"}]},
    "cron-february-30-seconds": {"clocks": [{"type": "CronClock", "cron": "* * 30 2 * *"}]},
    "cron-special-syntax": {"clocks": [{"type": "CronClock", "cron": "0 0 30W 2 *"}]},
    "filters-weekday-and-weekend": {"clocks": [every_minute()], "filters": [fn("is_weekday"), fn("is_weekend")]},
    "filters-on-every-minute-cron": {"clocks": [{"type": "CronClock", "cron": "* * * * *"}],
                                     "filters": [fn("is_weekday"), fn("is_weekend")]},
    "many-filters": {"clocks": [every_minute()], "filters": [fn("is_weekday")] * 500 + [fn("is_weekend")]},
    "adjustment-past-year-9999": {"clocks": [every_minute()],
                                  "adjustments": [fn("add", interval="//timedelta:86000000000000")]},
    "dates-far-in-the-past": {"clocks": [{"type": "DatesClock", "dates": [
        {"dt": f"{1000 + i}-01-01T00:00:00", "tz": "UTC"} for i in range(500)]}]},
    "many-impossible-clocks": {"clocks": [rrule_clock("FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30")] * 20},
}


@pytest.mark.parametrize("case", PATHOLOGICAL)
def test_pathological_schedules_return_quickly(case):
    schedule = parse_schedule(PATHOLOGICAL[case])  # parsing must not search either
    started = time.perf_counter()
    events = next_events(schedule, after=NOW, n=10)
    elapsed = time.perf_counter() - started
    assert elapsed < FAST, f"{case} took {elapsed:.2f}s"
    assert events == [] or case == "cron-special-syntax"  # 30W in February: the 28th/29th


@pytest.mark.parametrize("case", PATHOLOGICAL)
def test_validating_pathological_schedules_returns_quickly(case):
    schedule = parse_schedule(PATHOLOGICAL[case])
    started = time.perf_counter()
    schedule_problem(schedule, NOW)
    elapsed = time.perf_counter() - started
    assert elapsed < FAST, f"{case} took {elapsed:.2f}s"


def test_validation_names_the_clock_and_the_reason():
    impossible = {"clocks": [every_minute(), rrule_clock("FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30")]}
    assert schedule_problem(parse_schedule(impossible), NOW) == (
        "The schedule's rrule clock (clocks[1]) produces no event in the next 50 years."
    )
    cron = {"clocks": [{"type": "CronClock", "cron": "0 0 30 2 *"}]}
    assert schedule_problem(parse_schedule(cron), NOW) == (
        "The schedule's cron clock (clocks[0]) produces no event in the next 50 years."
    )
    budget = {"clocks": [rrule_clock("FREQ=SECONDLY;BYSETPOS=2")]}
    assert "rrule clock (clocks[0]) produces no event within the search limit of 50,000 steps" in (
        schedule_problem(parse_schedule(budget), NOW)
    )
    filtered = PATHOLOGICAL["filters-weekday-and-weekend"]
    assert schedule_problem(parse_schedule(filtered), NOW) == (
        "The schedule's filters and adjustments leave no event of its clocks among its first 10,000 clock events."
    )


@pytest.mark.parametrize("schedule", [
    {"clocks": [{"type": "DatesClock", "dates": [{"dt": "1990-01-01T00:00:00", "tz": "UTC"}]}]},
    {"clocks": [{**every_minute(), "end_date": {"dt": "2020-01-01T00:00:00", "tz": "UTC"}}]},
    {"clocks": [rrule_clock("FREQ=DAILY;COUNT=3")]},
    {"clocks": [rrule_clock("FREQ=DAILY", _until="2019-01-01T00:00:00+00:00")]},
    # Ended, and impossible as well: the end date decides without searching.
    {"clocks": [{"type": "CronClock", "cron": "0 0 30 2 *", "end_date": {"dt": "2020-01-01T00:00:00", "tz": "UTC"}}]},
], ids=["dates", "interval-end-date", "rrule-count", "rrule-until", "cron-ended"])
def test_clocks_that_have_ended_are_accepted(schedule):
    parsed = parse_schedule(schedule)
    assert next_events(parsed, after=NOW, n=10) == []
    assert schedule_problem(parsed, NOW) is None


@pytest.mark.parametrize("schedule", [
    {"clocks": [every_minute()]},
    {"clocks": [{"type": "CronClock", "cron": "0 0 29 2 *"}]},  # every four years
    {"clocks": [{"type": "CronClock", "cron": "0 0 29 2 1", "day_or": False}]},  # a Monday Feb 29: 2044
    {"clocks": [rrule_clock("FREQ=SECONDLY")]},  # from the 2018 default DTSTART
    {"clocks": [every_minute()], "filters": [fn("is_weekend")]},
], ids=["interval", "leap-day-cron", "rare-cron", "secondly-rrule", "weekend-filter"])
def test_schedules_that_fire_pass_validation(schedule):
    assert schedule_problem(parse_schedule(schedule), NOW) is None


def test_the_horizon_moves_with_the_events_found():
    """Like croniter's max_years_between_matches: 15 leap days span 60 years."""
    events = next_events({"clocks": [{"type": "CronClock", "cron": "0 0 29 2 *"}]}, after=NOW, n=15)
    assert len(events) == 15 and events[-1].start_time.year == 2084


def test_a_spent_budget_stops_the_search():
    bounds = SearchBounds.from_time(NOW, max_steps=100)
    events = next_events({"clocks": [every_minute()]}, after=NOW, n=1000, bounds=bounds)
    assert len(events) == 100 and bounds.steps_exhausted


def test_a_frequent_rrule_from_an_old_dtstart_is_cheap():
    """dateutil's xafter walks every minute since 2018; the rebased rule does not."""
    schedule = {"clocks": [rrule_clock("FREQ=MINUTELY;INTERVAL=7", _dtstart="2018-06-20T00:00:00-04:00")]}
    started = time.perf_counter()
    events = next_events(schedule, after=NOW, n=5)
    assert time.perf_counter() - started < 0.5
    start, step = datetime(2018, 6, 20, 4, tzinfo=UTC), timedelta(minutes=7)
    first = start + step * ((NOW - start) // step + 1)
    assert [e.start_time for e in events] == [first + step * k for k in range(5)]


RULE_PARTS = [
    "FREQ=HOURLY;INTERVAL=5", "FREQ=MINUTELY;INTERVAL=97;BYHOUR=1,7,13", "FREQ=DAILY;BYDAY=MO,FR;BYHOUR=9,17",
    "FREQ=WEEKLY;INTERVAL=3;BYDAY=TU,SU", "FREQ=DAILY;INTERVAL=10;BYMONTHDAY=1,2,3,4,5,6,7,8,9,10",
    "FREQ=HOURLY;BYMONTH=3,11;BYSETPOS=1,-1", "FREQ=WEEKLY;BYDAY=MO,TU,WE;BYSETPOS=2", "FREQ=SECONDLY;INTERVAL=7919",
    "FREQ=MINUTELY;INTERVAL=45;BYMONTH=3;BYDAY=SU",
]


@pytest.mark.parametrize("text", RULE_PARTS)
@pytest.mark.parametrize("zone", [None, "America/New_York", "Australia/Lord_Howe"])
def test_rebased_rules_give_dateutils_occurrences(text, zone):
    """Starting a COUNT-free fixed-period rule near the search origin changes nothing,
    across DST changes too (New York's hour, Lord Howe's half hour)."""
    from dateutil import tz

    zoneinfo = tz.gettz(zone) if zone else None
    randomizer = random.Random(text + str(zone))
    rule = rrule.rrulestr(text, dtstart=datetime(2019, 2, 3, 4, 5, 6, tzinfo=zoneinfo))
    for _ in range(5):
        origin = datetime(2021, 3, 1, tzinfo=UTC) + timedelta(seconds=randomizer.randrange(300 * 86400))
        local = origin.astimezone(zoneinfo) if zoneinfo else origin.replace(tzinfo=None)
        expected = []
        for moment in rule.xafter(local):
            expected.append(moment)
            if len(expected) == 30:
                break
        got = []
        for moment in rebased(rule, origin).xafter(local):
            got.append(moment)
            if len(got) == 30:
                break
        assert got == expected, origin
