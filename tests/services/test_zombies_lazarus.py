"""Zombie killer and Lazarus, driven with an injected clock against real rows."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from headwater.services.lazarus import Lazarus
from headwater.services.zombie_killer import ZombieKiller
from tests import factories as f

NOW = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
CUTOFF = dt.timedelta(minutes=10)
STALE = NOW - dt.timedelta(minutes=11)
FRESH = NOW - dt.timedelta(minutes=2)


def zombie_killer(app) -> ZombieKiller:
    return ZombieKiller(app.state.sessions, interval=60, batch_size=2, heartbeat_cutoff=CUTOFF, clock=lambda: NOW)


def lazarus(app, max_attempts: int = 3) -> Lazarus:
    return Lazarus(
        app.state.sessions, interval=60, batch_size=2, heartbeat_cutoff=CUTOFF, max_attempts=max_attempts,
        clock=lambda: NOW,
    )


@pytest.fixture
async def make_run(gql, db, tenant_id):
    project = (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "p"}))["id"]
    flows: dict[int, str] = {}

    async def make(*, retries: int = 0, flow_state: str = "Running", task_state: str | None = "Running",
                   heartbeat: dt.datetime = STALE, settings: dict | None = None,
                   task_start_time: dt.datetime | None = None) -> dict:
        if retries not in flows:
            flow = f.flow(f"f{retries}", tasks=[f.task("work-1", max_retries=retries, retry_delay=30)], edges=[])
            flows[retries] = (await gql.mutate("create_flow", {"project_id": project, "serialized_flow": flow}))["id"]
        flow_id = flows[retries]
        if settings:
            await db.execute(
                text("UPDATE flow_group SET settings = settings || CAST(:s AS jsonb) "
                     "WHERE id = (SELECT flow_group_id FROM flow WHERE id = :id)"),
                {"s": __import__("json").dumps(settings), "id": flow_id},
            )
        run_id = (await gql.mutate("create_flow_run", {"flow_id": flow_id}))["id"]
        await db.execute(
            text("UPDATE flow_run SET state = :state, heartbeat = :hb WHERE id = :id"),
            {"state": flow_state, "hb": heartbeat, "id": run_id},
        )
        task_run = await db.scalar(text("SELECT id FROM task_run WHERE flow_run_id = :id"), {"id": run_id})
        if task_state:
            await db.execute(text("UPDATE task_run SET state = :s, state_start_time = :t WHERE id = :id"),
                             {"s": task_state, "t": task_start_time, "id": task_run})
        await db.commit()
        return {"id": run_id, "task_run_id": str(task_run), "flow_id": flow_id}

    return make


async def state_of(db, table: str, row_id: str) -> str:
    await db.commit()
    return await db.scalar(text(f"SELECT state FROM {table} WHERE id = :id"), {"id": row_id})


async def test_zombie_task_runs_retried_then_failed(app, db, make_run):
    with_retry = await make_run(retries=1)
    without = await make_run(retries=0)
    handled = await zombie_killer(app).run_once()
    assert handled == 2
    assert await state_of(db, "task_run", with_retry["task_run_id"]) == "Retrying"
    assert await state_of(db, "task_run", without["task_run_id"]) == "Failed"
    retry = (await db.execute(text("SELECT serialized_state, state_start_time FROM task_run WHERE id = :id"),
                              {"id": with_retry["task_run_id"]})).one()
    assert retry[1] == NOW + dt.timedelta(seconds=30) and retry[0]["run_count"] == 1
    message = await db.scalar(text("SELECT message FROM log WHERE task_run_id = :id"), {"id": without["task_run_id"]})
    assert without["task_run_id"] in message and without["id"] in message and (NOW - CUTOFF).isoformat() in message

    # The retried task runs again and loses its heartbeat again: no retries left now.
    await db.execute(text("UPDATE task_run SET state = 'Running' WHERE id = :id"), {"id": with_retry["task_run_id"]})
    await db.commit()
    await zombie_killer(app).run_once()
    assert await state_of(db, "task_run", with_retry["task_run_id"]) == "Failed"


async def test_zombie_killer_skips_fresh_and_disabled(app, db, make_run):
    fresh = await make_run(heartbeat=FRESH)
    disabled = await make_run(settings={"heartbeat_enabled": False})
    assert await zombie_killer(app).run_once() == 0
    assert await state_of(db, "task_run", fresh["task_run_id"]) == "Running"
    assert await state_of(db, "task_run", disabled["task_run_id"]) == "Running"


async def test_abandoned_cancellation_is_finished(app, db, make_run):
    stuck = await make_run(flow_state="Cancelling", task_state=None)
    fresh = await make_run(flow_state="Cancelling", task_state=None, heartbeat=FRESH)
    await zombie_killer(app).run_once()
    assert await state_of(db, "flow_run", stuck["id"]) == "Cancelled"
    assert await state_of(db, "flow_run", fresh["id"]) == "Cancelling"


async def test_lazarus_reschedules_stuck_runs_in_batches(app, db, make_run):
    runs = [await make_run(task_state="Success") for _ in range(3)]
    submitted = await make_run(flow_state="Submitted", task_state=None)
    assert await lazarus(app).run_once() == 4, "batches of 2 until a short batch"
    for run in [*runs, submitted]:
        assert await state_of(db, "flow_run", run["id"]) == "Scheduled"
    row = (await db.execute(text("SELECT times_resurrected, state_start_time FROM flow_run WHERE id = :id"),
                            {"id": runs[0]["id"]})).one()
    assert tuple(row) == (1, NOW)
    message = await db.scalar(text("SELECT message FROM log WHERE flow_run_id = :id AND level = 'INFO'"),
                              {"id": runs[0]["id"]})
    assert "attempt 1 of 3" in message and (NOW - CUTOFF).isoformat() in message


async def test_lazarus_fails_after_the_limit(app, db, make_run):
    run = await make_run(task_state="Success")
    await db.execute(text("UPDATE flow_run SET times_resurrected = 3 WHERE id = :id"), {"id": run["id"]})
    await db.commit()
    await lazarus(app).run_once()
    assert await state_of(db, "flow_run", run["id"]) == "Failed"
    assert await db.scalar(text("SELECT count(*) FROM log WHERE flow_run_id = :id AND level = 'ERROR'"), {"id": run["id"]}) == 1


async def test_lazarus_leaves_alone(app, db, make_run):
    cases = [
        await make_run(task_state="Success", heartbeat=FRESH),
        await make_run(task_state="Running"),  # the zombie killer's case
        # A flow runner that exits to wait out a long retry: an agent starts it again when due.
        await make_run(task_state="Retrying", task_start_time=NOW + dt.timedelta(hours=1)),
        # Due a moment ago: the agent is about to start it.
        await make_run(task_state="Retrying", task_start_time=NOW - dt.timedelta(minutes=1)),
        # Paused for approval (no start time): waits for a person, however long.
        await make_run(task_state="Paused", task_start_time=None),
        await make_run(task_state="Success", settings={"lazarus_enabled": False}),
        await make_run(task_state="Success", settings={"heartbeat_enabled": False}),
    ]
    assert await lazarus(app).run_once() == 0
    for run in cases:
        assert await state_of(db, "flow_run", run["id"]) == "Running"


async def test_run_whose_zombie_task_was_retried_is_resurrected_exactly_once(app, db, make_run):
    """Issue 10 item 12: Running flow run, dead process, task Running -> Retrying -> stuck forever."""
    run = await make_run(retries=2)
    assert await zombie_killer(app).run_once() == 1
    assert await state_of(db, "task_run", run["task_run_id"]) == "Retrying"  # due at NOW + 30 s
    assert await lazarus(app).run_once() == 0, "the retry is not even due yet"

    # The retry has been due for longer than the cutoff and still nothing heartbeats: nobody is
    # left to run it (no agent took the Running run), so Lazarus reschedules the flow run.
    later = NOW + dt.timedelta(seconds=30) + CUTOFF + dt.timedelta(seconds=1)
    late_lazarus = Lazarus(app.state.sessions, interval=60, batch_size=2, heartbeat_cutoff=CUTOFF, max_attempts=3,
                           clock=lambda: later)
    late_zombie_killer = ZombieKiller(app.state.sessions, interval=60, batch_size=2, heartbeat_cutoff=CUTOFF,
                                      clock=lambda: later)
    assert await late_zombie_killer.run_once() == 0, "the zombie killer has nothing more to do with it"
    assert await late_lazarus.run_once() == 1
    assert await state_of(db, "flow_run", run["id"]) == "Scheduled"
    assert await state_of(db, "task_run", run["task_run_id"]) == "Retrying", "the new flow runner reruns it"
    assert await db.scalar(text("SELECT times_resurrected FROM flow_run WHERE id = :id"), {"id": run["id"]}) == 1
    assert await late_lazarus.run_once() == 0, "a Scheduled run waits for an agent; it is not resurrected again"
    assert await db.scalar(text("SELECT count(*) FROM log WHERE flow_run_id = :id AND name = 'headwater.Lazarus.FlowRun'"),
                           {"id": run["id"]}) == 1


async def test_concurrent_lazarus_passes_resurrect_each_run_once(app, db, make_run):
    """Two replicas' passes at the same moment: `FOR UPDATE SKIP LOCKED` gives each run to one of them."""
    import asyncio

    from headwater.server.db.engine import transaction
    from headwater.server.domain.resurrection import resurrect_stuck_runs

    due_long_ago = NOW - CUTOFF - dt.timedelta(minutes=5)
    runs = [await make_run(retries=1, task_state="Retrying", task_start_time=due_long_ago) for _ in range(5)]
    cutoff = NOW - CUTOFF

    # Deterministic interleaving: the second pass runs while the first holds its rows uncommitted.
    async with transaction(app.state.sessions) as first:
        claimed = await resurrect_stuck_runs(first, now=NOW, cutoff=cutoff, limit=2, max_attempts=3)
        async with transaction(app.state.sessions) as second:
            others = await resurrect_stuck_runs(second, now=NOW, cutoff=cutoff, limit=10, max_attempts=3)
    assert len(claimed) == 2 and len(others) == 3
    assert not {o.run_id for o in claimed} & {o.run_id for o in others}

    # And free-running: two services at once over fresh stuck runs; each run handled once.
    more = [await make_run(retries=1, task_state="Retrying", task_start_time=due_long_ago) for _ in range(5)]
    handled = await asyncio.gather(lazarus(app).run_once(), lazarus(app).run_once())
    assert sum(handled) == 5
    await db.commit()
    for run in [*runs, *more]:
        row = (await db.execute(text("SELECT state, times_resurrected FROM flow_run WHERE id = :id"),
                                {"id": run["id"]})).one()
        assert tuple(row) == ("Scheduled", 1)
        assert await db.scalar(text("SELECT count(*) FROM log WHERE flow_run_id = :id AND level = 'INFO'"),
                               {"id": run["id"]}) == 1


