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

from sqlalchemy import DateTime, TextClause, bindparam, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession

from headwater.server.db.models import TaskRun
from headwater.server.domain.errors import InvalidInput, NotFound, VersionLockError
from headwater.server.domain.flow_settings import version_locking_enabled
from headwater.server.domain.hook_outbox import enqueue_ctes, note_enqueued
from headwater.server.domain.states import END_TIME_STATES, RUNNING_STATES, SCHEDULED_STATES, State, is_finished, is_running

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


def _record_statement(
    runs: str, history: str, fk: str, with_agent: bool, heartbeat_states: frozenset[str], with_hooks: bool = False
) -> TextClause:
    """Update the run row and append its history row, in one statement.

    Written once as SQL text (the table names are constants, never input): building the
    equivalent expression per request cost more CPU than the database work itself. One
    `statement_timestamp()` stamps the run and its history row alike. Entering one of
    `heartbeat_states` also stamps the run's heartbeat. `with_hooks` (flow runs) also queues the
    matching cloud hooks' deliveries (hook_outbox.py) and returns how many, in the same statement.
    """
    agent = (
        ", agent_id = COALESCE((SELECT id FROM agent WHERE id = :agent_id), agent_id)" if with_agent else ""
    )
    returning = "*" if with_hooks else "id, tenant_id, version, state_timestamp"
    hooks = ", " + enqueue_ctes("changed", "recorded") if with_hooks else ""
    hook_count = "(SELECT count(*) FROM hooks)" if with_hooks else "0"
    return text(
        f"""
        WITH changed AS (
            UPDATE {runs} SET
                version = version + 1,
                state = CAST(:state AS varchar),
                serialized_state = :serialized,
                state_message = CAST(:message AS varchar),
                state_result = :result,
                state_start_time = :start_time,
                state_timestamp = statement_timestamp(),
                start_time = CASE WHEN CAST(:state AS varchar) = 'Running'
                                  THEN COALESCE(start_time, statement_timestamp()) ELSE start_time END,
                end_time = CASE WHEN CAST(:state AS varchar) IN :end_states
                                THEN GREATEST(end_time, statement_timestamp()) ELSE end_time END,
                heartbeat = CASE WHEN CAST(:state AS varchar) IN :heartbeat_states
                                 THEN statement_timestamp() ELSE heartbeat END
                {agent}
            WHERE id = :id
            RETURNING {returning}
        ), recorded AS (
            INSERT INTO {history} ({fk}, tenant_id, timestamp, state, message, result, start_time,
                                   serialized_state, version)
            SELECT id, tenant_id, state_timestamp, CAST(:state AS varchar), CAST(:message AS varchar), :result, :start_time, :serialized, version
            FROM changed
            RETURNING *
        ){hooks}
        SELECT version, {hook_count} AS hooks FROM recorded
        """
    ).bindparams(
        bindparam("id", type_=PG_UUID(as_uuid=True)),
        bindparam("serialized", type_=JSONB),
        bindparam("result", type_=JSONB),
        bindparam("start_time", type_=DateTime(timezone=True)),
        bindparam("end_states", value=sorted(END_TIME_STATES), expanding=True),
        bindparam("heartbeat_states", value=sorted(heartbeat_states), expanding=True),
        *([bindparam("agent_id", type_=PG_UUID(as_uuid=True))] if with_agent else []),
    )


# As Prefect Server: a flow run's heartbeat starts when it is submitted (Lazarus watches Submitted
# runs by it); a task run's only when it runs, so a Submitted task run has none yet.
RECORD_FLOW_RUN_STATE = _record_statement(
    "flow_run", "flow_run_state", "flow_run_id", with_agent=True, heartbeat_states=RUNNING_STATES | {"Submitted"},
    with_hooks=True,
)
RECORD_TASK_RUN_STATE = _record_statement(
    "task_run", "task_run_state", "task_run_id", with_agent=False, heartbeat_states=RUNNING_STATES
)

