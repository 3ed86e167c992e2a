"""Flow registration and the flow lifecycle: versions, version groups, archiving, deletion.

Versioning, as Prefect Server defined it: flows registered under the same project and name
share a version group (a `flow_group` whose `name` is the version group id); each registration
gets the next version number and archives the group's other versions, so a group has at most
one active flow. An `idempotency_key` equal to the group's last key returns the existing flow.
Concurrent registrations of one group take a transaction-scoped advisory lock, so version
numbers never collide, even across replicas.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Callable

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from headwater.server.db.models import Edge, Flow, FlowGroup, FlowRun, Project, Task
from headwater.server.db.sql import jsonb_merge
from headwater.server.domain import flow_settings, schedules
from headwater.server.domain.errors import InvalidInput, NotFound
from headwater.server.domain.lookup import require
from headwater.server.domain.run_states import set_flow_run_state
from headwater.server.domain.states import make_state
from headwater.server.domain.serialized_flow import (
    EdgeSpec,
    TaskSpec,
    check_count,
    check_edges,
    parse_edges,
    parse_flow,
    parse_tasks,
)

# Rows per execute when registering tasks and edges: bounds the CPU work between two awaits.
# (Each row is its own bind of one prepared statement, so Postgres' 32,767 bind-parameter
# limit per statement never applies.)
INSERT_BATCH = 500


async def _advisory_lock(session: AsyncSession, key: str) -> None:
    """Serialise transactions that share `key` until they commit (works across replicas)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})


async def _lock_version_group(session: AsyncSession, tenant_id: uuid.UUID, version_group_id: str) -> None:
    await _advisory_lock(session, f"version-group:{tenant_id}:{version_group_id}")


async def _detect_version_group(session: AsyncSession, project_id: uuid.UUID, name: str) -> str | None:
    """The version group of the newest flow with this name in this project, if any."""
    return await session.scalar(
        select(Flow.version_group_id)
        .where(Flow.project_id == project_id, Flow.name == name)
        .order_by(Flow.created.desc())
        .limit(1)
    )


async def _latest_active_flow(session: AsyncSession, tenant_id: uuid.UUID, version_group_id: str) -> uuid.UUID | None:
    return await session.scalar(
        select(Flow.id)
        .where(
            Flow.tenant_id == tenant_id,
            Flow.version_group_id == version_group_id,
            Flow.archived.is_(False),
        )
        .order_by(Flow.version.desc())
        .limit(1)
    )


async def _flow_group_for_registration(
    session: AsyncSession, tenant_id: uuid.UUID, version_group_id: str, idempotency_key: str | None
) -> tuple[FlowGroup, uuid.UUID | None]:
    """(the group, an existing flow id when the idempotency key matches the group's last key)."""
    group = await session.scalar(
        select(FlowGroup)
        .where(FlowGroup.tenant_id == tenant_id, FlowGroup.name == version_group_id)
        .order_by(FlowGroup.created)
        .limit(1)
    )
    if group is None:
        group = FlowGroup(
            tenant_id=tenant_id,
            name=version_group_id,
            settings={**flow_settings.DEFAULTS, "idempotency_key": idempotency_key},
            default_parameters={},
        )
        session.add(group)
        await session.flush()
        return group, None
    if idempotency_key and (group.settings or {}).get("idempotency_key") == idempotency_key:
        existing = await _latest_active_flow(session, tenant_id, version_group_id)
        if existing is not None:
            return group, existing
    await session.execute(
        update(FlowGroup)
        .where(FlowGroup.id == group.id)
        .values(settings=jsonb_merge(FlowGroup.settings, {"idempotency_key": idempotency_key}))
    )
    return group, None


