"""Turning a flow's schedule on and off, and removing the runs a schedule created.

The schedule that counts is the flow group's when it has one (set with
`set_flow_group_schedule`), else the one the flow was registered with. A flow whose required
parameters have no value from the group's defaults or from every clock's `parameter_defaults`
can never be auto-scheduled: the scheduler would not know what to pass.
"""

from __future__ import annotations

import uuid
from typing import Any, Iterable

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Flow, FlowGroup, FlowRun
from server.domain.errors import InvalidInput
from server.domain.lookup import require

REQUIRED_PARAMETERS_ERROR = "Can not schedule a flow that has required parameters."


def effective_schedule(flow: Flow, group: FlowGroup | None) -> dict[str, Any] | None:
    return (group.schedule if group is not None else None) or flow.schedule


def unschedulable_parameters(flow: Flow, group: FlowGroup | None, schedule: dict[str, Any]) -> set[str]:
    """Required parameters that some clock of `schedule` would leave without a value."""
    required = {p.get("name") for p in (flow.parameters or []) if isinstance(p, dict) and p.get("required")}
    required -= set((group.default_parameters if group is not None else None) or {})
    missing: set[str] = set()
    for clock in schedule.get("clocks") or []:
        missing |= required - set(clock.get("parameter_defaults") or {})
    return missing


async def activate(
    session: AsyncSession, flow_id: uuid.UUID, *, raise_on_required_parameters: bool = True
) -> str | None:
    """Turn the flow's schedule on. Returns None when active, else why it is not.

    A flow whose required parameters have no values raises InvalidInput, unless
    `raise_on_required_parameters` is False (registration), when it just stays inactive.
    """
    flow = await require(session, Flow, flow_id, for_update=True)
    group = await session.get(FlowGroup, flow.flow_group_id)
    schedule = effective_schedule(flow, group)
    if schedule is None:
        return "The flow has no schedule."
    missing = unschedulable_parameters(flow, group, schedule)
    if missing:
        if raise_on_required_parameters:
            raise InvalidInput(
                f"{REQUIRED_PARAMETERS_ERROR} Give these a default or a value in every clock's "
                f"parameter_defaults: {', '.join(sorted(missing))}."
            )
        return REQUIRED_PARAMETERS_ERROR
    await session.execute(update(Flow).where(Flow.id == flow_id).values(is_schedule_active=True))
    return None


async def deactivate(session: AsyncSession, flow_id: uuid.UUID) -> None:
    """Turn the flow's schedule off and remove the future runs it had created."""
    await require(session, Flow, flow_id)
    await session.execute(update(Flow).where(Flow.id == flow_id).values(is_schedule_active=False))
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