async def test_loop_keeps_going_after_a_failed_pass(app, caplog):
    class Flaky(ZombieKiller):
        calls = 0

        async def run_once(self) -> int:
            type(self).calls += 1
            if self.calls == 1:
                raise RuntimeError("database hiccup")
            return 0

    service = Flaky(app.state.sessions, interval=0.01, heartbeat_cutoff=CUTOFF)
    await service.run(loops=3)
    assert Flaky.calls == 3
    assert any("ZombieKiller pass failed" in r.getMessage() for r in caplog.records)


async def test_overrunning_pass_is_warned_about(app, caplog):
    import asyncio

    class Slow(ZombieKiller):
        async def run_once(self) -> int:
            await asyncio.sleep(0.05)
            return 0

    await Slow(app.state.sessions, interval=0.01, heartbeat_cutoff=CUTOFF).run(loops=1)
    assert any("longer than its interval" in r.getMessage() for r in caplog.records)


async def test_headwater_services_command_runs_the_services(database_url, db, make_run, tmp_path):
    """`headwater services` (no API) reschedules a stuck run, then stops cleanly on Ctrl-C."""
    import asyncio
    import os
    import signal
    import subprocess
    import sys

    stuck = await make_run(task_state="Success", heartbeat=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))
    env = {**os.environ, "HEADWATER_DATABASE_URL": database_url, "HEADWATER_LAZARUS_INTERVAL_SECONDS": "0.2",
           "HEADWATER_SCHEDULER_INTERVAL_SECONDS": "0.2", "HEADWATER_ZOMBIE_KILLER_INTERVAL_SECONDS": "0.2",
           "HEADWATER_MIGRATE_ON_START": "false"}
    log_path = tmp_path / "services.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "headwater.server.cli", "services"], env=env, stdout=log, stderr=log)
        try:
            for _ in range(100):
                if await state_of(db, "flow_run", stuck["id"]) == "Scheduled":
                    break
                await asyncio.sleep(0.2)
            assert await state_of(db, "flow_run", stuck["id"]) == "Scheduled", log_path.read_text()
        finally:
            process.send_signal(signal.SIGINT)
            code = process.wait(timeout=30)
    output = log_path.read_text()
    assert code == 0, output
    assert "services running: Scheduler, ZombieKiller, Lazarus" in output and "Lazarus stopped" in output


