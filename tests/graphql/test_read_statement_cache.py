"""The read layer's statement cache (headwater.server.graphql.hasura.statements) is a fast path
for the flow runner's `flow_run_by_pk` and every linked read: each document here is answered
with the cache off (the general path), then with it on, missing and hitting, and the answers
(data and errors) must be identical; a hit for another run's id must answer that run."""

from __future__ import annotations

import json
import uuid

import pytest

from bench import documents
from headwater.server.graphql.hasura.statements import STATEMENTS, StatementCache, freeze
from tests import factories as f
from tests.conftest import GraphQL, role_keys, unordered
from tests.conftest import app_client as client


async def general(gql: GraphQL, document: str, variables=None) -> dict:
    STATEMENTS.enabled = False
    try:
        return await gql.raw(document, variables)
    finally:
        STATEMENTS.enabled = True


async def assert_same_both_ways(gql: GraphQL, document: str, variables=None) -> dict:
    """The general path's answer; the cached path answers the same on a miss and on a hit."""
    expected = await general(gql, document, variables)
    STATEMENTS.clear()
    assert unordered(await gql.raw(document, variables)) == unordered(expected), "a miss answers as the general path"
    hits = STATEMENTS.hits
    assert unordered(await gql.raw(document, variables)) == unordered(expected), "a hit answers as the general path"
    if not expected.get("errors"):
        assert STATEMENTS.hits > hits or not len(STATEMENTS), "a repeat reuses its statements"
    return expected


@pytest.fixture
async def world(gql, tenant_id):
    project = (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "cache"}))["id"]
    tasks = [f.task("extract-1"), f.task("transform-1"), f.task("load-1")]
    flow = f.flow("cache", tasks=tasks, edges=[f.edge("extract-1", "transform-1"), f.edge("transform-1", "load-1")])
    flow_id = (await gql.mutate("create_flow", {"project_id": project, "serialized_flow": flow}))["id"]
    runs = [(await gql.mutate("create_flow_run", {"flow_id": flow_id, "flow_run_name": f"run-{i}"}))["id"]
            for i in range(3)]
    return {"flow_id": flow_id, "runs": runs}


def flow_runner_document(run_id: str) -> str:
    """The Prefect 1.4.1 flow runner's `get_flow_run_info` document, the id written in."""
    return json.loads(documents.flow_run_info(run_id))["query"]


async def test_the_flow_runners_read_hits_and_answers_each_run(gql, world):
    first, second, third = world["runs"]
    expected = await assert_same_both_ways(gql, flow_runner_document(first))
    assert expected["data"]["flow_run_by_pk"]["id"] == first
    assert len(expected["data"]["flow_run_by_pk"]["task_runs"]) == 3
    for run_id in (second, third):
        hits = STATEMENTS.hits
        cached = await gql.raw(flow_runner_document(run_id))
        assert STATEMENTS.hits >= hits + 2, "both statements (the run, its task runs) come from the cache"
        assert unordered(cached) == unordered(await general(gql, flow_runner_document(run_id)))
        assert cached["data"]["flow_run_by_pk"]["id"] == run_id


@pytest.mark.parametrize("run_id", [str(uuid.uuid4()), "not-a-uuid", "", "00000000-0000-0000-0000-00000000000"])
async def test_missing_and_bad_ids(gql, world, run_id):
    await assert_same_both_ways(gql, flow_runner_document(world["runs"][0]))  # warm the shape
    answer = await general(gql, flow_runner_document(run_id))
    assert await gql.raw(flow_runner_document(run_id)) == answer
    if run_id.count("-") == 4 and len(run_id) == 36:
        assert answer == {"data": {"flow_run_by_pk": None}}
    else:
        assert answer["errors"] and not (answer["data"] or {}).get("flow_run_by_pk")


