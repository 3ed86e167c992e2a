"""headwater.server.domain.clocks against Prefect Core 1.4.1 as the oracle.

Each oracle test builds a Core schedule, serializes it with ScheduleSchema (what the server
stores), loads it back with Core (what Prefect Server evaluated) and compares
`Schedule.next(..., return_events=True)` with our `next_events` on the serialized dict.

Core 1.4.1 was written for pendulum 2. Under pendulum 3 its CronClock fails (it asserts on
the removed `pendulum.tz._Timezone`) and `pendulum.instance` resolves croniter's pytz times
with fold=0 instead of pendulum 2's "post transition" rule, contradicting Core's own DST
tests. `_core_as_with_pendulum_2` restores both for the oracle only; with pendulum 2
installed it does nothing (this file also passes under real pendulum 2).

Where Core is buggy (see the module docstring of headwater.server.domain.clocks) the oracle is not
used; explicit expected values document our behaviour instead.
"""

from __future__ import annotations

import json
import random
import time as time_module
import types
from datetime import datetime, time, timedelta, timezone

import pendulum
import pytest
from croniter import croniter
from dateutil import rrule
from prefect.schedules import Schedule as CoreSchedule
from prefect.schedules import adjustments, filters
from prefect.schedules import clocks as core_clocks
from prefect.serialization.schedule import ScheduleSchema

from headwater.server.domain import clocks
from headwater.server.domain.clocks import ClockEvent, ScheduleError, next_events, parse_schedule

pytestmark = pytest.mark.pure  # no database

UTC = timezone.utc
NY = "America/New_York"
BERLIN = "Europe/Berlin"


# ---------------------------------------------------------------------------------------
# Oracle plumbing
# ---------------------------------------------------------------------------------------


class _PendulumAsVersion2(types.ModuleType):
    """pendulum, except `instance` resolves pytz datetimes like pendulum 2 did."""

    def __init__(self) -> None:
        super().__init__("pendulum")

    def __getattr__(self, name):
        return getattr(pendulum, name)

    @staticmethod
    def instance(dt, tz=pendulum.UTC):
        zone = getattr(dt.tzinfo, "zone", None)  # a pytz zone, as croniter returns them
        if zone is not None and not isinstance(dt, pendulum.DateTime):
            fields = (dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.microsecond)
            return pendulum.datetime(*fields, tz=zone)  # pendulum 3 defaults to fold=1
        return pendulum.instance(dt, tz)


@pytest.fixture(autouse=True, scope="module")
def _core_as_with_pendulum_2():
    if pendulum.__version__.startswith("2."):
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pendulum.tz, "_Timezone", pendulum.tz.Timezone, raising=False)
        patch.setattr(core_clocks, "pendulum", _PendulumAsVersion2())
        yield


def serialize(schedule: CoreSchedule) -> dict:
    return json.loads(json.dumps(ScheduleSchema().dump(schedule)))  # as stored: plain JSON


def plain_utc(moment: datetime) -> datetime:
    moment = pendulum.instance(moment).in_tz("UTC")
    fields = (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    return datetime(*fields, moment.microsecond, tzinfo=UTC)


def core_next(serialized: dict, after: datetime, n: int) -> list[tuple]:
    loaded = ScheduleSchema().load(serialized)
    events = loaded.next(n, after=pendulum.instance(after), return_events=True)
    return [(plain_utc(e.start_time), e.parameter_defaults, e.labels) for e in events]


def our_next(serialized: dict, after: datetime, n: int, **kwargs) -> list[tuple]:
    events = next_events(serialized, after=plain_utc(after), n=n, **kwargs)
    return [(e.start_time, e.parameter_defaults, e.labels) for e in events]


def assert_matches_core(schedule: CoreSchedule, after: datetime, n: int) -> list[tuple]:
    serialized = serialize(schedule)
    ours = our_next(serialized, after, n)
    assert ours == core_next(serialized, after, n)
    return ours


def ignoring_tie_order(events: list[tuple], n: int) -> list[tuple]:
    """Core cannot order same-time events with different payloads (heapq.merge compares
    ClockEvents by time only); compare such ties as sets and drop a possibly cut last tie."""
    if len(events) == n and events:
        last = events[-1][0]
        events = [event for event in events if event[0] != last]
    return sorted(events, key=lambda e: (e[0], json.dumps(e[1], sort_keys=True), repr(e[2])))


def utc(*fields) -> datetime:
    return datetime(*fields, tzinfo=UTC)


def times(events) -> list[str]:
    return [e.start_time.strftime("%m-%d %H:%M") for e in events]


def single_clock(clock: dict, **schedule) -> dict:
    return {"type": "Schedule", "clocks": [clock], **schedule}


# ---------------------------------------------------------------------------------------
# IntervalClock
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "interval", [timedelta(minutes=1), timedelta(minutes=90), timedelta(minutes=37, seconds=13),
                 timedelta(days=1), timedelta(days=7), timedelta(hours=36)],
)
@pytest.mark.parametrize(
    "start", [None, pendulum.datetime(2021, 6, 3, 4, 5, 6), pendulum.datetime(2021, 1, 1, 0, 0, 0, 1)]
)
@pytest.mark.parametrize(
    "after", [pendulum.datetime(2020, 1, 1), pendulum.datetime(2021, 6, 3, 4, 5, 6),
              pendulum.datetime(2022, 2, 2, 13, 17, 59, 999)]
)
def test_interval_clock_in_utc_matches_core(interval, start, after):
    clock = core_clocks.IntervalClock(interval, start_date=start)
    assert_matches_core(CoreSchedule(clocks=[clock]), after, 12)


