"""The `headwater project|flow|run` commands against a live server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from sqlalchemy import text

from headwater.client import Client
from headwater.client.client import Request
from tests import factories as f

pytestmark = pytest.mark.slow


def headwater(*args: str, url: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "HEADWATER_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "headwater.server.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def flow_id(live_server) -> str:
    with Client(live_server.url) as hw:
        hw.create_project("etl", "nightly jobs")
        return hw.register_flow(f.flow("load", parameters=[f.parameter("n", default=1)]), "etl")


def test_project_commands(live_server):
    created = headwater("project", "create", "reports", "--description", "weekly", url=live_server.url)
    assert created.returncode == 0 and "Created project 'reports'" in created.stdout
    duplicate = headwater("project", "create", "reports", url=live_server.url)
    assert duplicate.returncode == 1 and duplicate.stderr.strip() == "headwater: project 'reports' already exists"
    skipped = headwater("project", "create", "reports", "--skip-if-exists", url=live_server.url)
    assert skipped.returncode == 0 and "Project 'reports' already exists" in skipped.stdout
    fresh = headwater("project", "create", "adhoc", "--skip-if-exists", url=live_server.url)
    assert fresh.returncode == 0 and "Created project 'adhoc'" in fresh.stdout
    listing = headwater("project", "list", url=live_server.url)
    assert listing.returncode == 0
    header, *rows = listing.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "FLOWS", "DESCRIPTION"]
    assert [row.split()[:3] for row in rows if row.startswith("reports")] == [["reports", "0", "weekly"]]


def test_flow_commands(live_server, flow_id):
    listing = headwater("flow", "list", url=live_server.url)
    assert "load" in listing.stdout and flow_id in listing.stdout
    header, row = listing.stdout.splitlines()
    # A flow registered without a schedule does not claim an active one (as Prefect Server).
    assert header.split()[:6] == ["NAME", "VERSION", "PROJECT", "ARCHIVED", "SCHEDULE", "ACTIVE"]
    assert row.split()[:5] == ["load", "1", "etl", "False", "False"]
    shown = headwater("flow", "show", "load", "--project", "etl", url=live_server.url)
    assert shown.returncode == 0 and "parameters" in shown.stdout and "n" in shown.stdout
    by_id = headwater("flow", "show", flow_id, url=live_server.url)
    assert by_id.returncode == 0 and "load" in by_id.stdout
    archived = headwater("flow", "archive", "load", url=live_server.url)
    assert archived.returncode == 0 and "Archived 'load' version 1" in archived.stdout
    missing = headwater("flow", "show", "load", url=live_server.url)
    assert missing.returncode == 1 and "No active flow named 'load'" in missing.stderr
    assert "load" in headwater("flow", "list", "--all-versions", url=live_server.url).stdout


def test_run_commands(live_server, flow_id):
    created = headwater("run", "create", "load", "--project", "etl", "--param", "n=5", "--param", "tag=x",
                        "--name", "manual", url=live_server.url)
    assert created.returncode == 0, created.stderr
    run_id = created.stdout.split("Created flow run ")[1].split()[0]
    with Client(live_server.url) as hw:
        assert hw.get_flow_run(run_id)["parameters"] == {"n": 5, "tag": "x"}
    listing = headwater("run", "list", url=live_server.url)
    assert "manual" in listing.stdout and "Scheduled" in listing.stdout
    shown = headwater("run", "show", run_id, url=live_server.url)
    assert "manual" in shown.stdout and "extract-1" in shown.stdout and "Pending" in shown.stdout
    assert headwater("run", "logs", run_id, url=live_server.url).returncode == 0

    watched = headwater("run", "create", "load", "--watch", "--timeout", "1", url=live_server.url)
    assert watched.returncode == 1 and "still Scheduled" in watched.stderr, "no agent: the watch times out"
    assert "Scheduled" in watched.stdout


def test_errors_and_exit_codes(live_server, flow_id):
    bad_param = headwater("run", "create", "load", "--param", "oops", url=live_server.url)
    assert bad_param.returncode == 2 and "KEY=VALUE" in bad_param.stderr
    unknown = headwater("run", "create", "nope", url=live_server.url)
    assert unknown.returncode == 1 and unknown.stderr.startswith("headwater: No active flow named 'nope'")
    down = headwater("project", "list", url="http://127.0.0.1:9")
    assert down.returncode == 3 and "Cannot reach headwater" in down.stderr
    assert len(down.stderr.strip().splitlines()) == 1, "one clear line, no traceback"


def run_id_of(created: subprocess.CompletedProcess) -> str:
    assert created.returncode == 0, created.stderr
    return created.stdout.split("Created flow run ")[1].split()[0]


async def test_run_show_and_logs_take_an_id_prefix_or_a_name(live_server, flow_id, db):
    solo = run_id_of(headwater("run", "create", "load", "--name", "solo", url=live_server.url))
    twins = [run_id_of(headwater("run", "create", "load", "--name", "twin", url=live_server.url)) for _ in range(2)]

    by_name = headwater("run", "show", "solo", url=live_server.url)
    assert by_name.returncode == 0 and f"solo ({solo})" in by_name.stdout
    by_prefix = headwater("run", "show", solo[:8].upper(), url=live_server.url)
    assert by_prefix.returncode == 0 and solo in by_prefix.stdout, by_prefix.stderr
    assert solo in headwater("run", "show", solo[:13], url=live_server.url).stdout, "a prefix may include hyphens"
    assert headwater("run", "logs", solo[:6], url=live_server.url).returncode == 0
    ambiguous = headwater("run", "logs", "twin", url=live_server.url)
    assert ambiguous.returncode == 2 and "'twin' matches 2 flow runs" in ambiguous.stderr
    assert all(twin in ambiguous.stderr for twin in twins) and solo not in ambiguous.stderr

    # Two runs whose ids share a prefix, made directly in the database.
    tenant = (await db.execute(text("SELECT tenant_id FROM flow WHERE id = :id"), {"id": flow_id})).scalar()
    ids = ["abcd0000-0000-4000-8000-000000000001", "abcd0000-0000-4000-8000-000000000002"]
    for run in ids:
        await db.execute(text("INSERT INTO flow_run (id, flow_id, tenant_id, name, state) "
                              "VALUES (:id, :flow, :tenant, 'made', 'Scheduled')"),
                         {"id": run, "flow": flow_id, "tenant": tenant})
    await db.commit()
    shared = headwater("run", "show", "abcd0000-0000", url=live_server.url)
    assert shared.returncode == 2 and "matches 2 flow runs" in shared.stderr
    assert all(run in shared.stderr for run in ids) and "Give more of the id" in shared.stderr
    assert ids[1] in headwater("run", "show", ids[1][:-1] + "2", url=live_server.url).stdout
    assert headwater("run", "show", "abcd0000-0000-4000-8000-00000000000", url=live_server.url).returncode == 2

    short = headwater("run", "show", "abc", url=live_server.url)
    assert short.returncode == 2 and "at least 4 hex digits" in short.stderr
    unknown_prefix = "ffff" if not any(r.startswith("ffff") for r in [solo, *twins]) else "eeee"
    for missing in (unknown_prefix, "nobody", "00000000-0000-0000-0000-000000000000"):
        result = headwater("run", "show", missing, url=live_server.url)
        assert result.returncode == 1, result.stderr
        assert result.stderr.strip() == f"headwater: No flow run with id, id prefix or name {missing!r}."


def test_run_list_by_project(live_server, flow_id):
    with Client(live_server.url) as hw:
        hw.create_project("ops")
        other = hw.register_flow(f.flow("backup"), "ops")
        hw.create_flow_run(other, run_name="nightly-backup")
        hw.create_flow_run(flow_id, run_name="etl-load")
    everything = headwater("run", "list", url=live_server.url)
    header, *rows = everything.stdout.splitlines()
    assert header.split()[:4] == ["NAME", "FLOW", "PROJECT", "STATE"]
    assert sorted(row.split()[:3] for row in rows) == [["etl-load", "load", "etl"], ["nightly-backup", "backup", "ops"]]
    only_ops = headwater("run", "list", "--project", "ops", url=live_server.url)
    assert only_ops.returncode == 0
    assert [row.split()[:3] for row in only_ops.stdout.splitlines()[1:]] == [["nightly-backup", "backup", "ops"]]
    assert headwater("run", "list", "--project", "none", url=live_server.url).stdout.splitlines()[1:] == []


def test_flow_unarchive(live_server, flow_id):
    already = headwater("flow", "unarchive", "load", url=live_server.url)
    assert already.returncode == 0 and "'load' version 1 is already active" in already.stdout
    assert headwater("flow", "archive", "load", url=live_server.url).returncode == 0
    restored = headwater("flow", "unarchive", "load", "--project", "etl", url=live_server.url)
    assert restored.returncode == 0, restored.stderr
    assert f"Unarchived 'load' version 1 ({flow_id})" in restored.stdout
    with Client(live_server.url) as hw:
        assert hw.get_flow(flow_id)["archived"] is False
        second = hw.register_flow(f.flow("load"), "etl")  # version 2; version 1 is archived
        assert hw.get_flow(flow_id)["archived"] is True
    by_version = headwater("flow", "unarchive", "load", "--version", "1", url=live_server.url)
    assert by_version.returncode == 0 and "Unarchived 'load' version 1" in by_version.stdout
    with Client(live_server.url) as hw:
        assert hw.get_flow(flow_id)["archived"] is False and hw.get_flow(second)["archived"] is True
    by_id = headwater("flow", "unarchive", second, url=live_server.url)
    assert by_id.returncode == 0 and "Unarchived 'load' version 2" in by_id.stdout
    missing = headwater("flow", "unarchive", "load", "--version", "7", url=live_server.url)
    assert missing.returncode == 1 and "No flow named 'load' version 7" in missing.stderr


SET_STATES = "mutation($input: set_flow_run_states_input!) { set_flow_run_states(input: $input) { states { id } } }"
WRITE_LOGS = "mutation($input: write_run_logs_input!) { write_run_logs(input: $input) { success } }"


@pytest.mark.parametrize("final, code", [("Success", 0), ("Failed", 4)])
def test_run_create_watch_streams_logs_and_exits_by_final_state(live_server, flow_id, final, code):
    env = {**os.environ, "HEADWATER_URL": live_server.url}
    process = subprocess.Popen([sys.executable, "-m", "headwater.server.cli", "run", "create", "load", "--watch"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()
        run_id = first.split("Created flow run ")[1].split()[0]
        with Client(live_server.url) as hw:
            hw.execute(Request(WRITE_LOGS, {"input": {"logs": [
                {"flow_run_id": run_id, "level": "INFO", "message": "hello from the flow"}]}}))
            hw.execute(Request(SET_STATES, {"input": {"states": [
                {"flow_run_id": run_id, "state": {"type": final, "message": "the end"}}]}}))
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == code, err
    lines = out.splitlines()
    assert any(line.endswith("| INFO     | hello from the flow") for line in lines), out
    assert any(line.endswith(f"| STATE    | {final}: the end") for line in lines), out
    assert lines[-1] == f"Flow run {run_id} finished: {final}"


def test_ctrl_c_stops_watching_not_the_run(live_server, flow_id):
    env = {**os.environ, "HEADWATER_URL": live_server.url}
    process = subprocess.Popen([sys.executable, "-m", "headwater.server.cli", "run", "create", "load", "--watch"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run_id = process.stdout.readline().split("Created flow run ")[1].split()[0]
        assert "Scheduled" in process.stdout.readline()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130
    assert err.strip() == f"headwater: stopped watching; flow run {run_id} goes on (headwater run show {run_id})"
    with Client(live_server.url) as hw:
        assert hw.get_flow_run(run_id)["state"] == "Scheduled"
