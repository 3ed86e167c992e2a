"""Auto-scheduling deployments: the next N runs of every active deployment schedule, like flows.

Each run's idempotency key is `deployment:<deployment id>:<UTC ISO time>`, and
(deployment_id, idempotency_key) is unique in the database, so a pass is idempotent and several
replicas may run it at once (rows are also locked `SKIP LOCKED`, so two replicas do not evaluate
the same deployment). Runs deleted because the schedule was paused come back at identical times.
A deployment that pins no version runs its group's newest unarchived flow; archiving a version
deletes that version's future runs, and the next pass schedules them for the new one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from headwater.server.db.models import Deployment, Flow, FlowGroup, FlowRun
from headwater.server.domain.clocks import ClockEvent, ScheduleError
from headwater.server.domain.deployment_schedules import cached_schedule
from headwater.server.domain.errors import InvalidInput
from headwater.server.domain.flow_runs import NewRun, insert_runs, new_run
from headwater.server.domain.scheduling import DEFAULT_MAX_RUNS, BatchResult

logger = logging.getLogger("headwater.scheduler")
_REPORTED: set[tuple[uuid.UUID, str]] = set()
_REPORTED_LIMIT = 10_000


def deployment_run_key(deployment_id: uuid.UUID, start_time: dt.datetime) -> str:
    return f"deployment:{deployment_id}:{start_time.astimezone(dt.timezone.utc).isoformat()}"


def _warn_once(deployment: Deployment, problem: str) -> None:
    key = (deployment.id, problem)
    if key in _REPORTED:
        return
    if len(_REPORTED) >= _REPORTED_LIMIT:
        _REPORTED.clear()
    _REPORTED.add(key)
    logger.warning("deployment %s (%s) %s", deployment.id, deployment.name, problem)


def _evaluate(schedules: list[list[Any]], now: dt.datetime, max_runs: int) -> list[list[ClockEvent] | ScheduleError]:
    """The pure part of a batch, run in a worker thread."""
    results: list[list[ClockEvent] | ScheduleError] = []
    for schedule in schedules:
        try:
            results.append(cached_schedule(schedule).next_events(after=now, n=max_runs))
        except ScheduleError as error:
            results.append(error)
    return results


async def _flows_of(
    session: AsyncSession, deployments: list[Deployment]
) -> dict[uuid.UUID, tuple[Flow, FlowGroup]]:
    """Each deployment's flow (pinned, else its group's newest unarchived version), one query."""
    rows = await session.execute(
        select(Deployment.id, Flow, FlowGroup)
        .join(FlowGroup, FlowGroup.id == Deployment.flow_group_id)
        .join(
            Flow,
            or_(
                Flow.id == Deployment.flow_id,
                and_(Deployment.flow_id.is_(None), Flow.flow_group_id == Deployment.flow_group_id,
                     Flow.archived.is_(False)),
            ),
        )
        .where(Deployment.id.in_([d.id for d in deployments]))
        .order_by(Deployment.id, Flow.version.desc().nulls_last())
    )
    flows: dict[uuid.UUID, tuple[Flow, FlowGroup]] = {}
    for deployment_id, flow, group in rows.all():
        flows.setdefault(deployment_id, (flow, group))  # the first is the newest version
    return flows


async def _existing_keys(session: AsyncSession, ids: list[uuid.UUID], now: dt.datetime) -> dict[uuid.UUID, set[str]]:
    rows = await session.execute(
        select(FlowRun.deployment_id, FlowRun.idempotency_key).where(
            FlowRun.deployment_id.in_(ids), FlowRun.scheduled_start_time > now
        )
    )
    keys: dict[uuid.UUID, set[str]] = {}
    for deployment_id, key in rows.all():
        keys.setdefault(deployment_id, set()).add(key)
    return keys


def _runs(
    deployment: Deployment, flow: Flow, group: FlowGroup, events: list[ClockEvent] | ScheduleError, existing: set[str]
) -> list[NewRun]:
    if isinstance(events, ScheduleError):
        _warn_once(deployment, f"has a schedule that cannot be evaluated: {events}")
        return []
    if flow.archived:
        _warn_once(deployment, f"pins flow {flow.id}, which is archived: not scheduled")
        return []
    runs = []
    for event in events:
        key = deployment_run_key(deployment.id, event.start_time)
        if key in existing:
            continue
        try:
            runs.append(
                new_run(
                    flow, group, parameters=deployment.parameters or None, labels=deployment.labels,
                    scheduled_start_time=event.start_time, idempotency_key=key, auto_scheduled=True,
                    deployment_id=deployment.id, tags=list(deployment.tags or []),
                )
            )
        except InvalidInput as error:
            _warn_once(deployment, f"cannot be auto-scheduled: {error}")
            return []
    return runs


async def schedule_deployment_batch(
    session: AsyncSession,
    *,
    now: dt.datetime,
    max_runs: int = DEFAULT_MAX_RUNS,
    limit: int = 500,
    after_id: uuid.UUID | None = None,
    deployment_ids: list[uuid.UUID] | None = None,
) -> BatchResult:
    """Schedule up to `limit` deployments with active, non-empty schedules, in id order after
    `after_id`; ones another replica holds at this moment are skipped (`SKIP LOCKED`)."""
    query = (
        select(Deployment)
        .where(Deployment.is_schedule_active.is_(True), func.jsonb_array_length(Deployment.schedule) > 0)
        .order_by(Deployment.id)
        .limit(limit)
        .with_for_update(skip_locked=True, key_share=True)
    )
    if after_id is not None:
        query = query.where(Deployment.id > after_id)
    if deployment_ids is not None:
        query = query.where(Deployment.id.in_(deployment_ids))
    deployments = list((await session.scalars(query)).all())
    if not deployments:
        return BatchResult(0, 0, None)
    flows = await _flows_of(session, deployments)
    existing = await _existing_keys(session, [d.id for d in deployments], now)
    schedulable = [d for d in deployments if d.id in flows]
    results = await asyncio.to_thread(_evaluate, [d.schedule for d in schedulable], now, max_runs)
    runs: list[NewRun] = []
    for deployment, events in zip(schedulable, results):
        flow, group = flows[deployment.id]
        runs.extend(_runs(deployment, flow, group, events, existing.get(deployment.id, set())))
    created = await insert_runs(session, runs)
    return BatchResult(len(deployments), len(created), deployments[-1].id)


async def schedule_deployment(
    session: AsyncSession, deployment_id: uuid.UUID, *, now: dt.datetime | None = None,
    max_runs: int = DEFAULT_MAX_RUNS,
) -> int:
    """Schedule one deployment's next runs now (after a write); returns runs created."""
    now = now or dt.datetime.now(dt.timezone.utc)
    result = await schedule_deployment_batch(session, now=now, max_runs=max_runs, limit=1, deployment_ids=[deployment_id])
    return result.runs_created
