"""The loop-service base: `run_once` on an interval, bounded batches, graceful stop.

Cadence is start-to-start: a pass that overruns its interval logs a warning and the next one
starts at once. An error in a pass is logged with the service's name and the loop goes on. While
the database is unreachable that is one warning when it goes and one line when it is back, not
a traceback every pass.
`stop()` lets the current batch finish (each batch is one transaction); `runner.py` cancels a
pass that does not end in time, which rolls its open transaction back.
"""

from __future__ import annotations

import abc
import asyncio
import datetime as dt
import logging
import time
from typing import Awaitable, Callable, ClassVar, Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from headwater.server.db.availability import database_unreachable
from headwater.server.db.engine import transaction
from headwater.server.metrics.families import SERVICE_ERRORS, SERVICE_ITEMS, SERVICE_PASS_SECONDS, SERVICE_PASSES

logger = logging.getLogger("headwater.services")

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class LoopService(abc.ABC):
    name: ClassVar[str]

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        interval: float,
        batch_size: int = 500,
        clock: Clock = utc_now,
    ):
        if interval <= 0:
            raise ValueError(f"{self.name}: the interval must be greater than 0 seconds")
        self.sessions = sessions
        self.interval = interval
        self.batch_size = batch_size
        self.clock = clock
        self._stopping = asyncio.Event()
        # Set by `wake()` (and `stop()`): the next pass starts now instead of after the interval.
        self._woken = asyncio.Event()
        self._database_down = False

    @abc.abstractmethod
    async def run_once(self) -> int:
        """One pass; returns how many items it handled."""

    def pass_log_level(self, handled: int) -> int:
        """INFO for a pass that did something, DEBUG for one that did not (a line a minute is noise)."""
        return logging.INFO if handled else logging.DEBUG

    async def in_batches(self, step: Callable[[AsyncSession], Awaitable[Sequence[object]]]) -> int:
        """Call `step` in one transaction per batch until it handles fewer than a full batch."""
        total = 0
        while not self._stopping.is_set():
            async with transaction(self.sessions) as session:
                handled = len(await step(session))
            total += handled
            if handled < self.batch_size:
                break
        return total

    async def run(self, loops: int | None = None) -> None:
        """Run passes until stopped (or `loops` passes, for tests and one-shot runs)."""
        done = 0
        logger.info("%s started (every %.0f s)", self.name, self.interval)
        # Prometheus series of this service (server/metrics): passes, their duration, items, errors.
        pass_seconds, passes = SERVICE_PASS_SECONDS.labels(self.name), SERVICE_PASSES.labels(self.name)
        items, errors = SERVICE_ITEMS.labels(self.name), SERVICE_ERRORS.labels(self.name)
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                handled = await self.run_once()
                if self._database_down:
                    self._database_down = False
                    logger.info("%s: the database is back", self.name)
                logger.log(self.pass_log_level(handled), "%s handled %d item(s) in %.2f s",
                           self.name, handled, time.monotonic() - started)
                items.inc(handled)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a failed pass must not end the service
                errors.inc()
                if database_unreachable(exc):
                    if not self._database_down:
                        self._database_down = True
                        logger.warning("%s: the database is unavailable (%s: %s); trying again every %.0f s",
                                       self.name, type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "",
                                       self.interval)
                    else:
                        logger.debug("%s: the database is still unavailable", self.name)
                else:
                    logger.exception("%s pass failed; the next pass runs as scheduled", self.name)
            done += 1
            elapsed = time.monotonic() - started
            pass_seconds.observe(elapsed)
            passes.inc()
            if elapsed > self.interval:
                logger.warning(
                    "%s took %.1f s, longer than its interval of %.0f s", self.name, elapsed, self.interval
                )
            if loops is not None and done >= loops:
                break
            try:
                await asyncio.wait_for(self._woken.wait(), timeout=max(0.0, self.interval - elapsed))
            except asyncio.TimeoutError:
                pass
            self._woken.clear()
        logger.info("%s stopped", self.name)

    def wake(self) -> None:
        """Start the next pass at once (called from this process's event loop)."""
        self._woken.set()

    def stop(self) -> None:
        self._stopping.set()
        self._woken.set()
