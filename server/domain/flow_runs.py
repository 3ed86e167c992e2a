"""Flow runs: creation (with its parameter, label and run-config rules), the agent queue,
cancellation, heartbeats, renaming, deletion.

A new run starts Scheduled, with one Pending task run per task (map index -1): the Prefect flow
runner learns task ids only from those rows. An `idempotency_key` makes creation safe to retry:
the unique key (idempotency_key, flow_id) and `ON CONFLICT DO NOTHING` return the existing run
however many requests race.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ARRAY, DateTime, bindparam, delete, func, literal_column, select, text, union_all, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from headwater.server.db.engine import connection_of
from headwater.server.db.prebuilt import Prebuilt

from headwater.server.db.models import Agent, Deployment, Flow, FlowGroup, FlowRun, TaskRun
from headwater.server.domain.errors import InvalidInput, NotFound
from headwater.server.domain.limits import (
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_NAME_LENGTH,
    check_labels,
    check_payload,
    check_text,
)
from headwater.server.domain.lookup import require
from headwater.server.domain.run_names import generate_run_name
from headwater.server.domain.hook_outbox import enqueue_ctes, enqueue_for_new_runs, wake_delivery
from headwater.server.domain.run_states import set_flow_run_state
from headwater.server.domain.states import SCHEDULED_STATES, TASK_RUN_CREATED, is_finished, is_running, make_state

# How many runs one queue poll returns (Prefect Server's `queued_runs_returned_limit`).
QUEUE_LIMIT = 25
# Rows per INSERT (each run row binds ~18 parameters; asyncpg allows 32767 per statement).
INSERT_BATCH = 1000


_FLOW_FOR_RUN = """
    SELECT f.id, f.tenant_id, f.archived, f.parameters, f.run_config, f.environment, f.flow_group_id,
           g.labels AS group_labels, g.run_config AS group_run_config, g.default_parameters
    FROM flow f JOIN flow_group g ON g.id = f.flow_group_id
"""
_JSON_COLUMNS = dict.fromkeys(
    ("parameters", "run_config", "environment", "group_labels", "group_run_config", "default_parameters"), JSONB
)
FLOW_BY_ID = Prebuilt(
    text(_FLOW_FOR_RUN + " WHERE f.id = :flow_id")
    .bindparams(bindparam("flow_id", type_=PG_UUID(as_uuid=True)))
    .columns(**_JSON_COLUMNS)
)
# A deployment's flow: the pinned version, or the group's newest unarchived one.
FLOW_BY_GROUP = Prebuilt(
    text(_FLOW_FOR_RUN + " WHERE f.flow_group_id = :flow_group_id AND NOT f.archived ORDER BY f.version DESC LIMIT 1")
    .bindparams(bindparam("flow_group_id", type_=PG_UUID(as_uuid=True)))
    .columns(**_JSON_COLUMNS)
)
FLOW_BY_VERSION_GROUP = Prebuilt(text(
    _FLOW_FOR_RUN + " WHERE f.version_group_id = :version_group_id AND NOT f.archived ORDER BY f.version DESC LIMIT 1"
).columns(**_JSON_COLUMNS))


@dataclass(frozen=True, slots=True)
class FlowForRun:
    """The columns of a flow that run creation reads (named as on the Flow model); a plain
    record, as building a transient ORM instance cost more than the lookup's SQL."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    archived: bool
    parameters: list[Any] | None
    run_config: dict[str, Any] | None
    environment: dict[str, Any] | None
    flow_group_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class GroupForRun:
    """The columns of a flow group that run creation reads (named as on the FlowGroup model)."""

    id: uuid.UUID
    labels: list[str] | None
    run_config: dict[str, Any] | None
    default_parameters: dict[str, Any] | None