TRANSITIONS_2020 = {NY: [(2020, 3, 8), (2020, 11, 1)], BERLIN: [(2020, 3, 29), (2020, 10, 25)]}


@pytest.mark.parametrize("tz", [NY, BERLIN])
@pytest.mark.parametrize("transition", [0, 1])
@pytest.mark.parametrize("interval", [timedelta(hours=1), timedelta(hours=5), timedelta(days=1),
                                      timedelta(days=2), timedelta(days=1, hours=1)])
@pytest.mark.parametrize("start_time, after_time", [((9,), (0, 30)), ((23, 30), (23, 50))])
def test_interval_clock_across_dst_matches_core(tz, transition, interval, start_time, after_time):
    """Start and `after` in the same DST season (see the skip test below), events spanning
    the change."""
    day = pendulum.datetime(*TRANSITIONS_2020[tz][transition], tz=tz)
    start = day.subtract(days=20).set(hour=start_time[0], minute=start_time[1:] and start_time[1] or 0)
    after = day.subtract(days=1).set(hour=after_time[0], minute=after_time[1])
    clock = core_clocks.IntervalClock(interval, start_date=start)
    assert_matches_core(CoreSchedule(clocks=[clock]), after, 40)


def test_interval_clock_end_date_matches_core():
    clock = core_clocks.IntervalClock(
        timedelta(hours=1),
        start_date=pendulum.datetime(2021, 1, 1, tz=NY),
        end_date=pendulum.datetime(2021, 1, 1, 5, tz=NY),
    )
    events = assert_matches_core(CoreSchedule(clocks=[clock]), pendulum.datetime(2020, 1, 1), 10)
    assert [e[0].hour for e in events] == [5, 6, 7, 8, 9, 10]


def test_daily_interval_keeps_local_time_across_dst():
    """Core's own expectation: a daily 09:00 New York clock stays at 09:00 local."""
    start = {"dt": "2018-03-08T09:00:00", "tz": NY}
    schedule = single_clock({"type": "IntervalClock", "interval": 86_400_000_000, "start_date": start})
    events = next_events(schedule, after=utc(2018, 3, 8, 14), n=4)
    assert [e.start_time.hour for e in events] == [14, 14, 13, 13]


def test_hourly_interval_keeps_elapsed_time_within_its_first_day():
    start = {"dt": "2018-11-03T23:00:00", "tz": NY}
    schedule = single_clock({"type": "IntervalClock", "interval": 3_600_000_000, "start_date": start})
    events = next_events(schedule, after=utc(2018, 11, 4, 3), n=4)
    assert [e.start_time.hour for e in events] == [4, 5, 6, 7]


def test_interval_never_skips_an_event_when_after_is_in_another_dst_season():
    """Core returns 07:00 here (it estimates from elapsed UTC time and overshoots 06:00)."""
    start = {"dt": "2020-07-01T00:00:00", "tz": NY}
    schedule = single_clock({"type": "IntervalClock", "interval": 3_600_000_000, "start_date": start})
    assert times(next_events(schedule, after=utc(2020, 12, 1, 5), n=2)) == ["12-01 06:00", "12-01 07:00"]


def test_interval_results_are_strictly_after_after():
    """Core returns `after` itself here (07-01 13:00 UTC is an event)."""
    start = {"dt": "2020-01-01T09:00:00", "tz": NY}
    schedule = single_clock({"type": "IntervalClock", "interval": 86_400_000_000, "start_date": start})
    assert times(next_events(schedule, after=utc(2020, 7, 1, 13), n=2)) == ["07-02 13:00", "07-03 13:00"]


