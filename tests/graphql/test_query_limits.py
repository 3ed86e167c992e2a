"""Cost limits on one request: each refuses an over-limit document quickly, with a message
that names its setting; the standard introspection query passes."""

from __future__ import annotations

import json
import time
import uuid
from contextlib import asynccontextmanager

import graphql
import httpx
from sqlalchemy import text

from headwater.server.app import create_app
from tests.conftest import GraphQL
from tests.domain.test_logs_artifacts import WRITE, run  # noqa: F401 (fixture)

QUICK = 3.0  # seconds: generous for a loaded 2-core machine; the reported cases took 15-28 s


@asynccontextmanager
async def client_with(settings, **limits):
    """A GraphQL client for an app with some settings changed."""
    application = create_app(settings.replace(**limits))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://headwater.test") as http:
            yield GraphQL(http)


async def refused(gql: GraphQL, query: str, variables=None) -> dict:
    """The first error of a request that must be refused quickly, without data."""
    started = time.monotonic()
    body = await gql.raw(query, variables)
    elapsed = time.monotonic() - started
    assert body.get("errors") and not body.get("data"), body
    assert elapsed < QUICK, f"took {elapsed:.1f} s"
    return body["errors"][0]


def aggregates(count: int) -> str:
    return "{ " + " ".join(f"a{i}: flow_run_aggregate {{ aggregate {{ count }} }}" for i in range(count)) + " }"


