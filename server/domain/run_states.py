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
from typing import Any, Callable

from sqlalchemy import Boolean, DateTime, Integer, TextClause, bindparam, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from headwater.server.db.prebuilt import Prebuilt
from headwater.server.db.models import TaskRun
from headwater.server.domain.errors import DomainError, InvalidInput, NotFound, VersionLockError
from headwater.server.domain.flow_settings import version_locking_enabled
from headwater.server.domain.hook_outbox import enqueue_ctes, note_enqueued, wake_delivery
from headwater.server.domain.states import (
    END_TIME_STATES, RUNNING_STATES, SCHEDULED_STATES, STATE_NAMES, State, is_finished, is_running,
)

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


def _sql_list(names: frozenset[str] | set[str]) -> str:
    """A constant set of state names as a SQL list (code constants, never input)."""
    return ", ".join("'" + name.replace("'", "''") + "'" for name in sorted(names))


def _record_sql(
    runs: str, history: str, fk: str, with_agent: bool, heartbeat_states: frozenset[str], with_hooks: bool = False,
    checked_by: str | None = None,
) -> str:
    """Update the run row and append its history row, in one statement.

    Written once as SQL text (the table names are constants, never input): building the
    equivalent expression per request cost more CPU than the database work itself. One
    `statement_timestamp()` stamps the run and its history row alike. Entering one of
    `heartbeat_states` also stamps the run's heartbeat. `with_hooks` (flow runs) also queues the
    matching cloud hooks' deliveries (hook_outbox.py) and returns how many, in the same statement.
    `checked_by` names a CTE `target` (defined in front of this one) with the locked row, the
    rule verdict `allowed` and the `serialized` state to store: the run is changed only if allowed.
    """
    agent = (
        ", agent_id = COALESCE((SELECT id FROM agent WHERE id = :agent_id), agent_id)" if with_agent else ""
    )
    columns = ("*",) if with_hooks else ("id", "tenant_id", "version", "state_timestamp", "serialized_state")
    returning = ", ".join(f"{runs}.{column}" for column in columns)
    hooks = ", " + enqueue_ctes("changed", "recorded") if with_hooks else ""
    serialized = "target.serialized" if checked_by else ":serialized"
    where = f"FROM target WHERE {runs}.id = target.id AND target.allowed" if checked_by else "WHERE id = :id"
    return f"""
        changed AS (
            UPDATE {runs} SET
                version = {runs}.version + 1,
                state = CAST(:state AS varchar),
                serialized_state = {serialized},
                state_message = CAST(:message AS varchar),
                state_result = :result,
                state_start_time = :start_time,
                state_timestamp = statement_timestamp(),
                start_time = CASE WHEN CAST(:state AS varchar) = 'Running'
                                  THEN COALESCE({runs}.start_time, statement_timestamp()) ELSE {runs}.start_time END,
                end_time = CASE WHEN CAST(:state AS varchar) IN ({_sql_list(END_TIME_STATES)})
                                THEN GREATEST({runs}.end_time, statement_timestamp()) ELSE {runs}.end_time END,
                heartbeat = CASE WHEN CAST(:state AS varchar) IN ({_sql_list(heartbeat_states)})
                                 THEN statement_timestamp() ELSE {runs}.heartbeat END
                {agent}
            {where}
            RETURNING {returning}
        ), recorded AS (
            INSERT INTO {history} ({fk}, tenant_id, timestamp, state, message, result, start_time,
                                   serialized_state, version)
            SELECT id, tenant_id, state_timestamp, CAST(:state AS varchar), CAST(:message AS varchar), :result,
                   :start_time, serialized_state, version
            FROM changed
            RETURNING *
        ){hooks}
    """


def _record_statement(sql: str, with_agent: bool, with_hooks: bool, extra: tuple = ()) -> TextClause:
    hook_count = "(SELECT count(*) FROM hooks)" if with_hooks else "0"
    return text(f"WITH {sql} SELECT version, {hook_count} AS hooks FROM recorded").bindparams(
        *_STATE_PARAMS, *([bindparam("agent_id", type_=PG_UUID(as_uuid=True))] if with_agent else []), *extra
    )


_STATE_PARAMS = (
    bindparam("id", type_=PG_UUID(as_uuid=True)),
    bindparam("serialized", type_=JSONB),
    bindparam("result", type_=JSONB),
    bindparam("start_time", type_=DateTime(timezone=True)),
)
# States after which a run may not enter Running again under version locking.
RAN_STATES = RUNNING_STATES | {name for name in STATE_NAMES if is_finished(name)}
_FLOW_RUN_HEARTBEAT_STATES = RUNNING_STATES | {"Submitted"}


