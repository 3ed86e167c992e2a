"""Scheduler: keeps the next runs of every active schedule created, batch by batch."""

from __future__ import annotations

import uuid

from server.db.engine import transaction
from server.domain import scheduling
from services.loop import LoopService


class Scheduler(LoopService):
    name = "Scheduler"

    def __init__(self, *args, max_runs: int = scheduling.DEFAULT_MAX_RUNS, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_runs = max_runs

    async def run_once(self) -> int:
        """One pass over every active schedule, `batch_size` flows per transaction."""
        now = self.clock()
        after: uuid.UUID | None = None
        created = 0
        while not self._stopping.is_set():
            async with transaction(self.sessions) as session:
                batch = await scheduling.schedule_batch(
                    session, now=now, max_runs=self.max_runs, limit=self.batch_size, after_flow_id=after
                )
            created += batch.runs_created
            if batch.flows_seen < self.batch_size:
                break
            after = batch.last_flow_id
        return created
