"""The one-statement state changes (run_states.change_*) against the general path (lock, check in
Python, record): for the same walks on twin runs, the same answers, the same errors and the same
rows, history and queued hook deliveries."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text

from headwater.server.db.engine import autocommit, create_sessionmaker, transaction
from headwater.server.domain.errors import DomainError
from headwater.server.domain.run_states import (
    change_flow_run_state,
    change_task_run_state,
    set_flow_run_state,
    set_task_run_state,
)
from headwater.server.domain.states import parse_state
from tests import factories as f

AGENT = uuid.uuid4()
BORN = "2030-01-01T00:00:00+00:00"  # twins scheduled alike


def state(name: str, **extra: Any):
    return parse_state({"type": name, "message": f"{name} now", "__version__": "1.4.1", **extra}, 1_000_000)


def outcome(call_result: Any, run_id: Any, flow_run_id: Any = None) -> tuple:
    """An answer or an error, with the run's ids taken out (twins have different ids)."""
    if isinstance(call_result, DomainError):
        message = call_result.message.replace(str(run_id), "<id>").replace(str(flow_run_id), "<flow run>")
        return type(call_result).__name__, call_result.code, message
    return "ok", call_result.version, call_result.status, call_result.message


async def attempt(coro) -> Any:
    try:
        return await coro
    except DomainError as error:
        return error


async def flow_general(engine, run_id, st, version=None, agent_id=None):
    async with transaction(create_sessionmaker(engine)) as session:
        return await set_flow_run_state(session, run_id, st, version=version, agent_id=agent_id)


async def flow_fast(engine, run_id, st, version=None, agent_id=None):
    async with autocommit(engine) as connection:
        return await change_flow_run_state(connection, run_id, st, version=version, agent_id=agent_id)


async def task_general(engine, run_id, st, version=None):
    async with transaction(create_sessionmaker(engine)) as session:
        return await set_task_run_state(session, run_id, st, version=version)


async def task_fast(engine, run_id, st, version=None):
    async with autocommit(engine) as connection:
        return await change_task_run_state(connection, run_id, st, version=version)


async def run_rows(db, table: str, history: str, fk: str, run_id) -> dict:
    """What a state change leaves behind, ids and timestamps reduced to whether they are set."""
    row = (await db.execute(text(f"SELECT * FROM {table} WHERE id = :id"), {"id": run_id})).mappings().one()
    states = (
        await db.execute(
            text(f"SELECT state, message, version, serialized_state, result, start_time FROM {history} "
                 f"WHERE {fk} = :id ORDER BY version"),
            {"id": run_id},
        )
    ).mappings().all()
    summary = {key: row[key] for key in ("state", "version", "serialized_state", "state_message", "state_result",
                                         "state_start_time")}
    summary.update({key: row[key] is not None for key in ("heartbeat", "start_time", "end_time")})
    if table == "flow_run":
        summary["agent_id"] = row["agent_id"]
        summary["deliveries"] = await db.scalar(
            text("SELECT count(*) FROM cloud_hook_delivery WHERE flow_run_id = :id"), {"id": run_id}
        )
    summary["history"] = [dict(s) for s in states]
    return summary


@pytest.fixture
async def flow_id(gql, tenant_id, db) -> str:
    project = (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "fast"}))["id"]
    flow_id = (await gql.mutate("create_flow", {"project_id": project, "serialized_flow": f.flow("twins")}))["id"]
    await db.execute(text("INSERT INTO agent (id, tenant_id) VALUES (:id, :tenant)"), {"id": AGENT, "tenant": tenant_id})
    await db.commit()
    # A hook on some states, so the outbox rows are compared too.
    payload = {"tenant_id": tenant_id, "type": "WEBHOOK", "states": ["RUNNING", "SUCCESS", "FAILED"],
               "config": {"url": "http://127.0.0.1:9/hook"}}
    await gql.mutate("create_cloud_hook", payload)
    return flow_id


async def twins(gql, flow_id) -> tuple[uuid.UUID, uuid.UUID]:
    twin = {"flow_id": flow_id, "scheduled_start_time": BORN}
    ids = [(await gql.mutate("create_flow_run", twin))["id"] for _ in range(2)]
    return uuid.UUID(ids[0]), uuid.UUID(ids[1])