# As Prefect Server: a flow run's heartbeat starts when it is submitted (Lazarus watches Submitted
# runs by it); a task run's only when it runs, so a Submitted task run has none yet.
RECORD_FLOW_RUN_STATE = _record_statement(
    _record_sql("flow_run", "flow_run_state", "flow_run_id", True, _FLOW_RUN_HEARTBEAT_STATES, with_hooks=True),
    with_agent=True, with_hooks=True,
)
RECORD_TASK_RUN_STATE = _record_statement(
    _record_sql("task_run", "task_run_state", "task_run_id", False, RUNNING_STATES), with_agent=False, with_hooks=False
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
    result = await connection.execute(statement, {"id": run_id, **_state_values(state), **extra})
    version, hooks = result.one()
    if hooks:
        note_enqueued(session)
    return version


def _state_values(state: State) -> dict[str, Any]:
    return {
        "state": state.type,
        "serialized": state.serialized,
        "message": state.message,
        "result": state.result,
        "start_time": state.start_time,
    }


async def record_flow_run_state(
    session: AsyncSession, flow_run_id: uuid.UUID, state: State, agent_id: uuid.UUID | None = None
) -> int:
    """Write the state (no rules checked: the caller did, or is the server itself); new version."""
    return await _record(session, RECORD_FLOW_RUN_STATE, flow_run_id, state, agent_id=agent_id)


async def record_task_run_state(session: AsyncSession, task_run_id: uuid.UUID, state: State) -> int:
    return await _record(session, RECORD_TASK_RUN_STATE, task_run_id, state)


# --- the rules, shared by both ways of changing a state ---------------------------------------


def _flow_run_not_found(flow_run_id: uuid.UUID) -> NotFound:
    return NotFound(f"State update failed for flow run ID {flow_run_id}: no such flow run.")


def _task_run_not_found(task_run_id: uuid.UUID) -> NotFound:
    return NotFound(f"State update failed for task run ID {task_run_id}: no such task run.")


def check_flow_run_rules(flow_run_id: uuid.UUID, row: Any, state: State, version: int | None) -> None:
    """Raise the refusal of this change of the run in `row` (its `version`, `state`, `settings`)."""
    if state.type == "Submitted" and row.state is not None and row.state not in SCHEDULED_STATES | {"Pending"}:
        raise InvalidInput(ALREADY_SUBMITTED)
    if version_locking_enabled(row.settings):
        _check_version_lock("flow run", flow_run_id, row.version, row.state, state, version)


def check_task_run_rules(task_run_id: uuid.UUID, row: Any, state: State, version: int | None) -> None:
    """As check_flow_run_rules, for a task run (`row` adds `flow_run_id` and `flow_run_state`)."""
    if state.is_running and row.flow_run_state != "Running":
        raise InvalidInput(
            f"State update failed for task run ID {task_run_id}: provided a running state but associated "
            f"flow run {row.flow_run_id} is not in a running state."
        )
    if version_locking_enabled(row.settings):
        _check_version_lock("task run", task_run_id, row.version, row.state, state, version)


def _carried_inputs(previous: dict[str, Any] | None, state: State) -> State:
    previous_inputs = (previous or {}).get("cached_inputs")
    if previous_inputs and not state.serialized.get("cached_inputs"):
        # Keep the inputs a retried task needs (Prefect Server carried them forward too).
        return State(
            state.type, state.message, state.result, state.start_time,
            {**state.serialized, "cached_inputs": previous_inputs},
        )
    return state


# --- the general path: lock, check in Python, record (any number of changes in one transaction)


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
        raise _flow_run_not_found(flow_run_id)
    check_flow_run_rules(flow_run_id, row, state, version)
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
        raise _task_run_not_found(task_run_id)
    check_task_run_rules(task_run_id, row, state, version)
    new_version = await record_task_run_state(session, task_run_id, _carried_inputs(row.serialized_state, state))
    return StateChange(task_run_id, new_version)


# --- the one-statement path: the rules folded into the recording statement -------------------
#
# One round trip in autocommit: a CTE locks the row and computes the same verdict in SQL; the
# change is recorded only if it is allowed. The statement answers the locked row's values, so a
# refusal raises exactly the general path's error (the same Python check, on the same values); no
# row means no such run. Proven equal to the general path in tests/domain/test_state_fast_path.py.

_VERSION_LOCKED = "COALESCE(g.settings -> 'version_locking_enabled' = 'true'::jsonb, false)"
_VERSION_LOCK_ALLOWS = f"""NOT ({_VERSION_LOCKED} AND (
            COALESCE(CAST(:version AS integer) <> r.version, false)
            OR (CAST(:entering_running AS boolean) AND COALESCE(r.state IN ({_sql_list(RAN_STATES)}), false))))"""
_WAITING = _sql_list(SCHEDULED_STATES | {"Pending"})

CHANGE_FLOW_RUN_STATE = Prebuilt(text(
    f"""
    WITH target AS (
        SELECT r.id, r.version, r.state, g.settings, CAST(:serialized AS jsonb) AS serialized,
               NOT (CAST(:submitting AS boolean) AND r.state IS NOT NULL AND r.state NOT IN ({_WAITING}))
               AND {_VERSION_LOCK_ALLOWS} AS allowed
        FROM flow_run r JOIN flow f ON f.id = r.flow_id JOIN flow_group g ON g.id = f.flow_group_id
        WHERE r.id = :id
        FOR UPDATE OF r
    ), {_record_sql("flow_run", "flow_run_state", "flow_run_id", True, _FLOW_RUN_HEARTBEAT_STATES,
                    with_hooks=True, checked_by="target")}
    SELECT t.version, t.state, t.settings, t.allowed,
           (SELECT version FROM recorded) AS new_version, (SELECT count(*) FROM hooks) AS hooks
    FROM target t
    """
).bindparams(
    *_STATE_PARAMS, bindparam("agent_id", type_=PG_UUID(as_uuid=True)), bindparam("version", type_=Integer),
    bindparam("submitting", type_=Boolean), bindparam("entering_running", type_=Boolean),
).columns(settings=JSONB))

# Python's truthiness of the previous `cached_inputs` (a JSON value), as the general path tests it.
_HAD_INPUTS = """COALESCE(r.serialized_state -> 'cached_inputs' NOT IN
                          ('null', 'false', '0', '""', '{}', '[]'), false)"""

CHANGE_TASK_RUN_STATE = Prebuilt(text(
    f"""
    WITH target AS (
        SELECT r.id, r.version, r.state, r.flow_run_id, fr.state AS flow_run_state, g.settings,
               CASE WHEN {_HAD_INPUTS} AND NOT CAST(:has_inputs AS boolean)
                    THEN CAST(:serialized AS jsonb)
                         || jsonb_build_object('cached_inputs', r.serialized_state -> 'cached_inputs')
                    ELSE CAST(:serialized AS jsonb) END AS serialized,
               NOT (CAST(:is_running AS boolean) AND fr.state IS DISTINCT FROM 'Running')
               AND {_VERSION_LOCK_ALLOWS} AS allowed
        FROM task_run r JOIN flow_run fr ON fr.id = r.flow_run_id JOIN flow f ON f.id = fr.flow_id
             JOIN flow_group g ON g.id = f.flow_group_id
        WHERE r.id = :id
        FOR UPDATE OF r
    ), {_record_sql("task_run", "task_run_state", "task_run_id", False, RUNNING_STATES, checked_by="target")}
    SELECT t.version, t.state, t.flow_run_id, t.flow_run_state, t.settings, t.allowed,
           (SELECT version FROM recorded) AS new_version
    FROM target t
    """
).bindparams(
    *_STATE_PARAMS, bindparam("version", type_=Integer), bindparam("has_inputs", type_=Boolean),
    bindparam("is_running", type_=Boolean), bindparam("entering_running", type_=Boolean),
).columns(settings=JSONB))


def _refused(check: Callable[..., None], run_id: uuid.UUID, row: Any, state: State, version: int | None) -> Exception:
    """The general path's error for a change the statement refused."""
    try:
        check(run_id, row, state, version)
    except DomainError as refusal:
        return refusal
    raise RuntimeError(f"the state change statement refused {run_id}, but the rules allow it")  # a bug, not input


async def change_flow_run_state(
    connection: AsyncConnection,
    flow_run_id: uuid.UUID,
    state: State,
    *,
    version: int | None = None,
    agent_id: uuid.UUID | None = None,
) -> StateChange:
    """set_flow_run_state in one statement on an autocommit connection (not for Cancelled, whose
    task runs are cancelled too: that takes the general path)."""
    if state.type == "Cancelled":
        raise ValueError("a Cancelled state takes the general path (set_flow_run_state)")
    params = {
        "id": flow_run_id, **_state_values(state), "version": version,
        "agent_id": agent_id if state.type == "Submitted" else None,
        "submitting": state.type == "Submitted", "entering_running": state.type == "Running",
    }
    row = await CHANGE_FLOW_RUN_STATE.first(connection, params)
    if row is None:
        raise _flow_run_not_found(flow_run_id)
    if not row.allowed:
        raise _refused(check_flow_run_rules, flow_run_id, row, state, version)
    if row.hooks:
        wake_delivery()  # autocommit: the outbox rows are committed already
    return StateChange(flow_run_id, row.new_version)


async def change_task_run_state(
    connection: AsyncConnection, task_run_id: uuid.UUID, state: State, *, version: int | None = None
) -> StateChange:
    """set_task_run_state in one statement on an autocommit connection."""
    params = {
        "id": task_run_id, **_state_values(state), "version": version,
        "has_inputs": bool(state.serialized.get("cached_inputs")),
        "is_running": state.is_running, "entering_running": state.type == "Running",
    }
    row = await CHANGE_TASK_RUN_STATE.first(connection, params)
    if row is None:
        raise _task_run_not_found(task_run_id)
    if not row.allowed:
        raise _refused(check_task_run_rules, task_run_id, row, state, version)
    return StateChange(task_run_id, row.new_version)
