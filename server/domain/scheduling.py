"""Auto-scheduling: keep the next N runs of every active schedule materialised as Scheduled runs.

For each flow with an active schedule (its group's schedule if set, else its own) the next
`max_runs` events after now are computed (headwater.server.domain.clocks). Each event has a stable
idempotency key (`auto-scheduled:<UTC time>[:<hash of parameters and labels>]`); events whose key
already exists among the flow's future runs are skipped, the rest are inserted in bulk with
`ON CONFLICT DO NOTHING`. So a pass is idempotent, several replicas may run it at once, and
deleted future runs (schedule turned off, flow archived) come back at identical times when the
schedule is turned on again.

Evaluating schedules is pure CPU work (bounded by headwater.server.domain.clocks.SearchBounds, but up
to a fraction of a second for a pathological schedule), so a batch's evaluations run in a
worker thread while the event loop keeps serving requests; the database work stays on the loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from headwater.server.db.models import Flow, FlowGroup, FlowRun
from headwater.server.domain.clocks import ClockEvent, ScheduleError, next_events
from headwater.server.domain.errors import InvalidInput
from headwater.server.domain.flow_runs import NewRun, insert_runs, new_run, resolve_labels

logger = logging.getLogger("headwater.scheduler")

DEFAULT_MAX_RUNS = 10
# (flow id, problem) pairs already logged, so a stored schedule that cannot be evaluated is
# reported once per process rather than on every scheduler pass.
_REPORTED: set[tuple[uuid.UUID, str]] = set()
_REPORTED_LIMIT = 10_000


def effective_schedule(flow: Flow, group: FlowGroup | None) -> dict[str, Any] | None:
    return (group.schedule if group is not None else None) or flow.schedule


def unschedulable_parameters(flow: Flow, group: FlowGroup | None, schedule: dict[str, Any]) -> set[str]:
    """Required parameters that some clock of `schedule` would leave without a value."""
    required = {p.get("name") for p in (flow.parameters or []) if isinstance(p, dict) and p.get("required")}
    required -= set((group.default_parameters if group is not None else None) or {})
    missing: set[str] = set()
    for clock in schedule.get("clocks") or []:
        missing |= required - set(clock.get("parameter_defaults") or {})
    return missing


def auto_schedule_key(event: ClockEvent) -> str:
    key = f"auto-scheduled:{event.start_time.astimezone(dt.timezone.utc).isoformat()}"
    if event.parameter_defaults or event.labels is not None:
        variant = json.dumps([event.parameter_defaults, event.labels], sort_keys=True, default=str)
        key += ":" + hashlib.sha256(variant.encode()).hexdigest()[:16]
    return key


@dataclass(frozen=True)
class BatchResult:
    flows_seen: int
    runs_created: int
    last_flow_id: uuid.UUID | None


def _warn_once(flow: Flow, problem: str) -> None:
    key = (flow.id, problem)
    if key in _REPORTED:
        return
    if len(_REPORTED) >= _REPORTED_LIMIT:
        _REPORTED.clear()
    _REPORTED.add(key)
    logger.warning("flow %s (%s) %s", flow.id, flow.name, problem)


def _evaluate(schedules: list[dict[str, Any]], now: dt.datetime, max_runs: int) -> list[list[ClockEvent] | ScheduleError]:
    """The next events of each schedule (or why it cannot be evaluated): the pure part of a
    batch, run in a worker thread."""
    results: list[list[ClockEvent] | ScheduleError] = []
    for schedule in schedules:
        try:
            results.append(next_events(schedule, after=now, n=max_runs))
        except ScheduleError as exc:
            results.append(exc)
    return results


def _runs_for_events(
    flow: Flow, group: FlowGroup, events: list[ClockEvent] | ScheduleError, *, existing_keys: set[str]
) -> list[NewRun]:
    if isinstance(events, ScheduleError):
        _warn_once(flow, f"has a schedule that cannot be evaluated: {events}")
        return []
    runs = []
    for event in events:
        key = auto_schedule_key(event)
        if key in existing_keys:
            continue
        labels = event.labels if event.labels is not None else resolve_labels(None, None, flow, group)
        try:
            runs.append(
                new_run(
                    flow, group, parameters=event.parameter_defaults or None, labels=labels,
                    scheduled_start_time=event.start_time, idempotency_key=key, auto_scheduled=True,
                )
            )
        except InvalidInput as exc:
            _warn_once(flow, f"cannot be auto-scheduled: {exc}")
            return []
    return runs


async def _existing_future_keys(
    session: AsyncSession, flow_ids: list[uuid.UUID], now: dt.datetime
) -> dict[uuid.UUID, set[str]]:
    rows = await session.execute(
        select(FlowRun.flow_id, FlowRun.idempotency_key).where(
            FlowRun.flow_id.in_(flow_ids),
            FlowRun.auto_scheduled.is_(True),
            FlowRun.scheduled_start_time > now,
        )
    )
    keys: dict[uuid.UUID, set[str]] = {}
    for flow_id, key in rows.all():
        keys.setdefault(flow_id, set()).add(key)
    return keys


async def schedule_batch(
    session: AsyncSession,
    *,
    now: dt.datetime,
    max_runs: int = DEFAULT_MAX_RUNS,
    limit: int = 500,
    after_flow_id: uuid.UUID | None = None,
    flow_ids: list[uuid.UUID] | None = None,
) -> BatchResult:
    """Schedule up to `limit` flows with active schedules, in flow-id order after `after_flow_id`.

    Flows another replica is scheduling at this moment are skipped (`SKIP LOCKED`); the lock is
    `FOR NO KEY UPDATE`, so run creation for those flows is never blocked.
    """
    query = (
        select(Flow, FlowGroup)
        .join(FlowGroup, FlowGroup.id == Flow.flow_group_id)
        .where(
            Flow.is_schedule_active.is_(True),
            Flow.archived.is_(False),
            # A flow registered without a schedule stores JSON null, which `IS NOT NULL` lets through.
            or_(func.jsonb_typeof(Flow.schedule) == "object", func.jsonb_typeof(FlowGroup.schedule) == "object"),
        )
        .order_by(Flow.id)
        .limit(limit)
        .with_for_update(of=Flow, skip_locked=True, key_share=True)
    )
    if after_flow_id is not None:
        query = query.where(Flow.id > after_flow_id)
    if flow_ids is not None:
        query = query.where(Flow.id.in_(flow_ids))
    pairs = (await session.execute(query)).all()
    if not pairs:
        return BatchResult(0, 0, None)
    existing = await _existing_future_keys(session, [flow.id for flow, _ in pairs], now)
    schedulable = []
    for flow, group in pairs:
        schedule = effective_schedule(flow, group)
        if schedule is not None and not unschedulable_parameters(flow, group, schedule):
            schedulable.append((flow, group, schedule))
    results = await asyncio.to_thread(_evaluate, [schedule for _, _, schedule in schedulable], now, max_runs)
    runs: list[NewRun] = []
    for (flow, group, _), events in zip(schedulable, results):
        runs.extend(_runs_for_events(flow, group, events, existing_keys=existing.get(flow.id, set())))
    created = await insert_runs(session, runs)
    return BatchResult(len(pairs), len(created), pairs[-1][0].id)


async def schedule_flow(
    session: AsyncSession, flow_id: uuid.UUID, *, now: dt.datetime | None = None, max_runs: int = DEFAULT_MAX_RUNS
) -> int:
    """Schedule one flow's next runs now (when its schedule is turned on); returns runs created."""
    now = now or dt.datetime.now(dt.timezone.utc)
    result = await schedule_batch(session, now=now, max_runs=max_runs, limit=1, flow_ids=[flow_id])
    return result.runs_created
