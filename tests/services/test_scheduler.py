"""Auto-scheduling: the scheduler service with an injected clock, activation and deactivation."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import text

from headwater.services.scheduler import Scheduler
from tests import factories as f

UTC = dt.timezone.utc
NOW = dt.datetime(2030, 3, 5, 12, 0, 30, tzinfo=UTC)


def scheduler(app, now: dt.datetime = NOW, max_runs: int = 10, batch_size: int = 500) -> Scheduler:
    return Scheduler(app.state.sessions, interval=60, batch_size=batch_size, max_runs=max_runs, clock=lambda: now)


def cron_schedule(cron: str, tz: str = "UTC", **clock_extra) -> dict:
    clock = {"type": "CronClock", "cron": cron, "start_date": {"dt": "2029-01-01T00:00:00", "tz": tz}, **clock_extra}
    return {"clocks": [clock], "filters": [], "or_filters": [], "not_filters": [], "adjustments": [],
            "__version__": "1.4.1"}


@pytest.fixture
async def register(gql, tenant_id):
    project = (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "sched"}))["id"]

    async def register(name: str, schedule: dict, parameters=None, activate_in_db: bool = True, db=None) -> str:
        flow = f.flow(name, schedule=schedule, parameters=parameters or [])
        flow_id = (await gql.mutate("create_flow", {"project_id": project, "serialized_flow": flow,
                                                     "set_schedule_active": False}))["id"]
        if activate_in_db:
            await db.execute(text("UPDATE flow SET is_schedule_active = true WHERE id = :id"), {"id": flow_id})
            await db.commit()
        return flow_id

    return register


async def runs_of(db, flow_id: str) -> list:
    await db.commit()
    return (
        await db.execute(
            text("SELECT scheduled_start_time, parameters, labels, auto_scheduled, state, idempotency_key "
                 "FROM flow_run WHERE flow_id = :id ORDER BY scheduled_start_time, idempotency_key"),
            {"id": flow_id},
        )
    ).mappings().all()


async def test_interval_schedule_keeps_ten_runs_ahead(app, db, register):
    flow_id = await register("hourly", f.interval_schedule(3600), db=db)
    assert await scheduler(app).run_once() == 10
    runs = await runs_of(db, flow_id)
    expected = [dt.datetime(2030, 3, 5, 13, tzinfo=UTC) + dt.timedelta(hours=i) for i in range(10)]
    assert [r["scheduled_start_time"] for r in runs] == expected
    assert all(r["auto_scheduled"] and r["state"] == "Scheduled" for r in runs)
    assert runs[0]["idempotency_key"] == "auto-scheduled:2030-03-05T13:00:00+00:00"
    assert await db.scalar(text("SELECT count(*) FROM task_run")) == 20, "task runs come with each run"

    assert await scheduler(app).run_once() == 0, "a second pass is a no-op"
    later = scheduler(app, now=NOW + dt.timedelta(hours=2))
    assert await later.run_once() == 2, "two runs came due; two more are added at the end"
    assert len(await runs_of(db, flow_id)) == 12


async def test_cron_across_dst_in_new_york(app, db, register):
    flow_id = await register("daily-nine", cron_schedule("0 9 * * *", "America/New_York"), db=db)
    await scheduler(app, now=dt.datetime(2030, 3, 7, 15, tzinfo=UTC)).run_once()
    times = [r["scheduled_start_time"] for r in await runs_of(db, flow_id)]
    # 2030-03-10 is the spring change: 09:00 EST is 14:00 UTC before it, 09:00 EDT 13:00 UTC after.
    assert times[0] == dt.datetime(2030, 3, 8, 14, tzinfo=UTC)
    assert times[1] == dt.datetime(2030, 3, 9, 14, tzinfo=UTC)
    assert times[2] == dt.datetime(2030, 3, 10, 13, tzinfo=UTC)
    assert len(times) == 10


async def test_cron_across_dst_in_berlin(app, db, register):
    flow_id = await register("berlin", cron_schedule("30 2 * * *", "Europe/Berlin"), db=db)
    await scheduler(app, now=dt.datetime(2030, 10, 25, 12, tzinfo=UTC)).run_once()
    times = [r["scheduled_start_time"] for r in await runs_of(db, flow_id)]
    # 2030-10-27: clocks go back at 03:00 CEST; 02:30 happens twice and fires once.
    assert times[0] == dt.datetime(2030, 10, 26, 0, 30, tzinfo=UTC)
    assert times[1] in (dt.datetime(2030, 10, 27, 0, 30, tzinfo=UTC), dt.datetime(2030, 10, 27, 1, 30, tzinfo=UTC))
    assert times[2] == dt.datetime(2030, 10, 28, 1, 30, tzinfo=UTC)
    assert len(set(times)) == 10


async def test_clock_parameter_defaults_and_labels(app, db, register):
    schedule = {
        "clocks": [
            {"type": "IntervalClock", "interval": 3600 * 1_000_000, "parameter_defaults": {"who": "a"},
             "start_date": {"dt": "2030-01-01T00:00:00", "tz": "UTC"}},
            {"type": "IntervalClock", "interval": 3600 * 1_000_000, "parameter_defaults": {"who": "b"},
             "labels": ["gpu"], "start_date": {"dt": "2030-01-01T00:00:00", "tz": "UTC"}},
        ]
    }
    flow_id = await register("two-clocks", schedule, parameters=[f.parameter("who", required=True)], db=db)
    await scheduler(app, max_runs=4).run_once()
    runs = await runs_of(db, flow_id)
    assert len(runs) == 4, "same instant, different parameters: separate runs"
    assert {(r["parameters"]["who"], tuple(r["labels"])) for r in runs} == {("a", ("dev",)), ("b", ("gpu",))}
    assert runs[0]["scheduled_start_time"] == runs[1]["scheduled_start_time"]


async def test_required_parameters_are_never_auto_scheduled(app, db, register):
    flow_id = await register("needs", f.interval_schedule(), parameters=[f.parameter("x", required=True)], db=db)
    assert await scheduler(app).run_once() == 0
    assert await runs_of(db, flow_id) == []


async def test_deactivate_and_archive_remove_future_auto_runs(app, db, gql, register):
    flow_id = await register("toggle", f.interval_schedule(3600), db=db)
    await scheduler(app).run_once()
    adhoc = (await gql.mutate("create_flow_run", {"flow_id": flow_id, "scheduled_start_time": "2030-03-05T15:00:00"}))["id"]
    before = [r["scheduled_start_time"] for r in await runs_of(db, flow_id) if r["auto_scheduled"]]
    await gql.mutate("set_schedule_inactive", {"flow_id": flow_id}, "success")
    remaining = await runs_of(db, flow_id)
    assert [r["auto_scheduled"] for r in remaining] == [False], "only the ad-hoc run is left"

    await db.execute(text("UPDATE flow SET is_schedule_active = true WHERE id = :id"), {"id": flow_id})
    await db.commit()
    await scheduler(app).run_once()
    after = [r["scheduled_start_time"] for r in await runs_of(db, flow_id) if r["auto_scheduled"]]
    assert after == before, "recreated at identical times"

    await gql.mutate("archive_flow", {"flow_id": flow_id}, "success")
    assert [str(r["auto_scheduled"]) for r in await runs_of(db, flow_id)] == ["False"]
    adhoc_state = (await db.execute(text("SELECT state, state_message FROM flow_run WHERE id = :id"), {"id": adhoc})).one()
    assert tuple(adhoc_state) == ("Cancelled", f"Flow {flow_id} was archived."), "a waiting ad-hoc run is cancelled"
    assert await scheduler(app).run_once() == 0, "archived flows are not scheduled"


async def test_set_schedule_active_schedules_immediately(gql, db, register):
    flow_id = await register("now", f.interval_schedule(86400), activate_in_db=False, db=db)
    assert await runs_of(db, flow_id) == []
    await gql.mutate("set_schedule_active", {"flow_id": flow_id}, "success")
    runs = await runs_of(db, flow_id)
    assert len(runs) == 10 and all(r["scheduled_start_time"] > dt.datetime.now(UTC) for r in runs)


async def test_group_schedule_wins_over_flow_schedule(app, db, gql, register):
    flow_id = await register("grouped", f.interval_schedule(3600), db=db)
    group_id = str(await db.scalar(text("SELECT flow_group_id FROM flow WHERE id = :id"), {"id": flow_id}))
    await gql.mutate("set_flow_group_schedule", {"flow_group_id": group_id, "cron_clocks": [{"cron": "0 0 * * *"}]},
                     "success")
    immediate = [r["scheduled_start_time"] for r in await runs_of(db, flow_id)]
    assert len(immediate) == 10 and all(t.hour == t.minute == 0 for t in immediate), "daily runs at once"
    await scheduler(app, max_runs=3).run_once()
    times = [r["scheduled_start_time"] for r in await runs_of(db, flow_id) if r["scheduled_start_time"] > NOW]
    assert times == [dt.datetime(2030, 3, 6 + i, tzinfo=UTC) for i in range(3)]


async def test_a_thousand_schedules_in_one_pass(app, db, register):
    template = await register("template", f.interval_schedule(3600), db=db)
    await db.execute(
        text(
            """
            WITH groups AS (
                INSERT INTO flow_group (tenant_id, name, settings)
                SELECT tenant_id, 'bulk-' || g, '{}'::jsonb FROM flow, generate_series(1, 999) g WHERE id = :id
                RETURNING id, name
            )
            INSERT INTO flow (tenant_id, project_id, flow_group_id, version, version_group_id, name, schedule,
                              is_schedule_active, parameters, run_config, storage)
            SELECT f.tenant_id, f.project_id, groups.id, 1, groups.name, groups.name, f.schedule, true,
                   f.parameters, f.run_config, f.storage
            FROM flow f, groups WHERE f.id = :id
            """
        ),
        {"id": template},
    )
    await db.commit()
    assert await scheduler(app, batch_size=400).run_once() == 10_000
    per_flow = (await db.execute(text("SELECT count(*) FROM flow_run GROUP BY flow_id"))).scalars().all()
    assert len(per_flow) == 1000 and set(per_flow) == {10}


async def test_invalid_stored_schedule_is_skipped_with_one_warning(app, db, register, caplog):
    """Registration refuses such a schedule now; one stored before that is skipped, and
    reported once, not on every pass."""
    bad = await register("bad", f.interval_schedule(3600), db=db)
    await db.execute(text("UPDATE flow SET schedule = CAST(:s AS jsonb) WHERE id = :id"),
                     {"s": json.dumps({"clocks": [{"type": "MoonClock"}]}), "id": bad})
    await db.commit()
    good = await register("good", f.interval_schedule(3600), db=db)
    assert await scheduler(app).run_once() == 10
    assert await runs_of(db, bad) == [] and len(await runs_of(db, good)) == 10
    warnings = [r for r in caplog.records if "cannot be evaluated" in r.getMessage() and bad in r.getMessage()]
    assert len(warnings) == 1
    assert await scheduler(app, now=NOW + dt.timedelta(hours=1)).run_once() == 1
    warnings = [r for r in caplog.records if "cannot be evaluated" in r.getMessage() and bad in r.getMessage()]
    assert len(warnings) == 1, "a later pass does not repeat the warning"


def test_auto_schedule_keys_distinguish_variants():
    from headwater.server.domain.clocks import ClockEvent
    from headwater.server.domain.scheduling import auto_schedule_key

    at = dt.datetime(2030, 1, 1, tzinfo=UTC)
    keys = {
        auto_schedule_key(ClockEvent(at, {}, None)),
        auto_schedule_key(ClockEvent(at, {}, [])),
        auto_schedule_key(ClockEvent(at, {"x": 1}, None)),
        auto_schedule_key(ClockEvent(at, {"x": 2}, None)),
    }
    assert len(keys) == 4
    assert json.dumps(sorted(keys))


async def test_a_pass_is_info_only_when_it_fills_a_window(app, db, register, caplog):
    """A minute cron adds one run a minute forever: that is routine (DEBUG), a first fill is INFO."""
    import logging

    await register("every-minute", cron_schedule("* * * * *"), db=db)
    caplog.set_level(logging.DEBUG, logger="headwater.services")

    def passes() -> list[tuple[int, str]]:
        found = [(r.levelno, r.getMessage()) for r in caplog.records if "handled" in r.getMessage()]
        caplog.clear()
        return found

    await scheduler(app).run(loops=1)
    [(level, message)] = passes()
    assert level == logging.INFO and "handled 10 item(s)" in message
    await scheduler(app, now=NOW + dt.timedelta(minutes=1)).run(loops=1)
    [(level, message)] = passes()
    assert level == logging.DEBUG and "handled 1 item(s)" in message
    await scheduler(app, now=NOW + dt.timedelta(minutes=1)).run(loops=1)
    [(level, message)] = passes()
    assert level == logging.DEBUG and "handled 0 item(s)" in message
