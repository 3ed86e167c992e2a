"""The scheduler's set-based pre-check: a pass over schedules that already hold their next runs
evaluates no clock again and takes the full (locking) path for none of them; a missing run, a
changed schedule or a new schedule still gets exactly what the full path gives it."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import text

from headwater.server.domain import deployment_scheduling, schedule_horizon, scheduling
from headwater.server.domain.clocks import next_events
from headwater.server.domain.deployment_scheduling import deployment_run_key
from headwater.services.scheduler import Scheduler
from tests import factories as f
from tests.services import test_deployment_scheduler as deployments
from tests.services.test_deployment_scheduler import flow  # noqa: F401 (fixture)
from tests.services.test_scheduler import NOW, cron_schedule, register, runs_of  # noqa: F401 (fixture)

UTC = dt.timezone.utc


def scheduler(app, now: dt.datetime = NOW) -> Scheduler:
    return Scheduler(app.state.sessions, interval=60, batch_size=500, max_runs=10, clock=lambda: now)


@pytest.fixture
def spies(monkeypatch):
    """Which flows reached the full path, and which schedules were evaluated, per pass."""
    calls: dict[str, list] = {"full": [], "evaluated": []}
    full, evaluate = scheduling.schedule_batch, schedule_horizon._evaluate

    async def spy_batch(session, **kwargs):
        calls["full"].extend(kwargs.get("flow_ids") or ["<all>"])
        return await full(session, **kwargs)

    def spy_evaluate(kind, schedules, now, n):
        calls["evaluated"].extend(schedules)
        return evaluate(kind, schedules, now, n)

    monkeypatch.setattr(scheduling, "schedule_batch", spy_batch)
    monkeypatch.setattr(schedule_horizon, "_evaluate", spy_evaluate)
    return calls


async def test_a_pass_with_nothing_due_skips_every_flow(app, db, register, spies):
    flows = [await register(f"hourly-{i}", f.interval_schedule(3600 * (i + 1)), db=db) for i in range(3)]
    daily = await register("daily", cron_schedule("0 9 * * *", "America/New_York"), db=db)
    assert await scheduler(app).run_once() == 40
    assert sorted(map(str, spies["full"])) == sorted(flows + [daily])

    spies["full"].clear(), spies["evaluated"].clear()
    assert await scheduler(app, NOW + dt.timedelta(seconds=30)).run_once() == 0
    assert spies["full"] == [], "no flow went through the locking path"
    assert spies["evaluated"] == [], "every schedule's next events were reused"


async def test_a_deleted_future_run_comes_back_through_the_full_path(app, db, register, spies):
    kept = await register("kept", f.interval_schedule(3600), db=db)
    thinned = await register("thinned", f.interval_schedule(3600), db=db)
    await scheduler(app).run_once()
    before = await runs_of(db, thinned)
    await db.execute(text("DELETE FROM flow_run WHERE flow_id = :id AND scheduled_start_time = "
                          "(SELECT max(scheduled_start_time) FROM flow_run WHERE flow_id = :id)"), {"id": thinned})
    await db.commit()
    spies["full"].clear()
    assert await scheduler(app).run_once() == 1
    assert [str(i) for i in spies["full"]] == [thinned]
    after = await runs_of(db, thinned)
    assert [r["idempotency_key"] for r in after] == [r["idempotency_key"] for r in before]
    assert len(await runs_of(db, kept)) == 10


async def test_a_changed_schedule_gets_its_new_runs(app, db, register):
    flow_id = await register("changing", f.interval_schedule(3600), db=db)
    await scheduler(app).run_once()
    # Written behind the API's back (which would also delete the old future runs): the
    # pre-check must notice the new schedule's events are missing although 10 runs exist.
    group = await db.scalar(text("SELECT flow_group_id FROM flow WHERE id = :id"), {"id": flow_id})
    await db.execute(text("UPDATE flow_group SET schedule = CAST(:s AS jsonb) WHERE id = :id"),
                     {"s": __import__("json").dumps(cron_schedule("30 * * * *")), "id": group})
    await db.commit()
    assert await scheduler(app).run_once() == 10
    half_hours = [r["scheduled_start_time"] for r in await runs_of(db, flow_id)
                  if r["scheduled_start_time"].minute == 30]
    assert half_hours == [dt.datetime(2030, 3, 5, 12, 30, tzinfo=UTC) + dt.timedelta(hours=i) for i in range(10)]


async def test_deployments_holding_their_runs_are_skipped(app, gql, db, flow, monkeypatch):  # noqa: F811
    hourly = await deployments.deploy(gql, db, flow, name="hourly", parameters={"nums": [1]},
                                      schedule={"interval": 3600, "timezone": "Europe/Berlin"})
    nightly = await deployments.deploy(gql, db, flow, name="nightly", parameters={"nums": [2]},
                                       schedule={"cron": "0 2 * * *", "timezone": "Europe/Berlin"})
    full = deployment_scheduling.schedule_deployment_batch
    seen: list = []

    async def spy(session, **kwargs):
        seen.extend(map(str, kwargs["deployment_ids"]))
        return await full(session, **kwargs)

    monkeypatch.setattr(deployment_scheduling, "schedule_deployment_batch", spy)
    now = deployments.NOW
    assert await scheduler(app, now).run_once() == 30, "the flow's own schedule and both deployments"
    assert sorted(seen) == sorted([hourly, nightly])
    seen.clear()
    assert await scheduler(app, now).run_once() == 0
    assert seen == []
    await db.execute(text("DELETE FROM flow_run WHERE deployment_id = :id AND scheduled_start_time = "
                          "(SELECT min(scheduled_start_time) FROM flow_run WHERE deployment_id = :id)"), {"id": nightly})
    await db.commit()
    assert await scheduler(app, now).run_once() == 1
    assert seen == [nightly]
    assert len(await deployments.runs_of(db, nightly)) == 10


SCHEDULES = [
    f.interval_schedule(3600),
    {"clocks": [{"type": "IntervalClock", "interval": 86_400_000_000,
                 "start_date": {"dt": "2029-01-01T09:00:00", "tz": "America/New_York"}}]},
    cron_schedule("0 9 * * *", "America/New_York"),
    cron_schedule("30 2 * * *", "Europe/Berlin"),  # a skipped wall time in spring
    cron_schedule("30 1 * * *", "America/New_York"),  # a repeated wall time in autumn
    cron_schedule("*/20 * * * *", "Europe/Berlin"),
    {**cron_schedule("0 * * * *"), "filters": [{"fn": "prefect.schedules.filters.is_weekday", "kwargs": {}}]},
    {"clocks": [{"type": "RRuleClock", "rrule_obj": {"type": "rrule", "rr": "FREQ=WEEKLY;BYDAY=SA;BYHOUR=3"}}]},
]
STARTS = [dt.datetime(2030, 3, 10, 0, 45, tzinfo=UTC), dt.datetime(2030, 3, 31, 0, 10, tzinfo=UTC),
          dt.datetime(2030, 11, 3, 5, 10, tzinfo=UTC), dt.datetime(2030, 10, 27, 0, 59, 59, tzinfo=UTC),
          dt.datetime(2030, 3, 8, 23, 59, tzinfo=UTC)]


@pytest.mark.pure
@pytest.mark.parametrize("schedule", SCHEDULES, ids=range(len(SCHEDULES)))
def test_reused_events_equal_a_fresh_evaluation(schedule):
    """The memo's premise: the next n events after t0 are the next n after any t up to a second
    before the first (within that second a cron clock rounds `after` up, as Core does)."""
    for t0 in STARTS:
        events = next_events(schedule, after=t0, n=10)
        assert len(events) == 10
        first = events[0].start_time
        span = first - t0
        last = first - dt.timedelta(seconds=1, microseconds=1)
        for t in (t0 + span / 3, t0 + span / 2 + dt.timedelta(microseconds=123_456), last):
            if not t0 <= t < first - dt.timedelta(seconds=1):
                continue  # outside the window the memo is used in
            assert next_events(schedule, after=t, n=10) == events, (t0, t)


@pytest.mark.pure
def test_the_memo_expires_when_its_first_event_is_due():
    cache = schedule_horizon.EventCache()
    t0 = dt.datetime(2030, 1, 1, 0, 10, tzinfo=UTC)
    events = tuple(next_events(f.interval_schedule(3600), after=t0, n=3))
    cache.put("flow", "s", 3, t0, schedule_horizon._Evaluation.of(t0, events, ("a", "b", "c")))
    assert cache.get("flow", "s", 3, t0 + dt.timedelta(minutes=49)) == ("a", "b", "c")
    assert cache.get("flow", "s", 3, events[0].start_time - dt.timedelta(seconds=1)) is None
    assert cache.get("flow", "s", 3, t0 - dt.timedelta(seconds=1)) is None
    assert cache.get("flow", "s", 4, t0) is None, "another n is another entry"
    cache.put("flow", "short", 3, t0, schedule_horizon._Evaluation.of(t0, events[:2], ("a", "b")))
    assert cache.get("flow", "short", 3, t0) is None, "an incomplete search is never reused"


@pytest.mark.pure
def test_precomputed_keys_are_the_full_paths_keys():
    events = next_events(cron_schedule("0 9 * * *", "America/New_York"), after=STARTS[0], n=5)
    deployment = uuid.uuid4()
    times = tuple(schedule_horizon.KEY_PARTS["deployment"](event) for event in events)
    assert schedule_horizon._deployment_keys(deployment, times) == [
        deployment_run_key(deployment, event.start_time) for event in events]
    assert [schedule_horizon.KEY_PARTS["flow"](e) for e in events] == [scheduling.auto_schedule_key(e) for e in events]
