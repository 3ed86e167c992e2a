"""How many flow runs are in each state, and how many wait in the queue per label set.

What an operator watches (server/metrics): each is one aggregate query, built once at import.
The queue is what `get_runs_in_queue` would offer: runs in a Scheduled-family state whose start
time has come, grouped by their labels (the labels an agent needs to pick them up).
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from headwater.server.db.models import FlowRun
from headwater.server.domain.states import SCHEDULED_STATES

BY_STATE = select(FlowRun.state, func.count()).group_by(FlowRun.state)
DUE_BY_LABELS = (
    select(FlowRun.labels, func.count())
    .where(FlowRun.state.in_(sorted(SCHEDULED_STATES)), FlowRun.state_start_time <= func.now())
    .group_by(FlowRun.labels)
)


def label_set(labels: object) -> str:
    """A run's labels as one text: sorted, without repeats, joined by commas ('' for none)."""
    if not isinstance(labels, list):
        return ""
    return ",".join(sorted({str(label) for label in labels}))


async def flow_runs_by_state(session: AsyncSession) -> dict[str, int]:
    rows = (await session.execute(BY_STATE)).all()
    return {state or "": count for state, count in rows}


async def queue_depth_by_labels(session: AsyncSession) -> dict[str, int]:
    """Due runs per label set (the same labels in another order are one set)."""
    depth: Counter[str] = Counter()
    for labels, count in (await session.execute(DUE_BY_LABELS)).all():
        depth[label_set(labels)] += count
    return dict(depth)
