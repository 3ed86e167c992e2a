"""Flow-group settings shared by every version of a flow."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from tests import factories as f


@pytest.fixture
async def group(gql, db, tenant_id) -> dict:
    project = (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "p"}))["id"]
    flow_id = (await gql.mutate("create_flow", {"project_id": project, "serialized_flow": f.flow()}))["id"]
    group_id = await db.scalar(text("SELECT flow_group_id FROM flow WHERE id = :id"), {"id": flow_id})
    return {"flow_id": flow_id, "id": str(group_id), "project_id": project}


async def group_row(db, group_id: str):
    return (await db.execute(text("SELECT * FROM flow_group WHERE id = :id"), {"id": group_id})).mappings().one()


async def test_default_parameters_replace(gql, db, group):
    for parameters in ({"a": 1, "b": 2}, {"c": 3}):
        await gql.mutate(
            "set_flow_group_default_parameters", {"flow_group_id": group["id"], "parameters": parameters}, "success"
        )
        assert (await group_row(db, group["id"]))["default_parameters"] == parameters
    message = await gql.mutate_error(
        "set_flow_group_default_parameters", {"flow_group_id": group["id"], "parameters": [1]}, "success"
    )
    assert "JSON object" in message


async def test_labels_null_empty_and_dedup(gql, db, group):
    await gql.mutate("set_flow_group_labels", {"flow_group_id": group["id"], "labels": ["b", "a", "b"]}, "success")
    assert (await group_row(db, group["id"]))["labels"] == ["a", "b"]
    await gql.mutate("set_flow_group_labels", {"flow_group_id": group["id"], "labels": []}, "success")
    assert (await group_row(db, group["id"]))["labels"] == []
    await gql.mutate("set_flow_group_labels", {"flow_group_id": group["id"], "labels": None}, "success")
    assert (await group_row(db, group["id"]))["labels"] is None
    assert "non-empty" in await gql.mutate_error(
        "set_flow_group_labels", {"flow_group_id": group["id"], "labels": [""]}, "success"
    )


async def test_run_config_and_description(gql, db, group):
    run_config = {"type": "LocalRun", "env": {"A": "1"}, "labels": ["x"]}
    await gql.mutate("set_flow_group_run_config", {"flow_group_id": group["id"], "run_config": run_config}, "success")
    await gql.mutate("set_flow_group_description", {"flow_group_id": group["id"], "description": "d"}, "success")
    row = await group_row(db, group["id"])
    assert row["run_config"] == run_config and row["description"] == "d"
    assert "RunConfig" in await gql.mutate_error(
        "set_flow_group_run_config", {"flow_group_id": group["id"], "run_config": {"env": {}}}, "success"
    )
    await gql.mutate("set_flow_group_run_config", {"flow_group_id": group["id"], "run_config": None}, "success")
    assert (await group_row(db, group["id"]))["run_config"] is None


async def test_schedule_set_and_delete(gql, db, group):
    payload = {
        "flow_group_id": group["id"],
        "cron_clocks": [{"cron": "0 9 * * *", "parameter_defaults": {"x": 1}}],
        "interval_clocks": [{"interval": 3600}],
        "timezone": "Europe/Berlin",
    }
    await gql.mutate("set_flow_group_schedule", payload, "success")
    schedule = (await group_row(db, group["id"]))["schedule"]
    cron, interval = schedule["clocks"]
    assert cron["type"] == "CronClock" and cron["parameter_defaults"] == {"x": 1}
    assert cron["start_date"]["tz"] == "Europe/Berlin"
    assert interval == {"type": "IntervalClock", "interval": 3_600_000_000, "start_date": cron["start_date"]}
    assert (await gql.mutate("set_schedule_active", {"flow_id": group["flow_id"]}, "success"))["success"]

    bad = [
        ({**payload, "timezone": "Mars/Base"}, "Invalid timezone provided for schedule: Mars/Base"),
        # Prefect Server's words, then which clock and why (issue 11 item 14).
        ({**payload, "cron_clocks": [{"cron": "not cron"}]},
         "Invalid clock provided for schedule: cron_clocks[0]: 'not cron' is not a valid cron expression ("),
        ({**payload, "cron_clocks": [{"cron": "0 * * * *"}, {"cron": "61 * * * *"}]},
         "cron_clocks[1]: '61 * * * *' is not a valid cron expression ("),
        ({**payload, "interval_clocks": [{"interval": 0}]},
         "Invalid clock provided for schedule: interval_clocks[0]: the interval must be a positive number of seconds"),
        ({"flow_group_id": group["id"]}, "at least one"),
    ]
    for input, expected in bad:
        assert expected in await gql.mutate_error("set_flow_group_schedule", input, "success")
    await gql.mutate("delete_flow_group_schedule", {"flow_group_id": group["id"]}, "success")
    assert (await group_row(db, group["id"]))["schedule"] is None


async def test_delete_flow_group(gql, db, group):
    await gql.mutate("create_flow", {"project_id": group["project_id"], "serialized_flow": f.flow()})
    await gql.mutate("delete_flow_group", {"flow_group_id": group["id"]}, "success")
    for table in ("flow", "flow_group", "task"):
        assert await db.scalar(text(f"SELECT count(*) FROM {table}")) == 0


@pytest.mark.parametrize(
    ("mutation", "extra"),
    [
        ("set_flow_group_default_parameters", {"parameters": {}}),
        ("set_flow_group_labels", {"labels": ["a"]}),
        ("set_flow_group_run_config", {"run_config": None}),
        ("set_flow_group_description", {"description": "x"}),
        ("set_flow_group_schedule", {"interval_clocks": [{"interval": 60}]}),
        ("delete_flow_group_schedule", {}),
        ("delete_flow_group", {}),
    ],
)
async def test_unknown_flow_group(gql, mutation, extra):
    missing = str(uuid.uuid4())
    message = await gql.mutate_error(mutation, {"flow_group_id": missing, **extra}, "success")
    assert message == f"Flow group {missing} not found."
