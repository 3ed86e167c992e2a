"""Runs whose process has gone away, found by their missing heartbeats.

The flow runner heartbeats every 30 s; a flow run whose heartbeat is older than the cutoff has
lost its process. This module handles two cases (the zombie killer's work):

* task runs still Running under such a flow run: retried when retries remain and the flow run
  is Running, else Failed;
* flow runs left Cancelling: nobody is left to finish the cancellation, so they are Cancelled.

Flows with heartbeats disabled are skipped. Candidates are claimed with `FOR UPDATE SKIP
LOCKED`, so replicas running the same pass split the work and handle each run once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from headwater.server.db.models import Flow, FlowGroup, FlowRun, Task, TaskRun, TaskRunState
from headwater.server.domain.flow_settings import heartbeat_enabled_clause
from headwater.server.domain.logs import write_service_log
from headwater.server.domain.run_states import set_flow_run_state, set_task_run_state
from headwater.server.domain.states import make_state

TASK_LOGGER = "headwater.ZombieKiller.TaskRun"
FLOW_LOGGER = "headwater.ZombieKiller.FlowRun"


@dataclass(frozen=True)
class Outcome:
    run_id: uuid.UUID
    state: str


async def reap_zombie_task_runs(
    session: AsyncSession, *, now: dt.datetime, cutoff: dt.datetime, limit: int
) -> list[Outcome]:
    """Retry or fail up to `limit` Running task runs whose flow run's heartbeat is older than `cutoff`."""
    rows = (
        await session.execute(
            select(
                TaskRun.id,
                TaskRun.name,
                TaskRun.tenant_id,
                TaskRun.flow_run_id,
                FlowRun.state.label("flow_run_state"),
                FlowRun.heartbeat,
                Task.name.label("task_name"),
                Task.max_retries,
                Task.retry_delay,
            )
            .join(FlowRun, FlowRun.id == TaskRun.flow_run_id)
            .join(Task, Task.id == TaskRun.task_id)
            .join(Flow, Flow.id == FlowRun.flow_id)
            .join(FlowGroup, FlowGroup.id == Flow.flow_group_id)
            .where(TaskRun.state == "Running", FlowRun.heartbeat <= cutoff, heartbeat_enabled_clause())
            .order_by(TaskRun.updated)
            .limit(limit)
            .with_for_update(of=TaskRun, skip_locked=True)
        )
    ).all()
    outcomes = []
    for row in rows:
        retries_so_far = await session.scalar(
            select(func.count()).where(TaskRunState.task_run_id == row.id, TaskRunState.state == "Retrying")
        )
        label = f"task run {row.id} ({row.name or row.task_name})"
        silence = f"no heartbeat from its flow run {row.flow_run_id} since {row.heartbeat.isoformat()} (cutoff {cutoff.isoformat()})"
        max_retries = row.max_retries or 0
        if row.flow_run_state == "Running" and retries_so_far < max_retries:
            attempt = retries_so_far + 1
            message = f"Retrying {label}: {silence}. This is retry {attempt} of {max_retries}."
            state = make_state(
                "Retrying", message, start_time=now + (row.retry_delay or dt.timedelta(0)), run_count=attempt
            )
        else:
            message = f"Marked {label} as failed: {silence}."
            state = make_state("Failed", message)
        await set_task_run_state(session, row.id, state)
        await write_service_log(
            session, name=TASK_LOGGER, level="ERROR", message=message,
            flow_run_id=row.flow_run_id, tenant_id=row.tenant_id, task_run_id=row.id,
        )
        outcomes.append(Outcome(row.id, state.type))
    return outcomes


async def finish_abandoned_cancellations(
    session: AsyncSession, *, cutoff: dt.datetime, limit: int
) -> list[Outcome]:
    """Cancel up to `limit` flow runs stuck in Cancelling with a heartbeat older than `cutoff`."""
    rows = (
        await session.execute(
            select(FlowRun.id, FlowRun.tenant_id, FlowRun.heartbeat)
            .join(Flow, Flow.id == FlowRun.flow_id)
            .join(FlowGroup, FlowGroup.id == Flow.flow_group_id)
            .where(FlowRun.state == "Cancelling", FlowRun.heartbeat <= cutoff, heartbeat_enabled_clause())
            .order_by(FlowRun.updated)
            .limit(limit)
            .with_for_update(of=FlowRun, skip_locked=True)
        )
    ).all()
    outcomes = []
    for run_id, tenant_id, heartbeat in rows:
        message = (
            f"Cancelled flow run {run_id}: it was Cancelling with no heartbeat since "
            f"{heartbeat.isoformat()} (cutoff {cutoff.isoformat()}), so its process is gone."
        )
        await set_flow_run_state(session, run_id, make_state("Cancelled", message))
        await write_service_log(session, name=FLOW_LOGGER, level="ERROR", message=message,
                                flow_run_id=run_id, tenant_id=tenant_id)
        outcomes.append(Outcome(run_id, "Cancelled"))
    return outcomes