async def _find_flow(
    session: AsyncSession | AsyncConnection, flow_id: uuid.UUID | None, version_group_id: str | None,
    flow_group_id: uuid.UUID | None = None,
) -> tuple[FlowForRun, GroupForRun]:
    """The flow to run and its group, in one query: by id, a version group's newest active flow,
    or (for a deployment that pins no version) a flow group's newest active flow.

    Only the columns run creation reads (a flow's stored serialized form can be megabytes).
    """
    if flow_id is not None:
        statement, params, missing = FLOW_BY_ID, {"flow_id": flow_id}, f"Flow {flow_id} not found."
    elif version_group_id:
        statement, params = FLOW_BY_VERSION_GROUP, {"version_group_id": version_group_id}
        missing = f"Version group {version_group_id} has no unarchived flows."
    elif flow_group_id is not None:
        statement, params = FLOW_BY_GROUP, {"flow_group_id": flow_group_id}
        missing = f"Flow group {flow_group_id} has no unarchived flows."
    else:
        raise InvalidInput("A flow id or version group ID must be provided.")
    row = await statement.first(await connection_of(session), params)
    if row is None:
        raise NotFound(missing)
    flow = FlowForRun(
        row.id, row.tenant_id, row.archived, row.parameters, row.run_config, row.environment, row.flow_group_id
    )
    return flow, GroupForRun(row.flow_group_id, row.group_labels, row.group_run_config, row.default_parameters)


async def find_deployment_flow(session: AsyncSession, deployment: Deployment) -> tuple[FlowForRun, GroupForRun]:
    """The flow a deployment runs (its pinned version, else its group's active one) and the group."""
    return await _find_flow(session, deployment.flow_id, None, deployment.flow_group_id)


def merged_tags(*tag_lists: list[str] | None) -> list[str]:
    """Tags in order of first appearance, each once (a deployment's, then a call's)."""
    return list(dict.fromkeys(tag for tags in tag_lists for tag in tags or []))


def resolve_labels(
    labels: list[str] | None, run_config: dict | None, flow: Flow | FlowForRun, group: FlowGroup | GroupForRun | None
) -> list[str]:
    """The run's labels: the first of given labels, given run config, group labels, group run
    config, flow run config, flow environment that is set (an explicit [] counts as set)."""
    if labels is not None:
        chosen = labels
    elif run_config is not None:
        chosen = run_config.get("labels") or []
    elif group is not None and group.labels is not None:
        chosen = group.labels
    elif group is not None and group.run_config is not None:
        chosen = group.run_config.get("labels") or []
    elif flow.run_config is not None:
        chosen = flow.run_config.get("labels") or []
    elif flow.environment is not None:
        chosen = flow.environment.get("labels") or []
    else:
        chosen = []
    return sorted(str(label) for label in chosen)


def resolve_parameters(flow: Flow | FlowForRun, group: FlowGroup | GroupForRun | None, given: dict[str, Any] | None) -> dict[str, Any]:
    """Flow defaults, overlaid by the group's defaults, overlaid by the given values."""
    declared = [p for p in flow.parameters or [] if isinstance(p, dict)]
    values = {p["name"]: p["default"] for p in declared if p.get("default") is not None}
    values.update((group.default_parameters if group is not None else None) or {})
    values.update(given or {})
    missing = sorted(p["name"] for p in declared if p.get("required") and p["name"] not in values)
    if missing:
        raise InvalidInput(f"Required parameters were not supplied: {', '.join(missing)}.")
    return values


def _check_object(value: Any, what: str) -> None:
    if value is not None and not isinstance(value, dict):
        raise InvalidInput(f"`{what}` must be a JSON object.")


_CLOCK_TIMESTAMP = func.clock_timestamp()


@dataclass(frozen=True)
class NewRun:
    """A run to insert, its parameters, labels and run config already resolved."""

    flow: Flow | FlowForRun
    parameters: dict[str, Any]
    labels: list[str]
    run_config: dict[str, Any] | None
    scheduled_start_time: dt.datetime
    context: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    idempotency_key: str | None = None
    auto_scheduled: bool = False
    deployment_id: uuid.UUID | None = None
    tags: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        """The flow_run row, born in its Scheduled state (version 1), stamped by the database."""
        return {**self.values(), "state_timestamp": _CLOCK_TIMESTAMP}

    def values(self) -> dict[str, Any]:
        """The row's values the request decides (all but the state's timestamp)."""
        scheduled = make_state("Scheduled", "Flow run scheduled.", start_time=self.scheduled_start_time)
        return {
            "id": uuid.uuid4(),
            "tenant_id": self.flow.tenant_id,
            "flow_id": self.flow.id,
            "parameters": self.parameters,
            "context": self.context,
            "labels": self.labels,
            "run_config": self.run_config,
            "scheduled_start_time": self.scheduled_start_time,
            "name": self.name or generate_run_name(),
            "idempotency_key": self.idempotency_key,
            "auto_scheduled": self.auto_scheduled,
            "deployment_id": self.deployment_id,
            "tags": self.tags,
            "version": 1,
            "state": scheduled.type,
            "state_message": scheduled.message,
            "state_start_time": self.scheduled_start_time,
            "serialized_state": scheduled.serialized,
        }


