"""Compiled plans (headwater.server.graphql.compiled) answer exactly as the general path: the
same JSON, key order included, and the same errors, which come from the general path itself
after a fallback. Each document is answered by the executor with every statement run through
SQLAlchemy Core, then with plans on: the first request of a shape is answered by the executor
and compiles it, the next ones come from the plan, their kept statements run on the driver."""

from __future__ import annotations

import json
import uuid
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import text as sa_text

from bench import documents
from headwater.server.graphql.compiled import MAX_PLAN_TOKENS, CompiledPlans
from headwater.server.graphql.hasura.statements import STATEMENTS
from headwater.server.graphql.schema import schema
from tests import factories as f
from tests.conftest import GraphQL, app_client, role_keys, unordered


@asynccontextmanager
async def client(settings, key: str | None = None, **changes):
    async with app_client(settings, key, **changes) as gql:
        gql.reads = gql.app.state.compiled_plans
        yield gql


def text(answer: dict) -> str:
    """The answer as the client receives it, key order included, list items in a canonical order."""
    return json.dumps(unordered(answer))


async def general(gql: GraphQL, document: str, variables=None) -> dict:
    """The answer of the executor, with every statement built and run through SQLAlchemy Core
    (no kept statements, so none run on the driver)."""
    reads = gql.reads
    gql.http._transport.app.state.compiled_plans = None
    STATEMENTS.enabled = False
    try:
        return await gql.raw(document, variables)
    finally:
        gql.http._transport.app.state.compiled_plans = reads
        STATEMENTS.enabled = True


async def assert_compiled_like_general(gql: GraphQL, document: str, variables=None, compiled: bool = True) -> dict:
    """The general path's answer; the compiled path (after one learning request) gives the same,
    from its plan when `compiled`."""
    expected = await general(gql, document, variables)
    assert text(await gql.raw(document, variables)) == text(expected), "the learning request"
    hits = gql.reads.hits
    assert text(await gql.raw(document, variables)) == text(expected), "from the plan"
    assert (gql.reads.hits == hits + 1) is compiled, (document, gql.reads.hits, hits)
    return expected


@pytest.fixture
async def gql_reads(settings):
    async with client(settings) as gql:
        yield gql


@pytest.fixture
async def world(gql_reads, tenant_id):
    gql = gql_reads
    project = (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "compiled"}))["id"]
    tasks = [f.task("extract-1"), f.task("transform-1"), f.task("load-1")]
    flow = f.flow("compiled", tasks=tasks, edges=[f.edge("extract-1", "transform-1"), f.edge("transform-1", "load-1")],
                  parameters=[f.parameter("x", default=3)])
    flow_id = (await gql.mutate("create_flow", {"project_id": project, "serialized_flow": flow}))["id"]
    runs = [(await gql.mutate("create_flow_run", {"flow_id": flow_id, "flow_run_name": f"run-{i}",
                                                  "parameters": {"x": i}}))["id"] for i in range(3)]
    return {"flow_id": flow_id, "runs": runs, "project": project, "tenant_id": tenant_id}


async def test_the_flow_runners_read_comes_from_its_plan_for_every_run(gql_reads, world):
    gql = gql_reads
    hits = gql.reads.hits
    for run_id in world["runs"]:
        document = json.loads(documents.flow_run_info(run_id))["query"]
        answer = await assert_compiled_like_general(gql, document)
        assert answer["data"]["flow_run_by_pk"]["id"] == run_id
        assert len(answer["data"]["flow_run_by_pk"]["task_runs"]) == 4  # three tasks and the parameter
    assert gql.reads.fallbacks == 0
    assert gql.reads.hits == hits + 5 and gql.reads.fallbacks == 0, "one plan for the shape, whatever the id"


