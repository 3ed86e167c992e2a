"""Three headwater processes with their services on one database: every scheduled run exists
once, and every zombie or stuck run is handled once."""

from __future__ import annotations

import asyncio
import time
from contextlib import ExitStack

import pytest
from sqlalchemy import text

from tests import factories as f
from tests.server_process import ServerProcess

pytestmark = pytest.mark.slow

SERVICE_ENV = {
    "HEADWATER_SCHEDULER_INTERVAL_SECONDS": "0.3",
    "HEADWATER_ZOMBIE_KILLER_INTERVAL_SECONDS": "0.3",
    "HEADWATER_LAZARUS_INTERVAL_SECONDS": "0.3",
    "HEADWATER_HEARTBEAT_CUTOFF_SECONDS": "60",
    "HEADWATER_SERVICE_BATCH_SIZE": "7",
    "HEADWATER_LOG_LEVEL": "WARNING",
}


async def wait_until(check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.3)
    raise AssertionError("condition not reached in time")


async def seed(gql, db, tenant_id) -> dict:
    project = (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "replicas"}))["id"]
    scheduled = []
    for i in range(12):
        # Weekly and longer: no scheduled time comes due while the test runs.
        flow = f.flow(f"scheduled-{i}", schedule=f.interval_schedule(7 * 86400 * (i + 1)))
        scheduled.append((await gql.mutate("create_flow", {"project_id": project, "serialized_flow": flow,
                                                            "set_schedule_active": False}))["id"])
    plain = f.flow("plain", tasks=[f.task("work-1")], edges=[])
    plain_id = (await gql.mutate("create_flow", {"project_id": project, "serialized_flow": plain}))["id"]
    stuck, zombies = [], []
    for i in range(20):
        run_id = (await gql.mutate("create_flow_run", {"flow_id": plain_id}))["id"]
        task_state = "Running" if i % 2 else "Success"
        await db.execute(
            text("UPDATE flow_run SET state = 'Running', heartbeat = now() - interval '1 hour' WHERE id = :id"),
            {"id": run_id},
        )
        await db.execute(text("UPDATE task_run SET state = :s WHERE flow_run_id = :id"), {"s": task_state, "id": run_id})
        (zombies if i % 2 else stuck).append(run_id)
    await db.commit()
    return {"scheduled": scheduled, "stuck": stuck, "zombies": zombies}


async def test_three_replicas_handle_everything_once(gql, db, tenant_id, database_url, tmp_path):
    seeded = await seed(gql, db, tenant_id)
    env = {"HEADWATER_DATABASE_URL": database_url, **SERVICE_ENV}
    with ExitStack() as stack:
        for i in range(3):
            stack.enter_context(ServerProcess("--no-migrate", env=env, log_path=tmp_path / f"replica-{i}.log"))
        # All replicas activate the schedules at once, racing the schedulers.
        await db.execute(text("UPDATE flow SET is_schedule_active = true WHERE name LIKE 'scheduled-%'"))
        await db.commit()

        async def all_handled() -> bool:
            await db.commit()
            runs = await db.scalar(text("SELECT count(*) FROM flow_run WHERE auto_scheduled"))
            zombie_logs = await db.scalar(text("SELECT count(*) FROM log WHERE name LIKE '%ZombieKiller%'"))
            lazarus_logs = await db.scalar(text("SELECT count(DISTINCT flow_run_id) FROM log WHERE name LIKE '%Lazarus%'"))
            return runs >= 120 and zombie_logs >= 10 and lazarus_logs >= 20

        await wait_until(all_handled)
        await asyncio.sleep(1.5)  # several more passes on every replica: nothing may happen twice

    await db.commit()
    per_flow = dict((await db.execute(text(
        "SELECT flow_id::text, count(*) FROM flow_run WHERE auto_scheduled GROUP BY flow_id"))).all())
    assert per_flow == {flow_id: 10 for flow_id in seeded["scheduled"]}
    duplicates = await db.scalar(text(
        "SELECT count(*) FROM (SELECT flow_id, scheduled_start_time FROM flow_run WHERE auto_scheduled "
        "GROUP BY 1, 2 HAVING count(*) > 1) d"))
    assert duplicates == 0
    for run_id in seeded["zombies"]:
        task_logs = await db.scalar(text("SELECT count(*) FROM log WHERE flow_run_id = :id AND name LIKE '%ZombieKiller%'"),
                                    {"id": run_id})
        assert task_logs == 1, f"zombie task run of {run_id} handled {task_logs} times"
    for run_id in seeded["stuck"] + seeded["zombies"]:
        row = (await db.execute(text("SELECT state, times_resurrected FROM flow_run WHERE id = :id"), {"id": run_id})).one()
        assert tuple(row) == ("Scheduled", 1), f"{run_id}: {tuple(row)}"
        rescheduled = await db.scalar(
            text("SELECT count(*) FROM flow_run_state WHERE flow_run_id = :id AND message LIKE 'Rescheduled by a Lazarus%'"),
            {"id": run_id},
        )
        assert rescheduled == 1
