"""Issue 10 item 11: a killed embedded Postgres is restarted by headwater, and /health tells a
supervisor when the process cannot do its job. Real `headwater start` processes, real kill -9."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.server_process import ServerProcess

pytestmark = pytest.mark.slow

CREATE = "mutation($input: create_project_input!) { create_project(input: $input) { id } }"
NAMES = "{ project(order_by: {name: asc}) { name } }"


def post(server: ServerProcess, query: str, variables=None) -> tuple[int, dict]:
    """(HTTP status, body) of a GraphQL request, 5xx included."""
    body = json.dumps({"query": query, "variables": json.dumps(variables)}).encode()
    request = urllib.request.Request(server.url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def get(server: ServerProcess, path: str) -> tuple[int, dict, float]:
    """(status, body, seconds taken)."""
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(server.url + path, timeout=10) as response:
            return response.status, json.loads(response.read()), time.perf_counter() - started
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}"), time.perf_counter() - started


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postgres" / "postmaster.pid").read_text().splitlines()[0])


def assert_retryable_or_ok(status: int, body: dict) -> bool:
    """True when the request succeeded; a failure must be the retryable 503, never a 500."""
    if status == 200 and not body.get("errors"):
        return True
    assert status == 503, (status, body)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["DATABASE_UNAVAILABLE"], body
    return False


def embedded_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"HEADWATER_DATA_DIR": str(tmp_path / "data"), "HEADWATER_DATABASE_URL": "", "DATABASE_URL": "",
            **extra}


def tenant_of(server: ServerProcess) -> str:
    return server.query("{ tenant { id } }")["data"]["tenant"][0]["id"]


def test_killed_embedded_postgres_is_restarted_and_data_survives(tmp_path):
    log = tmp_path / "headwater.log"
    with ServerProcess(env=embedded_env(tmp_path), log_path=log) as server:
        tenant = tenant_of(server)
        assert post(server, CREATE, {"input": {"tenant_id": tenant, "name": "before"}})[0] == 200
        old_pid = postmaster_pid(tmp_path / "data")
        os.kill(old_pid, signal.SIGKILL)

        # Until it is back, requests get the retryable 503 (never a 500); then they succeed.
        deadline = time.monotonic() + 90
        while True:
            assert time.monotonic() < deadline, log.read_text()
            if assert_retryable_or_ok(*post(server, NAMES)):
                break
            time.sleep(0.2)
        new_pid = postmaster_pid(tmp_path / "data")
        assert new_pid != old_pid

        # Once the probe has seen the restart, every request succeeds: no stale pooled connection.
        deadline = time.monotonic() + 30
        while get(server, "/health")[1].get("database") != "ok":
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        for _ in range(25):
            status, body = post(server, NAMES)
            assert status == 200 and "errors" not in body, body
        status, body = post(server, CREATE, {"input": {"tenant_id": tenant, "name": "after"}})
        assert status == 200 and "errors" not in body, body
        assert [p["name"] for p in post(server, NAMES)[1]["data"]["project"]] == ["after", "before"]
        assert get(server, "/ready")[0] == 200
        assert server.stop() == 0
    output = log.read_text()
    assert "embedded Postgres exited unexpectedly; restarting (attempt 1)" in output
    assert "embedded Postgres restarted" in output
    assert "Traceback" not in output.split("restarting (attempt 1)")[1], output
    # The server is stopped with headwater, not restarted behind its back.
    assert not (tmp_path / "data" / "postgres" / "postmaster.pid").exists()


def test_health_fails_while_the_embedded_postgres_cannot_be_restarted(tmp_path):
    log = tmp_path / "headwater.log"
    pgdata = tmp_path / "data" / "postgres"
    env = embedded_env(tmp_path, HEADWATER_HEALTH_GRACE_SECONDS="2")
    with ServerProcess("--workers", "2", "--no-services", env=env, log_path=log) as server:
        deadline = time.monotonic() + 60
        while log.read_text().count("Application startup complete") < 2:  # both workers up
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        tenant = tenant_of(server)
        assert post(server, CREATE, {"input": {"tenant_id": tenant, "name": "kept"}})[0] == 200
        status, body, _ = get(server, "/health")
        assert status == 200 and body["database"] == "ok"

        # Postgres cannot start without its configuration file: every restart attempt fails.
        config = pgdata / "postgresql.conf"
        config.rename(pgdata / "postgresql.conf.away")
        os.kill(postmaster_pid(tmp_path / "data"), signal.SIGKILL)
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, log.read_text()
            status, body, took = get(server, "/health")
            assert took < 2.0, f"/health took {took:.2f} s"
            if status == 503:
                break
            time.sleep(0.2)
        assert body["status"] == "unavailable" and "embedded Postgres" in body["reason"], body
        assert body["database"] == "unreachable"
        timings = [get(server, "/health")[2] for _ in range(10)]
        assert sorted(timings)[5] < 0.1, f"/health is answered from memory: {timings}"
        assert get(server, "/ready")[0] == 503
        assert not assert_retryable_or_ok(*post(server, NAMES))

        # Fixed: the supervisor's next attempt (backoff at most 30 s) brings it back.
        (pgdata / "postgresql.conf.away").rename(config)
        deadline = time.monotonic() + 90
        while get(server, "/health")[0] != 200 or not assert_retryable_or_ok(*post(server, NAMES)):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        assert [p["name"] for p in post(server, NAMES)[1]["data"]["project"]] == ["kept"]
        assert server.stop() == 0
    output = log.read_text()
    assert "embedded Postgres did not start" in output and "restarting (attempt 2)" in output, output
    assert "embedded Postgres restarted" in output


def test_external_database_health_and_ready_and_no_supervisor(live_server, tmp_path_factory):
    status, body, _ = get(live_server, "/health")
    assert status == 200 and body["status"] == "ok" and body["database"] == "ok"
    assert get(live_server, "/ready")[0] == 200
    log = Path(live_server.log_path).read_text()
    assert "embedded Postgres" not in log, "nothing to supervise: the database is not ours"
