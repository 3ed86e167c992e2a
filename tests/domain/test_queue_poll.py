"""The agents' queue poll (issue 15): its partial index, a plan that reads it, and answers equal
to the poll as first written (one OR over waiting and retrying runs, sorted, limited)."""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from pathlib import Path

import pytest
from sqlalchemy import event, func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from headwater.server.db.models import QUEUE_WAITING_STATES, FlowRun, TaskRun
from headwater.server.domain.flow_runs import QUEUE_LIMIT, get_runs_in_queue
from headwater.server.domain.states import SCHEDULED_STATES
from tests import factories as f

MIGRATION = Path(__file__).resolve().parents[2] / "server" / "db" / "migrations" / "versions" / "0007_queue_poll_index.py"


@pytest.mark.pure
def test_the_index_predicate_is_the_scheduled_family():
    assert QUEUE_WAITING_STATES == tuple(sorted(SCHEDULED_STATES))
    predicate = "state IN (" + ", ".join(repr(s) for s in QUEUE_WAITING_STATES) + ")"
    assert predicate in MIGRATION.read_text(), "the migration's predicate is the models' one"


async def test_the_queue_index_exists(db):
    definition = await db.scalar(text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_flow_run_queue'"))
    assert definition is not None
    assert "(tenant_id, state_start_time)" in definition
    assert all(f"'{name}'" in definition for name in QUEUE_WAITING_STATES) and "WHERE" in definition


@pytest.fixture
async def flow_id(gql, tenant_id) -> str:
    project = (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "queue"}))["id"]
    flow = f.flow("queue", tasks=[f.task("only-1")])
    return (await gql.mutate("create_flow", {"project_id": project, "serialized_flow": flow}))["id"]


@pytest.mark.parametrize("labels", [["dev"], []])
async def test_the_poll_plan_reads_the_queue_index(db, tenant_id, flow_id, labels):
    """The statement the poll really sends, EXPLAINed (its literal state list matches the
    index predicate, so even a generic plan may use the index). The table holds what a real
    one does, mostly finished runs, and is analyzed: on a near-empty table with stale statistics
    any index is as good as another."""
    await db.execute(text(
        "INSERT INTO flow_run (tenant_id, flow_id, name, state, state_start_time, labels) "
        "SELECT CAST(:tenant AS uuid), CAST(:flow AS uuid), 'done-' || g, 'Success', now() - g * interval '1 minute', '[]' "
        "FROM generate_series(1, 5000) g"), {"tenant": tenant_id, "flow": flow_id})
    await db.execute(text("ANALYZE flow_run"))
    await db.commit()
    lines: list[str] = []

    def explain(conn, cursor, statement, parameters, context, executemany):
        return "EXPLAIN " + statement, parameters

    await db.execute(text("SET enable_seqscan = off"))
    event.listen(db.sync_connection, "before_cursor_execute", explain, retval=True)
    try:
        session = AsyncSession(bind=db)
        lines = [str(line) for line in await get_runs_in_queue(session, uuid.UUID(tenant_id), labels=labels)]
    finally:
        event.remove(db.sync_connection, "before_cursor_execute", explain)
        await db.execute(text("RESET enable_seqscan"))
    plan = "\n".join(lines)
    assert "ix_flow_run_queue" in plan, plan


def reference_poll(tenant_id: uuid.UUID, before: dt.datetime, labels: list[str]):
    """The poll as it was before the index: one OR, sorted, limited (the behaviour to keep)."""
    waiting = sorted(SCHEDULED_STATES)
    retrying_task = (
        select(literal(1)).select_from(TaskRun)
        .where(TaskRun.flow_run_id == FlowRun.id, TaskRun.state.in_(waiting), TaskRun.state_start_time <= before)
        .exists()
    )
    label_rule = FlowRun.labels.contained_by(labels)
    if labels:
        label_rule = label_rule & (func.jsonb_array_length(FlowRun.labels) > 0)
    return (
        select(FlowRun.id)
        .where(
            FlowRun.tenant_id == tenant_id,
            ((FlowRun.state.in_(waiting) & (FlowRun.state_start_time <= before))
             | ((FlowRun.state == "Running") & retrying_task)),
            label_rule,
        )
        .order_by(FlowRun.state_start_time)
        .limit(QUEUE_LIMIT)
    )


async def test_the_poll_answers_as_the_single_or_query(gql, db, tenant_id, flow_id):
    """Waiting runs due and not, Running runs with a due, a later or no waiting task run, other
    states, labels; more than QUEUE_LIMIT qualify, from both arms, interleaved in due order."""
    rng = random.Random(15)
    now = dt.datetime.now(dt.timezone.utc)
    states = [*SCHEDULED_STATES, "Running", "Running", "Running", "Pending", "Submitted", "Success", "Failed"]
    label_sets = [[], ["dev"], ["dev", "gpu"], ["gpu"]]
    for i in range(80):
        run_id = (await gql.mutate("create_flow_run", {"flow_id": flow_id}))["id"]
        await db.execute(
            text("UPDATE flow_run SET state = :state, state_start_time = :start, labels = CAST(:labels AS jsonb) "
                 "WHERE id = :id"),
            {"id": run_id, "state": rng.choice(states), "labels": json.dumps(rng.choice(label_sets)),
             "start": now + dt.timedelta(seconds=rng.randint(-7200, 600), microseconds=i)},
        )
        await db.execute(
            text("UPDATE task_run SET state = :state, state_start_time = :start WHERE flow_run_id = :id"),
            {"id": run_id, "state": rng.choice(["Retrying", "Scheduled", "Pending", "Running", "Success"]),
             "start": now + dt.timedelta(seconds=rng.randint(-3600, 600))},
        )
    await db.commit()
    tenant = uuid.UUID(tenant_id)
    session = AsyncSession(bind=db)
    compared = 0
    for labels in label_sets + [["dev", "gpu", "x"]]:
        for before in (now - dt.timedelta(hours=3), now - dt.timedelta(minutes=30), now, now + dt.timedelta(hours=1)):
            expected = list((await db.scalars(reference_poll(tenant, before, sorted(labels)))).all())
            assert await get_runs_in_queue(session, tenant, before=before, labels=labels) == expected
            compared += len(expected)
    full = await get_runs_in_queue(session, tenant, before=now + dt.timedelta(hours=1), labels=[])
    assert compared and len(full) <= QUEUE_LIMIT
    everything = await get_runs_in_queue(session, tenant, before=now + dt.timedelta(hours=1), labels=["dev", "gpu"])
    assert len(everything) == QUEUE_LIMIT, "the data set fills a whole poll"
    kinds = set((await db.execute(text("SELECT DISTINCT state FROM flow_run WHERE id = ANY(:ids)"),
                                  {"ids": everything})).scalars())
    assert "Running" in kinds and kinds & SCHEDULED_STATES, "both arms contribute to a full poll"


async def test_headwater_connections_run_without_jit(app):
    """JIT compiled the poll on every call where Postgres has it (Debian's packages): headwater's
    own connections turn it off (the embedded build lacks JIT, but the setting is still shown)."""
    async with app.state.engine.connect() as connection:
        assert await connection.scalar(text("SHOW jit")) == "off"