async def create_flow(
    session: AsyncSession,
    project_id: uuid.UUID,
    serialized_flow: Any,
    *,
    version_group_id: str | None = None,
    set_schedule_active: bool = True,
    description: str | None = None,
    idempotency_key: str | None = None,
    max_tasks: int | None = None,
    max_edges: int | None = None,
) -> uuid.UUID:
    """Register a serialized flow as a new version; returns the flow id (or the existing one).

    A flow with more than `max_tasks` tasks or `max_edges` edges, or whose graph can never run,
    is refused before any row is written.
    """
    # Checking a big graph is CPU work: off the event loop, so other requests keep being answered.
    spec = await asyncio.to_thread(parse_flow, serialized_flow, max_tasks, max_edges)
    await schedules.validate_schedule(spec.schedule)
    project = await require(session, Project, project_id)
    tenant_id = project.tenant_id
    if version_group_id is not None and not version_group_id.strip():
        raise InvalidInput("`version_group_id` must not be empty.")
    if not version_group_id:
        # Two first registrations of one name must not both start a new group.
        await _advisory_lock(session, f"flow-name:{project_id}:{spec.name}")
    version_group_id = (
        version_group_id
        or await _detect_version_group(session, project_id, spec.name)
        or str(uuid.uuid4())
    )
    await _lock_version_group(session, tenant_id, version_group_id)
    group, existing = await _flow_group_for_registration(session, tenant_id, version_group_id, idempotency_key)
    if existing is not None:
        return existing

    last_version = await session.scalar(
        select(func.max(Flow.version)).where(
            Flow.tenant_id == tenant_id, Flow.version_group_id == version_group_id
        )
    )
    flow = Flow(
        tenant_id=tenant_id,
        project_id=project_id,
        flow_group_id=group.id,
        version=(last_version or 0) + 1,
        version_group_id=version_group_id,
        name=spec.name,
        description=description,
        environment=spec.environment,
        run_config=spec.run_config,
        parameters=spec.parameters,
        storage=spec.storage,
        core_version=spec.core_version,
        settings={},
        serialized_flow=spec.raw,
        schedule=spec.schedule,
        is_schedule_active=False,
        archived=False,
    )
    session.add(flow)
    await session.flush()
    flags = await asyncio.to_thread(task_flags, spec.tasks, spec.edges, spec.reference_slugs)
    # A new flow has no tasks yet: their ids are chosen here, so the edges need no lookup.
    ids_by_slug = await asyncio.to_thread(_new_task_ids, spec.tasks)
    await insert_tasks(session, flow.id, tenant_id, spec.tasks, flags, ids_by_slug)
    await insert_edges(session, flow.id, tenant_id, spec.edges, ids_by_slug)

    others = await session.scalars(
        select(Flow.id).where(
            Flow.tenant_id == tenant_id,
            Flow.version_group_id == version_group_id,
            Flow.id != flow.id,
            Flow.archived.is_(False),
        )
    )
    for other_id in others.all():
        await archive_flow(session, other_id)

    if set_schedule_active and (spec.schedule is not None or group.schedule is not None):
        # A flow that cannot be auto-scheduled (required parameters) still registers; its
        # schedule simply stays inactive, as in Prefect Server. So does one with no schedule
        # (Prefect Server too): only an explicit `set_schedule_active` waits for one.
        await schedules.activate(session, flow.id, raise_on_required_parameters=False)
    return flow.id


def _new_task_ids(tasks: list[TaskSpec]) -> dict[str, uuid.UUID]:
    return {task.slug: uuid.uuid4() for task in tasks}


def task_flags(tasks: list[TaskSpec], edges: list[EdgeSpec], reference_slugs: list[str]) -> dict[str, dict]:
    """Each task's root / terminal / reference / mapped flags, computed from the flow's edges.

    Reference tasks are the flow's declared `reference_tasks`, or its terminal tasks when it
    declares none (Prefect Core's rule for deciding a flow run's final state). Computed here,
    before the insert, so registration needs no UPDATE over the flow's tasks.
    """
    upstream = {edge.upstream_slug for edge in edges}
    downstream = {edge.downstream_slug for edge in edges}
    mapped = {edge.downstream_slug for edge in edges if edge.mapped}
    references = set(reference_slugs)
    flags = {}
    for task in tasks:
        terminal = task.slug not in upstream
        flags[task.slug] = {
            "is_root_task": task.slug not in downstream,
            "is_terminal_task": terminal,
            "is_reference_task": task.slug in references if references else terminal,
            "mapped": task.slug in mapped,
        }
    return flags


