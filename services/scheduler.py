"""Scheduler: keeps the next runs of every active schedule (flows' and deployments') created,
batch by batch.

Most passes only move each schedule's window on by a run as time passes; those are logged at
DEBUG. A pass that fills a window (a new or changed schedule, or after downtime) is INFO.
"""

from __future__ import annotations

import logging
import uuid

from headwater.server.db.engine import transaction
from headwater.server.domain import deployment_scheduling, schedule_horizon, scheduling
from headwater.services.loop import LoopService


class Scheduler(LoopService):
    name = "Scheduler"

    def __init__(self, *args, max_runs: int = scheduling.DEFAULT_MAX_RUNS, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_runs = max_runs
        self.flows_seen = 0  # flows and deployments, in the last pass

    async def run_once(self) -> int:
        """One pass: a set-based pre-check finds the flows and deployments that lack some of
        their next runs (headwater.server.domain.schedule_horizon); only those are scheduled,
        `batch_size` per transaction, through the full (locking) path."""
        now = self.clock()
        created = 0
        seen = 0
        for precheck, schedule in (
            (schedule_horizon.flows_needing_runs, self._schedule_flows),
            (schedule_horizon.deployments_needing_runs, self._schedule_deployments),
        ):
            if self._stopping.is_set():
                break
            async with transaction(self.sessions) as session:
                found = await precheck(session, now=now, max_runs=self.max_runs)
            seen += found.seen
            for start in range(0, len(found.needing_work), self.batch_size):
                if self._stopping.is_set():
                    break
                created += await schedule(found.needing_work[start : start + self.batch_size], now)
        self.flows_seen = seen
        return created

    async def _schedule_flows(self, ids: list[uuid.UUID], now) -> int:
        async with transaction(self.sessions) as session:
            batch = await scheduling.schedule_batch(
                session, now=now, max_runs=self.max_runs, limit=len(ids), flow_ids=ids
            )
        return batch.runs_created

    async def _schedule_deployments(self, ids: list[uuid.UUID], now) -> int:
        async with transaction(self.sessions) as session:
            batch = await deployment_scheduling.schedule_deployment_batch(
                session, now=now, max_runs=self.max_runs, limit=len(ids), deployment_ids=ids
            )
        return batch.runs_created

    def pass_log_level(self, handled: int) -> int:
        """At most one new run per schedule is the window moving on: routine, DEBUG."""
        return logging.INFO if handled > self.flows_seen else logging.DEBUG
