"""Retention: finished runs older than the retention period are deleted with their task runs,
states, logs and artifacts (foreign-key cascade), so the database does not grow without bound.

Only runs in a finished state are touched, judged by when they last changed; a run that is
scheduled, running or waiting is never deleted, however old. Off unless a period is set.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from headwater.server.db.models import FlowRun
from headwater.server.domain.states import PARENT, is_finished

FINISHED_STATES = sorted(name for name in PARENT if is_finished(name))


async def delete_expired_runs(session: AsyncSession, *, older_than: dt.datetime, limit: int) -> list[uuid.UUID]:
    """Delete up to `limit` finished runs last updated before `older_than`; returns their ids."""
    expired = (
        select(FlowRun.id)
        .where(FlowRun.state.in_(FINISHED_STATES), FlowRun.updated < older_than)
        .order_by(FlowRun.updated)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    result = await session.execute(delete(FlowRun).where(FlowRun.id.in_(expired)).returning(FlowRun.id))
    return list(result.scalars().all())
