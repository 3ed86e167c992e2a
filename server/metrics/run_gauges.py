"""Flow runs by state and the queue depth by label set, read from the database on scrape.

They describe the database, not a process, so the scraped process alone reports them (never
summed over workers). A scrape reuses an answer younger than `CACHE_SECONDS`, so frequent or
parallel scrapes cost one pair of queries; those run on a connection of their own (a full
request pool must not hide the metrics; the scrape's key check uses it too) with a short
statement timeout. When the database does
not answer, the families are left out and `headwater_run_gauges_up` is 0.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from headwater.server.db.engine import create_engine, create_sessionmaker
from headwater.server.domain.run_counts import flow_runs_by_state, queue_depth_by_labels

logger = logging.getLogger("headwater.metrics")

CACHE_SECONDS = 5.0
STATEMENT_TIMEOUT_SECONDS = 2.0
# Label sets beyond the largest ones are summed into one series, so the family stays bounded.
MAX_SERIES = 50
OTHER = "_other"


def bounded(counts: dict[str, int], limit: int = MAX_SERIES) -> dict[str, int]:
    if len(counts) <= limit:
        return counts
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    kept = dict(ranked[: limit - 1])
    kept[OTHER] = kept.get(OTHER, 0) + sum(count for _, count in ranked[limit - 1:])
    return kept


class RunGauges(Collector):
    def __init__(self, database_url: str, cache_seconds: float = CACHE_SECONDS, statement_cache_size: int = 100):
        self.database_url = database_url
        self.statement_cache_size = statement_cache_size  # 0 behind PgBouncer's transaction pooling
        self.cache_seconds = cache_seconds
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._lock = asyncio.Lock()
        self._read_at = -float("inf")
        self.by_state: dict[str, int] | None = None
        self.queue: dict[str, int] | None = None
        self.queries = 0  # how many times the database was asked (tests check the cache with it)

    async def refresh(self) -> None:
        """Read the counts unless the last answer is fresh enough."""
        async with self._lock:
            if time.monotonic() - self._read_at < self.cache_seconds:
                return
            self.queries += 1
            try:
                # Connecting has no statement timeout: bound the whole read.
                by_state, queue = await asyncio.wait_for(self._read(self.sessions()), STATEMENT_TIMEOUT_SECONDS + 3)
            except Exception as exc:  # noqa: BLE001 - an unavailable database must not fail the scrape
                logger.warning("metrics: cannot count flow runs: %s", str(exc).splitlines()[0] if str(exc) else exc)
                self.by_state = self.queue = None
            else:
                self.by_state, self.queue = bounded(by_state), bounded(queue)
            self._read_at = time.monotonic()

    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """Sessions on the metrics' own connection (made on first use: only scraped servers open it)."""
        if self._sessions is None or self._engine is None:
            self._engine = create_engine(
                self.database_url, pool_size=1, statement_timeout_seconds=STATEMENT_TIMEOUT_SECONDS,
                statement_cache_size=self.statement_cache_size,
            )
            self._sessions = create_sessionmaker(self._engine)
        return self._sessions

    @staticmethod
    async def _read(sessions: async_sessionmaker[AsyncSession]) -> tuple[dict[str, int], dict[str, int]]:
        async with sessions() as session:
            return await flow_runs_by_state(session), await queue_depth_by_labels(session)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("headwater_run_gauges_up", "1 when the last count of flow runs succeeded")
        up.add_metric([], 0 if self.by_state is None else 1)
        yield up
        if self.by_state is None or self.queue is None:
            return
        states = GaugeMetricFamily("headwater_flow_runs", "Flow runs by state (all tenants)", labels=["state"])
        for state, count in sorted(self.by_state.items()):
            states.add_metric([state], count)
        yield states
        queue = GaugeMetricFamily(
            "headwater_queue_depth",
            "Flow runs due to start (Scheduled-family state, start time reached), by their labels sorted and joined by commas",
            labels=["labels"],
        )
        for labels, count in sorted(self.queue.items()):
            queue.add_metric([labels], count)
        yield queue

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = self._sessions = None