COMPILED = [
    # aliases, __typename at every level, nested objects, a list with every argument kind
    ('{ __typename runs: flow_run(order_by: {name: desc}, limit: 2, offset: 0, where: {name: {_like: "run-%"}}) '
     '{ __typename id name state parameters scheduled_start_time created labels '
     'flow { name version project { name } } states(order_by: {timestamp: asc}) { state timestamp } } }'),
    # aggregates beside nodes, on the root and through a relationship
    ('{ flow_run_aggregate(where: {state: {_eq: "Scheduled"}}, order_by: {name: asc}) { aggregate { count max { name } min { version } } '
     'nodes { name } } flow { name flow_runs_aggregate { aggregate { count } } '
     'tasks(order_by: {slug: asc}) { slug max_retries } } }'),
    # null object relationships and null columns
    ('{ flow_run(order_by: {name: asc}) { name agent { id } deployment { id } start_time end_time state_message } }'),
    # distinct_on, _in, _or, _not, _is_null
    ('{ task(distinct_on: slug, order_by: {slug: asc}, where: {_or: [{slug: {_in: ["load-1", "extract-1"]}}, '
     '{_not: {slug: {_is_null: false}}}]}) { slug } }'),
]


@pytest.mark.parametrize("document", COMPILED)
async def test_documents_are_answered_the_same_from_their_plan(gql_reads, world, document):
    answer = await assert_compiled_like_general(gql_reads, document)
    assert answer["data"] and "errors" not in answer


async def test_variables_are_coerced_as_the_executor_does(gql_reads, world):
    document = ("query($id: uuid!, $names: [String!], $n: Int) { flow_run_by_pk(id: $id) { name } "
                "flow_run(where: {name: {_in: $names}}, limit: $n, order_by: {name: asc}) { name } }")
    good = {"id": world["runs"][1], "names": ["run-0", "run-2"], "n": 1}
    answer = await assert_compiled_like_general(gql_reads, document, good)
    assert answer["data"] == {"flow_run_by_pk": {"name": "run-1"}, "flow_run": [{"name": "run-0"}]}
    for bad in ({"id": "not-a-uuid", "names": [], "n": 1}, {"id": world["runs"][0], "names": "run-0", "n": "one"},
                {"names": ["run-0"]}):
        fallbacks = gql_reads.reads.fallbacks
        expected = await general(gql_reads, document, bad)
        assert expected.get("errors"), expected
        assert text(await gql_reads.raw(document, bad)) == text(expected)
        assert gql_reads.reads.fallbacks == fallbacks + 1, "the plan gave way to the general path"
    # a value coerced from a single item into a list
    single = {"id": world["runs"][0], "names": "run-2", "n": 5}
    assert text(await gql_reads.raw(document, single)) == text(await general(gql_reads, document, single))


@pytest.mark.parametrize("literal,error", [
    ('"not-a-uuid"', True),
    ('"00000000-0000-0000-0000-00000000000"', True),
    ('"a\\u0000b"', True),
    ('"%s"' % uuid.uuid4(), False),
])
async def test_a_bad_literal_in_a_known_shape_gets_the_general_paths_error(gql_reads, world, literal, error):
    template = '{ flow_run_by_pk(id: %s) { id name } }'
    run_literal = '"%s"' % world["runs"][0]
    await assert_compiled_like_general(gql_reads, template % run_literal)  # the shape is known
    answer = await general(gql_reads, template % literal)
    assert bool(answer.get("errors")) is error
    assert text(await gql_reads.raw(template % literal)) == text(answer)


async def test_limits_checked_per_request_fall_back(gql_reads, world):
    template = "{ flow_run(limit: %s, order_by: {name: asc}) { name } }"
    await assert_compiled_like_general(gql_reads, template % "1")
    refused = await general(gql_reads, template % "-1")
    assert refused["errors"]
    assert text(await gql_reads.raw(template % "-1")) == text(refused)
    huge = template % "99999999999"  # not an Int
    assert text(await gql_reads.raw(huge)) == text(await general(gql_reads, huge))


