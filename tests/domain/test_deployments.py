"""Deployments through the GraphQL API: create, update, delete, pause/resume, apply, and runs
created from a deployment (parameters, tags, labels, deployment_id)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests import factories as f

DEPLOYMENT_FIELDS = "id name description flow_id parameters tags labels schedule is_schedule_active updated"
APPLY = """
mutation($input: apply_deployments_input!) {
  apply_deployments(input: $input) { deployments { id name flow_group_id outcome } }
}"""


@pytest.fixture
async def flow(gql, tenant_id):
    """A registered flow with a required parameter `nums`, an optional `scale`, labels ["dev"]."""
    project = (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "deploy"}))["id"]
    serialized = f.flow(
        "Addition Machine",
        parameters=[f.parameter("nums", required=True), f.parameter("scale", default=1)],
    )
    flow_id = (await gql.mutate("create_flow", {"project_id": project, "serialized_flow": serialized}))["id"]
    data = await gql(f'{{ flow_by_pk(id: "{flow_id}") {{ id flow_group_id }} }}')
    return {"project_id": project, **data["flow_by_pk"]}


async def deployment(gql, deployment_id: str) -> dict:
    data = await gql(f'{{ deployment_by_pk(id: "{deployment_id}") {{ {DEPLOYMENT_FIELDS} }} }}')
    return data["deployment_by_pk"]


async def create(gql, flow, **fields) -> str:
    return (await gql.mutate("create_deployment", {"flow_group_id": flow["flow_group_id"], **fields}))["id"]


async def runs(db, where: str = "true", **params) -> list:
    await db.commit()
    return (
        await db.execute(
            text(
                "SELECT id, flow_id, deployment_id, parameters, tags, labels, auto_scheduled, state, "
                f"scheduled_start_time, idempotency_key FROM flow_run WHERE {where} ORDER BY scheduled_start_time"
            ),
            params,
        )
    ).mappings().all()


async def test_create_and_read_a_deployment(gql, flow):
    deployment_id = await create(
        gql, flow, name="nightly", description="full load", parameters={"nums": [1, 2]}, tags=["etl", "etl", "night"],
        labels=["gpu", "big"],
    )
    row = await deployment(gql, deployment_id)
    assert row["name"] == "nightly" and row["description"] == "full load"
    assert row["parameters"] == {"nums": [1, 2]}
    assert row["tags"] == ["etl", "night"], "tags keep their order, each once"
    assert row["labels"] == ["big", "gpu"]
    assert row["schedule"] == [] and row["is_schedule_active"] is True and row["flow_id"] is None
    listed = await gql(
        f'{{ flow_group(where: {{id: {{_eq: "{flow["flow_group_id"]}"}}}}) '
        "{ deployments { name flow_group { id } flow { id } } deployments_aggregate { aggregate { count } } } }"
    )
    group = listed["flow_group"][0]
    assert group["deployments"] == [{"name": "nightly", "flow_group": {"id": flow["flow_group_id"]}, "flow": None}]
    assert group["deployments_aggregate"]["aggregate"]["count"] == 1


async def test_run_a_deployment_merges_parameters_tags_and_labels(gql, db, flow):
    await gql.mutate("set_flow_group_default_parameters",
                     {"flow_group_id": flow["flow_group_id"], "parameters": {"scale": 2}}, "success")
    deployment_id = await create(gql, flow, name="adhoc", parameters={"nums": [1, 2, 3, 4]}, tags=["etl"])
    run_id = (await gql.mutate("create_flow_run", {"deployment_id": deployment_id}))["id"]
    (run,) = await runs(db, "id = :id", id=run_id)
    assert run["flow_id"].hex == flow["id"].replace("-", "")
    assert str(run["deployment_id"]) == deployment_id
    assert run["parameters"] == {"nums": [1, 2, 3, 4], "scale": 2}, "flow < group < deployment"
    assert run["tags"] == ["etl"] and run["labels"] == ["dev"], "no deployment labels: the flow's"
    assert run["auto_scheduled"] is False

    await gql.mutate("update_deployment", {"deployment_id": deployment_id, "labels": ["gpu"]})
    run_id = (await gql.mutate("create_flow_run", {"deployment_id": deployment_id, "parameters": {"scale": 5},
                                                   "tags": ["manual"]}))["id"]
    (run,) = await runs(db, "id = :id", id=run_id)
    assert run["parameters"] == {"nums": [1, 2, 3, 4], "scale": 5}, "the call wins"
    assert run["tags"] == ["etl", "manual"] and run["labels"] == ["gpu"]
    run_id = (await gql.mutate("create_flow_run", {"deployment_id": deployment_id, "labels": ["cpu"]}))["id"]
    assert (await runs(db, "id = :id", id=run_id))[0]["labels"] == ["cpu"], "labels passed in the call win"

    tagged = await gql('{ flow_run(where: {tags: {_contains: ["manual"]}}) { id deployment { name } } }')
    assert [r["deployment"]["name"] for r in tagged["flow_run"]] == ["adhoc"]
    read = await gql(f'{{ deployment_by_pk(id: "{deployment_id}") {{ flow_runs_aggregate {{ aggregate {{ count }} }} }} }}')
    assert read["deployment_by_pk"]["flow_runs_aggregate"]["aggregate"]["count"] == 3


async def test_run_a_deployment_without_a_required_parameter(gql, flow):
    deployment_id = await create(gql, flow, name="bare")
    message = await gql.mutate_error("create_flow_run", {"deployment_id": deployment_id})
    assert message == "Required parameters were not supplied: nums."
    assert (await gql.mutate("create_flow_run", {"deployment_id": deployment_id, "parameters": {"nums": []}}))["id"]


async def test_pinned_version_and_active_version(gql, db, flow):
    pinned = await create(gql, flow, name="pinned", flow_id=flow["id"], parameters={"nums": [1]})
    floating = await create(gql, flow, name="floating", parameters={"nums": [1]})
    serialized = f.flow("Addition Machine", parameters=[f.parameter("nums", required=True)])
    new_flow = (await gql.mutate("create_flow", {"project_id": flow["project_id"], "serialized_flow": serialized}))["id"]
    assert (await deployment(gql, pinned))["flow_id"] == flow["id"]
    await gql.mutate("unarchive_flow", {"flow_id": flow["id"]}, "success")  # keep both versions runnable
    pinned_run = (await gql.mutate("create_flow_run", {"deployment_id": pinned}))["id"]
    floating_run = (await gql.mutate("create_flow_run", {"deployment_id": floating}))["id"]
    flows = {str(r["id"]): str(r["flow_id"]) for r in await runs(db)}
    assert flows[pinned_run] == flow["id"]
    assert flows[floating_run] in (new_flow, flow["id"])


async def test_update_keeps_unset_fields_and_null_clears(gql, flow):
    deployment_id = await create(gql, flow, name="d", description="x", labels=["a"], tags=["t"],
                                 parameters={"nums": [1]})
    before = await deployment(gql, deployment_id)
    await gql.mutate("update_deployment", {"deployment_id": deployment_id, "description": None, "tags": ["u"]})
    after = await deployment(gql, deployment_id)
    assert after["description"] is None and after["tags"] == ["u"]
    assert after["labels"] == ["a"] and after["parameters"] == {"nums": [1]} and after["name"] == "d"
    assert after["updated"] > before["updated"]
    await gql.mutate("update_deployment", {"deployment_id": deployment_id, "labels": None})
    assert (await deployment(gql, deployment_id))["labels"] is None


async def test_names_are_unique_per_flow_group(gql, flow):
    await create(gql, flow, name="same")
    message = await gql.mutate_error("create_deployment", {"flow_group_id": flow["flow_group_id"], "name": "same"})
    assert "a deployment named 'same' already exists" in message
    other = await create(gql, flow, name="other")
    message = await gql.mutate_error("update_deployment", {"deployment_id": other, "name": "same"})
    assert "already exists" in message


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"schedule": [{"interval": 3600}, {"cron": "61 * * * *"}]}, "schedule[1].cron: invalid cron '61 * * * *'"),
        ({"schedule": {"cron": "0 9 * * *", "timezone": "Mars/Base"}}, "schedule[0].timezone: unknown time zone 'Mars/Base'"),
        ({"schedule": {"cron": "0 9 * *"}}, "schedule[0].cron: invalid cron '0 9 * *': expected 5 fields"),
        ({"schedule": {"interval": 0}}, "schedule[0].interval: must be at least 60 seconds"),
        ({"schedule": {"interval": "hourly"}}, "schedule[0].interval: expected a number of seconds"),
        ({"schedule": {"interval": 60, "cron": "* * * * *"}}, "schedule[0]: has both 'interval' and 'cron'"),
        ({"schedule": {"interval": 60, "start": "x"}}, "schedule[0].start: unknown field for a interval schedule"),
        ({"schedule": {"interval": 60, "anchor_date": "soon"}}, "schedule[0].anchor_date: invalid ISO-8601"),
        ({"schedule": {"cron": "0 0 30 2 *"}}, "schedule[0].cron: The schedule's cron clock produces no event"),
        ({"schedule": {"cron": "0 9 * * *", "day_or": "yes"}}, "schedule[0].day_or: expected true or false"),
        ({"schedule": {"rrule": "FREQ=SOMETIMES"}}, "schedule[0].rrule: invalid rrule 'FREQ=SOMETIMES'"),
        ({"schedule": [{"every": 5}]}, "schedule[0]: expected one of the keys interval, cron, rrule"),
        ({"schedule": "daily"}, "schedule: expected a schedule object or a list of them"),
        ({"schedule": {"interval": 3600}}, "parameters: Can not schedule a flow that has required parameters."),
        ({"parameters": [1]}, "parameters: expected an object"),
        ({"tags": [""]}, "tags: expected non-empty strings"),
        ({"labels": [" "]}, "labels: expected non-empty strings"),
        ({"name": ""}, "name: a deployment needs a non-empty name"),
        ({"name": "a/b"}, "name: 'a/b' may not contain '/'"),
    ],
)
async def test_validation_errors(gql, db, flow, fields, expected):
    input = {"flow_group_id": flow["flow_group_id"], "name": "bad", "parameters": {"nums": []}, **fields}
    if "parameters: Can not" in expected:
        input.pop("parameters")
    message = await gql.mutate_error("create_deployment", input)
    assert expected in message, message
    await db.commit()
    assert await db.scalar(text("SELECT count(*) FROM deployment")) == 0


async def test_unknown_flow_group_and_foreign_flow(gql, flow, tenant_id):
    message = await gql.mutate_error(
        "create_deployment", {"flow_group_id": "00000000-0000-0000-0000-000000000000", "name": "x"}
    )
    assert message == "Flow group 00000000-0000-0000-0000-000000000000 not found."
    other = (await gql.mutate("create_flow", {"project_id": flow["project_id"], "serialized_flow": f.flow("other")}))["id"]
    message = await gql.mutate_error("create_deployment", {"flow_group_id": flow["flow_group_id"], "name": "x",
                                                           "flow_id": other})
    assert message == f"flow_id: flow {other} is not a version of flow group {flow['flow_group_id']}"


async def test_activating_without_a_required_parameter_fails_like_set_schedule_active(gql, flow):
    deployment_id = await create(gql, flow, name="paused", schedule={"interval": 3600}, is_schedule_active=False)
    message = await gql.mutate_error("set_deployment_schedule_active", {"deployment_id": deployment_id}, "success")
    assert message.startswith("Can not schedule a flow that has required parameters.")
    assert message.endswith(": nums.")
    assert (await deployment(gql, deployment_id))["is_schedule_active"] is False


async def test_apply_creates_updates_and_leaves_unchanged(gql, db, flow):
    group = flow["flow_group_id"]
    items = [
        {"flow_group_id": group, "name": "nightly", "parameters": {"nums": [1]}, "tags": ["n"],
         "schedule": {"cron": "0 2 * * *", "timezone": "Europe/Berlin"}},
        {"flow_group_id": group, "name": "hourly", "parameters": {"nums": [2]}, "schedule": [{"interval": 3600}]},
    ]
    first = (await gql(APPLY, {"input": {"deployments": items}}))["apply_deployments"]["deployments"]
    assert [(d["name"], d["outcome"]) for d in first] == [("nightly", "created"), ("hourly", "created")]
    stamps = {d["id"]: (await deployment(gql, d["id"]))["updated"] for d in first}
    await db.commit()
    run_count = await db.scalar(text("SELECT count(*) FROM flow_run"))
    assert run_count == 20

    again = (await gql(APPLY, {"input": {"deployments": items}}))["apply_deployments"]["deployments"]
    assert [(d["id"], d["outcome"]) for d in again] == [(d["id"], "unchanged") for d in first]
    assert {d["id"]: (await deployment(gql, d["id"]))["updated"] for d in first} == stamps, "not written"
    await db.commit()
    assert await db.scalar(text("SELECT count(*) FROM flow_run")) == run_count

    items[1] = {**items[1], "parameters": {"nums": [3]}}
    dry = (await gql(APPLY, {"input": {"deployments": items, "dry_run": True}}))["apply_deployments"]["deployments"]
    assert [d["outcome"] for d in dry] == ["unchanged", "updated"]
    assert (await deployment(gql, first[1]["id"]))["parameters"] == {"nums": [2]}, "a dry run writes nothing"
    third = (await gql(APPLY, {"input": {"deployments": items}}))["apply_deployments"]["deployments"]
    assert [d["outcome"] for d in third] == ["unchanged", "updated"]
    hourly = await runs(db, "deployment_id = :id", id=first[1]["id"])
    assert len(hourly) == 10 and all(r["parameters"]["nums"] == [3] for r in hourly), "runs follow the change"


async def test_re_applying_keeps_a_paused_schedule_paused(gql, db, flow):
    item = {"flow_group_id": flow["flow_group_id"], "name": "hourly", "parameters": {"nums": [1]},
            "schedule": {"interval": 3600}}
    (created,) = (await gql(APPLY, {"input": {"deployments": [item]}}))["apply_deployments"]["deployments"]
    await gql.mutate("set_deployment_schedule_inactive", {"deployment_id": created["id"]}, "success")
    (again,) = (await gql(APPLY, {"input": {"deployments": [item]}}))["apply_deployments"]["deployments"]
    assert again["outcome"] == "unchanged"
    assert (await deployment(gql, created["id"]))["is_schedule_active"] is False
    assert await runs(db) == []
    (resumed,) = (await gql(APPLY, {"input": {"deployments": [{**item, "is_schedule_active": True}]}})
                  )["apply_deployments"]["deployments"]
    assert resumed["outcome"] == "updated" and len(await runs(db)) == 10


async def test_apply_is_all_or_nothing(gql, db, flow):
    group = flow["flow_group_id"]
    good = {"flow_group_id": group, "name": "good", "parameters": {"nums": [1]}, "schedule": {"interval": 3600}}
    bad = {"flow_group_id": group, "name": "bad", "schedule": {"cron": "0 9 * * *", "timezone": "Mars/Base"}}
    message = await gql.error(APPLY, {"input": {"deployments": [good, bad]}})
    assert message == "deployments[1] (name 'bad'): schedule[0].timezone: unknown time zone 'Mars/Base'"
    message = await gql.error(APPLY, {"input": {"deployments": [good, {**good, "tags": ["x"]}]}})
    assert message == "deployments[1] (name 'good'): name: duplicate of deployments[0] in the same flow group"
    missing = {"flow_group_id": group, "name": "needs", "schedule": {"interval": 3600}}
    message = await gql.error(APPLY, {"input": {"deployments": [good, missing]}})
    assert message.startswith("deployments[1] (name 'needs'): parameters: Can not schedule a flow")
    await db.commit()
    assert await db.scalar(text("SELECT count(*) FROM deployment")) == 0
    assert await db.scalar(text("SELECT count(*) FROM flow_run")) == 0


async def test_pause_resume_and_delete(gql, db, flow):
    deployment_id = await create(gql, flow, name="hourly", parameters={"nums": [1]}, schedule={"interval": 3600})
    before = [r["scheduled_start_time"] for r in await runs(db)]
    assert len(before) == 10
    adhoc = (await gql.mutate("create_flow_run", {"deployment_id": deployment_id}))["id"]
    await db.execute(text("UPDATE flow_run SET state = 'Running', start_time = now() WHERE scheduled_start_time = :t"),
                     {"t": before[0]})
    await db.commit()

    await gql.mutate("set_deployment_schedule_inactive", {"deployment_id": deployment_id}, "success")
    left = await runs(db)
    assert {str(r["id"]) for r in left if not r["auto_scheduled"]} == {adhoc}
    assert [r["state"] for r in left if r["auto_scheduled"]] == ["Running"], "started runs stay"

    await gql.mutate("set_deployment_schedule_active", {"deployment_id": deployment_id}, "success")
    after = [r["scheduled_start_time"] for r in await runs(db) if r["auto_scheduled"]]
    assert after == before, "resumed at identical times"

    await gql.mutate("delete_deployment", {"deployment_id": deployment_id}, "success")
    left = await runs(db)
    assert len(left) == 2 and all(r["deployment_id"] is None for r in left), "kept, deployment_id NULL"
    assert await gql(f'{{ deployment_by_pk(id: "{deployment_id}") {{ id }} }}') == {"deployment_by_pk": None}


async def test_deleting_the_flow_group_deletes_its_deployments(gql, db, flow):
    await create(gql, flow, name="x")
    await gql.mutate("delete_flow_group", {"flow_group_id": flow["flow_group_id"]}, "success")
    await db.commit()
    assert await db.scalar(text("SELECT count(*) FROM deployment")) == 0


async def test_a_bad_tag_is_named_as_a_tag(gql, flow):
    deployment_id = await create(gql, flow, name="tagged", parameters={"nums": [1]})
    message = await gql.mutate_error("create_flow_run", {"deployment_id": deployment_id, "tags": [" "]})
    assert message == "`tags` must hold non-empty strings."
    message = await gql.mutate_error("create_flow_run", {"deployment_id": deployment_id, "labels": [""]})
    assert message == "Labels must be non-empty strings."