async def insert_tasks(
    session: AsyncSession,
    flow_id: uuid.UUID,
    tenant_id: uuid.UUID | None,
    tasks: list[TaskSpec],
    flags: dict[str, dict] | None = None,
    ids_by_slug: dict[str, uuid.UUID] | None = None,
) -> None:
    """Insert task rows (with their `flags` and `ids` by slug, when known); a slug already
    registered for the flow is left as it is."""
    no_flags: dict = {}

    def row(task: TaskSpec) -> dict:
        return {
            "id": ids_by_slug[task.slug] if ids_by_slug else uuid.uuid4(),
            "flow_id": flow_id,
            "tenant_id": tenant_id,
            "slug": task.slug,
            "name": task.name,
            "type": task.type,
            "tags": task.tags,
            "max_retries": task.max_retries,
            "retry_delay": task.retry_delay,
            "trigger": task.trigger,
            "cache_key": task.cache_key,
            "auto_generated": task.auto_generated,
            **(flags or no_flags).get(task.slug, no_flags),
        }

    await _insert_ignoring_duplicates(session, Task, tasks, row, "task_flow_id_slug_key")


async def _insert_ignoring_duplicates(
    session: AsyncSession, model: Any, items: list, row: Callable[[Any], dict], constraint: str
) -> None:
    """Insert `row(item)` for every item, `INSERT_BATCH` rows per execute, from one statement
    compiled once and sent as a prepared executemany (every row must have the same keys).

    Compiling a `.values([...])` statement per batch instead cost ~0.5 s per 1,000 rows. Rows
    are built batch by batch, so each stretch of CPU work between two awaits stays short and
    the event loop keeps answering other requests.
    """
    statement = insert(model.__table__).on_conflict_do_nothing(constraint=constraint)
    for start in range(0, len(items), INSERT_BATCH):
        await session.execute(statement, [row(item) for item in items[start : start + INSERT_BATCH]])


async def insert_edges(
    session: AsyncSession,
    flow_id: uuid.UUID,
    tenant_id: uuid.UUID | None,
    edges: list[EdgeSpec],
    ids_by_slug: dict[str, uuid.UUID] | None = None,
) -> None:
    """Insert edges, mapping task slugs to task ids (`ids_by_slug`, else the flow's stored tasks);
    `check_edges` has checked that every slug is one of the flow's tasks."""
    if not edges:
        return
    if ids_by_slug is None:
        table = Task.__table__
        found = await session.execute(select(table.c.slug, table.c.id).where(table.c.flow_id == flow_id))
        ids_by_slug = {slug: task_id for slug, task_id in found.all()}

    def row(edge: EdgeSpec) -> dict:
        return {
            "flow_id": flow_id,
            "tenant_id": tenant_id,
            "upstream_task_id": ids_by_slug[edge.upstream_slug],
            "downstream_task_id": ids_by_slug[edge.downstream_slug],
            "key": edge.key,
            "mapped": edge.mapped,
        }

    await _insert_ignoring_duplicates(session, Edge, edges, row, "edge_flow_id_task_ids_key")