def test_sub_hourly_interval_stays_ordered_through_a_spring_gap():
    """Past the first day Core adds to the wall clock; 02:00/02:30 fall in the gap and land
    on 03:00/03:30, which Core then emits again, out of order. We emit each time once."""
    start = {"dt": "2018-03-01T00:00:00", "tz": NY}
    schedule = single_clock({"type": "IntervalClock", "interval": 1_800_000_000, "start_date": start})
    events = next_events(schedule, after=utc(2018, 3, 11, 6), n=5)
    assert times(events) == ["03-11 06:30", "03-11 07:00", "03-11 07:30", "03-11 08:00", "03-11 08:30"]


# ---------------------------------------------------------------------------------------
# CronClock
# ---------------------------------------------------------------------------------------

CRONS = ["0 9 * * *", "*/15 * * * *", "0 0 1 * *", "0 12 * * 1-5", "30 4 1,15 * 5",
         "@hourly", "0 0 29 2 *", "5 4 * jan,jul sun", "0 0 L * *", "0 0 * * 1#2",
         "0 6 15W * *", "0 0 * * * 30", "*/7 3-5 */3 * *"]


@pytest.mark.parametrize("cron", CRONS)
@pytest.mark.parametrize("day_or", [None, False])
@pytest.mark.parametrize(
    "after", [pendulum.datetime(2020, 2, 28, 23, 59, 59, 500_000), pendulum.datetime(2021, 6, 1)]
)
def test_cron_clock_in_utc_matches_core(cron, day_or, after):
    clock = core_clocks.CronClock(cron, day_or=day_or)
    assert_matches_core(CoreSchedule(clocks=[clock]), after, 15)


@pytest.mark.parametrize(
    "start, end",
    [(pendulum.datetime(2021, 3, 4, 9), None),
     (pendulum.datetime(2021, 3, 4, 9, 0, 0, 1), None),  # Core rounds microseconds up
     (pendulum.datetime(2021, 3, 4, 8, 59, 59), pendulum.datetime(2021, 3, 9, 9)),
     (None, pendulum.datetime(2021, 3, 2, 9))],
)
def test_cron_clock_start_and_end_dates_match_core(start, end):
    clock = core_clocks.CronClock("0 9 * * *", start_date=start, end_date=end)
    assert_matches_core(CoreSchedule(clocks=[clock]), pendulum.datetime(2021, 3, 1, 12), 6)


DST_DAYS = {  # (spring forward, fall back)
    NY: [(2018, 3, 11), (2018, 11, 4), (2024, 3, 10), (2024, 11, 3)],
    BERLIN: [(2018, 3, 25), (2018, 10, 28), (2024, 3, 31), (2024, 10, 27)],
}
# At most two matches per repeated hour: with more, Core's de-duplication drops events or
# loops forever (see test_cron_repeated_hour_with_many_matches below).
DST_CRONS = ["0 9 * * *", "0 * * * *", "30 2 * * *", "0 2 * * *", "30 1 * * *",
             "15,45 * * * *", "0 1-3 * * *", "*/30 * * * *", "0 2 * * 0", "0 */2 * * *"]


@pytest.mark.parametrize("tz", [NY, BERLIN])
@pytest.mark.parametrize("day_index", range(4))
@pytest.mark.parametrize("cron", DST_CRONS)
def test_cron_clock_across_dst_matches_core(tz, day_index, cron):
    day = DST_DAYS[tz][day_index]
    clock = core_clocks.CronClock(cron, start_date=pendulum.datetime(2018, 1, 1, tz=tz))
    after = pendulum.datetime(*day, tz=tz).subtract(hours=2)
    assert_matches_core(CoreSchedule(clocks=[clock]), after, 30)


@pytest.mark.parametrize(
    "tz, before, after, utc_hours",
    [(NY, (2020, 3, 5), (2020, 3, 12), (14, 13)), (BERLIN, (2020, 3, 26), (2020, 4, 2), (8, 7)),
     (NY, (2020, 10, 29), (2020, 11, 5), (13, 14)), (BERLIN, (2020, 10, 22), (2020, 10, 29), (7, 8))],
)
def test_daily_nine_am_cron_follows_local_time(tz, before, after, utc_hours):
    schedule = single_clock({"type": "CronClock", "cron": "0 9 * * *",
                             "start_date": {"dt": "2020-01-01T00:00:00", "tz": tz}})
    first = next_events(schedule, after=utc(*before), n=1)[0]
    second = next_events(schedule, after=utc(*after), n=1)[0]
    assert (first.start_time.hour, second.start_time.hour) == utc_hours
    assert first.start_time.tzinfo is UTC


