"""The Hasura-style read API against a real Postgres: every operator, the Hasura v1 quirks the
Prefect client relies on, ordering, distinct_on, aggregates, paging, relationships, and a
replay of every read query the real 1.4.1 client sent (tests/wire/prefect1-capture.jsonl,
recorded by `python -m tests.wire.record`)."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from graphql import parse
from sqlalchemy import event, insert, text

from headwater.server.app import create_app
from headwater.server.db import models
from headwater.server.graphql.hasura.statements import STATEMENTS

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
CAPTURE = Path(__file__).resolve().parents[1] / "wire" / "prefect1-capture.jsonl"
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


class Rows:
    """Rows to insert, each under a name whose id lands in `ids`."""

    def __init__(self, tenant_id: str):
        self.tenant_id = tenant_id
        self.ids = SimpleNamespace()
        self.rows: list[tuple[Any, dict[str, Any]]] = []

    def add(self, model: Any, key: str | None = None, /, *, tenant: bool = False, **values: Any) -> None:
        values.setdefault("id", uuid.uuid4())
        if tenant:
            values["tenant_id"] = self.tenant_id
        if key:
            setattr(self.ids, key, values["id"])
        self.rows.append((model, values))

    async def insert(self, engine) -> SimpleNamespace:
        async with engine.begin() as connection:
            for model, values in self.rows:
                await connection.execute(insert(model.__table__).values(**values))
        return self.ids


@pytest.fixture
async def world(engine, tenant_id) -> SimpleNamespace:
    """Three projects, four flows (two versions of `etl`), tasks, an edge, an agent, three flow
    runs with task runs, states and logs. Returns the ids by name."""
    rows = Rows(tenant_id)
    add, w = rows.add, rows.ids
    add(models.Project, "alpha", name="alpha", description="first", created=at(0), tenant=True)
    add(models.Project, "beta", name="beta", created=at(1), tenant=True)
    add(models.Project, "empty", name="gamma", created=at(2), tenant=True)
    add(models.FlowGroup, "g_etl", labels=["prod", "gpu"], settings={"heartbeat_enabled": True}, tenant=True)
    add(models.FlowGroup, "g_report", labels=[], tenant=True)
    add(models.FlowGroup, "g_backup", tenant=True)

    def flow(name: str, version: int, project: Any, group: Any, minute: int, **extra: Any) -> dict[str, Any]:
        return dict(name=name, version=version, project_id=project, flow_group_id=group, created=at(minute),
                    core_version="1.4.1", tenant=True, **extra)

    add(models.Flow, "etl_v1", **flow("etl", 1, w.alpha, w.g_etl, 10, archived=True,
                                      storage={"type": "Local"}, serialized_flow={"v": 1}))
    add(models.Flow, "etl_v2", **flow("etl", 2, w.alpha, w.g_etl, 20, description="extract, transform, load",
                                      storage={"type": "Local", "directory": "/tmp"}, serialized_flow={"v": 2}))
    add(models.Flow, "report", **flow("report", 1, w.alpha, w.g_report, 30))
    add(models.Flow, "backup", **flow("backup", 1, w.beta, w.g_backup, 40, description="nightly"))

    add(models.Task, "extract", flow_id=w.etl_v2, name="extract", slug="extract-1", max_retries=2,
        retry_delay=dt.timedelta(seconds=30), type="prefect.Extract", created=at(21), tags=["io"])
    add(models.Task, "load", flow_id=w.etl_v2, name="load", slug="load-1", mapped=True, created=at(22))
    add(models.Task, "render", flow_id=w.report, name="render", slug="render-1", created=at(31))
    add(models.Edge, flow_id=w.etl_v2, upstream_task_id=w.extract, downstream_task_id=w.load)
    add(models.Agent, "agent", name="laptop", labels=["prod"], last_queried=at(100), tenant=True)

    add(models.FlowRun, "run_a", flow_id=w.etl_v2, name="run-a", state="Success", version=3, labels=["prod"],
        parameters={"x": 1}, context={"k": "v"}, agent_id=w.agent, scheduled_start_time=at(50),
        start_time=at(51), end_time=at(55), created=at(50), serialized_state={"type": "Success", "message": "ok"},
        tenant=True)
    add(models.FlowRun, "run_b", flow_id=w.etl_v2, name="run-b", state="Running", version=2,
        scheduled_start_time=at(60), start_time=at(61), created=at(60), tenant=True)
    add(models.FlowRun, "run_c", flow_id=w.report, name="run-c", state="Scheduled", version=1,
        scheduled_start_time=at(70), created=at(70), tenant=True)
    for run, task, index, state, minute in [
        (w.run_a, w.extract, -1, "Success", 52),
        (w.run_a, w.load, -1, "Mapped", 53),
        (w.run_a, w.load, 0, "Success", 54),
        (w.run_a, w.load, 1, "Failed", 54.5),
        (w.run_b, w.extract, -1, "Running", 61),
    ]:
        add(models.TaskRun, flow_run_id=run, task_id=task, map_index=index, state=state,
            state_timestamp=at(minute), state_start_time=at(minute), serialized_state={"type": state}, tenant=True)
    for state, minute in [("Scheduled", 50), ("Running", 51), ("Success", 55)]:
        add(models.FlowRunState, flow_run_id=w.run_a, state=state, timestamp=at(minute), start_time=at(minute),
            serialized_state={"type": state})
    for run, message, level, minute, info in [
        (w.run_a, "starting", "INFO", 51, None),
        (w.run_a, "working", "DEBUG", 52, {"k": 1}),
        (w.run_a, "done", "INFO", 55, None),
        (w.run_b, "b started", "INFO", 61, None),
    ]:
        add(models.Log, flow_run_id=run, message=message, level=level, timestamp=at(minute), info=info)
    return await rows.insert(engine)


async def flow_names(gql, where: str) -> list[tuple[str, int]]:
    data = await gql(f"{{ flow(where: {where}, order_by: [{{name: asc}}, {{version: asc}}]) {{ name version }} }}")
    return [(row["name"], row["version"]) for row in data["flow"]]


ETL1, ETL2, REPORT, BACKUP = ("etl", 1), ("etl", 2), ("report", 1), ("backup", 1)
ALL_FLOWS = [BACKUP, ETL1, ETL2, REPORT]

# -- operators ---------------------------------------------------------------------------------

OPERATOR_CASES = [
    ('{name: {_eq: "etl"}}', [ETL1, ETL2]),
    ('{name: {_neq: "etl"}}', [BACKUP, REPORT]),
    ("{version: {_gt: 1}}", [ETL2]),
    ("{version: {_gte: 2}}", [ETL2]),
    ("{version: {_lt: 2}}", [BACKUP, ETL1, REPORT]),
    ("{version: {_lte: 1}}", [BACKUP, ETL1, REPORT]),
    ('{name: {_in: ["report", "backup"]}}', [BACKUP, REPORT]),
    ('{name: {_nin: ["report", "backup"]}}', [ETL1, ETL2]),
    ("{name: {_in: []}}", []),
    ("{name: {_nin: []}}", ALL_FLOWS),
    ("{description: {_is_null: true}}", [ETL1, REPORT]),
    ("{description: {_is_null: false}}", [BACKUP, ETL2]),
    ('{name: {_like: "e%"}}', [ETL1, ETL2]),
    ('{name: {_nlike: "e%"}}', [BACKUP, REPORT]),
    ('{name: {_ilike: "E%"}}', [ETL1, ETL2]),
    ('{name: {_nilike: "%O%"}}', [BACKUP, ETL1, ETL2]),
    ('{name: {_similar: "(etl|report)"}}', [ETL1, ETL2, REPORT]),
    ('{name: {_nsimilar: "(etl|report)"}}', [BACKUP]),
    ("{archived: {_eq: true}}", [ETL1]),
    ("{archived: {_neq: true}}", [BACKUP, ETL2, REPORT]),
    ("{archived: {_in: [false]}}", [BACKUP, ETL2, REPORT]),
    ('{created: {_gte: "2024-01-01T00:30:00+00:00"}}', [BACKUP, REPORT]),
    ('{created: {_lt: "2024-01-01T00:20:00Z"}}', [ETL1]),
    ('{created: {_in: ["2024-01-01T00:10:00+00:00", "2024-01-01T01:20:00+01:00"]}}', [ETL1, ETL2]),
    ('{storage: {_contains: {type: "Local"}}}', [ETL1, ETL2]),
    ('{storage: {_contained_in: {type: "Local", extra: 1}}}', [ETL1]),
    ('{storage: {_has_key: "directory"}}', [ETL2]),
    ('{storage: {_has_keys_any: ["directory", "bucket"]}}', [ETL2]),
    ('{storage: {_has_keys_all: ["type", "directory"]}}', [ETL2]),
    ("{storage: {_is_null: true}}", [BACKUP, REPORT]),
    ("{serialized_flow: {_eq: {v: 2}}}", [ETL2]),
    ("{serialized_flow: {_neq: {v: 2}}}", [ETL1]),
    ("{serialized_flow: {_in: [{v: 1}, {v: 3}]}}", [ETL1]),
]


@pytest.mark.parametrize("where, expected", OPERATOR_CASES, ids=[case[0] for case in OPERATOR_CASES])
async def test_operators(gql, world, where, expected):
    assert await flow_names(gql, where) == expected


async def test_uuid_and_interval_operators(gql, world):
    assert await flow_names(gql, f'{{id: {{_eq: "{world.report}"}}}}') == [REPORT]
    assert await flow_names(gql, f'{{id: {{_in: ["{world.report}", "{str(world.backup).upper()}"]}}}}') == [
        BACKUP,
        REPORT,
    ]
    where = f'{{id: {{_nin: ["{world.report}"]}}, project_id: {{_eq: "{world.alpha}"}}}}'
    assert await flow_names(gql, where) == [ETL1, ETL2]
    data = await gql("{ task(where: {retry_delay: {_gt: 10}}) { name retry_delay } }")
    assert data["task"] == [{"name": "extract", "retry_delay": "00:00:30"}]
    data = await gql("{ task(where: {retry_delay: {_is_null: true}}, order_by: {name: asc}) { name } }")
    assert [t["name"] for t in data["task"]] == ["load", "render"]


async def test_boolean_combinations(gql, world):
    nested = '{_or: [{name: {_eq: "report"}}, {_and: [{name: {_eq: "etl"}}, {_not: {archived: {_eq: true}}}]}]}'
    assert await flow_names(gql, nested) == [ETL2, REPORT]
    assert await flow_names(gql, '{_not: {_or: [{name: {_eq: "etl"}}, {version: {_gt: 5}}]}}') == [BACKUP, REPORT]
    both = '{_and: [{name: {_like: "%e%"}}, {_not: {name: {_eq: "report"}}}]}'
    assert await flow_names(gql, both) == [ETL1, ETL2]
    assert await flow_names(gql, '{_or: [{}, {name: {_eq: "none"}}]}') == ALL_FLOWS
    assert await flow_names(gql, "{_or: []}") == []
    assert await flow_names(gql, "{_not: {}}") == []
    assert await flow_names(gql, "{}") == ALL_FLOWS


async def test_hasura_v1_null_and_empty_quirks(gql, world):
    # `_eq: null` is no condition at all, wherever it appears (the `prefect get` commands).
    collapsed = "{_and: {name: {_eq: null}, version: {_eq: null}, project: {name: {_eq: null}}}}"
    assert await flow_names(gql, collapsed) == ALL_FLOWS
    assert await flow_names(gql, "{id: {_eq: null}, name: {_in: null, _is_null: null}}") == ALL_FLOWS
    assert await flow_names(gql, '{name: {_eq: "etl", _neq: null}}') == [ETL1, ETL2]
    # `_and` as an object, and as a list holding `{}`.
    assert await flow_names(gql, '{_and: {name: {_eq: "etl"}, archived: {_eq: false}}}') == [ETL2]
    assert await flow_names(gql, '{_and: [{name: {_eq: "etl"}}, {}]}') == [ETL1, ETL2]
    assert await flow_names(gql, "{_and: [{}, {}]}") == ALL_FLOWS
    assert await flow_names(gql, "{_and: []}") == ALL_FLOWS
    # `_nin: []` matches everything, `_in: []` nothing (the client sends `id: {_nin: []}`).
    assert await flow_names(gql, "{id: {_nin: []}}") == ALL_FLOWS
    assert await flow_names(gql, "{id: {_in: []}}") == []
    data = await gql("{ flow(distinct_on: null, order_by: null, limit: null, offset: null, where: null) { id } }")
    assert len(data["flow"]) == 4


async def test_relationship_filters(gql, world):
    assert await flow_names(gql, '{project: {name: {_eq: "beta"}}}') == [BACKUP]
    assert await flow_names(gql, '{project: {_or: [{name: {_eq: "beta"}}, {description: {_eq: "first"}}]}}') == (
        ALL_FLOWS
    )
    # Array relationships mean "some related row matches".
    assert await flow_names(gql, "{tasks: {}}") == [ETL2, REPORT]
    assert await flow_names(gql, "{_not: {tasks: {}}}") == [BACKUP, ETL1]
    assert await flow_names(gql, '{tasks: {name: {_eq: "render"}}}') == [REPORT]
    assert await flow_names(gql, '{flow_runs: {task_runs: {state: {_eq: "Failed"}}}}') == [ETL2]
    data = await gql('{ flow_run(where: {task_runs: {state: {_eq: "Failed"}}}) { name } }')
    assert data["flow_run"] == [{"name": "run-a"}]
    # Object relationships chained two deep, as `prefect get tasks` filters.
    data = await gql(
        '{ task(where: {_and: {name: {_eq: null}, flow: {name: {_eq: "etl"}, version: {_eq: null}, '
        'project: {name: {_eq: "alpha"}}}}}, order_by: {created: desc}) { name flow { name version } } }'
    )
    assert data["task"] == [
        {"name": "load", "flow": {"name": "etl", "version": 2}},
        {"name": "extract", "flow": {"name": "etl", "version": 2}},
    ]
    # The agent's queue check: `_or` mixing a column and an array relationship.
    data = await gql(
        f'{{ flow_run(where: {{id: {{_in: ["{world.run_a}", "{world.run_b}", "{world.run_c}"]}}, _or: '
        '[{state: {_eq: "Scheduled"}}, {state: {_eq: "Running"}, task_runs: {state_start_time: '
        '{_lte: "2024-01-01T01:30:00+00:00"}}}]}, order_by: {name: asc}) { name } }'
    )
    assert data["flow_run"] == [{"name": "run-b"}, {"name": "run-c"}]


async def test_naive_timestamps_filter_as_utc(gql, world):
    query = "{ task_run(where: {state_timestamp: {_gte: %s}}, order_by: {state_timestamp: asc}) { map_index } }"
    naive = await gql(query % '"2024-01-01T00:53:00"')
    shifted = await gql(query % '"2024-01-01T01:53:00+01:00"')
    assert naive == shifted
    assert [r["map_index"] for r in naive["task_run"]] == [-1, 0, 1, -1]


# -- values ------------------------------------------------------------------------------------


async def test_json_columns_are_json_and_timestamps_iso(gql, world):
    data = await gql(
        f'{{ flow_run_by_pk(id: "{world.run_a}") {{ parameters context labels serialized_state '
        "scheduled_start_time start_time heartbeat "
        "flow { settings parameters storage flow_group { labels settings } } } }"
    )
    run = data["flow_run_by_pk"]
    assert run["parameters"] == {"x": 1} and run["context"] == {"k": "v"} and run["labels"] == ["prod"]
    assert run["serialized_state"] == {"type": "Success", "message": "ok"}
    assert run["scheduled_start_time"] == "2024-01-01T00:50:00.000000+00:00"
    assert ISO_WITH_OFFSET.match(run["start_time"]) and run["heartbeat"] is None
    assert run["flow"]["settings"] == {} and run["flow"]["parameters"] == []
    assert run["flow"]["storage"] == {"type": "Local", "directory": "/tmp"}
    assert run["flow"]["flow_group"] == {"labels": ["prod", "gpu"], "settings": {"heartbeat_enabled": True}}


async def test_only_selected_fields_are_returned(http, world):
    query = f'{{ flow_run_by_pk(id: "{world.run_a}") {{ name flow {{ name }} }} }}'
    response = await http.post("/", json={"query": query})
    assert response.json() == {"data": {"flow_run_by_pk": {"name": "run-a", "flow": {"name": "etl"}}}}


# -- ordering ----------------------------------------------------------------------------------


async def test_order_by_keys_apply_in_written_order(gql, world):
    by_name = await gql("{ flow(order_by: {name: asc, version: desc}) { name version } }")
    by_version = await gql("{ flow(order_by: {version: desc, name: asc}) { name version } }")
    assert [(f["name"], f["version"]) for f in by_name["flow"]] == [BACKUP, ETL2, ETL1, REPORT]
    assert [(f["name"], f["version"]) for f in by_version["flow"]] == [ETL2, BACKUP, ETL1, REPORT]
    listed = await gql("{ flow(order_by: [{version: desc}, {name: asc}]) { name version } }")
    assert listed == by_version
    # Through a variable, several keys are given as a list (an object's keys arrive in schema order).
    query = "query($o: [flow_order_by!]) { flow(order_by: $o) { name version } }"
    assert await gql(query, {"o": [{"version": "desc"}, {"name": "asc"}]}) == by_version
    assert await gql(query, {"o": {"name": "asc", "version": "desc"}}) == by_name


async def test_order_by_nulls_and_relationships(gql, world):
    def names(data):
        return [f["name"] for f in data["flow"]]

    assert names(await gql("{ flow(order_by: {description: asc, name: asc}) { name } }"))[-2:] == ["etl", "report"]
    assert names(await gql("{ flow(order_by: {description: desc, name: asc}) { name } }"))[:2] == ["etl", "report"]
    first = await gql("{ flow(order_by: [{description: asc_nulls_first}, {version: desc_nulls_last}]) { name } }")
    assert names(first)[:2] == ["etl", "report"]
    data = await gql("{ flow(order_by: {project: {name: desc}, created: asc}) { name project { name } } }")
    assert [(f["project"]["name"], f["name"]) for f in data["flow"]] == [
        ("beta", "backup"), ("alpha", "etl"), ("alpha", "etl"), ("alpha", "report")
    ]
    data = await gql("{ task(order_by: {flow: {project: {name: asc}, name: desc}, name: asc}) { name } }")
    assert [t["name"] for t in data["task"]] == ["render", "extract", "load"]
    data = await gql("{ project(order_by: [{flows_aggregate: {count: desc}}, {name: asc}]) { name } }")
    assert [p["name"] for p in data["project"]] == ["alpha", "beta", "gamma"]
    data = await gql("{ project(order_by: {flows_aggregate: {max: {created: desc_nulls_last}}}) { name } }")
    assert [p["name"] for p in data["project"]] == ["beta", "alpha", "gamma"]


async def test_distinct_on(gql, world):
    data = await gql("{ flow(distinct_on: name, order_by: {name: asc, version: desc}) { name version } }")
    assert [(f["name"], f["version"]) for f in data["flow"]] == [BACKUP, ETL2, REPORT]
    # The `prefect get flows` query, verbatim.
    data = await gql(
        "{ flow(where: { _and: { name: { _eq: null }, version: { _eq: null }, "
        "project: { name: { _eq: null } } } }, order_by: { name: asc, version: desc }, distinct_on: name, "
        "limit: 10) { name version created id project { name } } }"
    )
    assert [(f["name"], f["version"]) for f in data["flow"]] == [BACKUP, ETL2, REPORT]
    # Sorting by something else than the distinct column: the distinct rows, in the client's order.
    data = await gql("{ flow(distinct_on: [name], order_by: {created: desc}) { name version } }")
    assert [(f["name"], f["version"]) for f in data["flow"]] == [BACKUP, REPORT, ETL2]
    data = await gql("{ flow(distinct_on: [name, archived], order_by: {name: asc}) { name } }")
    assert [f["name"] for f in data["flow"]] == ["backup", "etl", "etl", "report"]
    data = await gql(
        "{ project(order_by: {name: asc}) { name flows(distinct_on: name, order_by: {name: asc, version: desc}) "
        "{ name version } } }"
    )
    assert data["project"] == [
        {"name": "alpha", "flows": [{"name": "etl", "version": 2}, {"name": "report", "version": 1}]},
        {"name": "beta", "flows": [{"name": "backup", "version": 1}]},
        {"name": "gamma", "flows": []},
    ]


# -- aggregates --------------------------------------------------------------------------------


async def test_root_aggregates(gql, world):
    data = await gql(
        "{ flow_aggregate { aggregate { count names: count(columns: name, distinct: true) "
        "described: count(columns: [description]) pairs: count(columns: [name, version], distinct: true) "
        "max { version created name } min { version name } } } }"
    )
    aggregate = data["flow_aggregate"]["aggregate"]
    assert aggregate["count"] == 4 and aggregate["names"] == 3 and aggregate["described"] == 2
    assert aggregate["pairs"] == 4
    assert aggregate["max"] == {"version": 2, "created": "2024-01-01T00:40:00.000000+00:00", "name": "report"}
    assert aggregate["min"] == {"version": 1, "name": "backup"}
    data = await gql(
        '{ flow_aggregate(where: {name: {_eq: "etl"}}, order_by: {version: desc}) '
        "{ aggregate { count } nodes { version } all: nodes { name } } }"
    )
    assert data["flow_aggregate"] == {
        "aggregate": {"count": 2},
        "nodes": [{"version": 2}, {"version": 1}],
        "all": [{"name": "etl"}, {"name": "etl"}],
    }
    data = await gql(
        "{ flow_aggregate(order_by: {created: asc}, limit: 2, offset: 1) { aggregate { count max { created } } } }"
    )
    latest = {"created": "2024-01-01T00:30:00.000000+00:00"}
    assert data["flow_aggregate"]["aggregate"] == {"count": 2, "max": latest}
    data = await gql("{ flow_aggregate(distinct_on: name) { aggregate { count __typename } __typename } }")
    assert data["flow_aggregate"] == {
        "aggregate": {"count": 3, "__typename": "flow_aggregate_fields"},
        "__typename": "flow_aggregate",
    }
    data = await gql(
        '{ flow_aggregate(where: {name: {_eq: "none"}}) { aggregate { count max { version } } nodes { id } } }'
    )
    assert data["flow_aggregate"] == {"aggregate": {"count": 0, "max": {"version": None}}, "nodes": []}


async def test_nested_aggregates(gql, world):
    # The `prefect get projects` query, verbatim.
    data = await gql(
        "{ project(where: { _and: { name: { _eq: null } } }, order_by: { name: asc }) { name created description "
        "flows_aggregate(distinct_on: name) { aggregate { count } } } }"
    )
    assert [(p["name"], p["flows_aggregate"]["aggregate"]["count"]) for p in data["project"]] == [
        ("alpha", 2), ("beta", 1), ("gamma", 0)
    ]
    data = await gql(
        "{ project(order_by: {name: asc}) { name all: flows_aggregate { aggregate { count max { version } } "
        "nodes { name } } live: flows_aggregate(where: {archived: {_eq: false}}, limit: 1, "
        "order_by: {created: asc}) { aggregate { count min { created } } nodes { name } } } }"
    )
    alpha, beta, gamma = data["project"]
    assert alpha["all"]["aggregate"] == {"count": 3, "max": {"version": 2}}
    assert sorted(n["name"] for n in alpha["all"]["nodes"]) == ["etl", "etl", "report"]
    assert alpha["live"] == {
        "aggregate": {"count": 1, "min": {"created": "2024-01-01T00:20:00.000000+00:00"}},
        "nodes": [{"name": "etl"}],
    }
    assert beta["live"]["aggregate"]["count"] == 1
    assert gamma["all"] == {"aggregate": {"count": 0, "max": {"version": None}}, "nodes": []}


async def test_sums_and_statistics_over_numeric_columns(gql, world):
    """Hasura's numeric aggregates: `sum` keeps the Int type, `avg` and the deviations are Float;
    tables without numeric columns have only count, max and min."""
    data = await gql(
        "{ flow_run_aggregate { aggregate { sum { version } avg { version } stddev_samp { version } "
        "var_pop { version } variance { version } stddev { version } stddev_pop { version } var_samp { version } } } "
        "none: flow_run_aggregate(where: {name: {_eq: \"none\"}}) { aggregate { sum { version } avg { version } } } }"
    )
    aggregate = data["flow_run_aggregate"]["aggregate"]
    assert aggregate["sum"] == {"version": 6} and aggregate["avg"] == {"version": 2.0}
    assert aggregate["stddev_samp"] == aggregate["stddev"] == {"version": 1.0}
    assert aggregate["variance"] == aggregate["var_samp"] == {"version": 1.0}
    assert aggregate["var_pop"]["version"] == pytest.approx(2 / 3)
    assert aggregate["stddev_pop"]["version"] == pytest.approx((2 / 3) ** 0.5)
    assert data["none"]["aggregate"] == {"sum": {"version": None}, "avg": {"version": None}}
    nested = await gql(
        "{ flow(order_by: [{flow_runs_aggregate: {sum: {version: desc_nulls_last}}}, {name: asc}], "
        "where: {archived: {_eq: false}}) { name flow_runs_aggregate { aggregate { sum { version } avg { version } } } } }"
    )
    assert [(f["name"], f["flow_runs_aggregate"]["aggregate"]["sum"]["version"]) for f in nested["flow"]] == [
        ("etl", 5), ("report", 1), ("backup", None)
    ]
    assert nested["flow"][0]["flow_runs_aggregate"]["aggregate"]["avg"] == {"version": 2.5}
    message = await gql.error("{ project_aggregate { aggregate { sum { name } } } }")
    assert "Cannot query field 'sum'" in message


# -- paging and nested lists -------------------------------------------------------------------


async def test_limit_and_offset(gql, world):
    data = await gql("{ flow(order_by: {created: asc}, limit: 2, offset: 1) { name version } }")
    assert [(f["name"], f["version"]) for f in data["flow"]] == [ETL2, REPORT]
    data = await gql("{ flow(order_by: {created: asc}, offset: 3) { name } }")
    assert data["flow"] == [{"name": "backup"}]
    assert (await gql("{ flow(limit: 0) { name } }"))["flow"] == []


async def test_array_relationships_take_their_own_arguments(gql, world):
    data = await gql(
        "{ flow_run(order_by: {name: asc}) { name task_runs(where: {state: {_neq: \"Failed\"}}, "
        "order_by: {map_index: desc}, limit: 2) { map_index state } logs(order_by: {timestamp: asc}, offset: 1) "
        "{ message } } }"
    )
    runs = data["flow_run"]
    assert [[t["map_index"] for t in run["task_runs"]] for run in runs] == [[0, -1], [-1], []]
    assert runs[0]["task_runs"][0]["state"] == "Success"
    assert [[log["message"] for log in run["logs"]] for run in runs] == [["working", "done"], [], []]
    # One parent: plain LIMIT/OFFSET.
    data = await gql(
        f'{{ flow_run_by_pk(id: "{world.run_a}") {{ logs(order_by: {{timestamp: desc}}, limit: 2, offset: 1) '
        "{ message } states(where: {state: {_eq: \"Scheduled\"}}) { start_time } } }"
    )
    assert data["flow_run_by_pk"] == {
        "logs": [{"message": "working"}, {"message": "starting"}],
        "states": [{"start_time": "2024-01-01T00:50:00.000000+00:00"}],
    }


async def test_aliases_fragments_and_directives(gql, world):
    query = """
        query($withFlow: Boolean!, $skipName: Boolean!) {
          run: flow_run_by_pk(id: "%s") {
            failed: task_runs(where: {state: {_eq: "Failed"}}) { map_index }
            done: task_runs(where: {state: {_eq: "Success"}}, order_by: {map_index: asc}) { ...TaskRunBits }
            label: name
            name @skip(if: $skipName)
            ... on flow_run { version }
            ... @include(if: $withFlow) { flow { name } }
          }
          none: flow_run_by_pk(id: "%s") { id }
        }
        fragment TaskRunBits on task_run { map_index task { slug } __typename }
    """ % (world.run_a, uuid.uuid4())
    data = await gql(query, {"withFlow": True, "skipName": True})
    assert data == {
        "run": {
            "failed": [{"map_index": 1}],
            "done": [
                {"map_index": -1, "task": {"slug": "extract-1"}, "__typename": "task_run"},
                {"map_index": 0, "task": {"slug": "load-1"}, "__typename": "task_run"},
            ],
            "label": "run-a",
            "version": 3,
            "flow": {"name": "etl"},
        },
        "none": None,
    }
    data = await gql(query, {"withFlow": False, "skipName": False})
    assert "flow" not in data["run"] and data["run"]["name"] == "run-a"


async def test_relationships_in_both_directions(gql, world):
    data = await gql(
        f'{{ flow_by_pk(id: "{world.etl_v2}") {{ flow_group_id project {{ name tenant {{ slug }} }} '
        "tasks(order_by: {name: asc}) { name downstream_edges { downstream_task { name } } "
        "upstream_edges { upstream_task { name } } task_runs_aggregate { aggregate { count } } } "
        "edges { flow { name } } flow_runs(order_by: {name: asc}) { name agent { name labels } } } }"
    )
    flow = data["flow_by_pk"]
    assert flow["flow_group_id"] == str(world.g_etl)
    assert flow["project"] == {"name": "alpha", "tenant": {"slug": "default"}}
    assert flow["tasks"] == [
        {"name": "extract", "downstream_edges": [{"downstream_task": {"name": "load"}}], "upstream_edges": [],
         "task_runs_aggregate": {"aggregate": {"count": 2}}},
        {"name": "load", "downstream_edges": [], "upstream_edges": [{"upstream_task": {"name": "extract"}}],
         "task_runs_aggregate": {"aggregate": {"count": 3}}},
    ]
    assert flow["edges"] == [{"flow": {"name": "etl"}}]
    assert flow["flow_runs"] == [
        {"name": "run-a", "agent": {"name": "laptop", "labels": ["prod"]}},
        {"name": "run-b", "agent": None},
    ]


async def test_by_pk(gql, world):
    data = await gql(f'{{ project_by_pk(id: "{world.beta}") {{ name description }} }}')
    assert data == {"project_by_pk": {"name": "beta", "description": None}}
    assert await gql(f'{{ project_by_pk(id: "{uuid.uuid4()}") {{ name }} }}') == {"project_by_pk": None}
    assert "Could not parse UUID" in await gql.error('{ project_by_pk(id: "not-a-uuid") { name } }')
    assert "Could not parse UUID" in await gql.error(
        "query($id: uuid!) { project_by_pk(id: $id) { name } }", {"id": "12345"}
    )


async def test_one_query_per_array_relationship_or_aggregate(app, gql, world):
    statements: list[str] = []

    def count(conn, cursor, statement, *args):  # noqa: ANN001
        statements.append(statement)

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    # Counted through Core's events, so no kept statement may run on the driver (which skips them).
    STATEMENTS.enabled = False
    try:
        data = await gql(
            "{ flow_run { task_runs { task { flow { project { name } } } } logs { message } "
            "again: flow { tasks_aggregate { aggregate { count } } } } }"
        )
    finally:
        STATEMENTS.enabled = True
        event.remove(engine, "before_cursor_execute", count)
    assert len(data["flow_run"]) == 3
    # Object relationships are joined into their parent's query; each array relationship and
    # aggregate is one batched query: flow_run (+ flow), task_runs (+ task, flow, project),
    # logs, tasks_aggregate.
    # (The API-key check, which is not the read layer's, is left out.)
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "api_key" not in s]
    assert len(reads) == 4


async def test_every_table_is_exposed(gql, world):
    for table in models.Base.metadata.tables:
        data = await gql(f"{{ {table}(limit: 1) {{ id created }} {table}_aggregate {{ aggregate {{ count }} }} }}")
        assert len(data[table]) <= 1 and data[f"{table}_aggregate"]["aggregate"]["count"] >= 0
    assert (await gql("{ edge_aggregate { aggregate { count } } }"))["edge_aggregate"]["aggregate"]["count"] == 1


# -- hostile input -----------------------------------------------------------------------------


async def test_sql_in_values_is_only_data(gql, world, db):
    hostile = "x'; DROP TABLE flow; --"
    for where in (
        f'{{name: {{_eq: "{hostile}"}}}}',
        f'{{name: {{_like: "{hostile}%"}}}}',
        f'{{name: {{_in: ["{hostile}", "\\"); DELETE FROM flow; --"]}}}}',
        f'{{storage: {{_has_key: "{hostile}"}}}}',
        f'{{storage: {{_contains: {{type: "{hostile}"}}}}}}',
    ):
        assert await flow_names(gql, where) == []
    data = await gql("query($w: flow_bool_exp) { flow(where: $w) { id } }", {"w": {"name": {"_eq": hostile}}})
    assert data == {"flow": []}
    assert (await gql("{ flow_aggregate { aggregate { count } } }"))["flow_aggregate"]["aggregate"]["count"] == 4
    assert await db.scalar(text("SELECT to_regclass('public.flow') IS NOT NULL"))


async def test_invalid_input_is_a_clear_error(gql, world):
    assert "unknown field 'nope'" in await gql.error("{ flow(where: {nope: {_eq: 1}}) { id } }")
    assert "nope" in await gql.error("{ flow(order_by: {nope: asc}) { id } }")
    assert "nope" in await gql.error("{ flow(distinct_on: nope) { id } }")
    assert "Cannot query field 'nope'" in await gql.error("{ flow { nope } }")
    assert "upward" in await gql.error("{ flow(order_by: {name: upward}) { id } }")
    assert "Could not parse UUID" in await gql.error('{ flow(where: {id: {_eq: "1; DROP TABLE flow"}}) { id } }')
    assert "Could not parse DateTime" in await gql.error('{ flow(where: {created: {_gt: "yesterday"}}) { id } }')
    assert "must not be negative" in await gql.error("{ flow(limit: -1) { id } }")
    assert "must not be negative" in await gql.error("{ flow(offset: -5) { id } }")
    assert "must not be negative" in await gql.error("{ project { flows(limit: -1) { id } } }")
    assert "32-bit" in await gql.error("{ flow(limit: 99999999999) { id } }")
    assert "Invalid value" in await gql.error('{ flow(where: {name: {_eq: "nul\\u0000byte"}}) { id } }')
    assert "Invalid value" in await gql.error('{ flow(where: {name: {_similar: "(("}}) { id } }')


def nested(levels: int, operator: str = "_and") -> str:
    where = '{name: {_eq: "etl"}}'
    for _ in range(levels):
        where = f"{{{operator}: [{where}]}}" if operator != "_not" else f"{{_not: {where}}}"
    return where


async def test_deeply_nested_expressions_are_refused(gql, world):
    assert await flow_names(gql, nested(30)) == [ETL1, ETL2]
    assert await flow_names(gql, nested(30, "_not")) == [ETL1, ETL2]
    for operator in ("_and", "_or", "_not"):
        message = await gql.error(f"{{ flow(where: {nested(40, operator)}) {{ id }} }}")
        assert "nested more than 32 levels" in message
    relations = '{name: {_eq: "x"}}'
    for _ in range(20):
        relations = f"{{flow: {{tasks: {relations}}}}}"
    assert "nested more than 32 levels" in await gql.error(f"{{ task(where: {relations}) {{ id }} }}")


@pytest.fixture
async def small_pages(settings):
    """A second app whose page size is 2."""
    application = create_app(settings.replace(max_page_size=2))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://headwater.test") as client:
            from tests.conftest import GraphQL

            yield GraphQL(client)


async def test_page_size_caps_every_list(small_pages, world):
    gql = small_pages
    assert len((await gql("{ flow(limit: 1000000000) { id } }"))["flow"]) == 2
    assert len((await gql("{ flow { id } }"))["flow"]) == 2
    assert len((await gql("{ flow(limit: 1) { id } }"))["flow"]) == 1
    data = await gql("{ flow_run(order_by: {name: asc}) { task_runs(limit: 100) { id } logs { id } } }")
    assert [len(r["task_runs"]) for r in data["flow_run"]] == [2, 1]
    assert [len(r["logs"]) for r in data["flow_run"]] == [2, 1]
    # Aggregates still count every row; their nodes are capped.
    data = await gql("{ flow_aggregate { aggregate { count } nodes { id } } }")
    assert data["flow_aggregate"]["aggregate"]["count"] == 4 and len(data["flow_aggregate"]["nodes"]) == 2


# -- the real client's read queries ------------------------------------------------------------

REPLAYED_ROOTS = {
    "flow", "flow_run", "task_run", "project", "tenant", "agent", "flow_by_pk", "flow_run_by_pk", "task"
}
def capture() -> list[dict]:
    return [json.loads(line) for line in CAPTURE.read_text().splitlines()]


def captured_world() -> dict[str, list[dict]]:
    """The rows the recording server held at its end (the capture's last line)."""
    return next(record["world"] for record in capture() if "world" in record)


def captured_reads() -> list[str]:
    queries: dict[str, None] = {}
    for record in capture():
        if "body" not in record:
            continue
        query = record["body"]["query"]
        operation = parse(query).definitions[0]
        roots = {selection.name.value for selection in operation.selection_set.selections}
        if operation.operation.value == "query" and roots <= REPLAYED_ROOTS:
            queries[query] = None
    return list(queries)


@pytest.fixture
async def wire_world(engine, tenant_id) -> dict[str, list[dict]]:
    """Rows with the ids the captured queries ask for, so that they return data."""
    world = captured_world()
    rows = Rows(tenant_id)
    add = rows.add
    for project in world["project"]:
        add(models.Project, id=project["id"], name=project["name"], tenant=True)
    for group in world["flow_group"]:
        add(models.FlowGroup, id=group["id"], labels=[], tenant=True)
    for flow in world["flow"]:
        add(models.Flow, **flow, storage={"type": "Local"}, tenant=True)
    for task in world["task"]:
        add(models.Task, **task)
    for run in world["flow_run"]:
        add(models.FlowRun, **run, tenant=True)
        add(models.FlowRunState, flow_run_id=run["id"], state="Scheduled", serialized_state={"type": "Scheduled"})
        add(models.Log, flow_run_id=run["id"], message="hello", level="INFO")
    for task_run in world["task_run"]:
        add(models.TaskRun, **task_run, state_timestamp=at(0), serialized_state={"type": task_run["state"]})
    add(models.Agent, name="wire-agent", labels=[], tenant=True)
    await rows.insert(engine)
    return world


async def test_replay_captured_client_reads(gql, wire_world):
    queries = captured_reads()
    assert len(queries) > 40
    for query in queries:
        body = await gql.raw(query)
        assert "errors" not in body, (query, body["errors"])
    # The flow runner's query for the run it executes returns that run's task runs and project.
    run_id = next(r["id"] for r in wire_world["flow_run"] if r["name"] == "wire-run-1")
    run = (await gql(next(q for q in queries if "flow_run_by_pk" in q and "task_runs" in q and run_id in q)))
    run = run["flow_run_by_pk"]
    slugs = {t["id"]: t["slug"] for t in wire_world["task"]}
    expected = sorted(slugs[t["task_id"]] for t in wire_world["task_run"] if t["flow_run_id"] == run_id and t["map_index"] == -1)
    assert "double-1" in expected and sorted(t["task"]["slug"] for t in run["task_runs"]) == expected
    assert run["flow"]["project"]["name"] == "test-proj"
    # `prefect get flows`: one row per flow name.
    flows = await gql(next(q for q in queries if "distinct_on: name, limit: 10" in q))
    assert sorted(f["name"] for f in flows["flow"]) == ["cli-flow", "failing", "wire-flow"]


async def test_order_by_object_in_a_variable_keeps_the_clients_key_order(gql, tenant_id):
    """The executor hands variables over in schema order; the request's own JSON order wins."""
    project = (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "order-vars"}))["id"]
    from tests import factories as f

    for name in ("b", "a", "b", "a"):
        await gql.mutate("create_flow", {"project_id": project, "serialized_flow": f.flow(name)})
    query = "query($order: [flow_order_by!]) { flow(order_by: $order) { name version } }"
    by_version = await gql(query, {"order": {"version": "desc", "name": "asc"}})
    assert [(r["name"], r["version"]) for r in by_version["flow"]] == [("a", 2), ("b", 2), ("a", 1), ("b", 1)]
    by_name = await gql(query, {"order": {"name": "asc", "version": "desc"}})
    assert [(r["name"], r["version"]) for r in by_name["flow"]] == [("a", 2), ("a", 1), ("b", 2), ("b", 1)]