REFRESH_TASK_FLAGS = text(
    """
    WITH downstream AS (
        SELECT downstream_task_id AS id, bool_or(mapped) AS mapped
        FROM edge WHERE flow_id = :flow_id GROUP BY downstream_task_id
    ), upstream AS (
        SELECT DISTINCT upstream_task_id AS id FROM edge WHERE flow_id = :flow_id
    ), reference AS (
        SELECT DISTINCT slug FROM unnest(CAST(:reference_slugs AS text[])) AS slug
    ), flags AS (
        SELECT t.id,
               d.id IS NULL AS is_root_task,
               u.id IS NULL AS is_terminal_task,
               COALESCE(d.mapped, false) AS mapped,
               CASE WHEN cardinality(CAST(:reference_slugs AS text[])) > 0 THEN r.slug IS NOT NULL
                    ELSE u.id IS NULL END AS is_reference_task
        FROM task t
        LEFT JOIN downstream d ON d.id = t.id
        LEFT JOIN upstream u ON u.id = t.id
        LEFT JOIN reference r ON r.slug = t.slug
        WHERE t.flow_id = :flow_id
    )
    UPDATE task t SET
        is_root_task = f.is_root_task,
        is_terminal_task = f.is_terminal_task,
        mapped = f.mapped,
        is_reference_task = f.is_reference_task
    FROM flags f
    WHERE t.id = f.id
      AND (t.is_root_task, t.is_terminal_task, t.mapped, t.is_reference_task)
          IS DISTINCT FROM (f.is_root_task, f.is_terminal_task, f.mapped, f.is_reference_task)
    """
)


def _reference_slugs(serialized_flow: dict[str, Any] | None) -> list[str]:
    references = (serialized_flow or {}).get("reference_tasks") or []
    slugs = [r.get("slug") if isinstance(r, dict) else r for r in references] if isinstance(references, list) else []
    return [slug for slug in slugs if isinstance(slug, str)]


async def refresh_task_flags(session: AsyncSession, flow_id: uuid.UUID, reference_slugs: list[str]) -> None:
    """Recompute root / terminal / reference / mapped flags from the flow's stored edges, after tasks
    or edges arrive in separate requests (`create_flow` computes them up front with `task_flags`).

    One set-based UPDATE (aggregates joined once, not subqueries per task) that writes only the
    tasks whose flags change. The previous form re-read the flow's whole serialized JSON for every
    task, which made a 10,000-task registration quadratic.
    """
    await session.execute(REFRESH_TASK_FLAGS, {"flow_id": flow_id, "reference_slugs": reference_slugs})


async def _serialized_flow(session: AsyncSession, flow_id: uuid.UUID) -> dict[str, Any]:
    """The stored serialized flow (a deferred column: loading a Flow leaves it out)."""
    stored = await session.scalar(select(Flow.serialized_flow).where(Flow.id == flow_id))
    return stored if isinstance(stored, dict) else {}


async def _task_slugs(session: AsyncSession, flow_id: uuid.UUID) -> set[str]:
    return set((await session.scalars(select(Task.slug).where(Task.flow_id == flow_id))).all())


async def register_tasks(
    session: AsyncSession, flow_id: uuid.UUID, serialized_tasks: Any, *, max_tasks: int | None = None
) -> None:
    """Add tasks to a registered flow (the client sends them in batches after `create_flow`).

    A slug the flow already has is kept as it is (a retried batch changes nothing); the flow may
    not grow beyond `max_tasks` tasks.
    """
    if isinstance(serialized_tasks, list):
        check_count("tasks", len(serialized_tasks), max_tasks, "HEADWATER_MAX_FLOW_TASKS")
    tasks = parse_tasks(serialized_tasks)
    flow = await require(session, Flow, flow_id, for_update=True)
    existing = await _task_slugs(session, flow_id)
    added_tasks = [task for task in tasks if task.slug not in existing]
    check_count("tasks", len(existing) + len(added_tasks), max_tasks, "HEADWATER_MAX_FLOW_TASKS")
    await insert_tasks(session, flow_id, flow.tenant_id, added_tasks)
    stored = await _serialized_flow(session, flow_id)
    known = {t.get("slug") for t in stored.get("tasks", []) if isinstance(t, dict)}
    added = [task.raw for task in tasks if task.slug not in known]
    if added:
        serialized = {**stored, "tasks": [*stored.get("tasks", []), *added]}
        await session.execute(update(Flow).where(Flow.id == flow_id).values(serialized_flow=serialized))
    if added_tasks:
        await refresh_task_flags(session, flow_id, _reference_slugs(stored))


