"""Running uvicorn so that a stop signal ends in a normal return, and "ready" means bound.

`uvicorn.run` shuts down gracefully on SIGTERM and then raises the signal again, which kills the
process before the CLI can stop what it started (the embedded Postgres). Here the server is run
directly: a captured SIGTERM or SIGINT is not raised again, so the command returns 0 and its
clean-up runs. The ready banner is logged once the socket is bound and serving (one worker), or
once every worker has finished its start (several workers), never before.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Iterator

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess

logger = logging.getLogger("headwater")


class _Server(uvicorn.Server):
    banner = ""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            # The shutdown they asked for is done; raising them again would kill the process.
            self._captured_signals.clear()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self.banner:
            logger.info("%s", self.banner)


def serve(app: Any, *, banner: str, **options: Any) -> int:
    """Serve `app` in this process until SIGTERM/SIGINT; 0 after a clean stop, 1 if it never started."""
    server = _Server(uvicorn.Config(app, **options))
    server.banner = banner
    server.run()
    return 0 if server.started else 1


class _Workers(Multiprocess):
    banner = ""

    def init_processes(self) -> None:
        super().init_processes()
        ready = all(
            process.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit)
            for process in self.processes
        )
        if ready and self.banner:
            logger.info("%s (%d workers)", self.banner, len(self.processes))


def serve_workers(app: str, *, workers: int, banner: str, **options: Any) -> int:
    """`workers` processes sharing one socket bound here; returns 0 once SIGTERM/SIGINT stopped them."""
    config = uvicorn.Config(app, workers=workers, **options)
    try:
        sock = config.bind_socket()
    except SystemExit:
        return 1  # uvicorn logged why (the port was checked just before, so this is a race)
    supervisor = _Workers(config, sockets=[sock])
    supervisor.banner = banner
    try:
        supervisor.run()
    finally:
        sock.close()
    return 0
