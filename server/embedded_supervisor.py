"""Keeps the embedded Postgres running: headwater owns it, so headwater restarts it.

A daemon thread in the CLI process (the one that started the server, and the parent of the
uvicorn workers) checks every second or so that the postmaster is alive, and when it is not,
starts it again on the same data folder and socket, with exponential backoff between failed
attempts. Workers keep the same URL; their pools drop the dead connections on first use, and
their /health reports the outage meanwhile (server/health.py). With an external database there
is nothing to supervise: recovery is the pool reconnecting.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

logger = logging.getLogger("headwater.embedded")


class Restartable(Protocol):
    def is_running(self) -> bool: ...

    def restart(self) -> None: ...


class EmbeddedPostgresSupervisor:
    """`start()` the watch, `stop()` it before stopping the server (so it is not restarted)."""

    def __init__(
        self,
        server: Restartable,
        *,
        check_interval: float = 1.0,
        first_delay: float = 0.5,
        max_delay: float = 30.0,
    ):
        self.server = server
        self.check_interval = check_interval
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.restarts = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="embedded-postgres-supervisor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def _watch(self) -> None:
        while not self._stopping.wait(self.check_interval):
            try:
                alive = self.server.is_running()
            except Exception:  # noqa: BLE001 - a failed check is retried at the next tick
                logger.exception("could not check the embedded Postgres")
                continue
            if not alive:
                self._restart()

    def _is_running(self) -> bool:
        try:
            return self.server.is_running()
        except Exception:  # noqa: BLE001
            return False

    def _restart(self) -> None:
        """Restart until it works or we are stopping: 0.5 s, 1 s, 2 s ... up to `max_delay` apart."""
        delay = self.first_delay
        attempt = 0
        # The first wait lets the dead postmaster's backends exit (they hold its shared memory).
        while not self._stopping.wait(delay):
            if attempt and self._is_running():
                # A slow start that pg_ctl gave up waiting for has finished after all.
                logger.warning("embedded Postgres restarted (after %d attempt(s))", attempt)
                self.restarts += 1
                return
            attempt += 1
            logger.warning("embedded Postgres exited unexpectedly; restarting (attempt %d)", attempt)
            try:
                self.server.restart()
            except Exception as exc:  # noqa: BLE001 - logged, then retried after a longer wait
                delay = min(delay * 2, self.max_delay)
                logger.error("embedded Postgres did not start: %s; next attempt in %.1f s", exc, delay)
                continue
            self.restarts += 1
            logger.warning("embedded Postgres restarted (after %d attempt(s))", attempt)
            return
