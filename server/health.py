"""Liveness for /health: can this process do its job? Answered from memory, never by waiting.

A background probe asks the database `SELECT pg_postmaster_start_time()` every second, on its
own one-connection engine: a request pool that is busy under load never makes the database look
down, and /health never waits for a connection. /health then reads the probe's last result.

* The database answers: 200.
* It has not answered for a while: the body says so, and with the embedded Postgres (which
  headwater owns and restarts itself) /health answers 503 once the outage outlasts
  `health_grace_seconds`, because restarting headwater is then the remedy. With an external
  database the answer stays 200: restarting headwater cannot fix that database, and recovery
  is reconnecting. /ready (readiness) is what reports it to load balancers.

When the probe sees the postmaster's start time change (the server restarted), it drops the
request pool's connections, which all died with the old server, so the next request connects
afresh instead of getting a 503 first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from headwater.server.db.engine import POOLER_OPTION, create_engine

logger = logging.getLogger("headwater.health")

PROBE_INTERVAL_SECONDS = 1.0
PROBE_TIMEOUT_SECONDS = 2.0


class DatabaseProbe:
    """`start()` in the app's lifespan, `stop()` at its end; `health()` for the route."""

    def __init__(
        self,
        url: str,
        *,
        request_engine: AsyncEngine,
        embedded: bool,
        grace_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.url = url
        self.request_engine = request_engine
        self.embedded = embedded
        self.grace_seconds = grace_seconds
        self.clock = clock
        self.down_since: float | None = None
        self.last_error = ""
        self._server_started: Any = None
        self._engine: AsyncEngine | None = None
        self._task: asyncio.Task | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        # Behind a transaction pooler (no statement cache), the probe caches no statement either.
        behind_pooler = self.request_engine.get_execution_options().get(POOLER_OPTION)
        self._engine = create_engine(self.url, pool_size=1, statement_cache_size=0 if behind_pooler else 100)
        self._task = asyncio.create_task(self._run(), name="database-probe")

    async def stop(self) -> None:
        # The flag ends the loop even if a cancellation is swallowed on the way (a cancel that
        # lands as a probe completes), and the cancel cuts a probe that is still waiting short.
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._engine is not None:
            await self._engine.dispose()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            await self.probe_once()
            try:
                async with asyncio.timeout(PROBE_INTERVAL_SECONDS):
                    await self._stopping.wait()
            except TimeoutError:
                pass

    async def _ask(self) -> Any:
        assert self._engine is not None
        async with self._engine.connect() as connection:
            return await connection.scalar(text("SELECT pg_postmaster_start_time()"))

    async def probe_once(self) -> None:
        # Twice: the first try after a restart meets the probe's own dead connection (which the
        # pool then discards); the second one reports the truth.
        for attempt in (1, 2):
            try:
                async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                    started = await self._ask()
                break
            except Exception as exc:  # noqa: BLE001 - every failure means "unreachable"
                error = exc
        else:
            reason = str(getattr(error, "orig", None) or error).strip().splitlines()
            self.last_error = reason[0] if reason else type(error).__name__
            if self.down_since is None:
                self.down_since = self.clock()
                logger.warning("database unreachable: %s", self.last_error)
            return
        if self._server_started is not None and started != self._server_started:
            logger.warning("the database server restarted; reconnecting the request pool")
            await self.request_engine.dispose()
        self._server_started = started
        if self.down_since is not None:
            logger.warning("database reachable again after %.1f s", self.clock() - self.down_since)
            self.down_since = None

    def health(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) for /health."""
        if self.down_since is None:
            return 200, {"status": "ok", "database": "ok"}
        down_for = self.clock() - self.down_since
        body: dict[str, Any] = {
            "status": "ok",
            "database": "unreachable",
            "database_down_seconds": round(down_for, 1),
            "database_error": self.last_error,
        }
        if self.embedded and down_for >= self.grace_seconds:
            body["status"] = "unavailable"
            body["reason"] = (
                f"the embedded Postgres has not answered for {down_for:.0f} s (grace "
                f"{self.grace_seconds:.0f} s); headwater keeps restarting it, but cannot serve meanwhile"
            )
            return 503, body
        return 200, body
