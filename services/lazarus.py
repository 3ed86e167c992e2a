"""Lazarus: reschedules flow runs stuck without a live process, up to a limit."""

from __future__ import annotations

import datetime as dt

from headwater.server.domain import resurrection
from headwater.services.loop import LoopService


class Lazarus(LoopService):
    name = "Lazarus"

    def __init__(self, *args, heartbeat_cutoff: dt.timedelta, max_attempts: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.heartbeat_cutoff = heartbeat_cutoff
        self.max_attempts = max_attempts

    async def run_once(self) -> int:
        now = self.clock()
        cutoff = now - self.heartbeat_cutoff
        return await self.in_batches(
            lambda session: resurrection.resurrect_stuck_runs(
                session, now=now, cutoff=cutoff, limit=self.batch_size, max_attempts=self.max_attempts
            )
        )
