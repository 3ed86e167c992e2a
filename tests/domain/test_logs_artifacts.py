"""Run logs and task-run artifacts."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from tests import factories as f

WRITE = "mutation($input: write_run_logs_input!) { write_run_logs(input: $input) { success } }"


@pytest.fixture
async def run(gql, db, tenant_id) -> dict:
    project = (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "p"}))["id"]
    flow_id = (await gql.mutate("create_flow", {"project_id": project, "serialized_flow": f.flow()}))["id"]
    run_id = (await gql.mutate("create_flow_run", {"flow_id": flow_id}))["id"]
    task_run_id = str(await db.scalar(text("SELECT id FROM task_run WHERE flow_run_id = :id LIMIT 1"), {"id": run_id}))
    return {"id": run_id, "task_run_id": task_run_id, "tenant_id": tenant_id}


async def test_logs_as_list_and_single_object(gql, db, run):
    logs = [
        {"flow_run_id": run["id"], "task_run_id": run["task_run_id"], "timestamp": "2026-01-01T00:00:00.000001+00:00",
         "name": "prefect.CloudTaskRunner", "level": "INFO", "message": "one"},
        {"flow_run_id": run["id"], "name": "agent", "message": "Submitted for execution: PID: 1", "level": "INFO"},
    ]
    assert (await gql(WRITE, {"input": {"logs": logs}}))["write_run_logs"]["success"] is True
    single = {"flow_run_id": run["id"], "name": "execute flow-run", "message": "failed", "level": "ERROR"}
    await gql(WRITE, {"input": {"logs": single}})
    rows = (await db.execute(text("SELECT * FROM log ORDER BY timestamp"))).mappings().all()
    assert [r["message"] for r in rows] == ["one", "Submitted for execution: PID: 1", "failed"]
    assert all(r["timestamp"] and str(r["tenant_id"]) == run["tenant_id"] for r in rows)
    assert rows[2]["level"] == "ERROR"


async def test_bad_logs_write_nothing(gql, db, run):
    missing = str(uuid.uuid4())
    logs = [{"flow_run_id": run["id"], "message": "ok"}, {"flow_run_id": missing, "message": "lost"}]
    assert f"Flow run {missing} not found" in await gql.error(WRITE, {"input": {"logs": logs}})
    bad_level = [{"flow_run_id": run["id"], "message": "x", "level": "LOUD"}]
    assert "LOUD" in await gql.error(WRITE, {"input": {"logs": bad_level}})
    assert await db.scalar(text("SELECT count(*) FROM log")) == 0


async def test_artifacts(gql, db, run, settings):
    created = await gql.mutate(
        "create_task_run_artifact",
        {"task_run_id": run["task_run_id"], "kind": "markdown", "data": {"markdown": "# hi"}, "tenant_id": None},
    )
    await gql.mutate(
        "update_task_run_artifact", {"task_run_artifact_id": created["id"], "data": {"markdown": "# bye"}}, "success"
    )
    row = (await db.execute(text("SELECT * FROM task_run_artifact"))).mappings().one()
    assert row["data"] == {"markdown": "# bye"} and row["kind"] == "markdown" and str(row["tenant_id"]) == run["tenant_id"]
    too_big = {"markdown": "x" * settings.max_payload_bytes}
    assert "exceeds" in await gql.mutate_error(
        "create_task_run_artifact", {"task_run_id": run["task_run_id"], "kind": "markdown", "data": too_big}
    )
    missing = str(uuid.uuid4())
    assert "not found" in await gql.mutate_error(
        "create_task_run_artifact", {"task_run_id": missing, "kind": "link", "data": {"link": "x"}}
    )
    await gql.mutate("delete_task_run_artifact", {"task_run_artifact_id": created["id"]}, "success")
    assert await db.scalar(text("SELECT count(*) FROM task_run_artifact")) == 0


async def test_agent_configs(gql, db, tenant_id):
    config = await gql.mutate("create_agent_config", {"tenant_id": tenant_id, "name": "c", "settings": {"a": 1}})
    await gql.mutate("update_agent_config", {"agent_config_id": config["id"], "settings": {"b": 2}}, "success")
    assert await db.scalar(text("SELECT settings FROM agent_config")) == {"b": 2}
    agent = await gql.mutate("register_agent", {"type": "LocalAgent", "agent_config_id": config["id"]})
    await gql.mutate("delete_agent_config", {"agent_config_id": config["id"]}, "success")
    assert await db.scalar(text("SELECT agent_config_id FROM agent WHERE id = :id"), {"id": agent["id"]}) is None
    await gql.mutate("delete_agent", {"agent_id": agent["id"]}, "success")
    assert "an agent needs a `type`" in (await gql.mutate_error("register_agent", {"type": " "})).lower()