def test_hourly_cron_fires_once_in_a_repeated_hour():
    """Core's own expectation: 01:00 fires once, at its second pass (06:00 UTC)."""
    schedule = single_clock({"type": "CronClock", "cron": "0 * * * *",
                             "start_date": {"dt": "2018-11-03T23:00:00", "tz": NY}})
    events = next_events(schedule, after=utc(2018, 11, 4, 3), n=4)
    assert [e.start_time.hour for e in events] == [4, 6, 7, 8]


@pytest.mark.parametrize(
    "cron, expected",
    [("30 2 * * *", ["03-10 07:30", "03-11 07:00", "03-12 06:30"]),  # moved to the gap's end
     ("30 * * * *", ["03-11 06:30", "03-11 07:30", "03-11 08:30"])],  # hour '*': skipped
)
def test_cron_match_in_a_spring_gap(cron, expected):
    schedule = single_clock({"type": "CronClock", "cron": cron,
                             "start_date": {"dt": "2018-01-01T00:00:00", "tz": NY}})
    after = utc(2018, 3, 10, 1) if cron == "30 2 * * *" else utc(2018, 3, 11, 6)
    assert times(next_events(schedule, after=after, n=3)) == expected


@pytest.mark.parametrize(
    "cron, expected",
    [("*/20 1-3 * * *",  # Core drops 07:00 here
      ["06:00", "06:20", "06:40", "07:00", "07:20", "07:40", "08:00", "08:20"]),
     ("*/15 * * * *",  # Core never returns here (its de-duplication loops forever)
      ["06:00", "06:15", "06:30", "06:45", "07:00", "07:15", "07:30", "07:45"])],
)
def test_cron_repeated_hour_with_many_matches(cron, expected):
    schedule = single_clock({"type": "CronClock", "cron": cron,
                             "start_date": {"dt": "2018-01-01T00:00:00", "tz": NY}})
    events = next_events(schedule, after=utc(2018, 11, 4, 5, 30), n=8)
    assert [e.start_time.strftime("%H:%M") for e in events] == expected


def test_cron_after_inside_first_pass_of_a_repeated_hour():
    """01:10 EDT is 05:10 UTC; 01:00 EST (06:00 UTC) is the next event. Core treats such an
    `after` as 01:10 EST and returns 07:00."""
    schedule = single_clock({"type": "CronClock", "cron": "0 * * * *",
                             "start_date": {"dt": "2018-01-01T00:00:00", "tz": NY}})
    assert times(next_events(schedule, after=utc(2018, 11, 4, 5, 10), n=2)) == ["11-04 06:00", "11-04 07:00"]


@pytest.mark.parametrize("seed", range(6))
def test_utc_cron_matches_croniter(seed):
    """Our wall-clock matcher against croniter itself, on random expressions."""
    rng = random.Random(seed)

    def field(low, high):
        kind = rng.choice(["*", "value", "list", "range", "step"])
        if kind == "*":
            return "*"
        if kind == "value":
            return str(rng.randint(low, high))
        if kind == "list":
            return ",".join(str(v) for v in sorted(rng.sample(range(low, high + 1), 3)))
        if kind == "range":
            a = rng.randint(low, high - 1)
            return f"{a}-{rng.randint(a + 1, high)}"
        return f"*/{rng.randint(2, 5)}" if rng.random() < 0.5 else f"{low}-{high}/{rng.randint(2, 7)}"

    for _ in range(40):
        cron = " ".join([field(0, 59), field(0, 23), field(1, 31), field(1, 12), field(0, 6)])
        day_or = rng.random() < 0.7
        start = datetime(2020, 1, 1) + timedelta(minutes=rng.randint(0, 3_000_000))
        expected = []
        matches = croniter(cron, start, day_or=day_or, ret_type=datetime)
        for _ in range(8):
            expected.append(matches.get_next(datetime).replace(tzinfo=UTC))
        schedule = single_clock({"type": "CronClock", "cron": cron, "day_or": day_or})
        got = [e.start_time for e in next_events(schedule, after=start, n=8)]
        assert got == expected, cron


# ---------------------------------------------------------------------------------------
# DatesClock and RRuleClock
# ---------------------------------------------------------------------------------------


def test_dates_clock_matches_core():
    dates = [pendulum.datetime(2021, 5, 1, 9, tz=NY), pendulum.datetime(2021, 4, 1, tz=BERLIN),
             pendulum.datetime(2021, 5, 1, 13), pendulum.datetime(2021, 6, 1, 0, 0, 0, 7),
             pendulum.datetime(2020, 1, 1)]
    clock = core_clocks.DatesClock(dates, parameter_defaults={"x": [1, 2]}, labels=["dates"])
    events = assert_matches_core(CoreSchedule(clocks=[clock]), pendulum.datetime(2021, 1, 1), 10)
    assert len(events) == 3  # 05-01 09:00 New York and 13:00 UTC are the same instant


