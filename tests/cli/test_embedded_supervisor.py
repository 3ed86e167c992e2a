"""The supervisor's policy (when to restart, how long to back off), with a stand-in server.

The real thing (kill -9 of a real postmaster) is tests/cli/test_embedded_supervision.py."""

from __future__ import annotations

import logging
import time

import pytest

from headwater.server.embedded_supervisor import EmbeddedPostgresSupervisor

pytestmark = pytest.mark.pure  # no database


class FlakyServer:
    """Dies once, then refuses to start `failures` times."""

    def __init__(self, failures: int):
        self.running = False
        self.failures = failures
        self.attempts: list[float] = []

    def is_running(self) -> bool:
        return self.running

    def restart(self) -> None:
        self.attempts.append(time.monotonic())
        if len(self.attempts) <= self.failures:
            raise RuntimeError("shared memory still in use")
        self.running = True


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_restarts_with_exponential_backoff_and_logs(caplog):
    caplog.set_level(logging.INFO, logger="headwater.embedded")
    server = FlakyServer(failures=3)
    supervisor = EmbeddedPostgresSupervisor(server, check_interval=0.01, first_delay=0.05, max_delay=0.2)
    supervisor.start()
    try:
        wait_until(lambda: server.running)
    finally:
        supervisor.stop()
    gaps = [b - a for a, b in zip(server.attempts, server.attempts[1:])]
    assert len(server.attempts) == 4 and supervisor.restarts == 1
    assert gaps[0] >= 0.09 and gaps[1] >= 0.18 and gaps[2] >= 0.18, f"0.1, 0.2, then capped at 0.2: {gaps}"
    messages = [r.getMessage() for r in caplog.records]
    assert "embedded Postgres exited unexpectedly; restarting (attempt 1)" in messages
    assert "embedded Postgres exited unexpectedly; restarting (attempt 4)" in messages
    assert sum("did not start: shared memory still in use" in m for m in messages) == 3
    assert "embedded Postgres restarted (after 4 attempt(s))" in messages


def test_a_running_server_is_left_alone_and_stop_prevents_restarts():
    server = FlakyServer(failures=0)
    server.running = True
    supervisor = EmbeddedPostgresSupervisor(server, check_interval=0.01, first_delay=0.05)
    supervisor.start()
    time.sleep(0.1)
    supervisor.stop()
    server.running = False  # stopped on purpose at exit, after the supervisor
    time.sleep(0.1)
    assert server.attempts == []