async def test_retention_deletes_only_old_finished_runs(app, db, make_run):
    from headwater.services.retention import Retention

    old_done = await make_run(flow_state="Success", task_state="Success")
    old_running = await make_run(flow_state="Running", task_state="Running")
    fresh_done = await make_run(flow_state="Failed", task_state="Failed")
    await db.execute(text("INSERT INTO log (flow_run_id, message) VALUES (:id, 'kept until the run goes')"),
                     {"id": old_done["id"]})
    # Age two runs by 40 days (the trigger keeps `updated` current, so bypass it for this row change).
    await db.execute(text("ALTER TABLE flow_run DISABLE TRIGGER flow_run_updated"))
    await db.execute(text("UPDATE flow_run SET updated = now() - interval '40 days' WHERE id IN (:a, :b)"),
                     {"a": old_done["id"], "b": old_running["id"]})
    await db.execute(text("ALTER TABLE flow_run ENABLE TRIGGER flow_run_updated"))
    await db.commit()
    service = Retention(app.state.sessions, interval=60, batch_size=1, keep=dt.timedelta(days=30),
                        clock=lambda: dt.datetime.now(dt.timezone.utc))
    assert await service.run_once() == 1
    await db.commit()
    remaining = set((await db.execute(text("SELECT id::text FROM flow_run"))).scalars().all())
    assert remaining == {old_running["id"], fresh_done["id"]}, "running and recent runs are kept"
    assert await db.scalar(text("SELECT count(*) FROM log WHERE flow_run_id = :id"), {"id": old_done["id"]}) == 0
    assert await db.scalar(text("SELECT count(*) FROM task_run WHERE flow_run_id = :id"), {"id": old_done["id"]}) == 0