@pytest.mark.parametrize(
    "after", [pendulum.datetime(2019, 12, 31), pendulum.datetime(2020, 1, 8, 14), pendulum.datetime(2020, 1, 20)]
)
def test_rrule_clocks_match_core(after):
    weekly = rrule.rrule(rrule.DAILY, dtstart=pendulum.datetime(2020, 1, 1, 9, tz=NY),
                         byweekday=(rrule.MO, rrule.WE), count=20)
    naive = rrule.rrule(rrule.HOURLY, interval=7, dtstart=datetime(2020, 1, 1, 3))
    rule_set = rrule.rruleset()
    rule_set.rrule(rrule.rrule(rrule.DAILY, dtstart=pendulum.datetime(2020, 1, 2, 12), count=30))
    rule_set.exdate(pendulum.datetime(2020, 1, 9, 12))
    rule_set.rdate(pendulum.datetime(2020, 1, 8, 15, 30))
    until = rrule.rrule(rrule.WEEKLY, dtstart=pendulum.datetime(2020, 1, 3, 8, tz=BERLIN),
                        until=pendulum.datetime(2020, 3, 1))
    schedule = CoreSchedule(clocks=[
        core_clocks.RRuleClock(weekly, labels=["weekly"]),
        core_clocks.RRuleClock(naive, start_date=pendulum.datetime(2020, 1, 10), parameter_defaults={"n": 1}),
        core_clocks.RRuleClock(rule_set, end_date=pendulum.datetime(2020, 1, 25)),
        core_clocks.RRuleClock(until),
    ])
    serialized = serialize(schedule)
    n = 40
    assert ignoring_tie_order(our_next(serialized, after, n), n) == ignoring_tie_order(
        core_next(serialized, after, n), n
    )


# ---------------------------------------------------------------------------------------
# Filters, adjustments, payloads, multiple clocks
# ---------------------------------------------------------------------------------------

HOURLY_NY = core_clocks.IntervalClock(timedelta(hours=1), start_date=pendulum.datetime(2021, 1, 1, tz=NY))
# Core's CronClock gives up after 1,000 events, so keep this one sparse (9 a day) and the
# month-scale cases short (MONTH_SCALE).
CRON_BERLIN = core_clocks.CronClock("0 0-2,9,10,12,17,22,23 * * *",
                                    start_date=pendulum.datetime(2021, 1, 1, tz=BERLIN))

FILTER_CASES = {
    "weekday": dict(filters=[filters.is_weekday]),
    "weekend": dict(filters=[filters.is_weekend]),
    "month_end": dict(filters=[filters.is_month_end, filters.at_time(time(23))]),
    "month_start": dict(filters=[filters.is_month_start], not_filters=[filters.between_times(time(1), time(22))]),
    "day_of_week": dict(filters=[filters.is_day_of_week(2)]),
    "on_date": dict(filters=[filters.on_date(3, 14)]),
    "on_datetime": dict(or_filters=[filters.on_datetime(pendulum.datetime(2021, 3, 3, 14)),
                                    filters.on_datetime(pendulum.datetime(2021, 3, 5, 9, tz=BERLIN))]),
    "between_datetimes": dict(filters=[filters.between_datetimes(pendulum.datetime(2021, 3, 10, 5),
                                                                 pendulum.datetime(2021, 3, 10, 8))]),
    "between_dates": dict(filters=[filters.between_dates(3, 20, 3, 22)]),
    "between_dates_wrapping": dict(filters=[filters.between_dates(12, 31, 1, 1), filters.at_time(time(12))]),
    "between_times": dict(filters=[filters.between_times(time(8, 30), time(9, 30))]),
    "between_times_wrapping": dict(filters=[filters.between_times(time(23), time(1))]),
    "or_and_not": dict(filters=[filters.is_weekday],
                       or_filters=[filters.at_time(time(9)), filters.at_time(time(17))],
                       not_filters=[filters.is_day_of_week(0), filters.on_date(3, 17)]),
    "add": dict(filters=[filters.at_time(time(2))], adjustments=[adjustments.add(timedelta(hours=1, minutes=30))]),
    "next_weekday": dict(filters=[filters.at_time(time(10))], adjustments=[adjustments.next_weekday]),
    "add_then_next_weekday": dict(filters=[filters.is_weekend, filters.at_time(time(22))],
                                  adjustments=[adjustments.add(timedelta(hours=3)), adjustments.next_weekday]),
}


MONTH_SCALE = {"month_end": 2, "month_start": 2, "between_dates_wrapping": 2, "on_date": 5}