async def register_edges(
    session: AsyncSession, flow_id: uuid.UUID, serialized_edges: Any, *, max_edges: int | None = None
) -> None:
    """Add edges to a registered flow. The flow's whole graph (stored edges and these) is checked:
    edges between its own tasks only, no self edges, no cycles, at most `max_edges` edges."""
    if isinstance(serialized_edges, list):
        check_count("edges", len(serialized_edges), max_edges, "HEADWATER_MAX_FLOW_EDGES")
    edges = parse_edges(serialized_edges)
    flow = await require(session, Flow, flow_id, for_update=True)
    if not edges:
        return
    upstream, downstream = Task.__table__.alias("up"), Task.__table__.alias("down")
    stored = set(
        (
            await session.execute(
                select(upstream.c.slug, downstream.c.slug)
                .select_from(Edge)
                .join(upstream, upstream.c.id == Edge.upstream_task_id)
                .join(downstream, downstream.c.id == Edge.downstream_task_id)
                .where(Edge.flow_id == flow_id)
            )
        ).all()
    )
    graph = stored | {(edge.upstream_slug, edge.downstream_slug) for edge in edges}
    check_count("edges", len(graph), max_edges, "HEADWATER_MAX_FLOW_EDGES")
    check_edges(await _task_slugs(session, flow_id), list(graph))
    await insert_edges(session, flow_id, flow.tenant_id, edges)
    await refresh_task_flags(session, flow_id, _reference_slugs(await _serialized_flow(session, flow_id)))


async def archive_flow(session: AsyncSession, flow_id: uuid.UUID) -> None:
    """Archive a flow: it keeps its history but gets no new runs. Its future auto-scheduled runs
    are removed and its ad-hoc runs still waiting to start are cancelled, so no agent starts an
    archived flow. Archiving an archived flow changes nothing."""
    await require(session, Flow, flow_id)
    await session.execute(update(Flow).where(Flow.id == flow_id, Flow.archived.is_(False)).values(archived=True))
    await schedules.remove_future_runs(session, [flow_id])
    waiting = await session.scalars(
        select(FlowRun.id).where(
            FlowRun.flow_id == flow_id, FlowRun.state == "Scheduled", FlowRun.auto_scheduled.is_(False)
        )
    )
    cancelled = make_state("Cancelled", f"Flow {flow_id} was archived.")
    for run_id in waiting.all():
        await set_flow_run_state(session, run_id, cancelled)


async def unarchive_flow(session: AsyncSession, flow_id: uuid.UUID) -> None:
    """Make an archived version the active one again (headwater's addition).

    The group's other active version is archived, keeping "one active flow per version group";
    an active schedule resumes.
    """
    flow = await require(session, Flow, flow_id, for_update=True)
    if not flow.archived:
        return
    await _lock_version_group(session, flow.tenant_id, flow.version_group_id or "")
    others = await session.scalars(
        select(Flow.id).where(
            Flow.tenant_id == flow.tenant_id,
            Flow.version_group_id == flow.version_group_id,
            Flow.id != flow_id,
            Flow.archived.is_(False),
        )
    )
    for other_id in others.all():
        await archive_flow(session, other_id)
    await session.execute(update(Flow).where(Flow.id == flow_id).values(archived=False))
    if flow.is_schedule_active:
        await schedules.activate(session, flow_id, raise_on_required_parameters=False)


async def delete_flow(session: AsyncSession, flow_id: uuid.UUID) -> None:
    """Delete a flow with its tasks, edges and runs (foreign-key cascade); its group stays."""
    await require(session, Flow, flow_id)
    await session.execute(delete(Flow).where(Flow.id == flow_id))


async def update_flow_project(session: AsyncSession, flow_id: uuid.UUID, project_id: uuid.UUID) -> uuid.UUID:
    flow = await require(session, Flow, flow_id)
    project = await require(session, Project, project_id)
    if project.tenant_id != flow.tenant_id:
        raise NotFound(f"Project {project_id} not found.")
    await session.execute(update(Flow).where(Flow.id == flow_id).values(project_id=project_id))
    return flow_id
