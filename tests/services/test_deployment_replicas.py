"""Two headwater processes with their schedulers on one database: each deployment run exists once."""

from __future__ import annotations

import asyncio
from contextlib import ExitStack

import pytest
from sqlalchemy import text

from tests import factories as f
from tests.server_process import ServerProcess
from tests.services.test_replicas import SERVICE_ENV, wait_until

pytestmark = pytest.mark.slow


async def test_two_replicas_schedule_each_deployment_run_once(gql, db, tenant_id, database_url, tmp_path):
    project = (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "replicas"}))["id"]
    flow_id = (await gql.mutate("create_flow", {"project_id": project, "serialized_flow": f.flow("deployed")}))["id"]
    group = (await gql(f'{{ flow_by_pk(id: "{flow_id}") {{ flow_group_id }} }}'))["flow_by_pk"]["flow_group_id"]
    deployments = []
    for i in range(9):
        # Weekly and longer, or a yearly cron: nothing comes due while the test runs.
        schedule = {"interval": 7 * 86400 * (i + 1)} if i % 3 else {"cron": f"0 {i} 1 1 *", "timezone": "Europe/Berlin"}
        deployments.append((await gql.mutate("create_deployment", {
            "flow_group_id": group, "name": f"d{i}", "parameters": {"i": i}, "tags": [f"t{i}"],
            "schedule": schedule, "is_schedule_active": False,
        }))["id"])
    env = {"HEADWATER_DATABASE_URL": database_url, **SERVICE_ENV}
    with ExitStack() as stack:
        for i in range(2):
            stack.enter_context(ServerProcess("--no-migrate", env=env, log_path=tmp_path / f"replica-{i}.log"))
        # Both replicas see every schedule turned on at once, racing their schedulers.
        await db.execute(text("UPDATE deployment SET is_schedule_active = true"))
        await db.commit()

        async def all_scheduled() -> bool:
            await db.commit()
            return await db.scalar(text("SELECT count(*) FROM flow_run WHERE deployment_id IS NOT NULL")) >= 90

        await wait_until(all_scheduled)
        await asyncio.sleep(1.5)  # several more passes on both replicas: nothing may happen twice

    await db.commit()
    rows = (await db.execute(text(
        "SELECT deployment_id::text, count(*), count(DISTINCT scheduled_start_time), "
        "bool_and(parameters = jsonb_build_object('i', (SELECT (d.parameters->>'i')::int FROM deployment d "
        "WHERE d.id = flow_run.deployment_id))) FROM flow_run GROUP BY deployment_id"))).all()
    assert {row[0]: (row[1], row[2], row[3]) for row in rows} == {d: (10, 10, True) for d in deployments}
