"""Deployment schedule objects read into the scheduler's clocks (no database)."""

from __future__ import annotations

import datetime as dt

import pytest

from headwater.server.domain.clocks import ScheduleError
from headwater.server.domain.deployment_schedules import as_schedule_list, build_schedule, schedule_error

pytestmark = pytest.mark.pure
UTC = dt.timezone.utc


def times(schedules: list, after: dt.datetime, n: int = 3) -> list[dt.datetime]:
    return [event.start_time for event in build_schedule(schedules).next_events(after=after, n=n)]


def test_several_schedules_merge_in_time_order_and_collapse_equal_times():
    after = dt.datetime(2030, 1, 1, tzinfo=UTC)
    merged = times([{"interval": 7200}, {"cron": "0 */3 * * *"}], after, n=4)
    assert merged == [after.replace(hour=h) for h in (2, 3, 4, 6)]


def test_rrule_dtstart_with_tzid_keeps_its_zone_and_timezone_overrides_utc():
    after = dt.datetime(2030, 3, 9, tzinfo=UTC)
    own = times([{"rrule": "DTSTART;TZID=America/New_York:20300101T090000\nRRULE:FREQ=DAILY"}], after)
    assert own == [dt.datetime(2030, 3, 9, 14, tzinfo=UTC), dt.datetime(2030, 3, 10, 13, tzinfo=UTC),
                   dt.datetime(2030, 3, 11, 13, tzinfo=UTC)]
    until = times([{"rrule": "DTSTART:20300308T090000\nRRULE:FREQ=DAILY;UNTIL=20300310T090000",
                    "timezone": "America/New_York"}], after)
    assert until == own[:2], "a naive UNTIL is read in the same zone"


def test_an_rrule_without_dtstart_is_stable():
    after = dt.datetime(2030, 1, 1, 12, tzinfo=UTC)
    assert times([{"rrule": "FREQ=HOURLY"}], after, 1) == [dt.datetime(2030, 1, 1, 13, tzinfo=UTC)]


def test_errors_name_the_schedule_and_field():
    assert as_schedule_list(None) == [] and as_schedule_list({"interval": 60}) == [{"interval": 60}]
    with pytest.raises(ScheduleError, match=r"^schedule\[1\]\.rrule: invalid rrule 'RRULE:FREQ=DAILY\\nRRULE"):
        build_schedule([{"interval": 60}, {"rrule": "RRULE:FREQ=DAILY\nRRULE:FREQ=WEEKLY"}])
    now = dt.datetime(2030, 1, 1, tzinfo=UTC)
    assert schedule_error([{"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"}], now).startswith(
        "schedule[0].rrule: The schedule's rrule clock produces no event"
    )
    assert schedule_error([{"cron": "0 9 * * *", "timezone": 5}], now) == (
        "schedule[0].timezone: expected a time zone name, got 5"
    )
