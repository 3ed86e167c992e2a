"""`headwater start` with nothing configured: embedded Postgres, port flag, data kept across restarts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.server_process import ServerProcess

pytestmark = pytest.mark.slow


def test_start_answers_hello_and_keeps_data_across_restarts(tmp_path):
    env = {"HEADWATER_DATA_DIR": str(tmp_path / "data"), "HEADWATER_DATABASE_URL": "", "DATABASE_URL": ""}
    create = "mutation($input: create_project_input!) { create_project(input: $input) { id } }"
    with ServerProcess(env=env, log_path=tmp_path / "first.log") as server:
        assert server.query("{ hello }") == {"data": {"hello": "👋"}}
        tenant = server.query("{ tenant { id } }")["data"]["tenant"][0]["id"]
        created = server.query(create, {"input": {"tenant_id": tenant, "name": "kept"}})
        assert created["data"]["create_project"]["id"]
        assert server.stop() == 0
    first = (tmp_path / "first.log").read_text()
    assert "initialising the embedded Postgres in " in first and "(first start, a few seconds)" in first
    url = f"http://127.0.0.1:{server.port}"
    banner = f"ready on {url} (web UI: {url}/); Prefect client: PREFECT__BACKEND=server PREFECT__SERVER__ENDPOINT={url}"
    assert banner in first
    assert first.index("Uvicorn running on") < first.index(banner), "ready is said once the port is bound"
    with ServerProcess(env=env, log_path=tmp_path / "second.log") as server:
        again = server.query("{ tenant { id } }")["data"]["tenant"]
        assert [t["id"] for t in again] == [tenant], "the default tenant is not recreated"
        assert "initialising" not in (tmp_path / "second.log").read_text()
        projects = server.query('{ project(where: {name: {_eq: "kept"}}) { id } }')["data"]["project"]
        assert projects == [{"id": created["data"]["create_project"]["id"]}]


def test_ready_banner_names_the_client_setting():
    from headwater.server.cli import ready_banner

    assert ready_banner("127.0.0.1", 4200).endswith(
        "ready on http://127.0.0.1:4200 (web UI: http://127.0.0.1:4200/); Prefect client: PREFECT__BACKEND=server")
    assert "(web UI: http://127.0.0.1:8080/)" in ready_banner("127.0.0.1", 4200, 8080)
    assert ready_banner("0.0.0.0", 4300).endswith(
        "Prefect client: PREFECT__BACKEND=server PREFECT__SERVER__ENDPOINT=http://127.0.0.1:4300")


def test_db_upgrade_command(tmp_path):
    env = {"HEADWATER_DATA_DIR": str(tmp_path / "data"), "HEADWATER_DATABASE_URL": "", "DATABASE_URL": ""}
    result = subprocess.run(
        [sys.executable, "-m", "headwater.server.cli", "db", "upgrade"], env={**__import__("os").environ, **env},
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


def test_bad_setting_is_one_clear_line():
    env = {**__import__("os").environ, "HEADWATER_PORT": "eighty"}
    result = subprocess.run([sys.executable, "-m", "headwater.server.cli", "start"], env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == "headwater: HEADWATER_PORT must be an integer, got 'eighty'"


def test_db_reset_asks_for_confirmation(tmp_path):
    env = {**__import__("os").environ, "HEADWATER_DATA_DIR": str(tmp_path / "data"), "HEADWATER_DATABASE_URL": "",
           "DATABASE_URL": ""}
    refused = subprocess.run([sys.executable, "-m", "headwater.server.cli", "db", "reset"], env=env, capture_output=True,
                             text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    reset = subprocess.run([sys.executable, "-m", "headwater.server.cli", "db", "reset", "--yes"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert reset.returncode == 0, reset.stderr
    assert "all data deleted" in reset.stdout


def test_start_with_two_workers_on_the_embedded_postgres(tmp_path):
    env = {"HEADWATER_DATA_DIR": str(tmp_path / "data"), "HEADWATER_DATABASE_URL": "", "DATABASE_URL": ""}
    with ServerProcess("--workers", "2", "--no-services", env=env, log_path=tmp_path / "workers.log") as server:
        tenants = {server.query("{ tenant { id } }")["data"]["tenant"][0]["id"] for _ in range(6)}
        assert len(tenants) == 1, "every worker serves the same database"
        assert server.stop() == 0


def test_unreachable_database_is_one_clear_line():
    env = {**__import__("os").environ, "HEADWATER_DB_WAIT_SECONDS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "headwater.server.cli", "start", "--port", "4398",
         "--database-url", "postgresql://app:hunter2@127.0.0.1:9/db"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].endswith("waiting for the database at postgresql://app:***@127.0.0.1:9/db (up to 1 s)")
    assert lines[-1].startswith("headwater: cannot connect to the database at ")
    assert "hunter2" not in result.stderr, "the password is never printed"
