"""`headwater deployment ...` against a live server, with specs naming registered flows
(project + flow_name); the flow_location path, with real Prefect flows, is in
tests/compat/test_deployments_seed.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from headwater.client import Client
from tests import factories as f

pytestmark = pytest.mark.slow

TABLES = ("project", "flow_group", "flow", "deployment", "flow_run")


def headwater(*args: str, url: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "HEADWATER_URL": url, "HOME": str(cwd)}
    return subprocess.run([sys.executable, "-m", "headwater.server.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def write(folder: Path, name: str, content: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(content))
    return path


async def snapshot(db) -> dict[str, list]:
    """Every row of the tables a spec could touch, to compare before and after."""
    rows = {}
    for table in TABLES:
        result = await db.execute(text(f"SELECT to_jsonb(t)::text FROM {table} t ORDER BY id"))
        rows[table] = result.scalars().all()
    await db.rollback()
    return rows


def graphql(url: str, query: str) -> dict:
    response = httpx.post(url, json={"query": query}, timeout=30)
    body = response.json()
    assert not body.get("errors"), body
    return body["data"]


@pytest.fixture
def flows(live_server) -> dict[str, str]:
    with Client(live_server.url) as hw:
        hw.create_project("etl")
        load = hw.register_flow(f.flow("load", parameters=[f.parameter("n", default=1),
                                                            f.parameter("region", required=True)]), "etl")
        other = hw.register_flow(f.flow("report"), "etl")
        return {"load": load, "report": other}


SPEC = """
- name: nightly
  project: etl
  flow_name: load
  parameters: {region: eu, n: 2}
  tags: [nightly, full]
  schedule: {cron: "0 2 * * *", timezone: Europe/Berlin}
- name: hourly
  project: etl
  flow_name: load
  parameters: {region: us}
  labels: [big-machine]
  schedules:
    - interval: 1h
    - rrule: "FREQ=WEEKLY;BYDAY=MO"
  is_schedule_active: false
- name: nightly
  project: etl
  flow_name: report