@pytest.mark.parametrize("clock", [HOURLY_NY, CRON_BERLIN], ids=["interval-ny", "cron-berlin"])
@pytest.mark.parametrize("case", FILTER_CASES)
def test_filters_and_adjustments_match_core(clock, case):
    """Filters see each event's local time, so New York/Berlin clocks exercise that."""
    schedule = CoreSchedule(clocks=[clock], **FILTER_CASES[case])
    after = pendulum.datetime(2021, 12 if case == "between_dates_wrapping" else 3, 1)
    events = assert_matches_core(schedule, after, MONTH_SCALE.get(case, 12))
    assert events


def test_filter_sees_local_time_across_dst():
    schedule = CoreSchedule(clocks=[HOURLY_NY], filters=[filters.at_time(time(9))])
    events = assert_matches_core(schedule, pendulum.datetime(2021, 3, 12), 4)
    assert [e[0].hour for e in events] == [14, 14, 13, 13]


def test_frequent_cron_is_not_cut_off_after_1000_events():
    """Core's CronClock stops after 1,000 events per query, so from a Monday an
    every-minute weekend cron yields nothing in Core; only max_checks bounds ours."""
    schedule = CoreSchedule(clocks=[core_clocks.CronClock("* * * * *")], filters=[filters.is_weekend])
    serialized, after = serialize(schedule), pendulum.datetime(2021, 3, 1)
    assert core_next(serialized, after, 2) == []
    assert [e[0] for e in our_next(serialized, after, 2)] == [utc(2021, 3, 6, 0, 0), utc(2021, 3, 6, 0, 1)]


def test_sparse_filter_uses_the_full_check_budget_like_core():
    """Core examines up to 10,000 events: ~416 days of an hourly clock reach Christmas."""
    schedule = CoreSchedule(clocks=[core_clocks.IntervalClock(timedelta(hours=1))],
                            filters=[filters.on_date(12, 25), filters.at_time(time(6))])
    events = assert_matches_core(schedule, pendulum.datetime(2021, 1, 1), 3)
    assert [e[0] for e in events] == [utc(2021, 12, 25, 6)]


def test_parameter_defaults_and_labels_match_core():
    schedule = CoreSchedule(clocks=[
        core_clocks.CronClock("0 * * * *", parameter_defaults={"who": "cron"}, labels=["a", "b"]),
        core_clocks.IntervalClock(timedelta(minutes=90), start_date=pendulum.datetime(2021, 1, 1),
                                  labels=[]),
        core_clocks.IntervalClock(timedelta(hours=2), start_date=pendulum.datetime(2021, 1, 1, 0, 30),
                                  parameter_defaults={"nested": {"x": [1, None]}}),
    ])
    serialized, after, n = serialize(schedule), pendulum.datetime(2021, 1, 1), 12
    ours = our_next(serialized, after, n)
    assert ignoring_tie_order(ours, n) == ignoring_tie_order(core_next(serialized, after, n), n)
    assert {repr(e[2]) for e in ours} == {"['a', 'b']", "[]", "None"}
    assert {"nested": {"x": [1, None]}} in [e[1] for e in ours]


def test_identical_clocks_collapse_like_core():
    schedule = CoreSchedule(clocks=[
        core_clocks.CronClock("0 */6 * * *"),
        core_clocks.IntervalClock(timedelta(hours=3), start_date=pendulum.datetime(2021, 1, 1)),
        core_clocks.CronClock("0 */6 * * *"),
    ])
    events = assert_matches_core(schedule, pendulum.datetime(2021, 5, 1), 10)
    assert [e[0].hour for e in events] == [3, 6, 9, 12, 15, 18, 21, 0, 3, 6]


def test_same_times_with_different_payloads_match_core_ignoring_tie_order():
    schedule = CoreSchedule(clocks=[
        core_clocks.CronClock("0 */6 * * *", labels=["cron"]),
        core_clocks.IntervalClock(timedelta(hours=6), start_date=pendulum.datetime(2021, 1, 1),
                                  parameter_defaults={"p": 1}),
    ], filters=[filters.is_weekday])
    serialized = serialize(schedule)
    after, n = pendulum.datetime(2021, 5, 1), 16
    ours = our_next(serialized, after, n)
    assert ignoring_tie_order(ours, n) == ignoring_tie_order(core_next(serialized, after, n), n)
    assert [e[2] for e in ours[:2]] == [["cron"], None]  # ties keep clock order


def test_identical_event_dropped_even_when_not_adjacent():
    """Core only collapses adjacent duplicates, so its arbitrary tie order can repeat one."""
    cron = {"type": "CronClock", "cron": "0 0 * * *"}
    schedule = {"clocks": [cron, {**cron, "labels": ["b"]}, cron]}
    events = next_events(schedule, after=utc(2021, 1, 1), n=4)
    assert [(e.start_time.day, e.labels) for e in events] == [(2, None), (2, ["b"]), (3, None), (3, ["b"])]


