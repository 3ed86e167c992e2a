"""What a Python deployment spec file writes: `DeploymentSpec(...)` and the schedule kinds.

    from headwater.client.deployments import CronSchedule, DeploymentSpec

    DeploymentSpec(
        name="my-first-deployment",
        flow_location="./addition_machine.py",
        parameters={"nums": [1, 2, 3, 4]},
        schedule=CronSchedule("0 9 * * *", timezone="Europe/Berlin"),
    )

The objects only record what the file says. `headwater deployment create FILE` collects every
`DeploymentSpec` created while the file runs and validates them all (with file, deployment and
field in each message) before anything is written, so constructing one never raises for a bad
value: the error comes out in the same form as a YAML spec's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

# Filled while `headwater deployment create` runs a spec file (see deployment_specs.py).
_collectors: list[list["DeploymentSpec"]] = []


@dataclass
class IntervalSchedule:
    """Every `interval` (a timedelta or seconds) from `anchor_date` (default: when first applied
    to the server), in `timezone` (an IANA name), so a daily interval keeps its wall-clock time
    across DST."""

    interval: dt.timedelta | float | int | str
    anchor_date: dt.datetime | str | None = None
    timezone: str | None = None


@dataclass
class CronSchedule:
    """A cron expression evaluated on the wall clock of `timezone` (default UTC); `day_or`
    (default true) fires when either the day-of-month or the day-of-week field matches."""

    cron: str
    timezone: str | None = None
    day_or: bool = True


@dataclass
class RRuleSchedule:
    """An RFC 5545 recurrence rule (`"FREQ=WEEKLY;BYDAY=MO,WE"`, optionally with `DTSTART`), in `timezone`."""

    rrule: str
    timezone: str | None = None


SCHEDULE_CLASSES = (IntervalSchedule, CronSchedule, RRuleSchedule)


@dataclass(kw_only=True)
class DeploymentSpec:
    """A named, parameterised, scheduled entry point to a flow.

    The flow is named by `flow_location` (a Prefect 1.x flow script, relative to the spec file;
    `flow_name` picks one when the script holds several; it is registered with script storage)
    or by `flow_name` alone (a flow already registered in `project`). `project` defaults to
    "default". `schedule` (one) or `schedules` (a list) take the schedule classes above.
    `is_schedule_active` left as None keeps the server's value (on for a new deployment).
    """

    name: Any = None
    flow_location: Any = None
    flow_name: Any = None
    project: Any = None
    parameters: Any = field(default_factory=dict)
    tags: Any = field(default_factory=list)
    labels: Any = None
    description: Any = None
    schedule: Any = None
    schedules: Any = None
    is_schedule_active: Any = None

    def __post_init__(self) -> None:
        for collected in _collectors:
            collected.append(self)