"""


def test_create_reapply_update_and_manage(live_server, flows, tmp_path):
    url = live_server.url
    write(tmp_path, "spec.yaml", SPEC)
    created = headwater("deployment", "create", "spec.yaml", url=url, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert created.stdout.splitlines() == [
        "Loading deployments from yaml file at 'spec.yaml'...",
        "Created deployment 'nightly' for flow 'load'",
        "Created deployment 'hourly' for flow 'load'",
        "Created deployment 'nightly' for flow 'report'",
    ]
    with Client(url) as hw:
        before = {(d["flow_name"], d["name"]): d for d in hw.get_deployments()}
    assert set(before) == {("load", "nightly"), ("load", "hourly"), ("report", "nightly")}
    nightly = before[("load", "nightly")]
    assert nightly["parameters"] == {"region": "eu", "n": 2} and nightly["tags"] == ["nightly", "full"]
    assert nightly["schedule"] == [{"cron": "0 2 * * *", "timezone": "Europe/Berlin"}] and nightly["is_schedule_active"]
    assert before[("load", "hourly")]["labels"] == ["big-machine"] and not before[("load", "hourly")]["is_schedule_active"]

    again = headwater("deployment", "create", "spec.yaml", url=url, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[1:] == [
        "Unchanged deployment 'nightly' for flow 'load'",
        "Unchanged deployment 'hourly' for flow 'load'",
        "Unchanged deployment 'nightly' for flow 'report'",
    ]
    with Client(url) as hw:
        after = {(d["flow_name"], d["name"]): d for d in hw.get_deployments()}
    assert after == before, "re-applying an unchanged file changes nothing (same ids, same updated)"

    write(tmp_path, "spec.yaml", SPEC.replace("region: eu, n: 2", "region: eu, n: 3"))
    changed = headwater("deployment", "create", "spec.yaml", url=url, cwd=tmp_path)
    assert changed.stdout.splitlines()[1:] == [
        "Updated deployment 'nightly' for flow 'load'",
        "Unchanged deployment 'hourly' for flow 'load'",
        "Unchanged deployment 'nightly' for flow 'report'",
    ]

    listing = headwater("deployment", "ls", url=url, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    header, *rows = listing.stdout.splitlines()
    assert header.split() == ["FLOW", "NAME", "SCHEDULE", "ACTIVE", "TAGS", "ID"]
    assert rows[0].startswith("load") and "hourly" in rows[0] and "every 1h; rrule FREQ=WEEKLY;BYDAY=MO" in rows[0]
    assert "cron 0 2 * * * (Europe/Berlin)" in rows[1] and "nightly, full" in rows[1] and "True" in rows[1]
    assert rows[2].split()[:2] == ["report", "nightly"]
    only_report = headwater("deployment", "ls", "--flow", "report", url=url, cwd=tmp_path)
    assert len(only_report.stdout.splitlines()) == 2

    ambiguous = headwater("deployment", "inspect", "nightly", url=url, cwd=tmp_path)
    assert ambiguous.returncode == 2 and "Several deployments are named 'nightly' (load/nightly, report/nightly)" in ambiguous.stderr
    shown = headwater("deployment", "inspect", "load/nightly", url=url, cwd=tmp_path)
    assert shown.returncode == 0 and '"n": 3' in shown.stdout and "Europe/Berlin" in shown.stdout
    as_json = json.loads(headwater("deployment", "inspect", "hourly", "--json", url=url, cwd=tmp_path).stdout)
    assert as_json["name"] == "hourly" and as_json["flow_name"] == "load" and as_json["labels"] == ["big-machine"]
    by_id = headwater("deployment", "inspect", as_json["id"], url=url, cwd=tmp_path)
    assert by_id.returncode == 0 and "hourly" in by_id.stdout

    ran = headwater("deployment", "run", "load/nightly", "--param", "n=7", "--name", "by-hand", url=url, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    run_id = ran.stdout.split("Created flow run ")[1].split()[0]
    assert "of deployment 'load/nightly'" in ran.stdout
    run = graphql(url, f'{{ flow_run_by_pk(id: "{run_id}") {{ name parameters tags deployment_id flow_id }} }}')["flow_run_by_pk"]
    assert run == {"name": "by-hand", "parameters": {"region": "eu", "n": 7}, "tags": ["nightly", "full"],
                   "deployment_id": nightly["id"], "flow_id": flows["load"]}
    watched = headwater("deployment", "run", "load/nightly", "--watch", "--timeout", "2", url=url, cwd=tmp_path)
    assert watched.returncode == 1 and "is still Scheduled after 2 s" in watched.stderr, "no agent: the watch times out"

    paused = headwater("deployment", "pause", "load/nightly", url=url, cwd=tmp_path)
    assert paused.returncode == 0 and "Paused the schedule of deployment 'load/nightly'" in paused.stdout
    with Client(url) as hw:
        assert hw.find_deployment("load/nightly")["is_schedule_active"] is False
    resumed = headwater("deployment", "resume", "load/nightly", url=url, cwd=tmp_path)
    assert resumed.returncode == 0 and "Resumed the schedule" in resumed.stdout
    with Client(url) as hw:
        assert hw.find_deployment("load/nightly")["is_schedule_active"] is True

    deleted = headwater("deployment", "delete", "report/nightly", url=url, cwd=tmp_path)
    assert deleted.returncode == 0 and "Deleted deployment 'report/nightly'" in deleted.stdout
    missing = headwater("deployment", "inspect", "report/nightly", url=url, cwd=tmp_path)
    assert missing.returncode == 1 and missing.stderr.strip() == "headwater: No deployment 'report/nightly'."
    assert headwater("deployment", "ls", "--flow", "report", url=url, cwd=tmp_path).stdout.splitlines()[1:] == []


BAD_SPECS = {
    "unknown project": (
        "- {name: a, project: nope, flow_name: load, parameters: {region: eu}}",
        "spec.yaml: deployment 'a' (#1): project: unknown project 'nope'",
    ),
    "unknown flow": (
        "- {name: a, project: etl, flow_name: lode}",
        "spec.yaml: deployment 'a' (#1): flow_name: unknown flow 'lode' in project 'etl'",
    ),
    "bad cron": (
        "- {name: ok, project: etl, flow_name: report}\n"
        "- {name: nightly, project: etl, flow_name: report, schedule: {cron: '61 * * * *'}}",
        "spec.yaml: deployment 'nightly' (#2): schedule.cron: invalid cron '61 * * * *'",
    ),
    "unknown timezone": (
        "- {name: a, project: etl, flow_name: report, schedule: {interval: 3600, timezone: Europe/Atlantis}}",
        "spec.yaml: deployment 'a' (#1): schedule.timezone: unknown timezone 'Europe/Atlantis'",
    ),
    "missing required parameter": (
        "- {name: ok, project: etl, flow_name: report}\n"
        "- {name: a, project: etl, flow_name: load, parameters: {n: 2}}",
        "spec.yaml: deployment 'a' (#2): parameters: missing required parameter 'region' of flow 'load'",
    ),
    "duplicate names": (
        "- {name: a, project: etl, flow_name: report}\n- {name: a, project: etl, flow_name: report}",
        "spec.yaml: deployment 'a' (#2): name: duplicate name, also used by #1 for the same flow",
    ),
    "yaml syntax error": (
        "- name: a\n  flow_name: report\n  tags: [x\n",
        "spec.yaml: line 5: invalid YAML: expected ',' or ']'",
    ),
    "unknown field": (
        "- {name: a, project: etl, flow_name: report, shedule: {interval: 60}}",
        "spec.yaml: deployment 'a' (#1): shedule: unknown field",
    ),
    # Locally a valid rrule; the server's dry run finds it can never fire.
    "rrule that never fires": (
        "- {name: ok, project: etl, flow_name: report}\n"
        "- {name: feb30, project: etl, flow_name: report, schedule: {rrule: 'FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30'}}",
        "spec.yaml: deployment 'feb30' (#2): schedule",
    ),
}


@pytest.mark.parametrize("case", list(BAD_SPECS))
async def test_a_bad_spec_fails_with_its_message_and_writes_nothing(live_server, flows, tmp_path, db, case):
    url = live_server.url
    write(tmp_path, "good.yaml", "- {name: existing, project: etl, flow_name: report, schedule: {interval: 3600}}")
    assert headwater("deployment", "create", "good.yaml", url=url, cwd=tmp_path).returncode == 0
    before = await snapshot(db)
    content, message = BAD_SPECS[case]
    write(tmp_path, "spec.yaml", content + "\n")
    result = headwater("deployment", "create", "spec.yaml", url=url, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert any(line.startswith(f"headwater: {message}") for line in result.stderr.splitlines()), result.stderr
    assert await snapshot(db) == before


def test_usage_errors(live_server, tmp_path):
    url = live_server.url
    wrong_kind = headwater("deployment", "create", "spec.toml", url=url, cwd=tmp_path)
    assert wrong_kind.returncode == 2 and "a deployment spec file ends in .py, .yaml or .yml" in wrong_kind.stderr
    absent = headwater("deployment", "create", "absent.yaml", url=url, cwd=tmp_path)
    assert absent.returncode == 2 and absent.stderr.strip().endswith("absent.yaml: no such file")
    unreachable = headwater("deployment", "ls", "--url", "http://127.0.0.1:9", url=url, cwd=tmp_path)
    assert unreachable.returncode == 3
    for action in ("create", "ls", "inspect", "run", "pause", "resume", "delete"):
        assert headwater("deployment", action, "--help", url=url, cwd=tmp_path).returncode == 0