async def test_the_reported_costly_documents_are_refused_quickly(gql):
    error = await refused(gql, aggregates(5000))
    assert "HEADWATER_MAX_QUERY_TOKENS" in error["message"]
    error = await refused(gql, "{ hello " + "@include(if: true) " * 20000 + "}")
    assert "HEADWATER_MAX_QUERY_TOKENS" in error["message"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def versions(count: int, suffix: str = "") -> str:
    return "{ api { " + " ".join(f"v{i}: version{suffix}" for i in range(count)) + " } }"


async def test_aliases(gql):
    assert len((await gql(aggregates(20))).keys()) == 20
    assert len((await gql(versions(100)))["api"]) == 100
    error = await refused(gql, versions(101))
    assert error["message"] == "The query has 101 aliases; the limit is 100 (HEADWATER_MAX_QUERY_ALIASES)."
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_aliases_multiplied_through_fragments_are_counted_at_their_real_size(gql):
    """Each fragment spreads the next twice: 2^40 aliases in a few hundred tokens, counted
    without walking them (a limiter that re-walks each spread would never finish)."""
    fragments = " ".join(f"fragment F{i} on Query {{ a: hello ...F{i + 1} b: hello ...F{i + 1} }}" for i in range(40))
    query = "{ ...F0 } " + fragments + " fragment F40 on Query { hello }"
    await refused(gql, query)
    messages = [e["message"] for e in (await gql.raw(query))["errors"]]
    assert f"The query has {2 ** 41 - 2} aliases; the limit is 100 (HEADWATER_MAX_QUERY_ALIASES)." in messages


async def test_root_fields(gql):
    assert await gql("{ " + "hello " * 25 + "}") == {"hello": "👋"}
    error = await refused(gql, "{ " + "hello " * 26 + "}")
    assert error["message"] == "The query has 26 root fields; the limit is 25 (HEADWATER_MAX_QUERY_ROOT_FIELDS)."
    error = await refused(gql, "{ ...F } fragment F on Query { " + "api { version } " * 30 + "}")
    assert "30 root fields" in error["message"], "root fields in fragments count"


async def test_directives(gql):
    assert len((await gql(versions(50, " @include(if: true)")))["api"]) == 50
    error = await refused(gql, "{ hello " + "@skip(if: false) " * 51 + "}")
    assert error["message"] == "The query has 51 directives; the limit is 50 (HEADWATER_MAX_QUERY_DIRECTIVES)."


async def test_tokens_comments_included(gql):
    error = await refused(gql, "{ hello " + "# a comment\n" * 20000 + "}")
    assert error["message"] == "The query has more than 10000 tokens; the limit is 10000 (HEADWATER_MAX_QUERY_TOKENS)."
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_depth(gql):
    assert (await gql("{ flow_run(limit: 1) { flow { project { flows { id } } } } }"))["flow_run"] == []
    nested = "id"
    for _ in range(6):
        nested = f"flow {{ flow_runs {{ {nested} }} }}"
    error = await refused(gql, "{ flow_run(limit: 1) { %s } }" % nested)
    assert error["message"] == "The query is 14 levels deep; the limit is 12 (HEADWATER_MAX_QUERY_DEPTH)."


async def test_each_limit_is_a_setting_and_the_cache_honours_it(gql, settings):
    query = "{ a: hello b: hello c: hello }"
    assert await gql(query) == {"a": "👋", "b": "👋", "c": "👋"}, "cached as valid under the defaults"
    async with client_with(settings, max_query_aliases=2, max_query_root_fields=2, max_query_depth=1,
                           max_query_directives=0, max_query_tokens=20) as strict:
        messages = [e["message"] for e in (await strict.raw(query))["errors"]]
        assert any("HEADWATER_MAX_QUERY_ALIASES" in m for m in messages)
        assert any("HEADWATER_MAX_QUERY_ROOT_FIELDS" in m for m in messages)
        assert "HEADWATER_MAX_QUERY_DEPTH" in await strict.error("{ api { version } }")
        assert "HEADWATER_MAX_QUERY_DIRECTIVES" in await strict.error("{ hello @skip(if: false) }")
        assert "HEADWATER_MAX_QUERY_TOKENS" in await strict.error("{ " + "hello " * 20 + "}")
        assert await strict("{ hello }") == {"hello": "👋"}


async def test_the_standard_introspection_query_loads_the_schema(http):
    for query in (
        graphql.get_introspection_query(),
        graphql.get_introspection_query(descriptions=True, specified_by_url=True, directive_is_repeatable=True,
                                        schema_description=True, input_value_deprecation=True),
    ):
        body = (await http.post("/", json={"query": query, "operationName": "IntrospectionQuery"})).json()
        assert "errors" not in body, body["errors"]
        client_schema = graphql.build_client_schema(body["data"])
        assert "flow_run_by_pk" in client_schema.query_type.fields
        assert "write_run_logs" in client_schema.mutation_type.fields


async def test_introspection_has_its_own_bound_and_opens_no_depth_bypass(gql):
    error = await refused(gql, "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }")
    assert "introspection depth" in error["message"]
    deep = "id"
    for _ in range(7):
        deep = f"flow {{ flow_runs {{ {deep} }} }}"
    for query in (
        "{ __schema { queryType { name } } flow_run(limit: 1) { %s } }" % deep,
        "{ __schema: flow_run(limit: 1) { %s } }" % deep,
        "{ __type(name: \"flow_run\") { name } ...F } fragment F on Query { flow_run(limit: 1) { %s } }" % deep,
    ):
        assert "HEADWATER_MAX_QUERY_DEPTH" in (await refused(gql, query))["message"]
    error = await refused(gql, "{ __schema { types { ...T } } } fragment T on flow_run { %s }" % deep)
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def logs_for(run: dict, count: int) -> list[dict]:
    return [{"flow_run_id": run["id"], "message": f"line {i}"} for i in range(count)]


async def test_rows_per_write_logs(gql, db, run):  # noqa: F811
    error = await refused(gql, WRITE, {"input": {"logs": logs_for(run, 20001)}})
    assert error["message"] == (
        "`$input.logs` holds 20001 items; one request may write at most 20000 "
        "(HEADWATER_MAX_ROWS_PER_WRITE). Send them in several requests."
    )
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert await db.scalar(text("SELECT count(*) FROM log")) == 0
    assert (await gql(WRITE, {"input": {"logs": logs_for(run, 3)}}))["write_run_logs"]["success"] is True
    assert await db.scalar(text("SELECT count(*) FROM log")) == 3


async def test_rows_per_write_is_a_setting_for_every_batched_input(settings, db, run):  # noqa: F811
    states = "mutation($input: set_task_run_states_input!) { set_task_run_states(input: $input) { states { id } } }"
    async with client_with(settings, max_rows_per_write=2) as strict:
        assert (await strict(WRITE, {"input": {"logs": logs_for(run, 2)}}))["write_run_logs"]["success"] is True
        error = (await strict.raw(WRITE, {"input": {"logs": logs_for(run, 3)}}))["errors"][0]
        assert "holds 3 items" in error["message"] and error["extensions"]["code"] == "BAD_REQUEST"
        state = {"type": "Running", "message": "x"}
        too_many = {"states": [{"task_run_id": str(uuid.uuid4()), "state": state} for _ in range(3)]}
        assert "HEADWATER_MAX_ROWS_PER_WRITE" in await strict.error(states, {"input": too_many})
        literal = "mutation { write_run_logs(input: { logs: [%s] }) { success } }" % ", ".join(
            [json.dumps(run["id"]).join(['{ flow_run_id: ', ' }'])] * 3)
        error = (await strict.raw(literal))["errors"][0]
        assert "holds 3 items" in error["message"] and error["extensions"]["code"] == "BAD_REQUEST"
        json_list = {"flow_run_id": run["id"], "message": "m", "info": {"items": list(range(10))}}
        assert (await strict(WRITE, {"input": {"logs": [json_list]}}))["write_run_logs"]["success"], \
            "lists inside a JSON value are data, not rows"
    assert await db.scalar(text("SELECT count(*) FROM log")) == 3


def test_root_field_names_through_fragments_fanning_out_take_linear_time():
    """The role check and the metrics label walk root fields through fragments: each fragment
    is visited once, so 2^40 spreads name their fields at once (a walk per spread never ends)."""
    from graphql import parse

    from headwater.server.graphql.authorization import root_fields

    fragments = " ".join(
        f"fragment F{i} on Mutation {{ ...F{i + 1} ...F{i + 1} set_flow_run_name_{i}: set_flow_run_name {{ success }} }}"
        for i in range(40)
    )
    document = parse("mutation { ...F0 create_project { id } } " + fragments + " fragment F40 on Mutation { delete_project { success } }")
    started = time.perf_counter()
    names = set(root_fields(document, document.definitions[0]))
    assert names == {"create_project", "set_flow_run_name", "delete_project"}
    assert time.perf_counter() - started < 1.0
