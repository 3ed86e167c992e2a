"""Retention: deletes finished runs older than the configured number of days."""

from __future__ import annotations

import datetime as dt

from headwater.server.domain import retention
from headwater.services.loop import LoopService


class Retention(LoopService):
    name = "Retention"

    def __init__(self, *args, keep: dt.timedelta, **kwargs):
        super().__init__(*args, **kwargs)
        self.keep = keep

    async def run_once(self) -> int:
        older_than = self.clock() - self.keep
        return await self.in_batches(
            lambda session: retention.delete_expired_runs(session, older_than=older_than, limit=self.batch_size)
        )
