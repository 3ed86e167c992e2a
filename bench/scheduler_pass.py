"""Scheduler pass time for many active schedules.

    python -m bench.scheduler_pass [FLOWS] [interval|cron]   (default 10,000 interval; HEADWATER_BENCH_DATABASE_URL or embedded Postgres)

Creates FLOWS flows with hourly schedules (an interval clock, or cron `0 * * * *`), then times
scheduler passes: the first creates 10 runs per flow (with their task runs), the next three
find nothing to do, the last runs an hour later and tops every flow up by one run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import time

from sqlalchemy import text

from bench.common import database_url
from headwater.server.db import migrate
from headwater.server.db.engine import create_engine, create_sessionmaker, transaction
from headwater.server.domain.flows import create_flow
from headwater.server.domain.projects import create_project
from headwater.server.domain.tenants import ensure_default_tenant
from headwater.services.scheduler import Scheduler

HOURLY = {"clocks": [{"type": "IntervalClock", "interval": 3_600_000_000,
                      "start_date": {"dt": "2024-01-01T00:00:00", "tz": "UTC"}}]}
CRON = {"clocks": [{"type": "CronClock", "cron": "0 * * * *",
                    "start_date": {"dt": "2024-01-01T00:00:00", "tz": "UTC"}}]}


async def seed(sessions, flows: int, schedule: dict = HOURLY) -> None:
    async with transaction(sessions) as session:
        await ensure_default_tenant(session)
        tenant = await session.scalar(text("SELECT id FROM tenant LIMIT 1"))
        project = await create_project(session, tenant, f"bench-{time.time_ns()}")
        template = await create_flow(
            session, project,
            {"name": "template", "tasks": [{"slug": "a-1"}, {"slug": "b-1"}],
             "edges": [{"upstream_task": {"slug": "a-1"}, "downstream_task": {"slug": "b-1"}}],
             "schedule": schedule, "storage": {"type": "Local"}},
            set_schedule_active=False,
        )
        await session.execute(
            text(
                """
                WITH groups AS (
                    INSERT INTO flow_group (tenant_id, name, settings)
                    SELECT tenant_id, 'bench-' || g || '-' || :suffix, '{}'::jsonb
                    FROM flow, generate_series(1, :n) g WHERE id = :template
                    RETURNING id, name
                ), flows AS (
                    INSERT INTO flow (tenant_id, project_id, flow_group_id, version, version_group_id, name,
                                      schedule, is_schedule_active, parameters, storage)
                    SELECT f.tenant_id, f.project_id, groups.id, 1, groups.name, groups.name, f.schedule, true,
                           f.parameters, f.storage
                    FROM flow f, groups WHERE f.id = :template
                    RETURNING id
                )
                INSERT INTO task (tenant_id, flow_id, slug, name)
                SELECT NULL, flows.id, s.slug, s.slug FROM flows, (VALUES ('a-1'), ('b-1')) s(slug)
                """
            ),
            {"template": template, "n": flows, "suffix": str(time.time_ns())},
        )


async def main(flows: int, kind: str = "interval") -> None:
    with database_url() as url:
        engine = create_engine(url, pool_size=4)
        await migrate.upgrade(engine)
        sessions = create_sessionmaker(engine)
        started = time.perf_counter()
        await seed(sessions, flows, CRON if kind == "cron" else HOURLY)
        print(f"seeded {flows} {kind} scheduled flows in {time.perf_counter() - started:.1f} s")
        now = dt.datetime.now(dt.timezone.utc)
        passes = [("first pass (creates 10 runs each)", now)] + [("nothing due", now)] * 3
        for label, clock in passes + [("an hour later (1 new run each)", now + dt.timedelta(hours=1))]:
            scheduler = Scheduler(sessions, interval=3600, batch_size=500, clock=lambda clock=clock: clock)
            started = time.perf_counter()
            created = await scheduler.run_once()
            elapsed = time.perf_counter() - started
            print(f"{label:36s} {elapsed:7.2f} s  {created:7d} runs  ({flows / elapsed:,.0f} schedules/s)")
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000, sys.argv[2] if len(sys.argv) > 2 else "interval"))
