"""Task runs: looked up or created on demand (mapped children appear as the flow runs), named,
and summarised for map parents."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from headwater.server.db.models import FlowRun, Task, TaskRun, TaskRunState
from headwater.server.db.prebuilt import Prebuilt
from headwater.server.domain.errors import InvalidInput, NotFound
from headwater.server.domain.limits import MAX_NAME_LENGTH, check_text
from headwater.server.domain.lookup import require
from headwater.server.domain.states import TASK_RUN_CREATED

@dataclass(frozen=True)
class TaskRunInfo:
    id: uuid.UUID
    version: int
    state: str | None
    serialized_state: dict[str, Any] | None


async def get_or_create_task_run(
    session: AsyncSession, flow_run_id: uuid.UUID, task_id: uuid.UUID, map_index: int | None = None
) -> TaskRunInfo:
    """The task run for (flow run, task, map index), created Pending if it does not exist yet."""
    map_index = -1 if map_index is None else map_index
    if map_index < -1:
        raise InvalidInput("map_index must be -1 (not mapped) or a non-negative index.")
    found = await _find(session, flow_run_id, task_id, map_index)
    if found is not None:
        return found
    task = await session.get(Task, task_id)
    if task is None:
        raise NotFound(f"Task {task_id} not found.")
    run = await session.get(FlowRun, flow_run_id)
    if run is None:
        raise NotFound(f"Flow run {flow_run_id} not found.")
    if run.flow_id != task.flow_id:
        raise InvalidInput(f"Task {task_id} does not belong to the flow of flow run {flow_run_id}.")
    new_id = await session.scalar(
        insert(TaskRun)
        .values(
            tenant_id=run.tenant_id,
            flow_run_id=flow_run_id,
            task_id=task_id,
            map_index=map_index,
            cache_key=task.cache_key,
            version=1,
            state=TASK_RUN_CREATED.type,
            state_message=TASK_RUN_CREATED.message,
            serialized_state=TASK_RUN_CREATED.serialized,
            state_timestamp=func.clock_timestamp(),
        )
        .on_conflict_do_nothing(constraint="task_run_unique_identifier_key")
        .returning(TaskRun.id)
    )
    if new_id is not None:
        await session.execute(
            insert(TaskRunState).values(
                tenant_id=run.tenant_id,
                task_run_id=new_id,
                state=TASK_RUN_CREATED.type,
                message=TASK_RUN_CREATED.message,
                serialized_state=TASK_RUN_CREATED.serialized,
                version=1,
            )
        )
    found = await _find(session, flow_run_id, task_id, map_index)
    assert found is not None
    return found


FIND = text(
    """
    SELECT id, version, state, serialized_state FROM task_run
    WHERE flow_run_id = :flow_run_id AND task_id = :task_id AND map_index = :map_index
    """
).bindparams(
    bindparam("flow_run_id", type_=PG_UUID(as_uuid=True)), bindparam("task_id", type_=PG_UUID(as_uuid=True))
).columns(serialized_state=JSONB)


async def _find(session: AsyncSession, flow_run_id: uuid.UUID, task_id: uuid.UUID, map_index: int) -> TaskRunInfo | None:
    """Called once per task by the flow runner: one prepared statement on the session's connection."""
    connection = await session.connection()
    params = {"flow_run_id": flow_run_id, "task_id": task_id, "map_index": map_index}
    row = (await connection.execute(FIND, params)).first()
    return TaskRunInfo(*row) if row else None


INFO = text("SELECT id, version, state, serialized_state FROM task_run WHERE id = :id").bindparams(
    bindparam("id", type_=PG_UUID(as_uuid=True))
).columns(serialized_state=JSONB)


async def get_task_run_info(db: AsyncSession | AsyncConnection, task_run_id: uuid.UUID) -> TaskRunInfo:
    """Read by the flow runner after a version-lock refusal: one prepared statement, no ORM."""
    connection = await db.connection() if isinstance(db, AsyncSession) else db
    row = (await connection.execute(INFO, {"id": task_run_id})).first()
    if row is None:
        raise NotFound(f"Task run {task_run_id} not found.")  # as lookup.require words it
    return TaskRunInfo(*row)


async def set_task_run_name(session: AsyncSession, task_run_id: uuid.UUID, name: str) -> None:
    if not name or not name.strip():
        raise InvalidInput("Invalid name: a task run name must not be empty.")
    check_text(name, "name", MAX_NAME_LENGTH)
    await require(session, TaskRun, task_run_id)
    await session.execute(update(TaskRun).where(TaskRun.id == task_run_id).values(name=name))


HEARTBEAT = Prebuilt(text("UPDATE task_run SET heartbeat = now() WHERE id = :id RETURNING id").bindparams(
    bindparam("id", type_=PG_UUID(as_uuid=True))
))


async def heartbeat(db: AsyncSession | AsyncConnection, task_run_id: uuid.UUID) -> bool:
    """Sent by every running task: the bare UPDATE, built once (in autocommit, one round trip)."""
    connection = await db.connection() if isinstance(db, AsyncSession) else db
    return await HEARTBEAT.first(connection, {"id": task_run_id}) is not None


@dataclass(frozen=True)
class MappedChildren:
    min_start_time: Any
    max_end_time: Any
    state_counts: dict[str, int]


async def mapped_children(session: AsyncSession, task_run_id: uuid.UUID) -> MappedChildren:
    """Start, end and state counts of a map parent's children (empty for anything else)."""
    parent = await session.get(TaskRun, task_run_id)
    if parent is None or parent.map_index >= 0:
        return MappedChildren(None, None, {})
    rows = (
        await session.execute(
            select(TaskRun.state, func.count(), func.min(TaskRun.start_time), func.max(TaskRun.end_time))
            .where(
                TaskRun.flow_run_id == parent.flow_run_id,
                TaskRun.task_id == parent.task_id,
                TaskRun.map_index >= 0,
            )
            .group_by(TaskRun.state)
        )
    ).all()
    starts = [row[2] for row in rows if row[2] is not None]
    ends = [row[3] for row in rows if row[3] is not None]
    return MappedChildren(
        min(starts) if starts else None,
        max(ends) if ends else None,
        {str(row[0]): row[1] for row in rows},
    )
