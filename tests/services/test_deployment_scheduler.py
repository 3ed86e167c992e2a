"""Auto-scheduling deployments with an injected clock: two deployments of one flow beside the
flow's own schedule, DST in non-UTC zones, rrules, new versions and pinned versions."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from headwater.services.scheduler import Scheduler
from tests import factories as f

UTC = dt.timezone.utc
NOW = dt.datetime(2030, 3, 7, 15, 0, 30, tzinfo=UTC)


def scheduler(app, now: dt.datetime = NOW, max_runs: int = 10, batch_size: int = 500) -> Scheduler:
    return Scheduler(app.state.sessions, interval=60, batch_size=batch_size, max_runs=max_runs, clock=lambda: now)


@pytest.fixture
async def flow(gql, db, tenant_id):
    """A flow with a required parameter and its own active daily schedule."""
    project = (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "deploy-sched"}))["id"]
    serialized = f.flow("adder", parameters=[f.parameter("nums", default=[0])], schedule=f.interval_schedule(86400))
    flow_id = (await gql.mutate("create_flow", {"project_id": project, "serialized_flow": serialized,
                                                "set_schedule_active": False}))["id"]
    await db.execute(text("UPDATE flow SET is_schedule_active = true WHERE id = :id"), {"id": flow_id})
    await db.commit()
    group = (await gql(f'{{ flow_by_pk(id: "{flow_id}") {{ flow_group_id }} }}'))["flow_by_pk"]["flow_group_id"]
    return {"id": flow_id, "flow_group_id": group, "project_id": project}


async def deploy(gql, db, flow, **fields) -> str:
    """Create the deployment paused (writes schedule at the real time), then activate it in the
    database so only the scheduler with its injected clock creates runs."""
    deployment_id = (await gql.mutate("create_deployment", {"flow_group_id": flow["flow_group_id"],
                                                            "is_schedule_active": False, **fields}))["id"]
    await db.execute(text("UPDATE deployment SET is_schedule_active = true WHERE id = :id"), {"id": deployment_id})
    await db.commit()
    return deployment_id


async def runs_of(db, deployment_id: str | None) -> list:
    await db.commit()
    where = "deployment_id IS NULL" if deployment_id is None else "deployment_id = :id"
    return (
        await db.execute(
            text("SELECT flow_id::text, scheduled_start_time, parameters, tags, labels, auto_scheduled, "
                 f"idempotency_key FROM flow_run WHERE {where} ORDER BY scheduled_start_time"),
            {"id": deployment_id},
        )
    ).mappings().all()


async def test_two_deployments_beside_the_flow_schedule(app, gql, db, flow):
    hourly = await deploy(gql, db, flow, name="hourly-incremental", parameters={"nums": [1]}, tags=["hourly"],
                          schedule={"interval": 3600, "anchor_date": "2030-01-01T00:30:00", "timezone": "Europe/Berlin"})
    nightly = await deploy(gql, db, flow, name="nightly-full", parameters={"nums": [1, 2, 3]}, tags=["full", "night"],
                           labels=["big"], schedule=[{"cron": "0 9 * * *", "timezone": "America/New_York"}])
    assert await scheduler(app).run_once() == 30

    hourly_runs = await runs_of(db, hourly)
    assert [r["scheduled_start_time"] for r in hourly_runs] == [
        dt.datetime(2030, 3, 7, 15, 30, tzinfo=UTC) + dt.timedelta(hours=i) for i in range(10)
    ]
    assert all(r["parameters"] == {"nums": [1]} and r["tags"] == ["hourly"] and r["labels"] == ["dev"]
               and r["auto_scheduled"] and r["flow_id"] == flow["id"] for r in hourly_runs)
    assert hourly_runs[0]["idempotency_key"] == f"deployment:{hourly}:2030-03-07T15:30:00+00:00"

    nightly_runs = await runs_of(db, nightly)
    times = [r["scheduled_start_time"] for r in nightly_runs]
    # 2030-03-10 is New York's spring change: 09:00 EST is 14:00 UTC, 09:00 EDT 13:00 UTC.
    assert times[:4] == [dt.datetime(2030, 3, 8, 14, tzinfo=UTC), dt.datetime(2030, 3, 9, 14, tzinfo=UTC),
                         dt.datetime(2030, 3, 10, 13, tzinfo=UTC), dt.datetime(2030, 3, 11, 13, tzinfo=UTC)]
    assert len(times) == 10
    assert all(r["parameters"] == {"nums": [1, 2, 3]} and r["tags"] == ["full", "night"] and r["labels"] == ["big"]
               for r in nightly_runs)

    own = await runs_of(db, None)
    assert len(own) == 10 and all(r["idempotency_key"].startswith("auto-scheduled:") for r in own), \
        "the flow's own schedule keeps working"
    assert all(r["parameters"] == {"nums": [0]} and r["tags"] == [] for r in own)

    assert await scheduler(app).run_once() == 0, "a second pass is a no-op"
    assert await scheduler(app, now=NOW + dt.timedelta(hours=2)).run_once() == 2, "two hourly runs came due"


async def test_daily_interval_and_rrule_keep_wall_time_across_dst_in_berlin(app, gql, db, flow):
    interval = await deploy(gql, db, flow, name="daily",
                            schedule={"interval": 86400, "anchor_date": "2030-03-01T09:00:00", "timezone": "Europe/Berlin"})
    rrule = await deploy(gql, db, flow, name="rrule",
                         schedule={"rrule": "DTSTART:20300301T063000\nRRULE:FREQ=DAILY;BYHOUR=6,18",
                                   "timezone": "Europe/Berlin"})
    await scheduler(app, now=dt.datetime(2030, 3, 29, 12, tzinfo=UTC), max_runs=4).run_once()
    # 2030-03-31 02:00 CET -> 03:00 CEST: 09:00 Berlin is 08:00 UTC before, 07:00 UTC after.
    assert [r["scheduled_start_time"] for r in await runs_of(db, interval)] == [
        dt.datetime(2030, 3, 30, 8, tzinfo=UTC), dt.datetime(2030, 3, 31, 7, tzinfo=UTC),
        dt.datetime(2030, 4, 1, 7, tzinfo=UTC), dt.datetime(2030, 4, 2, 7, tzinfo=UTC),
    ]
    assert [r["scheduled_start_time"] for r in await runs_of(db, rrule)] == [
        dt.datetime(2030, 3, 29, 17, 30, tzinfo=UTC), dt.datetime(2030, 3, 30, 5, 30, tzinfo=UTC),
        dt.datetime(2030, 3, 30, 17, 30, tzinfo=UTC), dt.datetime(2030, 3, 31, 4, 30, tzinfo=UTC),
    ]


async def test_a_new_version_takes_over_and_a_pinned_archived_version_is_not_scheduled(app, gql, db, flow):
    floating = await deploy(gql, db, flow, name="floating", schedule={"interval": 3600})
    pinned = await deploy(gql, db, flow, name="pinned", flow_id=flow["id"], schedule={"interval": 3600})
    await scheduler(app).run_once()
    serialized = f.flow("adder", parameters=[f.parameter("nums", default=[0])])
    new_flow = (await gql.mutate("create_flow", {"project_id": flow["project_id"], "serialized_flow": serialized,
                                                 "set_schedule_active": False}))["id"]
    assert await runs_of(db, floating) == [], "archiving the old version removed its future runs"
    await scheduler(app).run_once()
    assert {r["flow_id"] for r in await runs_of(db, floating)} == {new_flow}
    assert len(await runs_of(db, floating)) == 10
    assert await runs_of(db, pinned) == [], "a deployment pinned to an archived version gets no runs"


async def test_changing_the_schedule_replaces_future_runs(app, gql, db, flow):
    deployment_id = await deploy(gql, db, flow, name="d", schedule={"interval": 3600})
    await scheduler(app).run_once()
    await gql.mutate("update_deployment", {"deployment_id": deployment_id, "is_schedule_active": False})
    assert await runs_of(db, deployment_id) == [], "pausing through update removes them too"
    await db.execute(text("UPDATE deployment SET is_schedule_active = true, schedule = :s WHERE id = :id"),
                     {"s": '[{"interval": 7200}]', "id": deployment_id})
    await db.commit()
    await scheduler(app).run_once()
    times = [r["scheduled_start_time"] for r in await runs_of(db, deployment_id)]
    assert times[1] - times[0] == dt.timedelta(hours=2) and len(times) == 10


async def test_required_parameter_without_value_is_not_scheduled(app, gql, db, flow, caplog):
    serialized = f.flow("needs", parameters=[f.parameter("x", required=True)])
    needs = (await gql.mutate("create_flow", {"project_id": flow["project_id"], "serialized_flow": serialized}))["id"]
    group = (await gql(f'{{ flow_by_pk(id: "{needs}") {{ flow_group_id }} }}'))["flow_by_pk"]["flow_group_id"]
    deployment_id = await deploy(gql, db, {"flow_group_id": group}, name="d", schedule={"interval": 3600})
    assert await scheduler(app).run_once() == 10, "only the flow's own schedule"
    assert await runs_of(db, deployment_id) == []
    assert "cannot be auto-scheduled: Required parameters were not supplied: x." in caplog.text
