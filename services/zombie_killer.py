"""Zombie killer: task runs and cancellations whose flow-run process stopped heartbeating."""

from __future__ import annotations

import datetime as dt

from headwater.server.domain import zombies
from headwater.services.loop import LoopService


class ZombieKiller(LoopService):
    name = "ZombieKiller"

    def __init__(self, *args, heartbeat_cutoff: dt.timedelta, **kwargs):
        super().__init__(*args, **kwargs)
        self.heartbeat_cutoff = heartbeat_cutoff

    async def run_once(self) -> int:
        now = self.clock()
        cutoff = now - self.heartbeat_cutoff
        tasks = await self.in_batches(
            lambda session: zombies.reap_zombie_task_runs(session, now=now, cutoff=cutoff, limit=self.batch_size)
        )
        flows = await self.in_batches(
            lambda session: zombies.finish_abandoned_cancellations(session, cutoff=cutoff, limit=self.batch_size)
        )
        return tasks + flows