def test_flow_group_schedule_shape():
    """What set_flow_group_schedule stores; Core loads the same dict (ignoring "type")."""
    serialized = {
        "type": "Schedule",
        "clocks": [
            {"type": "CronClock", "cron": "0 9 * * 1-5", "parameter_defaults": {"x": 1},
             "start_date": {"dt": "2021-03-01T00:00:00", "tz": NY}},
            {"type": "IntervalClock", "interval": 43_200_000_000, "parameter_defaults": {},
             "start_date": None},
        ],
    }
    after = pendulum.datetime(2021, 3, 10)
    assert our_next(serialized, after, 12) == core_next(serialized, after, 12)


# ---------------------------------------------------------------------------------------
# API behaviour
# ---------------------------------------------------------------------------------------


def test_event_shape_and_naive_after_is_utc():
    schedule = single_clock({"type": "IntervalClock", "interval": 3_600_000_000})
    (event,) = next_events(schedule, after=datetime(2021, 1, 1, 0, 30), n=1)
    assert event == ClockEvent(start_time=utc(2021, 1, 1, 1), parameter_defaults={}, labels=None)
    assert event.start_time.tzinfo is UTC and type(event.start_time) is datetime


def test_n_and_max_checks_bounds():
    schedule = single_clock({"type": "CronClock", "cron": "* * * * *"},
                            filters=[{"fn": "prefect.schedules.filters.on_date",
                                      "kwargs": {"month": 2, "day": 30}}])
    started = time_module.perf_counter()
    assert next_events(schedule, after=utc(2021, 1, 1), n=5) == []
    assert time_module.perf_counter() - started < 5  # bounded, not a timing assertion per se
    every_third_hour = single_clock({"type": "IntervalClock", "interval": 3_600_000_000},
                                    filters=[{"fn": "prefect.schedules.filters.between_times",
                                              "kwargs": {"start": "//time:00:00:00",
                                                         "end": "//time:00:00:00"}}])
    assert len(next_events(every_third_hour, after=utc(2021, 1, 1), n=10, max_checks=49)) == 2
    assert len(next_events(every_third_hour, after=utc(2021, 1, 1), n=10, max_checks=48)) == 2
    assert len(next_events(every_third_hour, after=utc(2021, 1, 1), n=10, max_checks=47)) == 1
    assert next_events(every_third_hour, after=utc(2021, 1, 1), n=0) == []


def test_results_are_copies_of_the_cached_payload():
    schedule = single_clock({"type": "IntervalClock", "interval": 3_600_000_000,
                             "parameter_defaults": {"a": {"b": 1}}, "labels": ["x"]})
    first = next_events(schedule, after=utc(2021, 1, 1), n=1)[0]
    first.parameter_defaults["a"]["b"] = 2
    first.labels.append("y")
    again = next_events(json.loads(json.dumps(schedule)), after=utc(2021, 1, 1), n=1)[0]
    assert (again.parameter_defaults, again.labels) == ({"a": {"b": 1}}, ["x"])
    assert clocks.cached_schedule(schedule) is clocks.cached_schedule(json.loads(json.dumps(schedule)))


def test_parsed_schedule_can_be_passed_directly():
    parsed = parse_schedule(single_clock({"type": "CronClock", "cron": "0 0 * * *"}))
    assert times(next_events(parsed, after=utc(2021, 1, 1), n=2)) == ["01-02 00:00", "01-03 00:00"]


def test_fixed_offset_zones_are_accepted():
    """pendulum names datetime.timezone.utc "+00:00"; Core 1.4.1 cannot load that zone."""
    schedule = {"clocks": [
        {"type": "CronClock", "cron": "0 9 * * *", "start_date": {"dt": "2021-01-01T00:00:00", "tz": "+05:30"}},
        {"type": "IntervalClock", "interval": 86_400_000_000,
         "start_date": {"dt": "2021-01-01T12:00:00", "tz": "+00:00"}},
    ]}
    assert times(next_events(schedule, after=utc(2021, 6, 1), n=2)) == ["06-01 03:30", "06-01 12:00"]


def test_schedule_level_start_and_end_dates_bound_events():
    schedule = {"clocks": [{"type": "IntervalClock", "interval": 3_600_000_000}],
                "start_date": {"dt": "2021-01-01T05:00:00", "tz": "UTC"},
                "end_date": {"dt": "2021-01-01T08:00:00", "tz": "UTC"}}
    assert times(next_events(schedule, after=utc(2020, 1, 1), n=10)) == [
        "01-01 05:00", "01-01 06:00", "01-01 07:00", "01-01 08:00"]


