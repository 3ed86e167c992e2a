"""State changes of flow runs and task runs: the run row and its history, updated together.

Each change locks the run row, checks the few rules the server enforces, bumps the run's
version and appends a history row, in the caller's transaction. The rules:

* A run is submitted once: `Submitted` is accepted only while the run waits to be picked up
  (a Scheduled-family or Pending state). The row lock makes this hold across agents and replicas.
* A task run may enter a running state only while its flow run is Running.
* With version locking enabled for the flow: a state that names a `version` must name the run's
  current one (compare-and-set), and a run that is running or finished cannot enter Running
  again, so a piece of work runs once and only once. Failures carry `VERSION_LOCKING_ERROR`,
  on which the Prefect client re-reads the state instead of failing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Agent, Flow, FlowGroup, FlowRun, FlowRunState, TaskRun, TaskRunState
from server.domain.errors import InvalidInput, NotFound, VersionLockError
from server.domain.flow_settings import version_locking_enabled
from server.domain.states import END_TIME_STATES, SCHEDULED_STATES, State, is_finished, is_running

ALREADY_SUBMITTED = "State update failed: this run has already been submitted."


@dataclass(frozen=True)
class StateChange:
    """What a state update returns to the client (`status` is "SUCCESS" unless queued)."""

    id: uuid.UUID
    version: int
    status: str = "SUCCESS"
    message: str | None = None


def _check_version_lock(
    kind: str, run_id: uuid.UUID, current_version: int, current_state: str | None, state: State, version: int | None
) -> None:
    if version is not None and version != current_version:
        raise VersionLockError(
            f"State update failed for {kind} {run_id}: version {version} is stale "
            f"(the run is at version {current_version})."
        )
    if state.type == "Running" and (is_running(current_state) or is_finished(current_state)):
        raise VersionLockError(
            f"State update failed for {kind} {run_id}: it is {current_state} and may enter Running only once."
        )


def _run_values(run_model: Any, state: State, now: ColumnElement) -> dict[str, Any]:
    """Column updates on the run row for entering `state` at `now`."""
    values: dict[str, Any] = {
        "version": run_model.version + 1,
        "state": state.type,
        "serialized_state": state.serialized,
        "state_message": state.message,
        "state_result": state.result,
        "state_start_time": state.start_time,
        "state_timestamp": now,
    }
    if state.type == "Running":
        values["start_time"] = func.coalesce(run_model.start_time, now)
    if state.type in END_TIME_STATES:
        values["end_time"] = func.greatest(run_model.end_time, now)
    if state.is_running or state.type == "Submitted":
        values["heartbeat"] = now
    return values


async def record_state(
    session: AsyncSession,
    run_model: Any,
    history_model: Any,
    fk: str,
    run_id: uuid.UUID,
    tenant_id: uuid.UUID | None,
    state: State,
    extra: dict[str, Any] | None = None,
) -> int:
    """Update the run row and append the history row, in one statement; returns the new version.

    The caller has checked the rules (or is the server itself creating the state). Run as Core
    on the session's connection: this is the hottest write path and the ORM adds nothing here.
    """
    runs = run_model.__table__
    history = history_model.__table__
    now = func.clock_timestamp()
    changed = (
        update(runs)
        .where(runs.c.id == run_id)
        .values(**_run_values(runs.c, state, now), **(extra or {}))
        .returning(runs.c.id, runs.c.version, runs.c.state_timestamp)
        .cte("changed")
    )
    statement = (
        insert(history)
        .from_select(
            [fk, "tenant_id", "timestamp", "state", "message", "result", "start_time", "serialized_state", "version"],
            select(
                changed.c.id,
                literal(tenant_id, history.c.tenant_id.type),
                changed.c.state_timestamp,
                literal(state.type),
                literal(state.message, history.c.message.type),
                literal(state.result, JSONB),
                literal(state.start_time, history.c.start_time.type),
                literal(state.serialized, JSONB),
                changed.c.version,
            ),
        )
        .returning(history.c.version)
    )
    connection = await session.connection()
    return (await connection.execute(statement)).scalar_one()


async def set_flow_run_state(
    session: AsyncSession,
    flow_run_id: uuid.UUID,
    state: State,
    *,
    version: int | None = None,
    agent_id: uuid.UUID | None = None,
) -> StateChange:
    connection = await session.connection()
    row = (
        await connection.execute(
            select(FlowRun.version, FlowRun.state, FlowRun.tenant_id, FlowGroup.settings)
            .join(Flow, Flow.id == FlowRun.flow_id)
            .join(FlowGroup, FlowGroup.id == Flow.flow_group_id)
            .where(FlowRun.id == flow_run_id)
            .with_for_update(of=FlowRun)
        )
    ).first()
    if row is None:
        raise NotFound(f"State update failed for flow run ID {flow_run_id}: no such flow run.")
    if state.type == "Submitted" and row.state is not None and row.state not in SCHEDULED_STATES | {"Pending"}:
        raise InvalidInput(ALREADY_SUBMITTED)
    if version_locking_enabled(row.settings):
        _check_version_lock("flow run", flow_run_id, row.version, row.state, state, version)
    extra: dict[str, Any] = {}
    if state.type == "Submitted" and agent_id is not None:
        extra["agent_id"] = select(Agent.id).where(Agent.id == agent_id).scalar_subquery()
    new_version = await record_state(
        session, FlowRun, FlowRunState, "flow_run_id", flow_run_id, row.tenant_id, state, extra
    )
    if state.type == "Cancelled":
        await _cancel_unfinished_task_runs(session, flow_run_id, state)
    return StateChange(flow_run_id, new_version)


async def _cancel_unfinished_task_runs(session: AsyncSession, flow_run_id: uuid.UUID, state: State) -> None:
    rows = await session.execute(
        select(TaskRun.id, TaskRun.state, TaskRun.tenant_id)
        .where(TaskRun.flow_run_id == flow_run_id)
        .with_for_update()
    )
    for task_run_id, current, tenant_id in rows.all():
        if not is_finished(current):
            await record_state(session, TaskRun, TaskRunState, "task_run_id", task_run_id, tenant_id, state)


async def set_task_run_state(
    session: AsyncSession, task_run_id: uuid.UUID, state: State, *, version: int | None = None
) -> StateChange:
    connection = await session.connection()
    row = (
        await connection.execute(
            select(
                TaskRun.version,
                TaskRun.state,
                TaskRun.serialized_state,
                TaskRun.tenant_id,
                TaskRun.flow_run_id,
                FlowRun.state.label("flow_run_state"),
                FlowGroup.settings,
            )
            .join(FlowRun, FlowRun.id == TaskRun.flow_run_id)
            .join(Flow, Flow.id == FlowRun.flow_id)
            .join(FlowGroup, FlowGroup.id == Flow.flow_group_id)
            .where(TaskRun.id == task_run_id)
            .with_for_update(of=TaskRun)
        )
    ).first()
    if row is None:
        raise NotFound(f"State update failed for task run ID {task_run_id}: no such task run.")
    if state.is_running and row.flow_run_state != "Running":
        raise InvalidInput(
            f"State update failed for task run ID {task_run_id}: provided a running state but associated "
            f"flow run {row.flow_run_id} is not in a running state."
        )
    if version_locking_enabled(row.settings):
        _check_version_lock("task run", task_run_id, row.version, row.state, state, version)
    previous_inputs = (row.serialized_state or {}).get("cached_inputs")
    if previous_inputs and not state.serialized.get("cached_inputs"):
        # Keep the inputs a retried task needs (Prefect Server carried them forward too).
        state = State(
            state.type, state.message, state.result, state.start_time,
            {**state.serialized, "cached_inputs": previous_inputs},
        )
    new_version = await record_state(session, TaskRun, TaskRunState, "task_run_id", task_run_id, row.tenant_id, state)
    return StateChange(task_run_id, new_version)
