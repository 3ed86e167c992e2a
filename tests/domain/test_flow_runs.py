"""Flow runs: creation rules, the agent queue, states and their history, cancellation."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from tests import factories as f

STATES = "states { id status message }"


@pytest.fixture
async def project_id(gql, tenant_id) -> str:
    return (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "runs"}))["id"]


@pytest.fixture
async def flow_id(gql, project_id) -> str:
    flow = f.flow("with-params", parameters=[f.parameter("x", default=1), f.parameter("zero", default=0)])
    return (await gql.mutate("create_flow", {"project_id": project_id, "serialized_flow": flow}))["id"]


async def create_run(gql, flow_id: str, **extra) -> str:
    return (await gql.mutate("create_flow_run", {"flow_id": flow_id, **extra}))["id"]


async def run_row(db, run_id: str):
    return (await db.execute(text("SELECT * FROM flow_run WHERE id = :id"), {"id": run_id})).mappings().one()


def state(name: str, **extra) -> dict:
    return {"type": name, "message": f"{name} now", "__version__": "1.4.1", **extra}


async def set_state(gql, run_id: str, name: str, version: int | None = None, **headers) -> dict:
    payload = {"states": [{"flow_run_id": run_id, "state": state(name), "version": version}]}
    data = await gql(
        f"mutation($input: set_flow_run_states_input!) {{ set_flow_run_states(input: $input) {{ {STATES} }} }}",
        {"input": payload},
        **headers,
    )
    return data["set_flow_run_states"]["states"][0]


async def set_task_state(gql, task_run_id: str, name: str, version: int | None = None) -> str:
    payload = {"states": [{"task_run_id": task_run_id, "state": state(name), "version": version}]}
    body = await gql.raw(
        f"mutation($input: set_task_run_states_input!) {{ set_task_run_states(input: $input) {{ {STATES} }} }}",
        {"input": payload},
    )
    return body["errors"][0]["message"] if body.get("errors") else body["data"]["set_task_run_states"]["states"][0]["status"]


async def test_new_run_is_scheduled_with_pending_task_runs(gql, db, flow_id):
    run_id = await create_run(gql, flow_id, parameters={"y": 2}, context={"c": 1}, flow_run_name="first")
    run = await run_row(db, run_id)
    assert run["state"] == "Scheduled" and run["version"] == 1 and run["name"] == "first"
    assert run["serialized_state"]["type"] == "Scheduled" and run["serialized_state"]["start_time"]
    assert run["state_start_time"] == run["scheduled_start_time"]
    assert run["parameters"] == {"x": 1, "zero": 0, "y": 2}, "defaults, falsy ones included, under given values"
    assert run["context"] == {"c": 1} and run["labels"] == ["dev"]
    task_runs = (await db.execute(text("SELECT * FROM task_run WHERE flow_run_id = :id"), {"id": run_id})).mappings().all()
    assert len(task_runs) == 4 and {r["map_index"] for r in task_runs} == {-1}
    assert {r["state"] for r in task_runs} == {"Pending"} and {r["version"] for r in task_runs} == {1}
    assert await db.scalar(text("SELECT count(*) FROM task_run_state")) == 4
    assert await db.scalar(text("SELECT count(*) FROM flow_run_state WHERE flow_run_id = :id"), {"id": run_id}) == 1
    generated = await run_row(db, await create_run(gql, flow_id))
    assert generated["name"] and "-" in generated["name"], "a readable random name"


async def test_parameter_and_label_precedence(gql, db, flow_id):
    group_id = str(await db.scalar(text("SELECT flow_group_id FROM flow WHERE id = :id"), {"id": flow_id}))
    await gql.mutate("set_flow_group_default_parameters", {"flow_group_id": group_id, "parameters": {"x": 5}}, "success")
    run = await run_row(db, await create_run(gql, flow_id))
    assert run["parameters"]["x"] == 5

    assert (await run_row(db, await create_run(gql, flow_id, labels=["b", "a"])))["labels"] == ["a", "b"]
    assert (await run_row(db, await create_run(gql, flow_id, labels=[])))["labels"] == []
    run_config = {"type": "LocalRun", "labels": ["rc"]}
    by_config = await run_row(db, await create_run(gql, flow_id, run_config=run_config))
    assert by_config["labels"] == ["rc"] and by_config["run_config"] == run_config
    await gql.mutate("set_flow_group_labels", {"flow_group_id": group_id, "labels": ["group"]}, "success")
    assert (await run_row(db, await create_run(gql, flow_id)))["labels"] == ["group"]
    await gql.mutate("set_flow_group_labels", {"flow_group_id": group_id, "labels": None}, "success")
    await gql.mutate(
        "set_flow_group_run_config", {"flow_group_id": group_id, "run_config": {"type": "LocalRun", "labels": ["gr"]}},
        "success",
    )
    assert (await run_row(db, await create_run(gql, flow_id)))["labels"] == ["gr"]


async def test_create_by_version_group_and_errors(gql, db, project_id, flow_id):
    version_group = await db.scalar(text("SELECT version_group_id FROM flow WHERE id = :id"), {"id": flow_id})
    v2 = (await gql.mutate("create_flow", {"project_id": project_id, "serialized_flow": f.flow("with-params")}))["id"]
    by_group = await run_row(db, (await gql.mutate("create_flow_run", {"version_group_id": version_group}))["id"])
    assert str(by_group["flow_id"]) == v2, "the version group's active flow runs"

    missing = str(uuid.uuid4())
    assert await gql.mutate_error("create_flow_run", {"flow_id": missing}) == f"Flow {missing} not found."
    assert await gql.mutate_error("create_flow_run", {}) == "A flow id or version group ID must be provided."
    assert "has no unarchived flows" in await gql.mutate_error("create_flow_run", {"version_group_id": "nope"})
    assert await gql.mutate_error("create_flow_run", {"flow_id": flow_id}) == f"Flow {flow_id} is archived."
    assert "JSON object" in await gql.mutate_error("create_flow_run", {"flow_id": v2, "parameters": [1]})
    assert "non-empty" in await gql.mutate_error("create_flow_run", {"flow_id": v2, "labels": [""]})
    required = f.flow("needs", parameters=[f.parameter("who", required=True)])
    needs = (await gql.mutate("create_flow", {"project_id": project_id, "serialized_flow": required}))["id"]
    assert await gql.mutate_error("create_flow_run", {"flow_id": needs}) == "Required parameters were not supplied: who."
    assert await db.scalar(text("SELECT count(*) FROM flow_run")) == 1


async def test_idempotency_key_under_concurrency(gql, db, flow_id):
    ids = await asyncio.gather(*(create_run(gql, flow_id, idempotency_key="once") for _ in range(50)))
    assert len(set(ids)) == 1
    assert await db.scalar(text("SELECT count(*) FROM flow_run")) == 1
    assert await db.scalar(text("SELECT count(*) FROM flow_run_state")) == 1


async def test_state_history_versions_and_times(gql, db, flow_id):
    run_id = await create_run(gql, flow_id)
    assert (await set_state(gql, run_id, "Submitted", version=1))["status"] == "SUCCESS"
    await set_state(gql, run_id, "Running", version=2)
    running = await run_row(db, run_id)
    assert running["version"] == 3 and running["start_time"] and running["heartbeat"] and running["end_time"] is None
    await set_state(gql, run_id, "Success")
    done = await run_row(db, run_id)
    assert done["state"] == "Success" and done["version"] == 4 and done["end_time"] >= done["start_time"]
    history = (
        await db.execute(text("SELECT state, version FROM flow_run_state WHERE flow_run_id = :id ORDER BY version"),
                         {"id": run_id})
    ).all()
    assert [tuple(h) for h in history] == [("Scheduled", 1), ("Submitted", 2), ("Running", 3), ("Success", 4)]


async def test_submitted_only_once(gql, db, flow_id):
    run_id = await create_run(gql, flow_id)
    await set_state(gql, run_id, "Submitted")
    payload = {"states": [{"flow_run_id": run_id, "state": state("Submitted"), "version": None}]}
    message = await gql.mutate_error("set_flow_run_states", payload, STATES)
    assert message == "State update failed: this run has already been submitted."
    assert (await run_row(db, run_id))["version"] == 2


async def test_task_run_states_need_a_running_flow_run(gql, db, flow_id):
    run_id = await create_run(gql, flow_id)
    task_run = str(await db.scalar(text("SELECT id FROM task_run WHERE flow_run_id = :id LIMIT 1"), {"id": run_id}))
    message = await set_task_state(gql, task_run, "Running")
    assert "is not in a running state" in message
    await set_state(gql, run_id, "Running")
    assert await set_task_state(gql, task_run, "Running", version=1) == "SUCCESS"
    assert await set_task_state(gql, task_run, "Success") == "SUCCESS"
    row = (await db.execute(text("SELECT * FROM task_run WHERE id = :id"), {"id": task_run})).mappings().one()
    assert row["state"] == "Success" and row["version"] == 3 and row["start_time"] and row["end_time"]


async def test_heartbeat_is_set_by_running_states_and_a_flow_runs_submitted(gql, db, flow_id):
    """As Prefect Server: a flow run's heartbeat starts at Submitted; a task run's only when it runs."""
    run_id = await create_run(gql, flow_id)
    assert (await run_row(db, run_id))["heartbeat"] is None
    await set_state(gql, run_id, "Submitted")
    submitted = (await run_row(db, run_id))["heartbeat"]
    assert submitted is not None
    await set_state(gql, run_id, "Running")
    flow_running = (await run_row(db, run_id))["heartbeat"]
    assert flow_running > submitted

    task_run = str(await db.scalar(text("SELECT id FROM task_run WHERE flow_run_id = :id LIMIT 1"), {"id": run_id}))

    async def task_heartbeat():
        return await db.scalar(text("SELECT heartbeat FROM task_run WHERE id = :id"), {"id": task_run})

    assert await set_task_state(gql, task_run, "Submitted") == "SUCCESS"
    assert await task_heartbeat() is None
    assert await set_task_state(gql, task_run, "Pending") == "SUCCESS"
    assert await task_heartbeat() is None
    assert await set_task_state(gql, task_run, "Running") == "SUCCESS"
    task_running = await task_heartbeat()
    assert task_running is not None
    assert await set_task_state(gql, task_run, "Success") == "SUCCESS"
    assert await task_heartbeat() == task_running

    await set_state(gql, run_id, "Success")
    assert (await run_row(db, run_id))["heartbeat"] == flow_running


async def test_mapped_children_created_on_demand(gql, db, flow_id):
    run_id = await create_run(gql, flow_id)
    task_id = str(await db.scalar(text("SELECT id FROM task WHERE flow_id = :id AND slug = 'load-1'"), {"id": flow_id}))
    query = (
        "mutation { get_or_create_task_run_info(input: { flow_run_id: \"%s\", task_id: \"%s\", map_index: %d }) "
        "{ id version state serialized_state } }"
    )
    parent = (await gql(query % (run_id, task_id, -1)))["get_or_create_task_run_info"]
    assert parent["state"] == "Pending" and parent["version"] == 1
    children = [(await gql(query % (run_id, task_id, i)))["get_or_create_task_run_info"] for i in range(3)]
    again = (await gql(query % (run_id, task_id, 1)))["get_or_create_task_run_info"]
    assert again["id"] == children[1]["id"] and len({c["id"] for c in children}) == 3
    assert await db.scalar(text("SELECT count(*) FROM task_run WHERE map_index >= 0")) == 3
    await set_state(gql, run_id, "Running")
    await set_task_state(gql, children[0]["id"], "Running")
    await set_task_state(gql, children[0]["id"], "Success")
    summary = await gql('{ mapped_children(task_run_id: "%s") { state_counts min_start_time max_end_time } }' % parent["id"])
    assert summary["mapped_children"]["state_counts"] == {"Pending": 2, "Success": 1}
    assert summary["mapped_children"]["min_start_time"] and summary["mapped_children"]["max_end_time"]
    missing = str(uuid.uuid4())
    assert f"Task {missing} not found." in await gql.error(query % (run_id, missing, 0))


async def test_cancel_flow_run(gql, db, flow_id):
    waiting = await create_run(gql, flow_id)
    assert (await gql.mutate("cancel_flow_run", {"flow_run_id": waiting}, "state"))["state"] == "Cancelled"
    states = (await db.execute(text("SELECT DISTINCT state FROM task_run WHERE flow_run_id = :id"), {"id": waiting})).all()
    assert [s[0] for s in states] == ["Cancelled"], "unfinished task runs are cancelled too"
    assert (await gql.mutate("cancel_flow_run", {"flow_run_id": waiting}, "state"))["state"] == "Cancelled"

    running = await create_run(gql, flow_id)
    await set_state(gql, running, "Running")
    assert (await gql.mutate("cancel_flow_run", {"flow_run_id": running}, "state"))["state"] == "Cancelling"


async def test_queue_label_rules_and_agent(gql, db, flow_id, tenant_id):
    unlabeled = await create_run(gql, flow_id, labels=[])
    dev = await create_run(gql, flow_id, labels=["dev"])
    dev_gpu = await create_run(gql, flow_id, labels=["dev", "gpu"])
    later = await create_run(gql, flow_id, labels=[], scheduled_start_time="2999-01-01T00:00:00")
    agent_id = (await gql.mutate("register_agent", {"type": "LocalAgent", "name": "a", "labels": ["dev"],
                                                   "tenant_id": tenant_id, "agent_config_id": None}))["id"]
    again = (await gql.mutate("register_agent", {"type": "LocalAgent", "name": "a", "labels": ["dev"],
                                                 "tenant_id": tenant_id, "agent_config_id": None}))["id"]
    assert again == agent_id, "a restarted agent reuses its registration"

    async def poll(labels):
        data = await gql.mutate("get_runs_in_queue", {"tenant_id": tenant_id, "labels": labels}, "flow_run_ids",
                                )
        return set(data["flow_run_ids"])

    assert await poll([]) == {unlabeled}
    assert await poll(["dev"]) == {dev}
    assert await poll(["dev", "gpu", "x"]) == {dev, dev_gpu}
    assert later not in await poll([])
    await set_state(gql, dev, "Submitted", **{"X-PREFECT-AGENT-ID": agent_id})
    assert await poll(["dev"]) == set()
    assert str(await db.scalar(text("SELECT agent_id FROM flow_run WHERE id = :id"), {"id": dev})) == agent_id
    await gql(
        'mutation($input: get_runs_in_queue_input!) { get_runs_in_queue(input: $input) { flow_run_ids } }',
        {"input": {"tenant_id": tenant_id, "labels": ["dev"]}},
        **{"X-PREFECT-AGENT-ID": agent_id},
    )
    assert await db.scalar(text("SELECT last_queried FROM agent WHERE id = :id"), {"id": agent_id})


async def test_two_agents_polling_submit_each_run_once(gql, db, flow_id, tenant_id):
    runs = {await create_run(gql, flow_id, labels=[]) for _ in range(10)}

    async def agent() -> set[str]:
        ids = (await gql.mutate("get_runs_in_queue", {"tenant_id": tenant_id, "labels": []}, "flow_run_ids"))["flow_run_ids"]
        submitted = set()
        for run_id in ids:
            body = await gql.raw(
                f"mutation($input: set_flow_run_states_input!) {{ set_flow_run_states(input: $input) {{ {STATES} }} }}",
                {"input": {"states": [{"flow_run_id": run_id, "state": state("Submitted"), "version": 1}]}},
            )
            if not body.get("errors"):
                submitted.add(run_id)
        return submitted

    first, second = await asyncio.gather(agent(), agent())
    assert first | second == runs and not first & second
    assert await db.scalar(text("SELECT count(*) FROM flow_run_state WHERE state = 'Submitted'")) == 10


async def test_version_locking_compare_and_set(gql, db, flow_id):
    await gql.mutate("enable_flow_version_lock", {"flow_id": flow_id}, "success")
    run_id = await create_run(gql, flow_id)
    payload = lambda name, version: {  # noqa: E731
        "input": {"states": [{"flow_run_id": run_id, "state": state(name), "version": version}]}
    }
    document = f"mutation($input: set_flow_run_states_input!) {{ set_flow_run_states(input: $input) {{ {STATES} }} }}"
    results = await asyncio.gather(*(gql.raw(document, payload("Running", 1)) for _ in range(2)))
    winners = [r for r in results if not r.get("errors")]
    losers = [r for r in results if r.get("errors")]
    assert len(winners) == 1 and len(losers) == 1
    assert losers[0]["errors"][0]["extensions"]["code"] == "VERSION_LOCKING_ERROR"
    stale = await gql.raw(document, payload("Success", 1))
    assert stale["errors"][0]["extensions"]["code"] == "VERSION_LOCKING_ERROR"
    again = await gql.raw(document, payload("Running", 2))
    assert "may enter Running only once" in again["errors"][0]["message"]
    assert (await run_row(db, run_id))["version"] == 2
    await gql.mutate("disable_flow_version_lock", {"flow_id": flow_id}, "success")
    assert (await set_state(gql, run_id, "Success", version=1))["status"] == "SUCCESS"


async def test_bad_state_payloads_change_nothing(gql, db, flow_id, settings):
    run_id = await create_run(gql, flow_id)
    cases = [
        ({"type": "Exploded"}, "Unknown state type: 'Exploded'."),
        ("Running", "A state must be a serialized Prefect state object."),
        ({"type": "Scheduled", "start_time": "yesterday"}, "Invalid state start_time: 'yesterday'"),
        ({"type": "Running", "message": "x" * settings.max_payload_bytes}, "State payload is too large."),
    ]
    for bad, expected in cases:
        payload = {"states": [{"flow_run_id": run_id, "state": bad, "version": None}]}
        assert await gql.mutate_error("set_flow_run_states", payload, STATES) == expected
    missing = str(uuid.uuid4())
    payload = {"states": [{"flow_run_id": missing, "state": state("Running"), "version": None}]}
    assert "State update failed for flow run ID" in await gql.mutate_error("set_flow_run_states", payload, STATES)
    assert (await run_row(db, run_id))["version"] == 1


async def test_rename_relabel_heartbeat_delete(gql, db, flow_id):
    run_id = await create_run(gql, flow_id)
    await gql.mutate("set_flow_run_name", {"flow_run_id": run_id, "name": "renamed"}, "success")
    await gql.mutate("set_flow_run_labels", {"flow_run_id": run_id, "labels": ["z", "a"]}, "success")
    assert "must not be empty" in await gql.mutate_error("set_flow_run_name", {"flow_run_id": run_id, "name": ""}, "success")
    heartbeat = await gql('mutation { update_flow_run_heartbeat(input: { flow_run_id: "%s" }) { success } }' % run_id)
    assert heartbeat["update_flow_run_heartbeat"]["success"] is True
    unknown = await gql('mutation { update_flow_run_heartbeat(input: { flow_run_id: "%s" }) { success } }' % uuid.uuid4())
    assert unknown["update_flow_run_heartbeat"]["success"] is False
    row = await run_row(db, run_id)
    assert row["name"] == "renamed" and row["labels"] == ["a", "z"] and row["heartbeat"]
    await gql.mutate("delete_flow_run", {"flow_run_id": run_id}, "success")
    assert await db.scalar(text("SELECT count(*) FROM task_run")) == 0
    assert f"Flow run {run_id} not found." == await gql.mutate_error("delete_flow_run", {"flow_run_id": run_id}, "success")