async def insert_runs(session: AsyncSession, runs: list[NewRun]) -> list[uuid.UUID]:
    """Insert runs with their first state and their task runs, in a fixed number of statements.

    A run whose (idempotency_key, flow) or (deployment, idempotency_key) exists already is
    skipped; returns the ids inserted.
    """
    inserted: list[uuid.UUID] = []
    for start in range(0, len(runs), INSERT_BATCH):
        chunk = runs[start : start + INSERT_BATCH]
        connection = await session.connection()
        inserted += (
            await connection.execute(
                insert(FlowRun.__table__)
                .values([run.row() for run in chunk])
                # No target: both idempotency constraints (the id is a fresh uuid4).
                .on_conflict_do_nothing()
                .returning(FlowRun.__table__.c.id)
            )
        ).scalars().all()
    if inserted:
        await _create_history_and_task_runs(session, inserted)
    return inserted


def new_run(
    flow: Flow | FlowForRun,
    group: FlowGroup | GroupForRun | None,
    *,
    parameters: dict[str, Any] | None = None,
    labels: list[str] | None = None,
    run_config: dict[str, Any] | None = None,
    scheduled_start_time: dt.datetime | None = None,
    **extra: Any,
) -> NewRun:
    """Apply the creation rules (parameters, labels, run config precedence) to one request."""
    return NewRun(
        flow=flow,
        parameters=resolve_parameters(flow, group, parameters),
        labels=resolve_labels(labels, run_config, flow, group),
        run_config=run_config if run_config is not None else ((group.run_config if group else None) or flow.run_config),
        scheduled_start_time=scheduled_start_time or dt.datetime.now(dt.timezone.utc),
        **extra,
    )


async def create_flow_run(
    session: AsyncSession | AsyncConnection,
    *,
    flow_id: uuid.UUID | None = None,
    version_group_id: str | None = None,
    parameters: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    labels: list[str] | None = None,
    run_config: dict[str, Any] | None = None,
    scheduled_start_time: dt.datetime | None = None,
    idempotency_key: str | None = None,
    flow_run_name: str | None = None,
    deployment_id: uuid.UUID | None = None,
    tags: list[str] | None = None,
    max_bytes: int,
) -> uuid.UUID:
    """Create a Scheduled run (or return the run with this idempotency key).

    With `deployment_id`, the run takes the deployment's flow (pinned or the group's active
    version), its parameters (flow defaults < group defaults < deployment < `parameters`), its
    tags followed by `tags`, and its labels when it has some (given `labels` win).
    Parameters, context and run config may each be `max_bytes` of JSON.

    Given an autocommit connection rather than a session (the resolver's fast path), the run, its
    history, task runs and hook deliveries are one statement after the flow lookup (INSERT_RUN);
    a deployment's run takes the session path. Proven equal in tests/domain/test_create_fast_path.py.
    """
    for value, what in ((parameters, "parameters"), (context, "context"), (run_config, "run_config")):
        _check_object(value, what)
        check_payload(value, what, max_bytes)
    check_labels(labels)
    check_labels(tags, "tags")
    if labels is None and run_config is not None and isinstance(run_config.get("labels"), list):
        check_labels(run_config["labels"], "run_config.labels")  # they become the run's labels
    check_text(idempotency_key, "idempotency_key", MAX_IDEMPOTENCY_KEY_LENGTH)
    check_text(flow_run_name, "flow_run_name", MAX_NAME_LENGTH)
    deployment = None
    one_statement = isinstance(session, AsyncConnection)
    if deployment_id is not None:
        if flow_id is not None or version_group_id:
            raise InvalidInput("Give either deployment_id or flow_id / version_group_id, not both.")
        if one_statement:
            raise ValueError("a deployment's run takes the session path")
        deployment = await require(session, Deployment, deployment_id)
        flow, group = await find_deployment_flow(session, deployment)
        parameters = {**(deployment.parameters or {}), **(parameters or {})}
        if labels is None and run_config is None and deployment.labels is not None:
            labels = deployment.labels
        tags = merged_tags(deployment.tags, tags)
    else:
        flow, group = await _find_flow(session, flow_id, version_group_id)
    if flow.archived:
        # A retry of a request that created a run before the flow was archived still gets it.
        existing = await _run_with_key(session, flow.id, idempotency_key, deployment_id) if idempotency_key else None
        if existing is not None:
            return existing
        raise InvalidInput(f"Flow {flow.id} is archived.")
    run = new_run(
        flow, group, parameters=parameters, labels=labels, run_config=run_config,
        scheduled_start_time=scheduled_start_time, context=context or {}, name=flow_run_name,
        idempotency_key=idempotency_key, deployment_id=deployment_id, tags=merged_tags(tags),
    )
    if one_statement:
        return await _insert_run(session, run)
    inserted = await insert_runs(session, [run])
    if inserted:
        return inserted[0]
    # A run with this key exists (a retry, or a concurrent request that has committed by now).
    existing = await _run_with_key(session, flow.id, idempotency_key, deployment_id)
    assert existing is not None
    return existing