NOT_COMPILED = [
    "{ hello }",
    "query { flow_run { ...names } } fragment names on flow_run { name }",
    "query($on: Boolean!) { flow_run { name @include(if: $on) } }",
    '{ flow_run(order_by: {name: asc}) { name } flow_run(order_by: {name: asc}) { name } }',
    "{ __schema { queryType { name } } }",
    "query($n: Int = 1) { flow_run(limit: $n) { name } }",
    '{ utility_downstream_tasks(args: {task_ids: "{}", depth_limit: 1}) { depth } }',
]


@pytest.mark.parametrize("document", NOT_COMPILED)
async def test_documents_the_builder_does_not_reproduce_stay_on_the_executor(gql_reads, world, document):
    variables = {"on": True} if "$on" in document else None
    expected = await general(gql_reads, document, variables)
    hits = gql_reads.reads.hits
    for _ in range(2):
        assert text(await gql_reads.raw(document, variables)) == text(expected)
    assert gql_reads.reads.hits == hits


HEARTBEATS = [
    'mutation { update_flow_run_heartbeat(input: { flow_run_id: "%s" }) { success } }',
    'mutation { __typename a: update_task_run_heartbeat(input: { task_run_id: "%s" }) { error success __typename } }',
]


@pytest.mark.parametrize("template", HEARTBEATS)
async def test_heartbeats_come_from_their_plan_and_are_recorded(gql_reads, world, db, template):
    table = "flow_run" if "flow_run_id" in template else "task_run"
    if table == "flow_run":
        target = world["runs"][0]
    else:
        target = (await gql_reads(
            "query($id: uuid!) { task_run(where: {flow_run_id: {_eq: $id}}, limit: 1) { id } }",
            {"id": world["runs"][0]}))["task_run"][0]["id"]
    answer = await assert_compiled_like_general(gql_reads, template % target)
    assert "errors" not in answer
    before = await db.scalar(sa_text(f"SELECT heartbeat FROM {table} WHERE id = :id"), {"id": target})
    await db.commit()
    assert text(await gql_reads.raw(template % target)) == text(answer)
    after = await db.scalar(sa_text(f"SELECT heartbeat FROM {table} WHERE id = :id"), {"id": target})
    assert after > before, "the plan ran the heartbeat"
    # an unknown run (success false); malformed ids of the known shape's length, and others
    for other in (str(uuid.uuid4()), "z" * 36, "00000000-0000-0000-0000-00000000000g", "not-a-uuid", ""):
        expected = await general(gql_reads, template % other)
        assert text(await gql_reads.raw(template % other)) == text(expected)
    assert gql_reads.reads.fallbacks == 2, "the malformed ids of the shape gave way to the general path"


async def test_a_heartbeat_with_variables_comes_from_its_plan(gql_reads, world):
    document = "mutation($input: update_flow_run_heartbeat_input!) { update_flow_run_heartbeat(input: $input) { success } }"
    for run_id in world["runs"]:
        answer = await assert_compiled_like_general(gql_reads, document, {"input": {"flow_run_id": run_id}})
        assert answer == {"data": {"update_flow_run_heartbeat": {"success": True}}}
    for bad in ({"input": {"flow_run_id": "nope"}}, {"input": {}}, {}):
        expected = await general(gql_reads, document, bad)
        assert expected["errors"]
        assert text(await gql_reads.raw(document, bad)) == text(expected)


async def test_other_mutations_stay_on_the_executor_and_run_once(gql_reads, world, db):
    reads = gql_reads.reads
    hits = reads.hits
    for name in ("twice-a", "twice-b"):
        await gql_reads.mutate("create_project", {"tenant_id": world["tenant_id"], "name": name})
    mixed = ('mutation { update_flow_run_heartbeat(input: { flow_run_id: "%s" }) { success } '
             'set_flow_run_name(input: { flow_run_id: "%s", name: "renamed" }) { success } }')
    for _ in range(2):
        await gql_reads(mixed % (world["runs"][0], world["runs"][0]))
    assert reads.hits == hits
    count = await db.scalar(sa_text("SELECT count(*) FROM project WHERE name LIKE 'twice-%'"))
    assert count == 2


