"""create_flow_run on an autocommit connection (one statement after the flow lookup) against the
session path: the same runs, task runs, history and hook deliveries, the same idempotency and the
same errors."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from headwater.server.db.engine import autocommit, create_sessionmaker, transaction
from headwater.server.domain.errors import DomainError
from headwater.server.domain.flow_runs import create_flow_run
from tests import factories as f

BORN = "2030-01-01T00:00:00+00:00"


async def general(engine, **kwargs):
    async with transaction(create_sessionmaker(engine)) as session:
        return await create_flow_run(session, max_bytes=1_000_000, **kwargs)


async def fast(engine, **kwargs):
    async with autocommit(engine) as connection:
        return await create_flow_run(connection, max_bytes=1_000_000, **kwargs)


PATHS = pytest.mark.parametrize("create", [general, fast])


async def attempt(coro) -> Any:
    try:
        return await coro
    except DomainError as error:
        return type(error).__name__, error.code, error.message


@pytest.fixture
async def flow_id(gql, tenant_id) -> uuid.UUID:
    project = (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "create"}))["id"]
    flow = f.flow("created", parameters=[f.parameter("x", default=1), f.parameter("need", required=True)])
    flow_id = (await gql.mutate("create_flow", {"project_id": project, "serialized_flow": flow}))["id"]
    hook = {"tenant_id": tenant_id, "type": "WEBHOOK", "states": ["SCHEDULED"], "config": {"url": "http://127.0.0.1:9/"}}
    await gql.mutate("create_cloud_hook", hook)
    return uuid.UUID(flow_id)


async def created(db, run_id) -> dict:
    """The run and what came with it, ids and creation stamps left out."""
    run = dict((await db.execute(text("SELECT * FROM flow_run WHERE id = :id"), {"id": run_id})).mappings().one())
    for key in ("id", "created", "updated", "state_timestamp"):
        run.pop(key, None)
    run["name"] = run["name"] is not None
    task_runs = (await db.execute(text(
        "SELECT task_id, map_index, version, state, serialized_state, state_message, cache_key, "
        "(SELECT count(*) FROM task_run_state s WHERE s.task_run_id = t.id) AS history "
        "FROM task_run t WHERE flow_run_id = :id ORDER BY task_id"), {"id": run_id})).mappings().all()
    history = (await db.execute(text(
        "SELECT state, message, start_time, serialized_state, version FROM flow_run_state WHERE flow_run_id = :id"),
        {"id": run_id})).mappings().all()
    deliveries = (await db.execute(text(
        "SELECT state, payload -> 'flow_run' -> 'parameters' AS parameters FROM cloud_hook_delivery "
        "WHERE flow_run_id = :id"), {"id": run_id})).mappings().all()
    await db.commit()
    return {"run": run, "task_runs": [dict(t) for t in task_runs], "history": [dict(h) for h in history],
            "deliveries": [dict(d) for d in deliveries]}


REQUESTS = [
    dict(parameters={"need": 2}),
    dict(parameters={"need": 2, "x": 5}, context={"c": 1}, labels=["b", "a"], flow_run_name="named"),
    dict(parameters={"need": 0}, run_config={"type": "UniversalRun", "labels": ["rc"]}, tags=["t", "t", "u"]),
    dict(parameters={"need": 1}, idempotency_key="k1"),
]


@pytest.mark.parametrize("request_kwargs", REQUESTS)
async def test_the_same_run_either_way(engine, db, flow_id, request_kwargs):
    kwargs = {"flow_id": flow_id, "scheduled_start_time": dt.datetime.fromisoformat(BORN),
              **request_kwargs}
    general_id = await general(engine, **kwargs)
    if "idempotency_key" in kwargs:
        kwargs["idempotency_key"] = "k2"  # a twin, not a retry
    fast_id = await fast(engine, **kwargs)
    assert general_id != fast_id
    general_rows, fast_rows = await created(db, general_id), await created(db, fast_id)
    general_rows["run"].pop("idempotency_key"), fast_rows["run"].pop("idempotency_key")
    assert fast_rows == general_rows
    assert len(fast_rows["task_runs"]) == 4 and len(fast_rows["deliveries"]) == 1


@PATHS
async def test_a_retry_with_the_key_returns_the_run(engine, db, flow_id, create):
    first = await create(engine, flow_id=flow_id, parameters={"need": 1}, idempotency_key="again")
    assert await general(engine, flow_id=flow_id, parameters={"need": 1}, idempotency_key="again") == first
    assert await fast(engine, flow_id=flow_id, parameters={"need": 9}, idempotency_key="again") == first
    assert await db.scalar(text("SELECT count(*) FROM flow_run")) == 1
    assert await db.scalar(text("SELECT count(*) FROM task_run")) == 4
    assert await db.scalar(text("SELECT count(*) FROM cloud_hook_delivery")) == 1


@PATHS
async def test_racing_retries_make_one_run(engine, db, flow_id, create):
    ids = await asyncio.gather(
        *(create(engine, flow_id=flow_id, parameters={"need": 1}, idempotency_key="race") for _ in range(8))
    )
    assert len(set(ids)) == 1
    assert await db.scalar(text("SELECT count(*) FROM flow_run")) == 1


async def test_the_same_errors(engine, db, gql, flow_id):
    unknown = uuid.uuid4()
    cases = [
        dict(flow_id=unknown),
        dict(version_group_id="nowhere"),
        dict(),
        dict(flow_id=flow_id),  # the required parameter is missing
        dict(flow_id=flow_id, parameters={"need": 1}, labels=["x" * 10_000]),
        dict(flow_id=flow_id, parameters=[1]),
    ]
    for kwargs in cases:
        expected = await attempt(general(engine, **kwargs))
        assert isinstance(expected, tuple), kwargs
        assert await attempt(fast(engine, **kwargs)) == expected, kwargs
    held = await fast(engine, flow_id=flow_id, parameters={"need": 1}, idempotency_key="before-archive")
    await gql.mutate("archive_flow", {"flow_id": str(flow_id)}, "success")
    for create in (general, fast):
        assert await create(engine, flow_id=flow_id, parameters={"need": 1}, idempotency_key="before-archive") == held
    archived = await attempt(general(engine, flow_id=flow_id, parameters={"need": 1}))
    assert archived[2] == f"Flow {flow_id} is archived."
    assert await attempt(fast(engine, flow_id=flow_id, parameters={"need": 1})) == archived
    assert await db.scalar(text("SELECT count(*) FROM flow_run")) == 1