async def _run_with_key(
    session: AsyncSession | AsyncConnection, flow_id: uuid.UUID, key: str | None, deployment_id: uuid.UUID | None = None
) -> uuid.UUID | None:
    """The run holding this idempotency key for the flow (or, for a deployment, for the deployment)."""
    same = FlowRun.flow_id == flow_id
    if deployment_id is not None:
        same = same | (FlowRun.deployment_id == deployment_id)
    return await session.scalar(select(FlowRun.id).where(same, FlowRun.idempotency_key == key).limit(1))


async def _create_history_and_task_runs(session: AsyncSession, flow_run_ids: list[uuid.UUID]) -> None:
    """For new runs, in one statement: the Scheduled history row, one Pending task run per task
    of the run's flow, and each task run's history row."""
    await session.execute(
        text(
            """
            WITH run_states AS (
                INSERT INTO flow_run_state (tenant_id, flow_run_id, timestamp, state, message, start_time,
                                            serialized_state, version)
                SELECT tenant_id, id, state_timestamp, state, state_message, state_start_time, serialized_state, 1
                FROM flow_run WHERE id = ANY(:ids)
            ), task_runs AS (
                INSERT INTO task_run (tenant_id, flow_run_id, task_id, cache_key, map_index, version, state,
                                      serialized_state, state_message, state_timestamp)
                SELECT t.tenant_id, fr.id, t.id, t.cache_key, -1, 1, 'Pending',
                       CAST(:serialized AS jsonb), :message, clock_timestamp()
                FROM flow_run fr JOIN task t ON t.flow_id = fr.flow_id
                WHERE fr.id = ANY(:ids)
                RETURNING id, tenant_id, state_timestamp
            )
            INSERT INTO task_run_state (tenant_id, task_run_id, timestamp, state, message, serialized_state, version)
            SELECT tenant_id, id, state_timestamp, 'Pending', :message, CAST(:serialized AS jsonb), 1 FROM task_runs
            """
        ).bindparams(
            bindparam("ids", flow_run_ids, type_=ARRAY(PG_UUID(as_uuid=True))),
            message=TASK_RUN_CREATED.message,
            serialized=json.dumps(TASK_RUN_CREATED.serialized),
        )
    )
    # Prefect Server set a new run's Scheduled state like any other, so its hooks fire too.
    await enqueue_for_new_runs(session, flow_run_ids)


# The columns of a new run the request decides (the rest are the model's server defaults).
_NEW_RUN_COLUMNS = (
    "id", "tenant_id", "flow_id", "parameters", "context", "labels", "run_config", "scheduled_start_time", "name",
    "idempotency_key", "auto_scheduled", "deployment_id", "tags", "version", "state", "state_message",
    "state_start_time", "serialized_state",
)
_TASK_RUN_CREATED_VALUES = {"task_message": TASK_RUN_CREATED.message, "task_serialized": TASK_RUN_CREATED.serialized}