@pytest.mark.slow
async def test_dead_run_in_a_live_server_is_resurrected_then_failed_exactly_once(database_url, db, make_run, tmp_path):
    """Issue 10 item 12, end to end: two replicas (`--workers 2`) with fast services and a 2 s
    heartbeat cutoff. A Running run whose process is gone, with a task Running: the zombie killer
    retries the task, Lazarus reschedules the run once; the run starts again and dies again, and
    Lazarus fails it once (limit 1)."""
    import asyncio

    from tests.server_process import ServerProcess

    def lazarus_logs(level: str):
        return db.scalar(text("SELECT count(*) FROM log WHERE flow_run_id = :id AND name = 'headwater.Lazarus.FlowRun' "
                              "AND level = :level"), {"id": run["id"], "level": level})

    async def wait_for(table: str, row_id: str, state: str, seconds: float = 60) -> None:
        for _ in range(int(seconds / 0.2)):
            if await state_of(db, table, row_id) == state:
                return
            await asyncio.sleep(0.2)
        assert await state_of(db, table, row_id) == state, log.read_text()

    long_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    run = await make_run(retries=1, heartbeat=long_ago)
    await db.execute(text("UPDATE task SET retry_delay = interval '0 seconds'"))
    await db.commit()
    env = {"HEADWATER_DATABASE_URL": database_url, "HEADWATER_MIGRATE_ON_START": "false",
           "HEADWATER_ZOMBIE_KILLER_INTERVAL_SECONDS": "0.3", "HEADWATER_LAZARUS_INTERVAL_SECONDS": "0.3",
           "HEADWATER_SCHEDULER_INTERVAL_SECONDS": "30", "HEADWATER_HEARTBEAT_CUTOFF_SECONDS": "2",
           "HEADWATER_LAZARUS_RESURRECTION_LIMIT": "1"}
    log = tmp_path / "headwater.log"
    with ServerProcess("--workers", "2", env=env, log_path=log):
        await wait_for("flow_run", run["id"], "Scheduled")
        assert await state_of(db, "task_run", run["task_run_id"]) == "Retrying"
        assert await db.scalar(text("SELECT times_resurrected FROM flow_run WHERE id = :id"), {"id": run["id"]}) == 1

        # An agent starts it again and that process dies too: Running, silent, the retry still pending.
        await db.execute(text("UPDATE flow_run SET state = 'Running', heartbeat = :hb WHERE id = :id"),
                         {"hb": long_ago, "id": run["id"]})
        await db.commit()
        await wait_for("flow_run", run["id"], "Failed")
        await asyncio.sleep(3)  # more passes of both replicas: nothing further happens
        await db.commit()
        assert await state_of(db, "flow_run", run["id"]) == "Failed"
        assert await lazarus_logs("INFO") == 1 and await lazarus_logs("ERROR") == 1
        assert await db.scalar(text("SELECT count(*) FROM task_run_state WHERE task_run_id = :id AND state = 'Retrying'"),
                               {"id": run["task_run_id"]}) == 1
        assert await db.scalar(text("SELECT times_resurrected FROM flow_run WHERE id = :id"), {"id": run["id"]}) == 1