def test_every_core_filter_and_adjustment_is_supported():
    from prefect.serialization.schedule import ADJUSTMENTS, FILTERS

    assert {f"{f.__module__}.{f.__name__}" for f in FILTERS} == set(clocks._FILTERS)
    assert {f"{f.__module__}.{f.__name__}" for f in ADJUSTMENTS} == set(clocks._ADJUSTMENTS)


# ---------------------------------------------------------------------------------------
# Invalid schedules
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "serialized, message",
    [
        ({"clocks": [{"type": "CronClock", "cron": "61 * * * *"}]}, r"clocks\[0\] \(CronClock\)\.cron: invalid cron string '61 \* \* \* \*'"),
        ({"clocks": [{"type": "CronClock", "cron": None}]}, r"invalid cron string None"),
        ({"clocks": [{"type": "WeeklyClock"}]}, r"clocks\[0\]: unknown clock type 'WeeklyClock'"),
        ({"clocks": [{"cron": "* * * * *"}]}, r"unknown clock type None"),
        ({"clocks": [{"type": "CronClock", "cron": "* * * * *"}],
          "filters": [{"fn": "prefect.schedules.filters.is_holiday", "kwargs": {}}]},
         r"filters\[0\]: unknown filter 'prefect.schedules.filters.is_holiday'"),
        ({"clocks": [], "adjustments": [{"fn": "prefect.schedules.filters.is_weekday"}]},
         r"adjustments\[0\]: unknown adjustment"),
        ({"clocks": [], "filters": [{"fn": "prefect.schedules.filters.on_date", "kwargs": {"month": 1}}]},
         r"filters\[0\] \(on_date\): expected arguments \['day', 'month'\]"),
        ({"clocks": [], "not_filters": [{"fn": "prefect.schedules.filters.at_time", "kwargs": {"t": "09:00"}}]},
         r"not_filters\[0\] \(at_time\)\.t: expected a '//time:...' value"),
        ({"clocks": [{"type": "IntervalClock", "interval": 59_000_000}]}, r"interval must be at least one minute"),
        ({"clocks": [{"type": "IntervalClock"}]}, r"\.interval: expected a number of microseconds"),
        ({"clocks": [{"type": "CronClock", "cron": "* * * * *",
                      "start_date": {"dt": "2021-01-01T00:00:00", "tz": "Mars/Olympus"}}]},
         r"start_date: unknown time zone 'Mars/Olympus'"),
        ({"clocks": [{"type": "CronClock", "cron": "* * * * *",
                      "start_date": {"dt": "yesterday", "tz": "UTC"}}]}, r"start_date\.dt: invalid datetime"),
        ({"clocks": [{"type": "DatesClock", "dates": []}]}, r"dates: expected a non-empty list"),
        ({"clocks": [{"type": "RRuleClock", "rrule_obj": {"type": "rrule", "rr": "RRULE:FREQ=SOMETIMES"}}]},
         r"rrule_obj: invalid rrule"),
        ({"clocks": [{"type": "CronClock", "cron": "* * * * *", "labels": "a"}]}, r"labels: expected a list"),
        ({"clocks": [{"type": "CronClock", "cron": "* * * * *", "day_or": "yes"}]}, r"day_or: expected a boolean"),
        ({"type": "IntervalSchedule", "interval": 60_000_000}, r"unsupported schedule type 'IntervalSchedule'"),
        ({"filters": []}, r"schedule.clocks: expected a list"),
        ([], r"schedule: expected an object"),
    ],
)
def test_invalid_schedules_raise_schedule_error(serialized, message):
    with pytest.raises(ScheduleError, match=message):
        parse_schedule(serialized)
    with pytest.raises(ScheduleError, match=message):  # also through the cache, twice
        next_events(serialized, after=utc(2021, 1, 1), n=1)
    with pytest.raises(ScheduleError, match=message):
        next_events(serialized, after=utc(2021, 1, 1), n=1)


def test_core_rejects_what_we_reject():
    """Sanity check on the oracle side for the cases Core's schema itself refuses."""
    for serialized in (
        {"clocks": [{"type": "CronClock", "cron": "61 * * * *"}]},
        {"clocks": [{"type": "IntervalClock", "interval": 59_000_000}]},
        {"clocks": [{"type": "CronClock", "cron": "* * * * *"}],
         "filters": [{"fn": "prefect.schedules.filters.is_holiday", "kwargs": {}}]},
    ):
        with pytest.raises(Exception):
            ScheduleSchema().load(serialized)
        with pytest.raises(ScheduleError):
            parse_schedule(serialized)
