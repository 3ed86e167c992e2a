"""Lazarus: flow runs stuck with no live process are scheduled again, a limited number of times.

A run is stuck when it is Running or Submitted, its heartbeat is older than the cutoff, and none
of its task runs is busy. A running task run is busy (the zombie killer's). A task run waiting
in a Scheduled-family state (Retrying, Scheduled, Queued...) is busy only until it has been due
for longer than the cutoff: a flow runner exits on purpose to wait out a long retry, and an agent
starts the Running flow run again once the retry is due, so a run waiting on a future retry is
not dead. But once the retry has been due for a whole cutoff with still no heartbeat, nobody
is alive to run it (no agent took it, or the process the zombie killer reaped was the only one),
and without this rule the run would stay Running forever. A task run waiting with no start time
(Paused for approval) waits for a person, so it is always busy.
A stuck run is rescheduled so an agent starts it afresh (its flow runner then reruns the retrying
task), up to the resurrection limit; after that it is Failed. Flows with heartbeats or Lazarus disabled are skipped, and a run with a fresh heartbeat
is never touched. Claimed with `FOR UPDATE SKIP LOCKED`, so replicas never handle a run twice.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from headwater.server.db.models import Flow, FlowGroup, FlowRun, TaskRun
from headwater.server.domain.run_states import set_flow_run_state
from headwater.server.domain.states import RUNNING_STATES, SCHEDULED_STATES, make_state
from headwater.server.domain.flow_settings import heartbeat_enabled_clause, lazarus_enabled_clause
from headwater.server.domain.logs import write_service_log
from headwater.server.domain.zombies import Outcome

LOGGER = "headwater.Lazarus.FlowRun"
# Task runs in these states mean the run is still being worked on.
WORKING_TASK_STATES = sorted(RUNNING_STATES)
# Task runs in these states mean the run will be worked on once they are due (see the docstring).
WAITING_TASK_STATES = sorted(SCHEDULED_STATES)


async def resurrect_stuck_runs(
    session: AsyncSession, *, now: dt.datetime, cutoff: dt.datetime, limit: int, max_attempts: int
) -> list[Outcome]:
    busy_task = (
        select(literal(1))
        .select_from(TaskRun)
        .where(
            TaskRun.flow_run_id == FlowRun.id,
            or_(
                TaskRun.state.in_(WORKING_TASK_STATES),
                TaskRun.state.in_(WAITING_TASK_STATES)
                & (TaskRun.state_start_time.is_(None) | (TaskRun.state_start_time > cutoff)),
            ),
        )
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
