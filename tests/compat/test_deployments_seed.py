"""The seed's deployment walk-through with the real prefect==1.4.1: a flow script, a spec file
beside it (Python, then YAML), `headwater deployment create`, and `headwater deployment run
--watch` under an unchanged `prefect agent local start`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.prefect_cli import Prefect

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

ADDITION_MACHINE = """
import prefect
from prefect import Flow, Parameter, task


@task
def add_numbers(nums):
    total = sum(nums)
    prefect.context.get("logger").info("The sum is %s", total)
    return total


with Flow("Addition Machine") as flow:
    add_numbers(Parameter("nums"))
"""

SPEC_PY = """
from headwater.client.deployments import DeploymentSpec

DeploymentSpec(
    flow_location="./addition_machine.py",
    name="my-first-deployment",
    parameters={"nums": [1, 2, 3, 4]},
)
"""

SPEC_YAML = """
- name: my-first-deployment
  flow_location: ./addition_machine.py
  parameters:
    nums: [1, 2, 3, 4]
"""

TABLES = ("project", "flow_group", "flow", "deployment", "flow_run")


@pytest.fixture
def prefect(live_server, tmp_path) -> Prefect:
    return Prefect(live_server.url, tmp_path / "home")


@pytest.fixture
def agent(prefect, tmp_path):
    process = prefect.agent(log=tmp_path / "agent.log")
    yield process
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def project_dir(tmp_path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "addition_machine.py").write_text(textwrap.dedent(ADDITION_MACHINE))
    return folder


def headwater(prefect: Prefect, live_server, cwd: Path, *args: str, env: dict | None = None, timeout: float = 240):
    """The headwater CLI in the same environment (HOME, Prefect config) as the agent."""
    return subprocess.run(
        [sys.executable, "-m", "headwater.server.cli", *args],
        env={**prefect.env, "HEADWATER_URL": live_server.url, **(env or {})}, cwd=cwd,
        capture_output=True, text=True, timeout=timeout,
    )


async def snapshot(db) -> dict[str, list]:
    rows = {}
    for table in TABLES:
        result = await db.execute(text(f"SELECT to_jsonb(t)::text FROM {table} t ORDER BY id"))
        rows[table] = result.scalars().all()
    await db.rollback()
    return rows


async def walk_through(prefect, live_server, project_dir: Path, db, spec_name: str, kind: str, tmp_path: Path):
    created = headwater(prefect, live_server, project_dir, "deployment", "create", spec_name)
    assert created.returncode == 0, created.stdout + created.stderr
    assert created.stdout.splitlines() == [
        f"Loading deployments from {kind} at '{spec_name}'...",
        "Created deployment 'my-first-deployment' for flow 'Addition Machine'",
    ]
    flow = (await db.execute(text("SELECT id, storage, project_id FROM flow"))).mappings().one()
    assert flow["storage"]["type"] == "Local" and flow["storage"]["stored_as_script"] is True
    assert flow["storage"]["path"] == str(project_dir / "addition_machine.py")
    assert await db.scalar(text("SELECT name FROM project WHERE id = :id"), {"id": flow["project_id"]}) == "default"
    await db.rollback()

    watched = headwater(prefect, live_server, project_dir, "deployment", "run",
                        "Addition Machine/my-first-deployment", "--watch", "--timeout", "200")
    agent_log = (tmp_path / "agent.log").read_text() if (tmp_path / "agent.log").exists() else ""
    assert watched.returncode == 0, watched.stdout + watched.stderr + agent_log
    assert "Success" in watched.stdout and "The sum is 10" in watched.stdout, watched.stdout
    run = (await db.execute(text("SELECT state, parameters, deployment_id FROM flow_run"))).mappings().one()
    deployment_id = await db.scalar(text("SELECT id FROM deployment WHERE name = 'my-first-deployment'"))
    assert run["state"] == "Success" and run["parameters"] == {"nums": [1, 2, 3, 4]} and run["deployment_id"] == deployment_id
    messages = (await db.execute(text("SELECT message FROM log"))).scalars().all()
    assert "The sum is 10" in messages
    await db.rollback()

    before = await snapshot(db)
    again = headwater(prefect, live_server, project_dir, "deployment", "create", spec_name)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[1:] == ["Unchanged deployment 'my-first-deployment' for flow 'Addition Machine'"]
    assert await snapshot(db) == before, "same ids, no new flow version, nothing rewritten"


async def test_seed_walk_through_with_a_python_spec(prefect, agent, live_server, project_dir, db, tmp_path):
    (project_dir / "spec.py").write_text(textwrap.dedent(SPEC_PY))
    await walk_through(prefect, live_server, project_dir, db, "spec.py", "python script", tmp_path)
    # The same deployment written as YAML is the same deployment: nothing changes.
    (project_dir / "spec.yaml").write_text(textwrap.dedent(SPEC_YAML))
    before = await snapshot(db)
    as_yaml = headwater(prefect, live_server, project_dir, "deployment", "create", "spec.yaml")
    assert as_yaml.stdout.splitlines() == [
        "Loading deployments from yaml file at 'spec.yaml'...",
        "Unchanged deployment 'my-first-deployment' for flow 'Addition Machine'",
    ], as_yaml.stderr
    assert await snapshot(db) == before


async def test_seed_walk_through_with_a_yaml_spec(prefect, agent, live_server, project_dir, db, tmp_path):
    (project_dir / "spec.yaml").write_text(textwrap.dedent(SPEC_YAML))
    await walk_through(prefect, live_server, project_dir, db, "spec.yaml", "yaml file", tmp_path)


async def test_a_changed_flow_makes_one_new_version(prefect, live_server, project_dir, db):
    (project_dir / "spec.py").write_text(textwrap.dedent(SPEC_PY))
    assert headwater(prefect, live_server, project_dir, "deployment", "create", "spec.py").returncode == 0
    script = project_dir / "addition_machine.py"
    script.write_text(script.read_text().replace("add_numbers(Parameter(\"nums\"))",
                                                 "add_numbers(Parameter(\"nums\"), task_args={\"name\": \"adder\"})"))
    changed = headwater(prefect, live_server, project_dir, "deployment", "create", "spec.py")
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.splitlines()[1:] == ["Unchanged deployment 'my-first-deployment' for flow 'Addition Machine'"]
    versions = (await db.execute(text("SELECT version, archived FROM flow ORDER BY version"))).all()
    assert versions == [(1, True), (2, False)], "the deployment follows the flow group to its new version"
    assert await db.scalar(text("SELECT count(DISTINCT flow_group_id) FROM flow")) == 1
    await db.rollback()


BAD_SCRIPT_SPECS = {
    "bad cron beside a good spec": (
        SPEC_YAML + "- {name: nightly, flow_location: ./addition_machine.py, parameters: {nums: [1]},"
                    " schedule: {cron: '61 * * * *'}}\n",
        "spec.yaml: deployment 'nightly' (#2): schedule.cron: invalid cron '61 * * * *'",
    ),
    "missing required parameter": (
        SPEC_YAML + "- {name: no-nums, flow_location: ./addition_machine.py}\n",
        "spec.yaml: deployment 'no-nums' (#2): parameters: missing required parameter 'nums' of flow 'Addition Machine'",
    ),
    "unknown flow in the script": (
        SPEC_YAML + "- {name: other, flow_location: ./addition_machine.py, flow_name: Subtraction Machine}\n",
        "spec.yaml: deployment 'other' (#2): flow_name: no flow 'Subtraction Machine' in",
    ),
    "unknown project": (
        SPEC_YAML + "- {name: elsewhere, flow_location: ./addition_machine.py, project: nope, parameters: {nums: [1]}}\n",
        "spec.yaml: deployment 'elsewhere' (#2): project: unknown project 'nope'",
    ),
    "a script that fails": (
        SPEC_YAML + "- {name: broken, flow_location: ./broken.py}\n",
        "spec.yaml: deployment 'broken' (#2): flow_location: cannot load",
    ),
    "duplicate names": (
        SPEC_YAML + SPEC_YAML,
        "spec.yaml: deployment 'my-first-deployment' (#2): name: duplicate name, also used by #1 for the same flow",
    ),
}


@pytest.mark.parametrize("case", list(BAD_SCRIPT_SPECS))
async def test_a_bad_spec_registers_nothing(prefect, live_server, project_dir, db, case):
    (project_dir / "broken.py").write_text("raise RuntimeError('this script is broken')\n")
    content, message = BAD_SCRIPT_SPECS[case]
    (project_dir / "spec.yaml").write_text(textwrap.dedent(content))
    before = await snapshot(db)
    result = headwater(prefect, live_server, project_dir, "deployment", "create", "spec.yaml")
    assert result.returncode == 2, result.stdout + result.stderr
    assert any(line.startswith(f"headwater: {message}") for line in result.stderr.splitlines()), result.stderr
    assert await snapshot(db) == before, "no project, no flow version, no deployment"


def test_without_prefect_one_clear_line(prefect, live_server, project_dir, tmp_path):
    shadow = tmp_path / "no-prefect"
    (shadow / "prefect").mkdir(parents=True)
    (shadow / "prefect" / "__init__.py").write_text("raise ImportError('No module named prefect')\n")
    (project_dir / "spec.yaml").write_text(textwrap.dedent(SPEC_YAML))
    pythonpath = os.pathsep.join(filter(None, [str(shadow), os.environ.get("PYTHONPATH")]))
    result = headwater(prefect, live_server, project_dir, "deployment", "create", "spec.yaml",
                       env={"PYTHONPATH": pythonpath})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "headwater: deployments with flow_location need Prefect Core 1.x: pip install 'headwater[prefect]'"]


async def test_a_renamed_required_parameter_is_checked_against_the_new_script(prefect, live_server, project_dir, db):
    """The server's dry run sees the registered version; the new script's parameters decide."""
    spec = project_dir / "spec.yaml"
    spec.write_text(textwrap.dedent(SPEC_YAML) + "  schedule: {interval: 3600}\n")
    assert headwater(prefect, live_server, project_dir, "deployment", "create", "spec.yaml").returncode == 0
    script = project_dir / "addition_machine.py"
    script.write_text(script.read_text().replace('Parameter("nums")', 'Parameter("values")'))
    spec.write_text(spec.read_text().replace("nums:", "values:"))
    renamed = headwater(prefect, live_server, project_dir, "deployment", "create", "spec.yaml")
    assert renamed.returncode == 0, renamed.stderr
    assert renamed.stdout.splitlines()[1:] == ["Updated deployment 'my-first-deployment' for flow 'Addition Machine'"]
    assert await db.scalar(text("SELECT parameters FROM deployment")) == {"values": [1, 2, 3, 4]}
    assert await db.scalar(text("SELECT count(*) FROM flow")) == 2
    await db.rollback()
