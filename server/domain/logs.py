"""Run logs, written in batches by flow runners and agents."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from headwater.server.db.models import FlowRun, Log, TaskRun
from headwater.server.domain.errors import NotFound

@dataclass(frozen=True)
class LogRecord:
    flow_run_id: uuid.UUID | None
    task_run_id: uuid.UUID | None = None
    timestamp: dt.datetime | None = None
    name: str | None = None
    level: str | None = None
    message: str | None = None
    info: Any = None


async def write_logs(session: AsyncSession, records: list[LogRecord]) -> int:
    """Insert a batch in one statement. A record without a timestamp gets the server's clock;
    one naming an unknown run fails the whole batch, so the client keeps and resends it."""
    if not records:
        return 0
    run_ids = {r.flow_run_id for r in records if r.flow_run_id is not None}
    tenants = dict((await session.execute(select(FlowRun.id, FlowRun.tenant_id).where(FlowRun.id.in_(run_ids)))).all())
    unknown = run_ids - tenants.keys()
    if unknown:
        raise NotFound(f"Flow run {sorted(map(str, unknown))[0]} not found; no logs were written.")
    task_run_ids = {r.task_run_id for r in records if r.task_run_id is not None}
    if task_run_ids:
        known = set((await session.scalars(select(TaskRun.id).where(TaskRun.id.in_(task_run_ids)))).all())
        if task_run_ids - known:
            raise NotFound(f"Task run {sorted(map(str, task_run_ids - known))[0]} not found; no logs were written.")
    now = dt.datetime.now(dt.timezone.utc)
    rows = [
        {
            "tenant_id": tenants.get(r.flow_run_id),
            "flow_run_id": r.flow_run_id,
            "task_run_id": r.task_run_id,
            "timestamp": r.timestamp or now,
            "name": r.name,
            "level": (r.level or "INFO").upper(),
            "message": r.message,
            "info": r.info,
        }
        for r in records
    ]
    await session.execute(insert(Log), rows)
    return len(rows)


async def write_service_log(
    session: AsyncSession,
    *,
    name: str,
    level: str,
    message: str,
    flow_run_id: uuid.UUID,
    tenant_id: uuid.UUID | None,
    task_run_id: uuid.UUID | None = None,
) -> None:
    """A log line from a server service, shown with the run's own logs."""
    await session.execute(
        insert(Log).values(
            tenant_id=tenant_id, flow_run_id=flow_run_id, task_run_id=task_run_id,
            name=name, level=level, message=message, timestamp=func.now(),
        )
    )
