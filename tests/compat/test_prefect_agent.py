"""Running flows with the unchanged `prefect agent local start` against a live headwater."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text

from tests.prefect_cli import Prefect

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

ETL_FLOW = """
import datetime
import prefect
from prefect import Flow, Parameter, task
from prefect.backend.artifacts import create_markdown_artifact

@task
def numbers(n):
    return list(range(n))

@task(task_run_name="double-{x}")
def double(x):
    return 2 * x

@task(max_retries=1, retry_delay=datetime.timedelta(seconds=1))
def flaky(values):
    logger = prefect.context.get("logger")
    if prefect.context.get("task_run_count", 1) == 1:
        logger.warning("flaky fails on its first attempt")
        raise RuntimeError("first attempt fails")
    create_markdown_artifact(f"# total {sum(values)}")
    logger.info("total is %s", sum(values))
    return sum(values)

with Flow("etl") as flow:
    n = Parameter("n", default=3)
    flaky(double.map(numbers(n)))
"""

FAILING_FLOW = """
from prefect import Flow, task

@task
def boom():
    raise ValueError("this flow always fails")

with Flow("failing") as flow:
    boom()
"""

SLOW_FLOW = """
import time
from prefect import Flow, task

@task
def sleepy():
    for _ in range(120):
        time.sleep(0.5)

with Flow("slow") as flow:
    sleepy()
"""


@pytest.fixture
def prefect(live_server, tmp_path) -> Prefect:
    client = Prefect(live_server.url, tmp_path / "home")
    client.cli("create", "project", "runs")
    return client


@pytest.fixture
def agent(prefect, tmp_path):
    process = prefect.agent(log=tmp_path / "agent.log")
    yield process
    process.terminate()
    try:
        process.wait(timeout=15)
    except Exception:  # noqa: BLE001
        process.kill()


def register(prefect: Prefect, name: str, code: str) -> str:
    path = prefect.write(f"{name}.py", code)
    prefect.cli("register", "--project", "runs", "-p", str(path))
    return str(path)


async def wait_for_state(db, run_id: str, states: set[str], timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = await db.scalar(text("SELECT state FROM flow_run WHERE id = :id"), {"id": run_id})
        if state in states:
            return state
        await asyncio.sleep(0.5)
    raise AssertionError(f"run {run_id} stayed {state}, expected one of {states}")


async def test_agent_runs_flow_to_success(prefect, agent, db):
    register(prefect, "etl", ETL_FLOW)
    watched = prefect.cli("run", "--name", "etl", "--project", "runs", "--param", "n=4", "--watch", timeout=240)
    assert "Success" in watched.stdout, watched.stdout
    run_id = await db.scalar(text("SELECT id FROM flow_run"))
    run = (await db.execute(text("SELECT * FROM flow_run WHERE id = :id"), {"id": run_id})).mappings().one()
    assert run["state"] == "Success" and run["parameters"] == {"n": 4}
    assert run["heartbeat"] is not None and run["start_time"] and run["end_time"] and run["agent_id"]
    task_runs = (
        await db.execute(
            text(
                "SELECT t.slug, tr.map_index, tr.state FROM task_run tr JOIN task t ON t.id = tr.task_id "
                "WHERE tr.flow_run_id = :id ORDER BY t.slug, tr.map_index"
            ),
            {"id": run_id},
        )
    ).all()
    by_slug = {}
    for slug, map_index, state in task_runs:
        by_slug.setdefault(slug, []).append((map_index, state))
    assert by_slug["double-1"] == [(-1, "Mapped"), (0, "Success"), (1, "Success"), (2, "Success"), (3, "Success")]
    assert by_slug["flaky-1"] == [(-1, "Success")]
    names = (await db.execute(text(
        "SELECT tr.name FROM task_run tr JOIN task t ON t.id = tr.task_id "
        "WHERE t.slug = 'double-1' AND tr.map_index >= 0 ORDER BY tr.map_index"))).scalars().all()
    assert names == ["double-0", "double-1", "double-2", "double-3"], "task_run_name templates are stored"
    flaky_history = (
        await db.execute(
            text(
                "SELECT s.state FROM task_run_state s JOIN task_run tr ON tr.id = s.task_run_id "
                "JOIN task t ON t.id = tr.task_id WHERE t.slug = 'flaky-1' ORDER BY s.version"
            )
        )
    ).all()
    assert "Retrying" in [h[0] for h in flaky_history], "the flaky task failed once and was retried"
    messages = [m[0] for m in (await db.execute(text("SELECT message FROM log WHERE flow_run_id = :id"), {"id": run_id})).all()]
    assert any("total is 12" in m for m in messages) and any("Submitted for execution" in m for m in messages)
    artifact = await db.scalar(text("SELECT data FROM task_run_artifact"))
    assert artifact == {"markdown": "# total 12"}


async def test_client_created_runs_succeed_and_fail(prefect, agent, db):
    register(prefect, "etl", ETL_FLOW)
    register(prefect, "failing", FAILING_FLOW)
    result = prefect.python(
        """