# One run with its Scheduled history row, its Pending task runs and their history rows, and its
# hooks' deliveries, in one statement: insert_runs + _create_history_and_task_runs +
# enqueue_for_new_runs as CTEs over the inserted row (a CTE's new rows are not visible to the
# statement's table scans, so every step reads `inserted`). ON CONFLICT on both idempotency
# constraints; then `existing` is the run holding the key, if the statement's snapshot sees it.
# Built at import, each parameter typed from the model's column.
INSERT_RUN = Prebuilt(text(
    f"""
    WITH inserted AS (
        INSERT INTO flow_run ({", ".join(_NEW_RUN_COLUMNS)}, state_timestamp)
        VALUES ({", ".join(":" + column for column in _NEW_RUN_COLUMNS)}, clock_timestamp())
        ON CONFLICT DO NOTHING
        RETURNING *
    ), run_states AS (
        INSERT INTO flow_run_state (tenant_id, flow_run_id, timestamp, state, message, start_time,
                                    serialized_state, version)
        SELECT tenant_id, id, state_timestamp, state, state_message, state_start_time, serialized_state, 1
        FROM inserted
        RETURNING *
    ), task_runs AS (
        INSERT INTO task_run (tenant_id, flow_run_id, task_id, cache_key, map_index, version, state,
                              serialized_state, state_message, state_timestamp)
        SELECT t.tenant_id, r.id, t.id, t.cache_key, -1, 1, 'Pending', :task_serialized, :task_message,
               clock_timestamp()
        FROM inserted r JOIN task t ON t.flow_id = r.flow_id
        RETURNING id, tenant_id, state_timestamp
    ), task_states AS (
        INSERT INTO task_run_state (tenant_id, task_run_id, timestamp, state, message, serialized_state, version)
        SELECT tenant_id, id, state_timestamp, 'Pending', :task_message, :task_serialized, 1 FROM task_runs
    ), {enqueue_ctes("inserted", "run_states")}
    SELECT (SELECT id FROM inserted) AS id, (SELECT count(*) FROM hooks) AS hooks,
           (SELECT id FROM flow_run
            WHERE idempotency_key = :idempotency_key
              AND (flow_id = :flow_id OR deployment_id = CAST(:deployment_id AS uuid))
            LIMIT 1) AS existing
    """
).bindparams(
    *(bindparam(column, type_=FlowRun.__table__.c[column].type) for column in _NEW_RUN_COLUMNS),
    bindparam("task_serialized", type_=TaskRun.__table__.c.serialized_state.type),
    bindparam("task_message", type_=TaskRun.__table__.c.state_message.type),
))


async def _insert_run(connection: AsyncConnection, run: NewRun) -> uuid.UUID:
    """create_flow_run's insert in one autocommit statement: the new run's id, or the key holder's."""
    found = await INSERT_RUN.first(connection, {**run.values(), **_TASK_RUN_CREATED_VALUES})
    if found.hooks:
        wake_delivery()  # committed already
    if found.id is not None:
        return found.id
    if found.existing is not None:
        return found.existing
    # The key's holder committed after this statement's snapshot was taken: read it now.
    existing = await _run_with_key(connection, run.flow.id, run.idempotency_key, run.deployment_id)
    assert existing is not None
    return existing


def _queue_statement(labelled: bool) -> Any:
    """The poll, built once: the due waiting runs and the Running runs with a due task run
    (a retry), each its own LIMITed arm in due order, merged. The waiting arm reads
    ix_flow_run_queue, whose predicate its literal (not bound) state list matches, so
    every plan can use it; the Running arm reads (state, state_start_time). Only the tenant,
    the time and the labels are bound."""
    waiting = bindparam("waiting", sorted(SCHEDULED_STATES), expanding=True, literal_execute=True)
    task_waiting = bindparam("task_waiting", sorted(SCHEDULED_STATES), expanding=True, literal_execute=True)
    tenant = bindparam("tenant_id", type_=PG_UUID(as_uuid=True))
    before = bindparam("before", type_=DateTime(timezone=True))
    label_rule = FlowRun.labels.contained_by(bindparam("labels", type_=JSONB))
    if labelled:  # unlabeled runs go only to unlabeled agents
        label_rule = label_rule & (func.jsonb_array_length(FlowRun.labels) > literal_column("0"))
    retrying_task = (
        select(literal_column("1"))
        .select_from(TaskRun)
        .where(TaskRun.flow_run_id == FlowRun.id, TaskRun.state.in_(task_waiting), TaskRun.state_start_time <= before)
        .exists()
    )
    due = select(FlowRun.id, FlowRun.state_start_time).where(
        FlowRun.tenant_id == tenant, FlowRun.state.in_(waiting), FlowRun.state_start_time <= before, label_rule
    )
    retrying = select(FlowRun.id, FlowRun.state_start_time).where(
        FlowRun.tenant_id == tenant, FlowRun.state == literal_column("'Running'"), retrying_task, label_rule
    )
    limit = literal_column(str(QUEUE_LIMIT))  # a constant, so a generic plan is costed for 25 rows
    arms = union_all(*(arm.order_by(FlowRun.state_start_time).limit(limit) for arm in (due, retrying)))
    merged = arms.subquery("queue")
    return select(merged.c.id).order_by(merged.c.state_start_time).limit(limit)