async def test_an_unreachable_database_is_one_warning_and_one_line_when_it_is_back(caplog):
    """Not a traceback on every pass: an operator reads 'unavailable', then 'back'."""
    import logging

    from headwater.server.db.engine import create_engine, create_sessionmaker

    engine = create_engine("postgresql://nobody@127.0.0.1:1/nowhere", pool_size=1)

    class Outage(ZombieKiller):
        calls = 0

        async def run_once(self) -> int:
            type(self).calls += 1
            if self.calls <= 3:
                async with self.sessions() as session:  # a real connection attempt, refused
                    await session.execute(text("SELECT 1"))
            return 0

    caplog.set_level(logging.DEBUG, logger="headwater.services")
    try:
        await Outage(create_sessionmaker(engine), interval=0.01, heartbeat_cutoff=CUTOFF).run(loops=5)
    finally:
        await engine.dispose()
    ours = [r for r in caplog.records if r.name == "headwater.services" and "ZombieKiller" in r.getMessage()]
    warnings = [r for r in ours if r.levelno >= logging.WARNING]
    seen = [(r.levelname, r.getMessage()[:120]) for r in ours]
    assert len(warnings) == 1, seen
    assert "the database is unavailable" in warnings[0].getMessage(), seen
    assert warnings[0].exc_info is None and not any(r.exc_info for r in ours), "no traceback"
    assert sum("still unavailable" in r.getMessage() for r in ours) == 2, seen
    assert sum("the database is back" in r.getMessage() for r in ours) == 1, seen