async def test_plans_are_per_role(settings, engine, tenant_id, world):
    keys = await role_keys(engine, "compiled")
    document = "query($id: uuid!) { cloud_hook_by_pk(id: $id) { id config } }"
    async with client(settings, keys["admin"], api_key_cache_seconds=0) as admin:
        hook = await admin.mutate("create_cloud_hook", {"tenant_id": tenant_id, "type": "WEBHOOK", "states": ["FAILED"],
                                                        "config": {"url": "http://127.0.0.1:1/hook"}})
        answer = await assert_compiled_like_general(admin, document, {"id": hook["id"]})
        assert answer["data"]["cloud_hook_by_pk"]["config"] == {"url": "http://127.0.0.1:1/hook"}
        # the same app, another caller: a read key is refused the admin-only column
        reader = GraphQL(admin.http)
        reader.reads = admin.reads
        refused = await reader.raw(document, {"id": hook["id"]}, Authorization=f"Bearer {keys['read']}")
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_the_setting_turns_plans_off(settings, world):
    async with client(settings, compiled_plans=False) as gql:
        assert gql.reads is None
        document = json.loads(documents.flow_run_info(world["runs"][0]))["query"]
        assert (await gql.raw(document))["data"]["flow_run_by_pk"]["id"] == world["runs"][0]


async def test_the_metrics_label_is_the_general_paths(settings, world):
    def count(metrics: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                   if line.startswith("headwater_graphql_request_duration_seconds_count")
                   and 'operation="flow_run_by_pk"' in line)

    async with client(settings, metrics_enabled=True) as gql:
        document = json.loads(documents.flow_run_info(world["runs"][0]))["query"]
        before = count((await gql.http.get("/metrics")).text)
        await assert_compiled_like_general(gql, document)  # three requests, the last from the plan
        assert count((await gql.http.get("/metrics")).text) == before + 3


@pytest.mark.pure
def test_plans_are_bounded():
    reads = CompiledPlans(schema, max_tokens=10_000, size=2)
    for i in range(4):
        document = "{ flow_run(limit: 1) { id %s } }" % ("name " * i)
        lookup = reads.lookup(type("C", (), {"principal": None})(), document, None)
        reads.learn(lookup, document, None, None)
    assert len(reads) == 2
    long = "{ flow_run(limit: 1) { %s } }" % " ".join(f"a{i}: id" for i in range(MAX_PLAN_TOKENS))
    assert reads.lookup(type("C", (), {"principal": None})(), long, None) is None, "long documents are not kept"


async def test_a_statement_timeout_is_answered_from_the_plan_without_running_again(settings, engine, world):
    """A read that meets the statement timeout on the plan is answered there, as the executor
    answers it (running it again would double the wait)."""
    document = json.loads(documents.flow_run_info(world["runs"][0]))["query"]
    async with client(settings, statement_timeout_seconds=0.5) as gql:
        await assert_compiled_like_general(gql, document)
        async with engine.connect() as locker:
            await locker.execute(sa_text("BEGIN"))
            await locker.execute(sa_text("LOCK TABLE flow_run IN ACCESS EXCLUSIVE MODE"))
            try:
                expected = await general(gql, document)
                hits, fallbacks = gql.reads.hits, gql.reads.fallbacks
                answer = await gql.raw(document)
            finally:
                await locker.execute(sa_text("ROLLBACK"))
        assert expected["errors"][0]["extensions"]["code"] == "TIMEOUT"
        assert text(answer) == text(expected)
        assert (gql.reads.hits, gql.reads.fallbacks) == (hits + 1, fallbacks), "answered once, on the plan"


# -- resolvers called directly: the client's and agent's hot mutations -------------------------

