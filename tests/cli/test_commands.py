"""The `headwater project|flow|run` commands against a live server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from headwater.client import Client
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
