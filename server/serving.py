"""Running uvicorn so that a stop signal ends in a normal return, and "ready" means bound.

`uvicorn.run` shuts down gracefully on SIGTERM and then raises the signal again, which kills the
process before the CLI can stop what it started (the embedded Postgres). Here the server is run
directly: a captured SIGTERM or SIGINT is not raised again, so the command returns 0 and its
clean-up runs. The ready banner is logged once the socket is bound and serving (one worker), or
once every worker has finished its start (several workers), never before.

The same app can listen on a second port (the web UI's 8080, where the Prefect client's links
point): `bind_optional` binds it, or logs why not and returns None, since a busy UI port must
not stop the API from starting.
"""

from __future__ import annotations

import logging
import socket
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


def bind_optional(host: str, port: int, what: str) -> socket.socket | None:
    """A listening socket on host:port bound as uvicorn binds its own, or None (with a warning)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        logger.warning("%s not served on %s:%d: %s (the API and the UI stay on the main port)",
                       what, host, port, exc.strerror or exc)
        return None
    sock.set_inheritable(True)
    return sock


def serve(app: Any, *, banner: str, extra_sockets: tuple[socket.socket, ...] = (), **options: Any) -> int:
    """Serve `app` in this process until SIGTERM/SIGINT (also on `extra_sockets`); 0 after a clean
    stop, 1 if it never started."""
    config = uvicorn.Config(app, **options)
    server = _Server(config)
    server.banner = banner
    if not extra_sockets:
        server.run()
        return 0 if server.started else 1
    try:
        sock = config.bind_socket()
    except SystemExit:
        return 1  # uvicorn logged why
    try:
        server.run(sockets=[sock, *extra_sockets])
    finally:
        sock.close()
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


def serve_workers(
    app: str, *, workers: int, banner: str, extra_sockets: tuple[socket.socket, ...] = (), **options: Any
) -> int:
    """`workers` processes sharing the sockets bound here; returns 0 once SIGTERM/SIGINT stopped them."""
    config = uvicorn.Config(app, workers=workers, **options)
    try:
        sock = config.bind_socket()
    except SystemExit:
        return 1  # uvicorn logged why (the port was checked just before, so this is a race)
    supervisor = _Workers(config, sockets=[sock, *extra_sockets])
    supervisor.banner = banner
    try:
        supervisor.run()
    finally:
        sock.close()
    return 0
