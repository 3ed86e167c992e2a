"""Lazarus: flow runs stuck with no live process are scheduled again, a limited number of times.

A run is stuck when it is Running or Submitted, its heartbeat is older than the cutoff, and none
of its task runs is running or waiting to run (those are the zombie killer's, or the agent's).
It is rescheduled so an agent starts it afresh, up to the resurrection limit; after that it is
Failed. Flows with heartbeats or Lazarus disabled are skipped, and a run with a fresh heartbeat
is never touched. Claimed with `FOR UPDATE SKIP LOCKED`, so replicas never handle a run twice.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Flow, FlowGroup, FlowRun, TaskRun
from server.domain.run_states import set_flow_run_state
from server.domain.states import RUNNING_STATES, SCHEDULED_STATES, make_state
from server.domain.flow_settings import heartbeat_enabled_clause, lazarus_enabled_clause
from server.domain.logs import write_service_log
from server.domain.zombies import Outcome

LOGGER = "headwater.Lazarus.FlowRun"
# Task runs in these states mean the run is still being worked on (or will be).
BUSY_TASK_STATES = sorted(SCHEDULED_STATES | RUNNING_STATES)


async def resurrect_stuck_runs(
    session: AsyncSession, *, now: dt.datetime, cutoff: dt.datetime, limit: int, max_attempts: int
) -> list[Outcome]:
    busy_task = (
        select(literal(1))
        .select_from(TaskRun)
        .where(TaskRun.flow_run_id == FlowRun.id, TaskRun.state.in_(BUSY_TASK_STATES))
        .exists()
    )
    rows = (
        await session.execute(
            select(FlowRun.id, FlowRun.tenant_id, FlowRun.heartbeat, FlowRun.times_resurrected)
            .join(Flow, Flow.id == FlowRun.flow_id)
            .join(FlowGroup, FlowGroup.id == Flow.flow_group_id)
            .where(
                FlowRun.state.in_(["Running", "Submitted"]),
                FlowRun.heartbeat <= cutoff,
                ~busy_task,
                heartbeat_enabled_clause(),
                lazarus_enabled_clause(),
            )
            .order_by(FlowRun.updated)
            .limit(limit)
            .with_for_update(of=FlowRun, skip_locked=True)
        )
    ).all()
    outcomes = []
    for run_id, tenant_id, heartbeat, times in rows:
        attempt = (times or 0) + 1
        silence = f"no heartbeat since {heartbeat.isoformat()} (cutoff {cutoff.isoformat()})"
        if attempt <= max_attempts:
            message = f"Rescheduled by a Lazarus process: {silence}. This is attempt {attempt} of {max_attempts}."
            await set_flow_run_state(session, run_id, make_state("Scheduled", message, start_time=now))
            await session.execute(update(FlowRun).where(FlowRun.id == run_id).values(times_resurrected=attempt))
            level, state = "INFO", "Scheduled"
        else:
            message = (
                f"A Lazarus process rescheduled flow run {run_id} {max_attempts} times without success "
                f"({silence}). Marking it as failed."
            )
            await set_flow_run_state(session, run_id, make_state("Failed", message))
            level, state = "ERROR", "Failed"
        await write_service_log(session, name=LOGGER, level=level, message=message, flow_run_id=run_id,
                                tenant_id=tenant_id)
        outcomes.append(Outcome(run_id, state))
    return outcomes