from prefect import Client
from prefect.backend import FlowView
client = Client()
for name in ("etl", "failing"):
    print("RUN", name, client.create_flow_run(flow_id=FlowView.from_flow_name(name).flow_id, parameters={}))
"""
    )
    runs = dict(line.split()[1:] for line in result.stdout.splitlines() if line.startswith("RUN "))
    assert await wait_for_state(db, runs["etl"], {"Failed", "Success"}) == "Success"
    assert await wait_for_state(db, runs["failing"], {"Failed", "Success"}) == "Failed"
    task_state = await db.scalar(text("SELECT state FROM task_run WHERE flow_run_id = :id"), {"id": runs["failing"]})
    assert task_state == "Failed"
    mapped = await db.scalar(
        text("SELECT count(*) FROM task_run WHERE flow_run_id = :id AND map_index >= 0 AND state = 'Success'"),
        {"id": runs["etl"]},
    )
    assert mapped == 3, "the default n=3 maps over three values"


async def test_cancel_running_flow(prefect, agent, db):
    register(prefect, "slow", SLOW_FLOW)
    flow_id = str(await db.scalar(text("SELECT id FROM flow WHERE name = 'slow'")))
    run_id = prefect.python(
        f'from prefect import Client\nprint("RUN", Client().create_flow_run(flow_id="{flow_id}"))'
    ).stdout.split("RUN ")[1].strip()
    await wait_for_state(db, run_id, {"Running"})
    prefect.python(f'from prefect import Client\nClient().cancel_flow_run("{run_id}")')
    assert await wait_for_state(db, run_id, {"Cancelled", "Failed", "Success"}) == "Cancelled"


async def test_prefect_run_execute_without_an_agent(prefect, db):
    register(prefect, "etl", ETL_FLOW)
    result = prefect.cli("run", "--name", "etl", "--project", "runs", "--execute", timeout=240)
    assert "Success" in result.stdout, result.stdout + result.stderr
    state = await db.scalar(text("SELECT state FROM flow_run"))
    assert state == "Success"
    labels = await db.scalar(text("SELECT labels FROM flow_run"))
    assert any(label.startswith("agentless-run-") for label in labels), "no agent may pick it up"


CACHED_FLOW = """
import datetime
from prefect import Flow, task

@task(cache_for=datetime.timedelta(minutes=5))
def expensive():
    return 42

with Flow("cached") as flow:
    expensive()
"""


async def test_cache_for_reuses_the_cached_state(prefect, db):
    register(prefect, "cached", CACHED_FLOW)
    for _ in range(2):
        prefect.cli("run", "--name", "cached", "--project", "runs", "--execute", timeout=240)
    rows = (await db.execute(text(
        "SELECT fr.state, tr.state FROM flow_run fr JOIN task_run tr ON tr.flow_run_id = fr.id "
        "ORDER BY fr.created"))).all()
    assert [tuple(r) for r in rows] == [("Success", "Cached"), ("Success", "Cached")]
    histories = []
    for (flow_run_id,) in (await db.execute(text("SELECT id FROM flow_run ORDER BY created"))).all():
        states = (await db.execute(text(
            "SELECT s.state FROM task_run_state s JOIN task_run tr ON tr.id = s.task_run_id "
            "WHERE tr.flow_run_id = :id ORDER BY s.version"), {"id": flow_run_id})).scalars().all()
        histories.append(states)
    assert "Success" in histories[0], "the first run computes the result"
    assert "Success" not in histories[1], "the second run takes it from the cache instead"