_QUEUE_LABELLED = _queue_statement(labelled=True)
_QUEUE_UNLABELLED = _queue_statement(labelled=False)


async def get_runs_in_queue(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    before: dt.datetime | None = None,
    labels: list[str] | None = None,
    agent_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Runs an agent with these labels may start now. Read-only: submission is what claims a run.

    A run qualifies when it waits in a Scheduled-family state due before `before`, or is Running
    with such a task run (a retry). Its labels must be a subset of the agent's, and unlabeled
    runs go only to unlabeled agents.
    """
    before = before or dt.datetime.now(dt.timezone.utc)
    agent_labels = sorted(set(labels or []))
    query = _QUEUE_LABELLED if agent_labels else _QUEUE_UNLABELLED
    parameters = {"tenant_id": tenant_id, "before": before, "labels": agent_labels}
    run_ids = list((await session.scalars(query, parameters)).all())
    if agent_id is not None:
        await session.execute(update(Agent).where(Agent.id == agent_id).values(last_queried=func.now()))
    return run_ids


async def cancel_flow_run(session: AsyncSession, flow_run_id: uuid.UUID) -> str | None:
    """Cancel a run: a running one is asked to stop (Cancelling, which its flow runner watches for),
    one that has not started is Cancelled at once; a finished one is left as it is."""
    run = await require(session, FlowRun, flow_run_id)
    if is_finished(run.state):
        return run.state
    if is_running(run.state):
        state = make_state("Cancelling", "Flow run is cancelling")
    else:
        state = make_state("Cancelled", "Flow run is cancelled")
    await set_flow_run_state(session, flow_run_id, state)
    return state.type


async def delete_flow_run(session: AsyncSession, flow_run_id: uuid.UUID) -> None:
    """Delete a run with its task runs, states and logs (foreign-key cascade)."""
    await require(session, FlowRun, flow_run_id)
    await session.execute(delete(FlowRun).where(FlowRun.id == flow_run_id))


async def set_flow_run_name(session: AsyncSession, flow_run_id: uuid.UUID, name: str) -> None:
    if not name or not name.strip():
        raise InvalidInput("Invalid name: a flow run name must not be empty.")
    check_text(name, "name", MAX_NAME_LENGTH)
    await require(session, FlowRun, flow_run_id)
    await session.execute(update(FlowRun).where(FlowRun.id == flow_run_id).values(name=name))


async def set_flow_run_labels(session: AsyncSession, flow_run_id: uuid.UUID, labels: list[str]) -> None:
    check_labels(labels)
    await require(session, FlowRun, flow_run_id)
    await session.execute(update(FlowRun).where(FlowRun.id == flow_run_id).values(labels=sorted(set(labels))))


async def heartbeat(db: AsyncSession | AsyncConnection, flow_run_id: uuid.UUID) -> bool:
    """Record that the run's process is alive. Returns whether the run exists."""
    # Sent every 30 s by every running flow: one prepared statement (in autocommit, one round trip).
    connection = await connection_of(db)
    return await HEARTBEAT.first(connection, {"id": flow_run_id}) is not None


HEARTBEAT = Prebuilt(text("UPDATE flow_run SET heartbeat = now() WHERE id = :id RETURNING id").bindparams(
    bindparam("id", type_=PG_UUID(as_uuid=True))
))