LOCK_FLOW_RUN = text(
    """
    SELECT fr.version, fr.state, g.settings
    FROM flow_run fr JOIN flow f ON f.id = fr.flow_id JOIN flow_group g ON g.id = f.flow_group_id
    WHERE fr.id = :id
    FOR UPDATE OF fr
    """
).bindparams(bindparam("id", type_=PG_UUID(as_uuid=True))).columns(settings=JSONB)

LOCK_TASK_RUN = text(
    """
    SELECT tr.version, tr.state, tr.serialized_state, tr.flow_run_id, fr.state AS flow_run_state, g.settings
    FROM task_run tr JOIN flow_run fr ON fr.id = tr.flow_run_id JOIN flow f ON f.id = fr.flow_id
         JOIN flow_group g ON g.id = f.flow_group_id
    WHERE tr.id = :id
    FOR UPDATE OF tr
    """
).bindparams(bindparam("id", type_=PG_UUID(as_uuid=True))).columns(settings=JSONB, serialized_state=JSONB)


async def _record(session: AsyncSession, statement: TextClause, run_id: uuid.UUID, state: State, **extra: Any) -> int:
    """The new version; a change that queued cloud-hook deliveries wakes the delivery service at commit."""
    connection = await session.connection()
    result = await connection.execute(
        statement,
        {
            "id": run_id,
            "state": state.type,
            "serialized": state.serialized,
            "message": state.message,
            "result": state.result,
            "start_time": state.start_time,
            **extra,
        },
    )
    version, hooks = result.one()
    if hooks:
        note_enqueued(session)
    return version


async def record_flow_run_state(
    session: AsyncSession, flow_run_id: uuid.UUID, state: State, agent_id: uuid.UUID | None = None
) -> int:
    """Write the state (no rules checked: the caller did, or is the server itself); new version."""
    return await _record(session, RECORD_FLOW_RUN_STATE, flow_run_id, state, agent_id=agent_id)


async def record_task_run_state(session: AsyncSession, task_run_id: uuid.UUID, state: State) -> int:
    return await _record(session, RECORD_TASK_RUN_STATE, task_run_id, state)


async def set_flow_run_state(
    session: AsyncSession,
    flow_run_id: uuid.UUID,
    state: State,
    *,
    version: int | None = None,
    agent_id: uuid.UUID | None = None,
) -> StateChange:
    connection = await session.connection()
    row = (await connection.execute(LOCK_FLOW_RUN, {"id": flow_run_id})).first()
    if row is None:
        raise NotFound(f"State update failed for flow run ID {flow_run_id}: no such flow run.")
    if state.type == "Submitted" and row.state is not None and row.state not in SCHEDULED_STATES | {"Pending"}:
        raise InvalidInput(ALREADY_SUBMITTED)
    if version_locking_enabled(row.settings):
        _check_version_lock("flow run", flow_run_id, row.version, row.state, state, version)
    submitted_by = agent_id if state.type == "Submitted" else None
    new_version = await record_flow_run_state(session, flow_run_id, state, agent_id=submitted_by)
    if state.type == "Cancelled":
        await _cancel_unfinished_task_runs(session, flow_run_id, state)
    return StateChange(flow_run_id, new_version)


async def _cancel_unfinished_task_runs(session: AsyncSession, flow_run_id: uuid.UUID, state: State) -> None:
    rows = await session.execute(
        select(TaskRun.id, TaskRun.state).where(TaskRun.flow_run_id == flow_run_id).with_for_update()
    )
    for task_run_id, current in rows.all():
        if not is_finished(current):
            await record_task_run_state(session, task_run_id, state)


async def set_task_run_state(
    session: AsyncSession, task_run_id: uuid.UUID, state: State, *, version: int | None = None
) -> StateChange:
    connection = await session.connection()
    row = (await connection.execute(LOCK_TASK_RUN, {"id": task_run_id})).first()
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
    new_version = await record_task_run_state(session, task_run_id, state)
    return StateChange(task_run_id, new_version)