# Each step: (state, version, agent). A version of "current" names the run's current version.
FLOW_WALKS = {
    "no version lock": [
        ("Pending", None, None), ("Submitted", None, AGENT), ("Submitted", None, AGENT), ("Running", None, None),
        ("Running", 1, None), ("Success", None, None), ("Submitted", None, None), ("Scheduled", None, None),
        ("Submitted", None, AGENT), ("Failed", None, None),
    ],
    "version lock": [
        ("Submitted", 7, AGENT), ("Submitted", "current", AGENT), ("Running", 1, None),
        ("Running", "current", None), ("Running", None, None), ("Cancelling", None, None),
        ("Success", "current", None), ("Running", None, None), ("Retrying", None, None), ("Running", None, None),
    ],
}


@pytest.mark.parametrize("walk", FLOW_WALKS)
async def test_flow_run_changes_match_the_general_path(engine, gql, db, flow_id, walk):
    if walk == "version lock":
        await gql.mutate("enable_flow_version_lock", {"flow_id": flow_id}, "success")
    general_id, fast_id = await twins(gql, flow_id)
    for name, version, agent in FLOW_WALKS[walk]:
        versions = {}
        for run_id in (general_id, fast_id):
            current = await db.scalar(text("SELECT version FROM flow_run WHERE id = :id"), {"id": run_id})
            await db.commit()
            versions[run_id] = current if version == "current" else version
        general = await attempt(flow_general(engine, general_id, state(name), versions[general_id], agent))
        fast = await attempt(flow_fast(engine, fast_id, state(name), versions[fast_id], agent))
        assert outcome(fast, fast_id) == outcome(general, general_id), (name, version)
        assert await run_rows(db, "flow_run", "flow_run_state", "flow_run_id", fast_id) == await run_rows(
            db, "flow_run", "flow_run_state", "flow_run_id", general_id
        ), (name, version)
        await db.commit()


async def test_the_walks_include_every_refusal(engine, gql, db, flow_id):
    """The walks above are worth comparing only if they hit each rule."""
    await gql.mutate("enable_flow_version_lock", {"flow_id": flow_id}, "success")
    run_id, _ = await twins(gql, flow_id)
    seen = set()
    for name, version, agent in FLOW_WALKS["version lock"] + FLOW_WALKS["no version lock"]:
        current = await db.scalar(text("SELECT version FROM flow_run WHERE id = :id"), {"id": run_id})
        await db.commit()
        result = await attempt(flow_fast(engine, run_id, state(name), current if version == "current" else version, agent))
        if isinstance(result, DomainError):
            seen.add((result.code, result.message.split(":")[-1].split("(")[0].strip()))
    messages = {message for _, message in seen}
    assert "this run has already been submitted." in messages
    assert any("is stale" in message for message in messages)
    assert any("may enter Running only once" in message for message in messages)


@pytest.mark.parametrize("change", [flow_general, flow_fast])
async def test_an_unknown_flow_run(engine, change):
    missing = uuid.uuid4()
    error = await attempt(change(engine, missing, state("Running")))
    assert outcome(error, missing) == ("NotFound", error.code, "State update failed for flow run ID <id>: no such flow run.")


@pytest.mark.parametrize("change", [task_general, task_fast])
async def test_an_unknown_task_run(engine, change):
    missing = uuid.uuid4()
    error = await attempt(change(engine, missing, state("Running")))
    assert outcome(error, missing) == ("NotFound", error.code, "State update failed for task run ID <id>: no such task run.")


async def test_a_cancelled_state_is_left_to_the_general_path(engine, gql, flow_id):
    run_id, _ = await twins(gql, flow_id)
    with pytest.raises(ValueError):
        await flow_fast(engine, run_id, state("Cancelled"))


