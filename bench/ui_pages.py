"""Server-side GraphQL time of every web UI page with a large database.

    python -m bench.ui_pages [--runs N] [--renders R]   (default 1,000,000 runs, 30 renders;
                                                        HEADWATER_BENCH_DATABASE_URL or embedded)

Seeds a tenant with 20 flows (one with a deployment), then N flow runs with set-based SQL
(generate_series into the real tables): over the last 60 days, mostly Success, some Failed and
Cancelled, a few Running, and scheduled ones ahead; the newest 10,000 get their task runs and
2,000 of those five log lines each; then VACUUM (ANALYZE), as autovacuum would. Each page is then
rendered R times in-process (the app through httpx's ASGI transport, as a browser would ask), and
the time spent in the GraphQL `execute()` the pages call (headwater.server.ui.api) is summed per
render: p50 and p99 are printed. For the slowest pages it prints EXPLAIN (ANALYZE) of the SQL they
ran (`--explain` for all).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import httpx
from sqlalchemy import event, text

from bench.common import database_url
from headwater.server.app import create_app
from headwater.server.db import migrate
from headwater.server.db.engine import create_engine
from headwater.server.settings import Settings
from headwater.server.ui import api
from tests.factories import flow as serialized_flow, parameter

FLOWS = 20
BUDGET_MS = 150.0


async def gql(client: httpx.AsyncClient, document: str, variables: dict | None = None) -> dict:
    body = (await client.post("/graphql", json={"query": document, "variables": variables or {}})).json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return body["data"]


async def seed(client: httpx.AsyncClient, engine, runs: int) -> dict[str, str]:
    tenant = (await gql(client, "{ tenant { id } }"))["tenant"][0]["id"]
    project = (await gql(client, "mutation($i: create_project_input!) { create_project(input: $i) { id } }",
                         {"i": {"tenant_id": tenant, "name": f"bench-{time.time_ns()}"}}))["create_project"]["id"]
    flows = []
    for index in range(FLOWS):
        serialized = serialized_flow(name=f"bench-flow-{index:02}", parameters=[parameter("n", default=1)])
        flows.append((await gql(client, "mutation($i: create_flow_input!) { create_flow(input: $i) { id } }",
                                {"i": {"serialized_flow": serialized, "project_id": project}}))["create_flow"]["id"])
    group = (await gql(client, "query($id: uuid!) { flow_by_pk(id: $id) { flow_group_id } }", {"id": flows[0]}))["flow_by_pk"]["flow_group_id"]
    await gql(client, "mutation($i: create_deployment_input!) { create_deployment(input: $i) { id } }",
              {"i": {"flow_group_id": group, "name": "hourly", "parameters": {"n": 2}, "schedule": [{"interval": 3600}]}})
    started = time.perf_counter()
    async with engine.begin() as connection:
        await connection.execute(text("""
            INSERT INTO flow_run (tenant_id, flow_id, name, version, state, state_timestamp, state_start_time,
                                  scheduled_start_time, start_time, end_time, parameters, labels)
            SELECT f.tenant_id, f.id, 'bench-run-' || g, 3, s.state, s.at, s.at, s.at - interval '5 seconds',
                   CASE WHEN s.state IN ('Scheduled') THEN NULL ELSE s.at END,
                   CASE WHEN s.state IN ('Scheduled', 'Running') THEN NULL ELSE s.at + interval '30 seconds' END,
                   '{"n": 1}'::jsonb, '[]'::jsonb
            FROM generate_series(1, :runs) g
            JOIN (SELECT id, tenant_id, row_number() OVER (ORDER BY name) - 1 AS k FROM flow WHERE id = ANY(:flows)) f
              ON f.k = g % :nflows
            CROSS JOIN LATERAL (SELECT
                CASE WHEN g % 1000 = 0 THEN 'Scheduled' WHEN g % 997 = 0 THEN 'Running' WHEN g % 50 = 0 THEN 'Failed'
                     WHEN g % 101 = 0 THEN 'Cancelled' ELSE 'Success' END AS state,
                CASE WHEN g % 1000 = 0 THEN now() + (g % 86400) * interval '1 second'
                     ELSE now() - (g::float / :runs) * interval '60 days' END AS at) s
        """), {"runs": runs, "flows": [__import__("uuid").UUID(f) for f in flows], "nflows": FLOWS})
        await connection.execute(text("""
            INSERT INTO task_run (tenant_id, flow_run_id, task_id, map_index, version, state, start_time, end_time)
            SELECT r.tenant_id, r.id, t.id, -1, 2, r.state, r.start_time, r.end_time
            FROM (SELECT * FROM flow_run WHERE start_time IS NOT NULL ORDER BY scheduled_start_time DESC LIMIT 10000) r
            JOIN task t ON t.flow_id = r.flow_id
            ON CONFLICT DO NOTHING
        """))
        await connection.execute(text("""
            INSERT INTO log (tenant_id, flow_run_id, task_run_id, timestamp, name, level, message)
            SELECT tr.tenant_id, tr.flow_run_id, tr.id, tr.start_time + l * interval '1 second', 'prefect.bench', 'INFO',
                   'line ' || l
            FROM (SELECT tr.* FROM task_run tr JOIN flow_run r ON r.id = tr.flow_run_id
                  WHERE tr.start_time IS NOT NULL ORDER BY r.scheduled_start_time DESC LIMIT 2000) tr, generate_series(1, 5) l
        """))
    # What autovacuum does after so many inserts (Postgres 13+ vacuums insert-only tables too): the
    # statistics, and the visibility map that lets a count stay in the index.
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("VACUUM (ANALYZE)"))
    print(f"seeded {runs:,} flow runs in {time.perf_counter() - started:.1f} s")
    async with engine.connect() as connection:
        run_id, task_run_id = (await connection.execute(text(
            "SELECT flow_run_id, id FROM task_run WHERE start_time IS NOT NULL ORDER BY start_time DESC LIMIT 1"))).one()
    return {"group": group, "run": str(run_id), "task_run": str(task_run_id)}


def pages(ids: dict[str, str]) -> list[tuple[str, str]]:
    g = ids["group"]
    return [
        ("dashboard (24h)", "/default"),
        ("dashboard (7d)", "/default?window=7d"),
        ("dashboard (30d)", "/default?window=30d"),
        ("flows", "/default/flows"),
        ("flows (search)", "/default/flows?q=flow-1"),
        ("flow overview", f"/default/flow/{g}"),
        ("flow runs tab", f"/default/flow/{g}?tab=runs"),
        ("flow runs tab, page 100", f"/default/flow/{g}?tab=runs&page=100"),
        ("flow runs tab, Failed", f"/default/flow/{g}?tab=runs&state=Failed"),
        ("flow tasks tab", f"/default/flow/{g}?tab=tasks"),
        ("flow deployments tab", f"/default/flow/{g}?tab=deployments"),
        ("flow-run", f"/default/flow-run/{ids['run']}"),
        ("task-run", f"/default/task-run/{ids['task_run']}"),
        ("deployments", "/default/deployments"),
        ("agents", "/default/agents"),
    ]


class Timer:
    """Wraps the UI's execute(): the GraphQL time of one render, and the SQL it sent."""

    def __init__(self):
        self.elapsed = 0.0
        self.statements: list[tuple[str, Any]] = []
        self.recording = False
        self.original = api.execute

    async def execute(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return await self.original(*args, **kwargs)
        finally:
            self.elapsed += time.perf_counter() - started


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


async def explain(engine, statements: list[tuple[str, Any]]) -> None:
    async with engine.connect() as connection:
        for statement, parameters in statements:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            raw = await connection.get_raw_connection()
            plan = await raw.driver_connection.fetch("EXPLAIN (ANALYZE, BUFFERS OFF) " + statement, *(parameters or ()))
            lines = [row[0] for row in plan]
            if not any(table in statement for table in ("flow_run", "task_run", " log")):
                continue  # the small tables (tenant, flow, project...) are not where the time goes
            print("   ", " ".join(statement.split())[:200])
            for line in lines:
                if "Scan" in line or "Execution Time" in line or line is lines[0]:
                    print("      ", line.strip()[:160])


async def main(runs: int, renders: int, explain_all: bool) -> int:
    with database_url() as url:
        engine = create_engine(url, pool_size=4)
        await migrate.upgrade(engine)
        settings = Settings(database_url=url, services_enabled=False, migrate_on_start=False, allowed_hosts="bench.test")
        app = create_app(settings)
        timer = Timer()
        api.execute = timer.execute
        captured: list[tuple[str, Any]] = []

        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as client:
                ids = await seed(client, engine, runs)
                sync_engine = app.state.sessions.kw["bind"].sync_engine if hasattr(app.state.sessions, "kw") else None

                def record(conn, cursor, statement, parameters, context, executemany):
                    if timer.recording:
                        captured.append((statement, parameters))

                if sync_engine is not None:
                    event.listen(sync_engine, "before_cursor_execute", record)
                results = []
                for label, path in pages(ids):
                    samples = []
                    for index in range(renders + 2):
                        timer.elapsed = 0.0
                        timer.recording = index == 0
                        response = await client.get(path, headers={"accept": "text/html"})
                        timer.recording = False
                        if response.status_code != 200:
                            raise RuntimeError(f"{path}: HTTP {response.status_code}: {response.text[:300]}")
                        if index >= 2:  # the first two warm the caches
                            samples.append(timer.elapsed * 1000)
                    results.append((label, path, statistics.median(samples), percentile(samples, 0.99), list(captured)))
                    captured.clear()
        print(f"\n{'page':28s} {'p50 ms':>8s} {'p99 ms':>8s}   ({runs:,} flow runs, {renders} renders each)")
        for label, _path, p50, p99, _sql in results:
            flag = "  over budget" if p99 > BUDGET_MS else ""
            print(f"{label:28s} {p50:8.1f} {p99:8.1f}{flag}")
        slow = [r for r in results if explain_all or r[3] > BUDGET_MS / 3]
        for label, _path, _p50, p99, statements in slow:
            print(f"\nEXPLAIN ANALYZE, {label} (p99 {p99:.1f} ms):")
            await explain(engine, statements)
        await engine.dispose()
        return 1 if any(r[3] > BUDGET_MS for r in results) else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--renders", type=int, default=30)
    parser.add_argument("--explain", action="store_true", help="EXPLAIN every page's SQL, not only the slow ones")
    options = parser.parse_args()
    raise SystemExit(asyncio.run(main(options.runs, options.renders, options.explain)))
