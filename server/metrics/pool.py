"""The database pool's state as gauges, sampled once a second off the request path.

SQLAlchemy's pool tells its size and how many connections are out and open; it does not tell
how many callers wait for one. `PoolWatch` counts them around `pool.connect()` (two integer
updates per checkout, no metric call) and keeps the most seen at once since the last sample,
so a burst between two samples still shows.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from headwater.server.metrics.families import DB_POOL_IN_USE, DB_POOL_OPEN, DB_POOL_SIZE, DB_POOL_WAITING

logger = logging.getLogger("headwater.metrics")

SAMPLE_SECONDS = 1.0


class PoolWatch:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self.waiting = 0
        self.peak_waiting = 0
        self._watched: Any = None
        self._task: asyncio.Task | None = None

    def _watch(self) -> Any:
        """Wrap the current pool's `connect` (a disposed engine gets a new pool object)."""
        pool = self.engine.sync_engine.pool
        if pool is not self._watched:
            connect = pool.connect

            def counted_connect() -> Any:
                self.waiting += 1
                if self.waiting > self.peak_waiting:
                    self.peak_waiting = self.waiting
                try:
                    return connect()
                finally:
                    self.waiting -= 1

            pool.connect = counted_connect
            self._watched = pool
        return pool

    def sample(self) -> None:
        """Write the pool's state to the gauges now (also called by a scrape, for fresh numbers)."""
        pool = self._watch()
        try:
            size, out, overflow = pool.size(), pool.checkedout(), pool.overflow()
        except AttributeError:  # a pool without these counts (NullPool): nothing to show
            return
        DB_POOL_SIZE.set(size)
        DB_POOL_IN_USE.set(out)
        DB_POOL_OPEN.set(size + overflow)
        DB_POOL_WAITING.set(self.peak_waiting)
        self.peak_waiting = self.waiting

    async def _run(self) -> None:
        while True:
            try:
                self.sample()
            except Exception:  # noqa: BLE001 - metrics must never stop the process
                logger.exception("sampling the database pool failed")
            await asyncio.sleep(SAMPLE_SECONDS)

    def start(self) -> None:
        self._watch()
        self._task = asyncio.create_task(self._run(), name="headwater-pool-metrics")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
