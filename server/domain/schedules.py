"""Turning a flow's schedule on and off, and removing the runs a schedule created.

The schedule that counts is the flow group's when it has one (set with
`set_flow_group_schedule`), else the one the flow was registered with. A flow whose required
parameters have no value from the group's defaults or from every clock's `parameter_defaults`
can never be auto-scheduled: the scheduler would not know what to pass.

A schedule is validated when it is registered or set (`validate_schedule`): one that cannot
be read, or cannot produce an event within the clocks' search bounds, is refused.

`is_schedule_active` is true only while the flow has a schedule (as in Prefect Server, so
`flow list` never says "schedule active" for a flow with none). Turning scheduling on before
a schedule exists is remembered instead in the flow's `settings` (`WHEN_SCHEDULED`), and the
flow becomes active, with its runs, as soon as its group gets a schedule.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any, Iterable

from sqlalchemy import cast, delete, literal, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from headwater.server.db.models import Flow, FlowGroup, FlowRun
from headwater.server.domain.clocks import ScheduleError, cached_schedule, schedule_problem
from headwater.server.domain.errors import InvalidInput
from headwater.server.domain.lookup import require
from headwater.server.domain.scheduling import effective_schedule, schedule_flow, unschedulable_parameters

REQUIRED_PARAMETERS_ERROR = "Can not schedule a flow that has required parameters."
# Key in `flow.settings` (a column Prefect Server never used): scheduling was turned on while the
# flow had no schedule; it starts when one arrives.
WHEN_SCHEDULED = "schedule_active_when_scheduled"
_REMEMBERED = Flow.settings.op("||")(cast(literal('{"%s": true}' % WHEN_SCHEDULED), JSONB))
_FORGOTTEN = Flow.settings.op("-")(literal(WHEN_SCHEDULED))


def waits_for_schedule(flow_settings: dict[str, Any] | None) -> bool:
    """Scheduling was turned on for the flow with these settings before it had a schedule."""
    return bool((flow_settings or {}).get(WHEN_SCHEDULED))


def _problem(schedule: Any, now: dt.datetime) -> str | None:
    try:
        parsed = cached_schedule(schedule)
    except ScheduleError as exc:
        return f"Invalid schedule: {exc}"
    return schedule_problem(parsed, now)


async def validate_schedule(schedule: Any, *, now: dt.datetime | None = None) -> None:
    """Refuse (InvalidInput) a schedule that cannot be read or can never fire; None passes.

    The search runs in a worker thread: bounded, but up to a fraction of a second of CPU
    for a pathological schedule, which the event loop must not wait for."""
    if schedule is None:
        return
    problem = await asyncio.to_thread(_problem, schedule, now or dt.datetime.now(dt.timezone.utc))
    if problem is not None:
        raise InvalidInput(problem)


async def activate(
    session: AsyncSession, flow_id: uuid.UUID, *, raise_on_required_parameters: bool = True
) -> str | None:
    """Turn the flow's schedule on and create its next runs. Returns None when active, else why not.

    A flow with no schedule yet stays inactive but remembers the request: it is switched on, with
    runs, as soon as its group gets a schedule (Prefect Server silently ignored this order of
    steps). A flow whose required parameters have no values raises InvalidInput, unless
    `raise_on_required_parameters` is False (registration), when it just stays inactive.
    """
    flow = await require(session, Flow, flow_id, for_update=True)
    group = await session.get(FlowGroup, flow.flow_group_id)
    schedule = effective_schedule(flow, group)
    if schedule is None:
        await session.execute(
            update(Flow).where(Flow.id == flow_id).values(is_schedule_active=False, settings=_REMEMBERED)
        )
        return None
    missing = unschedulable_parameters(flow, group, schedule)
    if missing:
        if raise_on_required_parameters:
            raise InvalidInput(
                f"{REQUIRED_PARAMETERS_ERROR} Give these a default or a value in every clock's "
                f"parameter_defaults: {', '.join(sorted(missing))}."
            )
        return REQUIRED_PARAMETERS_ERROR
    await session.execute(
        update(Flow).where(Flow.id == flow_id).values(is_schedule_active=True, settings=_FORGOTTEN)
    )
    await schedule_flow(session, flow_id)
    return None


async def wait_for_schedule(session: AsyncSession, flow_id: uuid.UUID) -> None:
    """The flow's schedule went away (its group's was removed): inactive until one returns."""
    await session.execute(
        update(Flow).where(Flow.id == flow_id).values(is_schedule_active=False, settings=_REMEMBERED)
    )


async def deactivate(session: AsyncSession, flow_id: uuid.UUID) -> None:
    """Turn the flow's schedule off and remove the future runs it had created."""
    await require(session, Flow, flow_id)
    await session.execute(
        update(Flow).where(Flow.id == flow_id).values(is_schedule_active=False, settings=_FORGOTTEN)
    )
    await remove_future_runs(session, [flow_id])


async def remove_future_runs(session: AsyncSession, flow_ids: Iterable[uuid.UUID]) -> int:
    """Delete auto-scheduled runs that have not started (state Scheduled); ad-hoc runs and runs
    already picked up are kept. Returns how many were removed."""
    ids = list(flow_ids)
    if not ids:
        return 0
    result = await session.execute(
        delete(FlowRun).where(
            FlowRun.flow_id.in_(ids), FlowRun.state == "Scheduled", FlowRun.auto_scheduled.is_(True)
        )
    )
    return result.rowcount or 0
