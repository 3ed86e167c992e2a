"""Registration with the unchanged prefect==1.4.1 client and CLI against a live headwater."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from tests.prefect_cli import Prefect

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

HELLO_FLOW = """
import prefect
from prefect import Flow, Parameter, task

@task
def say(msg):
    prefect.context.get("logger").info(msg)
    return msg

with Flow("hello-flow") as flow:
    who = Parameter("who", default="world")
    say(who)
"""


@pytest.fixture
def prefect(live_server, tmp_path) -> Prefect:
    return Prefect(live_server.url, tmp_path / "home")


async def test_create_project_new_duplicate_and_skip(prefect, db):
    first = prefect.cli("create", "project", "tutorial", "--description", "for the docs")
    assert "tutorial created" in first.stdout
    duplicate = prefect.cli("create", "project", "tutorial")
    assert "tutorial created" in duplicate.stdout, "a duplicate is reported as existing, not as an error"
    skipped = prefect.cli("create", "project", "tutorial", "--skip-if-exists")
    assert "already exists" in skipped.stdout
    rows = (await db.execute(text("SELECT name, description FROM project"))).all()
    assert [tuple(r) for r in rows] == [("tutorial", "for the docs")]


async def test_flow_register_twice_versions_and_archives(prefect, db):
    prefect.cli("create", "project", "tutorial")
    code = HELLO_FLOW + """
first = flow.register(project_name="tutorial")
second = flow.register(project_name="tutorial")
print("IDS", first, second)
"""
    result = prefect.python(code)
    assert "Flow URL:" in result.stdout
    first, second = result.stdout.split("IDS ")[1].split()
    rows = (await db.execute(text("SELECT id, version, archived FROM flow ORDER BY version"))).all()
    assert [(str(r[0]), r[1], r[2]) for r in rows] == [(first, 1, True), (second, 2, False)]
    tasks = (await db.execute(text("SELECT slug FROM task WHERE flow_id = :id ORDER BY slug"), {"id": second})).all()
    assert [t[0] for t in tasks] == ["say-1", "who"]
    assert await db.scalar(text("SELECT count(*) FROM edge WHERE flow_id = :id"), {"id": second}) == 1


async def test_prefect_register_skips_unchanged_flow(prefect, db):
    prefect.cli("create", "project", "cli")
    path = prefect.write("hello_flow.py", HELLO_FLOW)
    first = prefect.cli("register", "--project", "cli", "-p", str(path))
    assert "Registered" in first.stdout or "registered" in first.stdout
    second = prefect.cli("register", "--project", "cli", "-p", str(path))
    assert "Skipped (metadata unchanged)" in second.stdout
    assert await db.scalar(text("SELECT count(*) FROM flow")) == 1
    forced = prefect.cli("register", "--project", "cli", "-p", str(path), "--force")
    assert "Registered" in forced.stdout or "registered" in forced.stdout
    assert await db.scalar(text("SELECT max(version) FROM flow")) == 2


async def test_get_and_describe_commands(prefect):
    prefect.cli("create", "project", "tutorial", "--description", "docs")
    prefect.python(HELLO_FLOW + "\nflow.register(project_name='tutorial')\nflow.register(project_name='tutorial')\n")
    projects = prefect.cli("get", "projects")
    assert "tutorial" in projects.stdout and "docs" in projects.stdout
    flows = prefect.cli("get", "flows")
    assert "hello-flow" in flows.stdout and " 2 " in flows.stdout
    assert "hello-flow" in prefect.cli("get", "flows", "--all-versions").stdout
    described = prefect.cli("describe", "flows", "--name", "hello-flow")
    assert "hello-flow" in described.stdout and "tutorial" in described.stdout
    tasks = prefect.cli("describe", "tasks", "--name", "hello-flow")
    assert "say" in tasks.stdout


async def test_flow_view_lookups(prefect):
    prefect.cli("create", "project", "tutorial")
    result = prefect.python(
        HELLO_FLOW
        + """
import json
from prefect.backend import FlowView
flow_id = flow.register(project_name="tutorial")
by_name = FlowView.from_flow_name("hello-flow", project_name="tutorial")
by_id = FlowView.from_flow_id(flow_id)
print("VIEW", json.dumps([by_name.flow_id, by_id.flow_id, by_name.name, by_name.project_name,
                          type(by_id.storage).__name__, by_id.archived]))
"""
    )
    by_name, by_id, name, project, storage, archived = json.loads(result.stdout.split("VIEW ")[1])
    assert by_name == by_id and name == "hello-flow" and project == "tutorial"
    assert storage == "Local" and archived is False
