"""Prebuilt statements (server/db/prebuilt.py) on the driver against the same statements through
SQLAlchemy Core: the same rows, the same exceptions, and a lost connection discarded by the pool."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import bindparam, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.exc import DBAPIError, StatementError

from headwater.server.db.engine import autocommit, create_engine
from headwater.server.db.prebuilt import Prebuilt
from headwater.server.domain.flow_runs import create_flow_run
from headwater.server.domain.run_states import change_flow_run_state
from headwater.server.domain.states import parse_state
from tests import factories as f

ECHO = text(
    "SELECT CAST(:id AS uuid) AS id, CAST(:doc AS jsonb) AS doc, CAST(:doc AS jsonb) AS raw, "
    "CAST(:n AS integer) + 1 AS n, :label AS label"
).bindparams(
    bindparam("id", type_=PG_UUID(as_uuid=True)), bindparam("doc", type_=JSONB), bindparam("n", value=41),
).columns(doc=JSONB)
PREBUILT_ECHO = Prebuilt(ECHO)


class CoreExecutions:
    """Counts the statements SQLAlchemy Core sends on an engine."""

    def __init__(self, engine):
        self.count = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self.seen)

    def seen(self, *args) -> None:
        self.count += 1


async def test_the_same_row_as_core(engine):
    params = {"id": uuid.uuid4(), "doc": {"a": [1, None, "x"], "b": None}, "label": "hello"}
    async with autocommit(engine) as connection:
        core = (await connection.execute(ECHO, params)).first()
        prebuilt = await PREBUILT_ECHO.first(connection, params)
    assert dict(prebuilt) == dict(core._mapping)
    assert prebuilt.doc == {"a": [1, None, "x"], "b": None} and prebuilt.n == 42  # typed column, default value
    assert prebuilt.raw == core.raw  # an untyped column: as Core leaves it


async def test_no_row_is_none(engine):
    statement = Prebuilt(text("SELECT 1 AS one WHERE false"))
    async with autocommit(engine) as connection:
        assert await statement.first(connection, {}) is None


async def test_a_database_error_is_raised_as_core_raises_it(engine):
    statement = text("SELECT 1 / CAST(:zero AS integer) AS x")
    async with autocommit(engine) as connection:
        with pytest.raises(DBAPIError) as core:
            await connection.execute(statement, {"zero": 0})
    async with autocommit(engine) as connection:
        with pytest.raises(DBAPIError) as prebuilt:
            await Prebuilt(statement).first(connection, {"zero": 0})
        assert (await connection.execute(text("SELECT 1"))).scalar() == 1  # the connection is still usable
    assert type(prebuilt.value) is type(core.value)
    assert type(prebuilt.value.orig) is type(core.value.orig)
    assert prebuilt.value.orig.sqlstate == core.value.orig.sqlstate == "22012"
    assert not prebuilt.value.connection_invalidated


async def test_a_bad_parameter_is_raised_as_core_raises_it(engine):
    statement = text("SELECT CAST(:doc AS jsonb) AS doc").bindparams(bindparam("doc", type_=JSONB))
    async with autocommit(engine) as connection:
        with pytest.raises(StatementError) as core:
            await connection.execute(statement, {"doc": {"x": object()}})
        with pytest.raises(StatementError) as prebuilt:
            await Prebuilt(statement).first(connection, {"doc": {"x": object()}})
    assert type(prebuilt.value) is type(core.value)
    assert type(prebuilt.value.orig) is type(core.value.orig) is TypeError


async def test_a_lost_connection_is_invalidated_and_the_pool_recovers(database_url):
    engine = create_engine(database_url, pool_size=1)
    try:
        async with autocommit(engine) as connection:
            pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar()
        killer = create_engine(database_url, pool_size=1)
        async with autocommit(engine) as connection:  # the pool's one connection again
            async with autocommit(killer) as admin:
                await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            with pytest.raises(DBAPIError) as lost:
                await Prebuilt(text("SELECT 1 AS one")).first(connection, {})
            assert lost.value.connection_invalidated
        await killer.dispose()
        async with autocommit(engine) as connection:  # a fresh connection, not the dead one
            assert (await Prebuilt(text("SELECT 1 AS one")).first(connection, {})).one == 1
    finally:
        await engine.dispose()


async def test_inside_a_transaction_the_statement_runs_through_core(engine):
    executions = CoreExecutions(engine)
    async with engine.begin() as connection:
        row = await PREBUILT_ECHO.first(connection, {"id": uuid.uuid4(), "doc": [], "label": "t"})
    assert row.n == 42 and executions.count == 1


@pytest.fixture
async def flow_id(gql, tenant_id) -> uuid.UUID:
    project = (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "prebuilt"}))["id"]
    return uuid.UUID((await gql.mutate("create_flow", {"project_id": project, "serialized_flow": f.flow("p")}))["id"])


async def test_the_fast_paths_send_nothing_through_core(engine, flow_id):
    executions = CoreExecutions(engine)
    async with autocommit(engine) as connection:
        run_id = await create_flow_run(connection, flow_id=flow_id, idempotency_key="k", max_bytes=1_000_000)
        change = await change_flow_run_state(
            connection, run_id, parse_state({"type": "Running", "__version__": "1.4.1"}, 1_000_000)
        )
    assert change.version == 2
    assert executions.count == 0


async def test_heartbeats_run_on_the_driver_and_tell_a_missing_run(engine, flow_id):
    from headwater.server.domain import flow_runs, task_runs

    async with autocommit(engine) as connection:
        run_id = await create_flow_run(connection, flow_id=flow_id, idempotency_key="hb", max_bytes=1_000_000)
        task_run_id = await connection.scalar(text("SELECT id FROM task_run WHERE flow_run_id = :r LIMIT 1"), {"r": run_id})
        executions = CoreExecutions(engine)
        assert await flow_runs.heartbeat(connection, run_id) is True
        assert await task_runs.heartbeat(connection, task_run_id) is True
        assert await flow_runs.heartbeat(connection, uuid.uuid4()) is False
        assert await task_runs.heartbeat(connection, uuid.uuid4()) is False
        assert executions.count == 0
        beats = (await connection.execute(text(
            "SELECT r.heartbeat IS NOT NULL, t.heartbeat IS NOT NULL FROM flow_run r JOIN task_run t ON t.flow_run_id = r.id "
            "WHERE t.id = :t"), {"t": task_run_id})).one()
    assert tuple(beats) == (True, True)


async def test_a_kept_select_gives_cores_rows_in_column_order(engine, flow_id):
    """The read layer's kept statements (PrebuiltSelect): every column of a run and of its
    flow (joined, so two `id` columns), Core's values in Core's order, the defaults written
    into the statement (a `where` value, a limit) and the parent key bound per call."""
    from headwater.server.db.prebuilt import PrebuiltSelect
    from headwater.server.graphql.hasura.catalog import CATALOG
    from headwater.server.graphql.hasura.compiler import Join, Link, row_set
    from headwater.server.graphql.hasura.plan import ListArgs

    async with autocommit(engine) as connection:
        run_id = await create_flow_run(connection, flow_id=flow_id, idempotency_key="kept", max_bytes=1_000_000)
    runs, flows = CATALOG["flow_run"], CATALOG["flow"]
    columns = [c.name for c in runs.table.columns]
    flow = runs.relationships[runs.fields["flow"][1]]
    joins = [Join("flow", flow, flows, [c.name for c in flows.table.columns], [])]
    args = ListArgs(where={"version": {"_gte": 0}, "name": {"_like": "%"}})
    statement = row_set(runs, columns, args, 10, Link("id", [run_id], bound=True), joins)
    kept = PrebuiltSelect(statement)
    for key in (run_id, uuid.uuid4()):
        async with autocommit(engine) as connection:
            core = [tuple(row) for row in await connection.execute(statement, {"hw_link_keys": key})]
            executions = CoreExecutions(engine)
            driver = await kept.all(connection, {"hw_link_keys": key})
        assert driver == core and executions.count == 0
        assert len(core) == (1 if key == run_id else 0)
        if core:
            row = dict(zip(columns, driver[0]))
            assert row["id"] == run_id and isinstance(row["parameters"], dict), "typed: a uuid, a jsonb document"