async def post(gql: GraphQL, body: str) -> dict:
    response = await gql.http.post("/", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    return response.json()


async def post_general(gql: GraphQL, body: str) -> dict:
    reads = gql.reads
    gql.http._transport.app.state.compiled_plans = None
    try:
        return await post(gql, body)
    finally:
        gql.http._transport.app.state.compiled_plans = reads


def anonymous(answer: dict, *ids: str) -> str:
    """The answer's text with the given ids named by position (runs of two walks compare)."""
    found = text(answer)
    for i, value in enumerate(ids):
        found = found.replace(value, f"<id {i}>")
    return found


RUN_COLUMNS = ("flow_id", "state", "version", "parameters", "context", "labels", "run_config", "tenant_id",
               "auto_scheduled", "times_resurrected", "deployment_id")


async def run_row(db, run_id: str) -> tuple:
    columns = ", ".join(RUN_COLUMNS)
    row = (await db.execute(sa_text(
        f"SELECT {columns}, (SELECT count(*) FROM task_run t WHERE t.flow_run_id = r.id), "
        "(SELECT count(*) FROM flow_run_state s WHERE s.flow_run_id = r.id) FROM flow_run r WHERE id = :id"),
        {"id": run_id})).one()
    await db.commit()
    return tuple(row)


async def test_create_flow_run_from_its_plan_creates_the_same_run(gql_reads, world, db):
    gql, flow_id = gql_reads, world["flow_id"]
    body = lambda key: documents.create_flow_run(flow_id, key)  # noqa: E731
    learned = (await post(gql, body("k-learn")))["data"]["create_flow_run"]["id"]  # the executor's
    general = (await post_general(gql, body("k-general")))["data"]["create_flow_run"]["id"]
    hits = gql.reads.hits
    compiled = await post(gql, body("k-compiled"))
    assert gql.reads.hits == hits + 1, "answered from the plan"
    run_id = compiled["data"]["create_flow_run"]["id"]
    assert len({learned, general, run_id}) == 3
    assert await run_row(db, run_id) == await run_row(db, general)
    # the idempotency key: the same run both ways
    assert text(await post(gql, body("k-compiled"))) == text(compiled)
    assert text(await post_general(gql, body("k-compiled"))) == text(compiled)
    # errors from the resolver: answered from the plan, worded as the executor words them
    for other in (documents.create_flow_run(str(uuid.uuid4()), "k-missing"),):
        expected = await post_general(gql, other)
        assert expected["errors"], expected
        hits = gql.reads.hits
        assert text(await post(gql, other)) == text(expected)
        assert gql.reads.hits == hits + 1


async def test_state_walks_from_their_plan_answer_as_the_executor(gql_reads, world):
    gql = gql_reads
    general_run, compiled_run, learning_run = world["runs"]
    answers = {}
    for run_id, send in ((learning_run, post), (general_run, post_general), (compiled_run, post)):
        walk = []
        for version, state in ((1, "Submitted"), (2, "Running"), (1, "Success"), (3, "Success")):
            walk.append(anonymous(await send(gql, documents.set_flow_run_state(run_id, state, version)), run_id))
        answers[run_id] = walk
    assert answers[compiled_run] == answers[general_run]
    assert all('"SUCCESS"' in step for step in answers[general_run]), answers[general_run]
    assert gql.reads.hits >= 4


async def test_task_runners_requests_from_their_plans(gql_reads, world):
    gql = gql_reads
    run_id = world["runs"][0]
    tasks = (await gql("query($f: uuid!) { task(where: {flow_id: {_eq: $f}}, order_by: {slug: asc}) { id slug } }",
                       {"f": world["flow_id"]}))["task"]
    for task in tasks:
        body = json.loads(documents.task_run_info(run_id, task["id"]))
        answer = await assert_compiled_like_general(gql, body["query"], json.loads(body["variables"] or "null"))
        assert answer["data"]["get_or_create_task_run_info"]["id"]
    task_run = answer["data"]["get_or_create_task_run_info"]["id"]
    info = "query($id: UUID!) { get_task_run_info(task_run_id: $id) { id version state serialized_state } }"
    await assert_compiled_like_general(gql, info, {"id": task_run})
    states = ("mutation($input: set_task_run_states_input!) { set_task_run_states(input: $input) "
              "{ states { status message id } } }")

    def change(task_run_id: str, state: str, version: int) -> dict:
        return {"input": {"states": [{"task_run_id": task_run_id, "version": version,
                                      "state": {"type": state, "__version__": "1.4.1", "message": state}}]}}

    others = [row["id"] for row in (await gql(
        "query($r: uuid!) { task_run(where: {flow_run_id: {_eq: $r}}, order_by: {id: asc}) { id } }",
        {"r": run_id}))["task_run"]]
    learning, general_one, compiled_one = others[:3]
    walks = {}
    for task_run_id, send in ((learning, gql.raw), (general_one, None), (compiled_one, gql.raw)):
        walk = []
        for state, version in (("Running", 1), ("Success", 2), ("Success", 1)):
            variables = change(task_run_id, state, version)
            body = await (general(gql, states, variables) if send is None else send(states, variables))
            walk.append(anonymous(body, task_run_id))
        walks[task_run_id] = walk
    assert walks[compiled_one] == walks[general_one]


async def test_the_agents_poll_from_its_plan(gql_reads, world):
    body = json.loads(documents.runs_in_queue(world["tenant_id"], ["dev"]))
    variables = json.loads(body["variables"]) if isinstance(body["variables"], str) else body["variables"]
    answer = await assert_compiled_like_general(gql_reads, body["query"], variables)
    assert len(answer["data"]["get_runs_in_queue"]["flow_run_ids"]) == 3


async def test_a_mutation_whose_variables_hold_too_many_items_is_refused_as_the_executor_refuses(settings, world):
    async with client(settings, max_rows_per_write=2) as gql:
        document = "mutation($input: create_flow_run_input!) { create_flow_run(input: $input) { id } }"
        for labels in (["a"], ["a", "b"]):
            assert "errors" not in await gql.raw(document, {"input": {"flow_id": world["flow_id"], "labels": labels}})
        many = {"input": {"flow_id": world["flow_id"], "labels": ["a", "b", "c"]}}
        expected = await general(gql, document, many)
        assert "3" in expected["errors"][0]["message"]
        fallbacks = gql.reads.fallbacks
        assert text(await gql.raw(document, many)) == text(expected)
        assert gql.reads.fallbacks == fallbacks + 1, "refused before anything ran, by the general path"


@pytest.mark.pure
def test_arguments_are_converted_as_strawberry_converts_them():
    from strawberry.types.arguments import convert_argument

    from headwater.server.graphql.compiled import DIRECT_RESOLVERS, _converter

    plans = CompiledPlans(schema, max_tokens=None)
    samples = [None, {}, {"flow_id": uuid.uuid4(), "labels": ["a"], "parameters": {"x": [1]}},
               {"states": [{"flow_run_id": uuid.uuid4(), "state": {"type": "Running"}, "version": None}]},
               {"states": [{"task_run_id": uuid.uuid4(), "state": {}, "version": 3}]},
               {"flow_run_id": uuid.uuid4(), "task_id": uuid.uuid4(), "map_index": -1}, {"labels": None},
               {"tenant_id": uuid.uuid4(), "before": None, "labels": []}]
    checked = 0
    for name in DIRECT_RESOLVERS:
        field = plans._field("Mutation", name) or plans._field("Query", name)
        for argument in field.arguments:
            convert = _converter(argument.type)
            for sample in samples:
                try:
                    expected = convert_argument(sample, argument.type, schema.schema_converter.scalar_registry,
                                                schema.config)
                except Exception:  # noqa: BLE001 - a sample that does not fit this input
                    continue
                assert convert(sample) == expected, (name, sample)
                checked += 1
    assert checked >= 20
