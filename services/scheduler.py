"""Scheduler: keeps the next runs of every active schedule (flows' and deployments') created,
batch by batch.

Most passes only move each schedule's window on by a run as time passes; those are logged at
DEBUG. A pass that fills a window (a new or changed schedule, or after downtime) is INFO.
"""

from __future__ import annotations

import logging
import uuid

from headwater.server.db.engine import transaction
from headwater.server.domain import deployment_scheduling, scheduling
from headwater.services.loop import LoopService


class Scheduler(LoopService):
    name = "Scheduler"

    def __init__(self, *args, max_runs: int = scheduling.DEFAULT_MAX_RUNS, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_runs = max_runs
        self.flows_seen = 0  # flows and deployments, in the last pass

    async def run_once(self) -> int:
        """One pass over every active schedule, `batch_size` flows per transaction, then the
        deployments' schedules, `batch_size` deployments per transaction."""
        now = self.clock()
        after: uuid.UUID | None = None
        created = 0
        seen = 0
        while not self._stopping.is_set():
            async with transaction(self.sessions) as session:
                batch = await scheduling.schedule_batch(
                    session, now=now, max_runs=self.max_runs, limit=self.batch_size, after_flow_id=after
                )
            created += batch.runs_created
            seen += batch.flows_seen
            if batch.flows_seen < self.batch_size:
                break
            after = batch.last_flow_id
        after = None
        while not self._stopping.is_set():
            async with transaction(self.sessions) as session:
                batch = await deployment_scheduling.schedule_deployment_batch(
                    session, now=now, max_runs=self.max_runs, limit=self.batch_size, after_id=after
                )
            created += batch.runs_created
            seen += batch.flows_seen
            if batch.flows_seen < self.batch_size:
                break
            after = batch.last_flow_id
        self.flows_seen = seen
        return created

    def pass_log_level(self, handled: int) -> int:
        """At most one new run per schedule is the window moving on: routine, DEBUG."""
        return logging.INFO if handled > self.flows_seen else logging.DEBUG
