"""Stopping headwater with SIGTERM or SIGINT stops everything it started, and exits 0.

Real processes on an embedded data dir: after each stop no postgres for that data dir is left.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.server_process import ServerProcess

pytestmark = pytest.mark.slow


def _env(tmp_path: Path) -> dict[str, str]:
    return {"HEADWATER_DATA_DIR": str(tmp_path / "data"), "HEADWATER_DATABASE_URL": "", "DATABASE_URL": ""}


def _postgres_for(data_dir: Path) -> list[psutil.Process]:
    """Live postgres processes whose command line names this data dir."""
    found = []
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        try:
            if process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if str(data_dir) in " ".join(process.info["cmdline"] or []) and "postgres" in (process.info["name"] or ""):
                found.append(process)
        except psutil.Error:
            continue
    return found


def _assert_no_postgres_left(data_dir: Path) -> None:
    deadline = time.monotonic() + 15
    while _postgres_for(data_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _postgres_for(data_dir) == [], "the embedded Postgres outlived headwater"


def _stop_start(tmp_path: Path, signum: int, *args: str) -> str:
    log = tmp_path / f"start-{signum}.log"
    with ServerProcess(*args, env=_env(tmp_path), log_path=log) as server:
        assert server.process is not None
        server.process.send_signal(signum)
        assert server.process.wait(timeout=60) == 0, log.read_text()
    return log.read_text()


def _stop_services(tmp_path: Path, signum: int) -> str:
    log_path = tmp_path / f"services-{signum}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "headwater.server.cli", "services"],
                                   env={**os.environ, **_env(tmp_path)}, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 90
        while "services running" not in log_path.read_text():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "services did not start"
            time.sleep(0.2)
        process.send_signal(signum)
        assert process.wait(timeout=60) == 0, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    return log_path.read_text()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_then_sigint_stop_start_and_its_postgres(tmp_path, workers):
    extra = ("--workers", workers, "--no-services") if workers != "1" else ()
    said = _stop_start(tmp_path, signal.SIGTERM, *extra)
    assert "embedded Postgres stopped" in said
    _assert_no_postgres_left(tmp_path / "data")
    said = _stop_start(tmp_path, signal.SIGINT, *extra)
    assert "embedded Postgres stopped" in said
    _assert_no_postgres_left(tmp_path / "data")


def test_sigterm_then_sigint_stop_services_and_its_postgres(tmp_path):
    assert "embedded Postgres stopped" in _stop_services(tmp_path, signal.SIGTERM)
    _assert_no_postgres_left(tmp_path / "data")
    assert "embedded Postgres stopped" in _stop_services(tmp_path, signal.SIGINT)
    _assert_no_postgres_left(tmp_path / "data")


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_dead_handle_is_pruned_so_the_next_stop_stops_postgres(tmp_path):
    from headwater.server.embedded import EmbeddedPostgres

    data = tmp_path / "data"
    EmbeddedPostgres(data).stop()  # initdb once
    stale = _dead_pid()  # as if a headwater had been killed with SIGKILL
    (data / "postgres" / ".handle_pids.json").write_text(json.dumps([stale]))
    embedded = EmbeddedPostgres(data)
    try:
        pids = json.loads((data / "postgres" / ".handle_pids.json").read_text())
        assert stale not in pids and os.getpid() in pids
    finally:
        embedded.stop()
    _assert_no_postgres_left(data)


def test_a_busy_port_fails_at_once_with_a_hint(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "headwater.server.cli", "start", "--port", str(port)],
            env={**os.environ, **_env(tmp_path)}, capture_output=True, text=True, timeout=60,
        )
        elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert f"127.0.0.1:{port}" in result.stderr and "--port" in result.stderr and "HEADWATER_PORT" in result.stderr
    assert "ready on" not in result.stderr and not (tmp_path / "data").exists(), "nothing was started"
    assert elapsed < 10, elapsed  # under a second unloaded; the interpreter start dominates
