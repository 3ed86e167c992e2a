"""Bad input gets a clear error that names the field, never the generic internal error or the
driver's own text, and nothing is written (issue 10, items 8, 9 and 10)."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import text

from headwater.server.domain.limits import MAX_IDEMPOTENCY_KEY_LENGTH, MAX_LABEL_LENGTH, MAX_LABELS, MAX_NAME_LENGTH
from tests import factories as f

CREATE_RUN = "mutation($input: create_flow_run_input!) { create_flow_run(input: $input) { id } }"
# What a message must never show: bind positions, the driver's wording, Python reprs.
DRIVER_INTERNALS = re.compile(r"\$\d|query argument|datetime\.datetime\(|asyncpg|sqlalchemy|Traceback", re.I)


@pytest.fixture
async def project_id(gql, tenant_id) -> str:
    return (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "bad-inputs"}))["id"]


@pytest.fixture
async def flow_id(gql, project_id) -> str:
    return (await gql.mutate("create_flow", {"project_id": project_id, "serialized_flow": f.flow("etl")}))["id"]


async def refused(gql, query: str, variables=None) -> str:
    """The message of a request that must fail as the client's fault (BAD_REQUEST), with no
    driver internals in it."""
    body = await gql.raw(query, variables)
    assert body.get("errors"), f"expected an error, got {body}"
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_REQUEST", error
    assert not DRIVER_INTERNALS.search(error["message"]), error["message"]
    return error["message"]


async def count(db, table: str) -> int:
    return await db.scalar(text(f"SELECT count(*) FROM {table}"))


async def ids(gql, query: str) -> set[str]:
    data = await gql(query)
    return {row["id"] for rows in data.values() for row in rows}


# --- item 8: five inputs that used to be internal errors -------------------------------------


async def test_ordering_operators_on_a_boolean_column(gql, project_id):
    """Postgres orders false before true; Hasura exposes _gt/_lt on Boolean, and so do we."""
    archived = (await gql.mutate("create_flow", {"project_id": project_id, "serialized_flow": f.flow("old")}))["id"]
    active = (await gql.mutate("create_flow", {"project_id": project_id, "serialized_flow": f.flow("new")}))["id"]
    await gql.mutate("archive_flow", {"flow_id": archived}, "success")

    assert await ids(gql, "{ flow(where: {archived: {_gt: false}}) { id } }") == {archived}
    assert await ids(gql, "{ flow(where: {archived: {_gte: true}}) { id } }") == {archived}
    assert await ids(gql, "{ flow(where: {archived: {_lt: true}}) { id } }") == {active}
    assert await ids(gql, "{ flow(where: {archived: {_lte: false}}) { id } }") == {active}
    assert await ids(gql, "{ flow(where: {archived: {_gt: true}}) { id } }") == set()
    data = await gql("query($b: Boolean) { flow(where: {archived: {_gte: $b}}) { id } }", {"b": False})
    assert {row["id"] for row in data["flow"]} == {archived, active}


async def test_interval_too_large_is_refused_clearly(gql, project_id):
    flow = f.flow("slow", tasks=[f.task("wait-1", retry_delay=120)])
    await gql.mutate("create_flow", {"project_id": project_id, "serialized_flow": flow})
    assert len((await gql("{ task(where: {retry_delay: {_gt: 60}}) { id } }"))["task"]) == 1

    message = await refused(gql, "{ task(where: {retry_delay: {_gt: 1e300}}) { id } }")
    assert "interval" in message and "out of range" in message
    message = await refused(gql, "query($d: interval) { task(where: {retry_delay: {_lt: $d}}) { id } }", {"d": -1e16})
    assert "$d" in message and "out of range" in message


@pytest.mark.parametrize("delay, reason", [(1e308, "out of range"), (float("inf"), "finite"), (float("nan"), "finite")])
async def test_retry_delay_out_of_range_names_the_task(gql, db, project_id, delay, reason):
    flow = f.flow("retrying", tasks=[f.task("fetch-1", retry_delay=delay)])
    # As the Prefect client registers: compressed JSON text (NaN and Infinity are literals there).
    payload = {"project_id": project_id, "serialized_flow": f.compress(flow)}
    message = await refused(
        gql,
        "mutation($input: create_flow_from_compressed_string_input!) { create_flow_from_compressed_string(input: $input) { id } }",
        {"input": payload},
    )
    assert "'fetch-1'" in message and "retry_delay" in message and reason in message
    assert await count(db, "flow") == 0


async def test_retry_delay_of_a_year_is_accepted(gql, db, project_id):
    flow = f.flow("patient", tasks=[f.task("fetch-1", retry_delay=365 * 86400)])
    await gql.mutate("create_flow", {"project_id": project_id, "serialized_flow": flow})
    assert await db.scalar(text("SELECT extract(epoch FROM retry_delay) FROM task")) == 365 * 86400


async def test_contains_a_string_on_jsonb_follows_postgres(gql, flow_id):
    """`@> '"x"'::jsonb`: an array contains the string "x"; an object never contains a string."""
    tagged = (await gql.mutate("create_flow_run", {"flow_id": flow_id, "labels": ["gpu", "prod"]}))["id"]
    await gql.mutate("create_flow_run", {"flow_id": flow_id, "labels": ["dev"], "parameters": {"x": 1}})

    assert await ids(gql, '{ flow_run(where: {labels: {_contains: "gpu"}}) { id } }') == {tagged}
    assert await ids(gql, '{ flow_run(where: {parameters: {_contains: "x"}}) { id } }') == set()
    assert await ids(gql, '{ flow_run(where: {labels: {_contained_in: "gpu"}}) { id } }') == set()
    data = await gql("query($v: jsonb) { flow_run(where: {labels: {_contains: $v}}) { id } }", {"v": "prod"})
    assert [row["id"] for row in data["flow_run"]] == [tagged]


async def test_in_on_jsonb_takes_arrays_and_scalars_alike(gql, flow_id):
    """Found by fuzzing: `_in: [["a"], true]` on a jsonb column was an internal error (the list of
    jsonb values was read as a two-dimensional array). Each item is one jsonb value."""
    tagged = (await gql.mutate("create_flow_run", {"flow_id": flow_id, "labels": ["gpu"]}))["id"]
    other = (await gql.mutate("create_flow_run", {"flow_id": flow_id, "labels": ["dev"]}))["id"]

    assert await ids(gql, '{ flow_run(where: {labels: {_in: [["gpu"], true, 1]}}) { id } }') == {tagged}
    assert await ids(gql, '{ flow_run(where: {labels: {_nin: [["gpu"], "x"]}}) { id } }') == {other}
    assert await ids(gql, '{ flow_run(where: {labels: {_in: [true]}}) { id } }') == set()
    data = await gql(
        "query($w: flow_run_bool_exp) { flow_run(where: $w) { id } }", {"w": {"labels": {"_in": [["dev"], 3]}}}
    )
    assert [row["id"] for row in data["flow_run"]] == [other]


async def test_idempotency_key_too_long(gql, db, flow_id):
    message = await refused(gql, CREATE_RUN, {"input": {"flow_id": flow_id, "idempotency_key": "k" * 1_000_000}})
    assert "idempotency_key" in message and str(MAX_IDEMPOTENCY_KEY_LENGTH) in message
    assert await count(db, "flow_run") == 0
    # The longest allowed key, in four-byte characters, still fits the unique index.
    key = "\N{MUSICAL SYMBOL G CLEF}" * MAX_IDEMPOTENCY_KEY_LENGTH
    first = await gql.mutate("create_flow_run", {"flow_id": flow_id, "idempotency_key": key})
    assert await gql.mutate("create_flow_run", {"flow_id": flow_id, "idempotency_key": key}) == first


# --- item 9: size limits on run parameters, context, run config, labels and names -----------


@pytest.mark.parametrize("field", ["parameters", "context", "run_config"])
async def test_run_json_larger_than_max_payload_bytes(gql, db, flow_id, field):
    value = {"type": "UniversalRun", "blob": "x" * 1_500_000}
    message = await refused(gql, CREATE_RUN, {"input": {"flow_id": flow_id, field: value}})
    assert f"`{field}`" in message and "1000000 bytes" in message
    assert await count(db, "flow_run") == 0


async def test_group_default_parameters_larger_than_max_payload_bytes(gql, db, flow_id):
    group_id = (await gql("query($id: uuid!) { flow_by_pk(id: $id) { flow_group_id } }", {"id": flow_id}))[
        "flow_by_pk"
    ]["flow_group_id"]
    message = await refused(
        gql,
        "mutation($input: set_flow_group_default_parameters_input!) { set_flow_group_default_parameters(input: $input) { success } }",
        {"input": {"flow_group_id": group_id, "parameters": {"blob": "x" * 1_500_000}}},
    )
    assert "`parameters`" in message and "1000000 bytes" in message
    assert await db.scalar(text("SELECT default_parameters FROM flow_group")) in (None, {})


async def test_too_many_and_too_long_labels(gql, db, flow_id):
    # The 100,000 labels are refused before they are even read, naming the field...
    message = await refused(
        gql, CREATE_RUN, {"input": {"flow_id": flow_id, "labels": [f"label-{i}" for i in range(100_000)]}}
    )
    assert "`$input.labels` holds 100000 items" in message and "HEADWATER_MAX_ROWS_PER_WRITE" in message
    # ...and anything over the label limit by the domain's own check.
    many = [f"label-{i}" for i in range(MAX_LABELS + 1)]
    long = ["x" * (MAX_LABEL_LENGTH + 1)]
    for labels, expected in ((many, f"the limit is {MAX_LABELS}"), (long, f"the limit is {MAX_LABEL_LENGTH}")):
        message = await refused(gql, CREATE_RUN, {"input": {"flow_id": flow_id, "labels": labels}})
        assert "`labels`" in message and expected in message
        run_config = {"type": "UniversalRun", "labels": labels[: MAX_LABELS * 10]}
        message = await refused(gql, CREATE_RUN, {"input": {"flow_id": flow_id, "run_config": run_config}})
        assert "`run_config.labels`" in message and expected in message
    assert await count(db, "flow_run") == 0

    run_id = await gql.mutate("create_flow_run", {"flow_id": flow_id, "labels": ["ok"]})
    message = await refused(
        gql,
        "mutation($input: set_flow_run_labels_input!) { set_flow_run_labels(input: $input) { success } }",
        {"input": {"flow_run_id": run_id["id"], "labels": many}},
    )
    assert f"the limit is {MAX_LABELS}" in message
    assert await db.scalar(text("SELECT labels FROM flow_run")) == ["ok"]

    group_id = await db.scalar(text("SELECT flow_group_id FROM flow"))
    message = await refused(
        gql,
        "mutation($input: set_flow_group_labels_input!) { set_flow_group_labels(input: $input) { success } }",
        {"input": {"flow_group_id": str(group_id), "labels": long}},
    )
    assert f"the limit is {MAX_LABEL_LENGTH}" in message
    assert await db.scalar(text("SELECT labels FROM flow_group")) is None


async def test_run_name_too_long(gql, db, flow_id):
    name = "n" * 1_000_000
    message = await refused(gql, CREATE_RUN, {"input": {"flow_id": flow_id, "flow_run_name": name}})
    assert "`flow_run_name`" in message and str(MAX_NAME_LENGTH) in message
    assert await count(db, "flow_run") == 0

    run_id = (await gql.mutate("create_flow_run", {"flow_id": flow_id, "flow_run_name": "short"}))["id"]
    message = await refused(
        gql,
        "mutation($input: set_flow_run_name_input!) { set_flow_run_name(input: $input) { success } }",
        {"input": {"flow_run_id": run_id, "name": name}},
    )
    assert "`name`" in message and str(MAX_NAME_LENGTH) in message
    assert await db.scalar(text("SELECT name FROM flow_run")) == "short"

    task_run_id = str(await db.scalar(text("SELECT id FROM task_run LIMIT 1")))
    message = await refused(
        gql,
        "mutation($input: set_task_run_name_input!) { set_task_run_name(input: $input) { success } }",
        {"input": {"task_run_id": task_run_id, "name": name}},
    )
    assert "`name`" in message and str(MAX_NAME_LENGTH) in message
    assert await db.scalar(text("SELECT count(*) FROM task_run WHERE name IS NOT NULL")) == 0


# --- item 10: what used to echo the driver ---------------------------------------------------

SET_STATES = "mutation($input: set_flow_run_states_input!) { set_flow_run_states(input: $input) { states { id } } }"
WRITE_LOGS = "mutation($input: write_run_logs_input!) { write_run_logs(input: $input) { success } }"
EARLY = "0001-01-01T00:00:00+05:00"  # year 0 in UTC
LATE = "9999-12-31T23:59:59-05:00"  # year 10000 in UTC


@pytest.fixture
async def run_id(gql, flow_id) -> str:
    return (await gql.mutate("create_flow_run", {"flow_id": flow_id, "flow_run_name": "target"}))["id"]


async def snapshot(db) -> list:
    """Everything a refused request could have written."""
    queries = [
        "SELECT count(*) FROM flow_run",
        "SELECT count(*) FROM flow_run_state",
        "SELECT count(*) FROM log",
        "SELECT count(*) FROM flow",
        "SELECT name, labels, parameters, state FROM flow_run",
    ]
    return [(await db.execute(text(query))).all() for query in queries]


def _state(**extra) -> dict:
    return {"type": "Scheduled", "message": "later", "__version__": "1.4.1", **extra}


CASES = {
    "scheduled_start_time before year 1 in UTC": (
        CREATE_RUN, lambda ids: {"input": {"flow_id": ids["flow"], "scheduled_start_time": EARLY}},
        ("scheduled_start_time", "out of range"),
    ),
    "queue `before` after year 9999 in UTC": (
        "mutation($input: get_runs_in_queue_input!) { get_runs_in_queue(input: $input) { flow_run_ids } }",
        lambda ids: {"input": {"tenant_id": ids["tenant"], "before": LATE}},
        ("before", "out of range"),
    ),
    "timestamptz variable in a where": (
        "query($t: timestamptz) { flow_run(where: {scheduled_start_time: {_gt: $t}}) { id } }",
        lambda ids: {"t": EARLY},
        ("$t", "out of range"),
    ),
    "state start_time out of range": (
        SET_STATES, lambda ids: {"input": {"states": [{"flow_run_id": ids["run"], "state": _state(start_time=EARLY)}]}},
        ("start_time", "out of range"),
    ),
    "log timestamp out of range": (
        WRITE_LOGS, lambda ids: {"input": {"logs": [{"flow_run_id": ids["run"], "message": "m", "timestamp": LATE}]}},
        ("timestamp", "out of range"),
    ),
    "NUL in a run name": (
        CREATE_RUN, lambda ids: {"input": {"flow_id": ids["flow"], "flow_run_name": "a\x00b"}},
        ("flow_run_name", "NUL"),
    ),
    "NUL in a parameter": (
        CREATE_RUN, lambda ids: {"input": {"flow_id": ids["flow"], "parameters": {"p": ["x\x00"]}}},
        ("parameters", "NUL"),
    ),
    "NUL in a label": (
        "mutation($input: set_flow_run_labels_input!) { set_flow_run_labels(input: $input) { success } }",
        lambda ids: {"input": {"flow_run_id": ids["run"], "labels": ["a\x00"]}},
        ("labels", "NUL"),
    ),
    "NUL in a state message": (
        SET_STATES, lambda ids: {"input": {"states": [{"flow_run_id": ids["run"], "state": _state(message="\x00")}]}},
        ("state", "NUL"),
    ),
    "NUL in a where operand": (
        "query($n: String!) { flow(where: {name: {_in: [$n]}}) { id } }", lambda ids: {"n": "a\x00"},
        ("name._in", "NUL"),
    ),
    # No check of its own: the database refuses it, and the generic message names the field.
    "NUL in a log message": (
        WRITE_LOGS, lambda ids: {"input": {"logs": [{"flow_run_id": ids["run"], "message": "a\x00b"}]}},
        ("`write_run_logs`", "NUL"),
    ),
    "bad SIMILAR TO pattern": (
        '{ flow(where: {name: {_similar: "(("}}) { id } }', lambda ids: None,
        ("`flow`", "regular expression"),
    ),
    "max_retries beyond a 32-bit integer": (
        "mutation($input: create_flow_input!) { create_flow(input: $input) { id } }",
        lambda ids: {"input": {"project_id": ids["project"],
                               "serialized_flow": f.flow("big", tasks=[f.task("t-1", max_retries=10**20)])}},
        ("`create_flow`", "out of range"),
    ),
}


@pytest.mark.parametrize("case", CASES)
async def test_no_driver_internals_in_messages(gql, db, tenant_id, project_id, flow_id, run_id, case):
    query, variables, expected = CASES[case]
    ids = {"tenant": tenant_id, "project": project_id, "flow": flow_id, "run": run_id}
    before = await snapshot(db)
    message = await refused(gql, query, variables(ids))
    for part in expected:
        assert part in message, message
    assert await snapshot(db) == before


async def test_value_too_large_to_index_is_a_clear_error(gql, db, project_id):
    """Postgres limits an index row (class 54). No check catches a task's 1 MB cache key before
    its task runs are inserted (task_run.cache_key is indexed), so the generic message must."""
    flow = f.flow("cached", tasks=[f.task("c-1", cache_key="k" * 1_000_000)])
    flow_id = (await gql.mutate("create_flow", {"project_id": project_id, "serialized_flow": flow}))["id"]
    message = await refused(gql, CREATE_RUN, {"input": {"flow_id": flow_id}})
    assert message == "Invalid value in `create_flow_run`: a value is too large for the database to index."
    assert await count(db, "flow_run") == 0


def test_serialized_nul_check_ignores_an_escaped_backslash():
    """`\\u0000` written out as six characters is ordinary text, not NUL."""
    from headwater.server.domain.limits import has_nul_escape

    assert has_nul_escape(json.dumps({"p": "a\x00"}))
    assert has_nul_escape(json.dumps({"p": "\\\x00"}))
    assert not has_nul_escape(json.dumps({"p": "\\u0000"}))
    assert not has_nul_escape(json.dumps({"p": "\\\\u0000"}))


async def test_a_bad_item_in_a_batch_is_named_by_its_variable_path(gql, db, flow_id):
    """Issue 11 item 14: in a batch of 500 logs, the error says which one is bad and why."""
    run_id = (await gql.mutate("create_flow_run", {"flow_id": flow_id}))["id"]
    logs = [{"flow_run_id": run_id, "message": f"line {i}"} for i in range(500)]
    logs[317]["timestamp"] = "not a time"
    message = await refused(
        gql, "mutation($input: write_run_logs_input!) { write_run_logs(input: $input) { success } }",
        {"input": {"logs": logs}},
    )
    assert message.startswith("Variable '$input' has invalid value at .logs[317].timestamp:"), message
    assert "Could not parse DateTime" in message and "not a time" in message
    assert await count(db, "log") == 0