INPUTS = {"x": {"type": "int", "value": 1}}
TASK_WALKS = {
    "no version lock": [
        ("Running", None, {}, None), ("flow:Running", None, {}, None), ("Running", None, {"cached_inputs": INPUTS}, None),
        ("Retrying", None, {}, None), ("Running", None, {"cached_inputs": {}}, None),
        ("Failed", None, {"cached_inputs": {"y": {"value": 2}}}, None), ("Retrying", None, {"cached_inputs": None}, None),
        ("Cancelling", None, {}, None), ("Success", None, {}, None),
    ],
    "version lock": [
        ("flow:Running", None, {}, None), ("Running", 5, {}, None), ("Running", "current", {}, None),
        ("Running", None, {}, None), ("Success", None, {}, None), ("Running", None, {}, None),
        ("Pending", "current", {}, None), ("flow:Success", None, {}, None), ("Running", None, {}, None),
    ],
}


@pytest.mark.parametrize("walk", TASK_WALKS)
async def test_task_run_changes_match_the_general_path(engine, gql, db, flow_id, walk):
    if walk == "version lock":
        await gql.mutate("enable_flow_version_lock", {"flow_id": flow_id}, "success")
    flow_runs = await twins(gql, flow_id)
    task_runs = []
    for flow_run_id in flow_runs:
        task_runs.append(
            await db.scalar(
                text("SELECT id FROM task_run WHERE flow_run_id = :id ORDER BY task_id LIMIT 1"), {"id": flow_run_id}
            )
        )
    await db.commit()
    general_id, fast_id = task_runs
    for name, version, extra, _ in TASK_WALKS[walk]:
        if name.startswith("flow:"):
            for flow_run_id in flow_runs:
                await flow_general(engine, flow_run_id, state(name.removeprefix("flow:")))
            continue
        versions = {}
        for run_id in task_runs:
            current = await db.scalar(text("SELECT version FROM task_run WHERE id = :id"), {"id": run_id})
            await db.commit()
            versions[run_id] = current if version == "current" else version
        general = await attempt(task_general(engine, general_id, state(name, **extra), versions[general_id]))
        fast = await attempt(task_fast(engine, fast_id, state(name, **extra), versions[fast_id]))
        assert outcome(fast, fast_id, flow_runs[1]) == outcome(general, general_id, flow_runs[0]), (name, version, extra)
        rows = [await run_rows(db, "task_run", "task_run_state", "task_run_id", run_id) for run_id in task_runs]
        await db.commit()
        assert rows[1] == rows[0], (name, version, extra)


async def test_inputs_are_carried_forward_on_the_fast_path(engine, gql, db, flow_id):
    flow_run_id, _ = await twins(gql, flow_id)
    task_run_id = await db.scalar(text("SELECT id FROM task_run WHERE flow_run_id = :id LIMIT 1"), {"id": flow_run_id})
    await db.commit()
    await flow_fast(engine, flow_run_id, state("Running"))
    await task_fast(engine, task_run_id, state("Running", cached_inputs=INPUTS))
    await task_fast(engine, task_run_id, state("Retrying"))
    serialized = await db.scalar(text("SELECT serialized_state FROM task_run WHERE id = :id"), {"id": task_run_id})
    assert serialized["type"] == "Retrying" and serialized["cached_inputs"] == INPUTS


async def test_an_autocommit_connection_runs_each_statement_in_its_own_transaction(engine):
    """No BEGIN around the hot statements: now() (the transaction's start) moves between them."""
    async with autocommit(engine) as connection:
        first = await connection.scalar(text("SELECT now()"))
        second = await connection.scalar(text("SELECT now()"))
    assert second > first
    async with transaction(create_sessionmaker(engine)) as session:
        assert await session.scalar(text("SELECT now()")) == await session.scalar(text("SELECT now()"))


async def test_the_fast_paths_run_with_the_prepared_statement_caches_off(database_url, gql, flow_id):
    """HEADWATER_DB_STATEMENT_CACHE_SIZE=0 (PgBouncer's transaction pooling): same answers."""
    from headwater.server.db.engine import create_engine

    uncached = create_engine(database_url, statement_cache_size=0, statement_timeout_seconds=5)
    try:
        run_id, _ = await twins(gql, flow_id)
        for _ in range(3):
            assert (await flow_fast(uncached, run_id, state("Running"))).version >= 2
        missing = uuid.uuid4()
        assert outcome(await attempt(flow_fast(uncached, missing, state("Running"))), missing)[0] == "NotFound"
    finally:
        await uncached.dispose()