DOCUMENTS = [
    # the flow runner's read with the id as a variable
    (("query($id: uuid!) { flow_run_by_pk(id: $id) { id name task_runs(where: {map_index: {_eq: -1}}) "
      "{ id task { id slug } version } flow { project { name id } } } }"), True),
    # limits, offsets and order through a relationship, on one parent
    (("query($id: uuid!) { flow_run_by_pk(id: $id) { id task_runs(limit: 2, offset: 1, "
      "order_by: {task: {slug: desc}}) { id task { slug } } } }"), True),
    # values of other types in `where`, which must not share a statement
    (("query($id: uuid!) { flow_run_by_pk(id: $id) { a: task_runs(where: {map_index: {_in: [-1, 0]}}) { id } "
      "b: task_runs(where: {_or: [{state: {_is_null: true}}, {task: {slug: {_like: \"load%\"}}}]}) { id } "
      "c: task_runs(where: {state: {_is_null: false}}) { id } } }"), True),
    # several parents: per-parent windows over the linked rows
    (("{ flow_run(order_by: {name: asc}) { name task_runs(limit: 1, order_by: {task: {slug: asc}}) "
      "{ task { slug } } tr: task_runs(order_by: {task: {slug: desc}}) { task { slug } } } }"), False),
    # distinct_on in a linked list, aggregates beside it
    (("query($flow: uuid!) { flow_by_pk(id: $flow) { flow_runs(distinct_on: state, order_by: {name: desc}) "
      "{ name state } flow_runs_aggregate { aggregate { count } } tasks(order_by: {slug: asc}) { slug } } }"), False),
    # errors: a NUL in a value, an unknown column, a limit below zero
    ("query($id: uuid!) { flow_run_by_pk(id: $id) { task_runs(where: {name: {_eq: \"a\\u0000\"}}) { id } } }", True),
    ("query($id: uuid!) { flow_run_by_pk(id: $id) { task_runs(where: {nope: {_eq: 1}}) { id } } }", True),
    ("query($id: uuid!) { flow_run_by_pk(id: $id) { task_runs(limit: -1) { id } } }", True),
]


@pytest.mark.parametrize("document,by_run", DOCUMENTS)
async def test_documents_answer_the_same_both_ways(gql, world, document, by_run):
    runs = world["runs"][:2]
    values = [{"id": run_id} for run_id in runs] if by_run else [{"flow": world["flow_id"]}]
    expected = [await assert_same_both_ways(gql, document, variables) for variables in values]
    refused = any(mark in document for mark in ("\\u0000", "nope", "limit: -1"))
    assert all(bool(answer.get("errors")) == refused for answer in expected), expected
    assert refused or all(answer["data"] for answer in expected)
    STATEMENTS.clear()
    for _ in range(2):  # the second run's statements are the first run's, and back
        answers = [await gql.raw(document, variables) for variables in values]
        assert unordered(answers) == unordered(expected)


async def test_a_page_size_cap_applies_to_cached_statements(settings, world):
    async with client(settings, max_page_size=2) as small:
        document = "query($id: uuid!) { flow_run_by_pk(id: $id) { task_runs(limit: 5) { id } all: task_runs { id } } }"
        answer = await assert_same_both_ways(small, document, {"id": world["runs"][0]})
        assert len(answer["data"]["flow_run_by_pk"]["task_runs"]) == 2
        assert len(answer["data"]["flow_run_by_pk"]["all"]) == 2


async def test_a_forbidden_field_is_refused_both_ways(settings, engine, world, tenant_id):
    keys = await role_keys(engine, "cache")
    async with client(settings, keys["admin"], api_key_cache_seconds=0) as admin:
        hook = await admin.mutate("create_cloud_hook", {"tenant_id": tenant_id, "type": "WEBHOOK", "states": ["FAILED"],
                                                        "config": {"url": "http://127.0.0.1:1/hook"}})
        document = "query($id: uuid!) { cloud_hook_by_pk(id: $id) { id config } }"
        answer = await assert_same_both_ways(admin, document, {"id": hook["id"]})
        assert answer["data"]["cloud_hook_by_pk"]["config"] == {"url": "http://127.0.0.1:1/hook"}
    async with client(settings, keys["read"], api_key_cache_seconds=0) as reader:
        refused = await assert_same_both_ways(reader, document, {"id": hook["id"]})
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.pure
def test_keys_tell_apart_what_the_compiler_treats_differently():
    assert len({freeze(1), freeze(True), freeze(1.0), freeze("1")}) == 4
    assert freeze({"a": 1, "b": 2}) != freeze({"b": 2, "a": 1}), "written order is kept"
    assert freeze([1, [2]]) == freeze([1, [2]])


@pytest.mark.pure
def test_the_cache_is_bounded_and_keeps_nothing_for_a_failed_build():
    cache = StatementCache(size=2)
    for key in "abc":
        cache.get(key, lambda key=key: key)
    assert len(cache) == 2 and cache.get("a", lambda: "again") == "again"

    def fail():
        raise ValueError("bad where")

    with pytest.raises(ValueError):
        cache.get("d", fail)
    assert "d" not in cache._statements
