"""A schedule that can never fire is refused where it enters: flow registration and
set_flow_group_schedule; a schedule whose clocks have ended is still accepted."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from tests import factories as f

IMPOSSIBLE_RRULE = {
    "type": "Schedule",
    "clocks": [{"type": "RRuleClock", "rrule_obj": {"type": "rrule", "rr": "FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30"},
                "__version__": f.CORE_VERSION}],
    "__version__": f.CORE_VERSION,
}


@pytest.fixture
async def project_id(gql, tenant_id) -> str:
    return (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "validation"}))["id"]


async def counts(db) -> dict[str, int]:
    await db.commit()
    return {table: await db.scalar(text(f"SELECT count(*) FROM {table}"))
            for table in ("flow", "flow_group", "task", "edge", "flow_run")}


async def test_registering_a_schedule_that_never_fires_is_refused(gql, db, project_id):
    before = await counts(db)
    started = time.perf_counter()
    message = await gql.mutate_error(
        "create_flow", {"project_id": project_id, "serialized_flow": f.flow("never", schedule=IMPOSSIBLE_RRULE)}
    )
    assert time.perf_counter() - started < 5
    assert message == "The schedule's rrule clock (clocks[0]) produces no event in the next 50 years."
    assert await counts(db) == before, "nothing is stored"


async def test_registering_an_unreadable_schedule_is_refused(gql, db, project_id):
    message = await gql.mutate_error(
        "create_flow", {"project_id": project_id, "serialized_flow": f.flow("moon", schedule={"clocks": [{"type": "MoonClock"}]})}
    )
    assert message.startswith("Invalid schedule: clocks[0]: unknown clock type 'MoonClock'")
    assert (await counts(db))["flow"] == 0


async def test_a_schedule_whose_clocks_have_ended_registers_without_runs(gql, db, project_id):
    ended = {"clocks": [{"type": "DatesClock", "dates": [{"dt": "2001-01-01T00:00:00", "tz": "UTC"}]}]}
    flow_id = (await gql.mutate("create_flow", {"project_id": project_id, "serialized_flow": f.flow("old", schedule=ended)}))["id"]
    assert flow_id
    assert (await counts(db))["flow_run"] == 0


async def test_setting_a_group_schedule_that_never_fires_is_refused(gql, db, project_id):
    flow_id = (await gql.mutate("create_flow", {"project_id": project_id, "serialized_flow": f.flow("grouped")}))["id"]
    group_id = str(await db.scalar(text("SELECT flow_group_id FROM flow WHERE id = :id"), {"id": flow_id}))
    message = await gql.mutate_error(
        "set_flow_group_schedule", {"flow_group_id": group_id, "cron_clocks": [{"cron": "0 0 30 2 *"}]}, "success"
    )
    assert message == "The schedule's cron clock (clocks[0]) produces no event in the next 50 years."
    await db.commit()
    assert await db.scalar(text("SELECT schedule FROM flow_group WHERE id = :id"), {"id": group_id}) is None
    assert (await gql.mutate("set_flow_group_schedule", {"flow_group_id": group_id, "cron_clocks": [{"cron": "0 0 29 2 *"}]},
                             "success"))["success"]
