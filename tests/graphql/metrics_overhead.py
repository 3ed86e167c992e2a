"""What the metrics cost a hot request: heartbeats in-process (httpx ASGITransport) with and
without the instrumentation, in interleaved rounds, on an embedded Postgres in a temp folder.

    python -m tests.graphql.metrics_overhead [--requests 2000] [--rounds 10]

"Without" is HEADWATER_METRICS_ENABLED=false and a schema without the OperationLabel extension,
so nothing of the metrics runs. Reported: this process's CPU and the wall time per request
(the database's own CPU is in another process and not counted in the CPU figure).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import strawberry

from headwater.server.app import create_app
from headwater.server.db import migrate
from headwater.server.db.engine import create_engine
from headwater.server.graphql import schema as schema_module
from headwater.server.metrics.operations import OperationLabel
from headwater.server.settings import Settings
from tests import factories as f

HEARTBEAT = 'mutation { update_flow_run_heartbeat(input: {flow_run_id: "%s"}) { success } }'


async def gql(http: httpx.AsyncClient, query: str, variables: dict | None = None) -> dict:
    body = (await http.post("/", json={"query": query, "variables": variables})).json()
    assert "errors" not in body, body
    return body["data"]


async def prepare_runs(http: httpx.AsyncClient, count: int) -> list[str]:
    tenant = (await gql(http, "{ tenant { id } }"))["tenant"][0]["id"]
    project = (await gql(http, "mutation($i: create_project_input!) { create_project(input: $i) { id } }",
                         {"i": {"tenant_id": tenant, "name": "bench"}}))["create_project"]["id"]
    flow = (await gql(http, "mutation($i: create_flow_input!) { create_flow(input: $i) { id } }",
                      {"i": {"project_id": project, "serialized_flow": f.flow()}}))["create_flow"]["id"]
    return [(await gql(http, "mutation($i: create_flow_run_input!) { create_flow_run(input: $i) { id } }",
                       {"i": {"flow_id": flow}}))["create_flow_run"]["id"] for _ in range(count)]


async def timed(http: httpx.AsyncClient, runs: list[str], requests: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per heartbeat over `requests` heartbeats."""
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(requests):
        response = await http.post("/", json={"query": HEARTBEAT % runs[i % len(runs)]})
        assert response.status_code == 200
    return ((time.process_time() - cpu) / requests * 1e6, (time.perf_counter() - wall) / requests * 1e6)


async def main(requests: int, rounds: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="headwater-overhead-"))
    from headwater.server.embedded import EmbeddedPostgres

    postgres = EmbeddedPostgres(folder)
    try:
        engine = create_engine(postgres.url)
        await migrate.upgrade(engine)
        await engine.dispose()
        base = Settings(database_url=postgres.url, services_enabled=False, migrate_on_start=False,
                        allowed_hosts="headwater.test")
        bare = strawberry.Schema.__new__(type(schema_module.schema))
        bare.__dict__.update(schema_module.schema.__dict__)
        bare.extensions = [e for e in schema_module.schema.extensions if e is not OperationLabel]
        variants = {"with metrics": (base, schema_module.schema), "without": (base.replace(metrics_enabled=False), bare)}
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        apps = {}
        for name, (settings, schema) in variants.items():
            schema_module.schema = schema
            import headwater.server.app as app_module

            app_module.schema = schema
            apps[name] = create_app(settings)
        for name, app in apps.items():
            async with app.router.lifespan_context(app):
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://headwater.test") as http:
                    runs = await prepare_runs(http, 20)
                    break
        per_round = max(1, requests // rounds)
        async with apps["with metrics"].router.lifespan_context(apps["with metrics"]), \
                apps["without"].router.lifespan_context(apps["without"]):
            clients = {name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://headwater.test")
                       for name, app in apps.items()}
            for client in clients.values():
                await timed(client, runs, 200)  # warm-up: caches, connections
            for round_ in range(rounds):
                order = list(clients) if round_ % 2 == 0 else list(reversed(clients))
                for name in order:
                    results[name].append(await timed(clients[name], runs, per_round))
            for client in clients.values():
                await client.aclose()
        print(f"{requests} heartbeats per variant, {rounds} interleaved rounds of {per_round}")
        for name, samples in results.items():
            cpu = statistics.median(s[0] for s in samples)
            wall = statistics.median(s[1] for s in samples)
            spread = max(s[0] for s in samples) - min(s[0] for s in samples)
            print(f"  {name:13} CPU {cpu:7.1f} µs/request (spread {spread:5.1f})   wall {wall:7.1f} µs/request")
        with_cpu = statistics.median(s[0] for s in results["with metrics"])
        without_cpu = statistics.median(s[0] for s in results["without"])
        print(f"  difference: {with_cpu - without_cpu:+.1f} µs CPU per request ({(with_cpu / without_cpu - 1) * 100:+.1f}%)")
        print_direct_cost()
    finally:
        postgres.stop()
        shutil.rmtree(folder, ignore_errors=True)


def print_direct_cost(calls: int = 100_000) -> None:
    """The instrumentation's own steps, timed alone: they are what a request pays for metrics."""
    import uuid

    from graphql import parse

    from headwater.server.metrics.families import HTTP_REQUESTS
    from headwater.server.metrics.operations import labels_for
    from headwater.server.metrics.requests import record_request

    labels = labels_for(schema_module.schema._schema)
    document = parse(HEARTBEAT % uuid.uuid4())
    counter = HTTP_REQUESTS.labels("/", "200")
    steps = {
        "operation label": lambda: labels.of(document, None),
        "histogram observe (record_request)": lambda: record_request(("mutation", "update_flow_run_heartbeat"), 0.003, None),
        "HTTP counter increment": counter.inc,
    }
    print("  direct cost of each step:")
    for name, step in steps.items():
        started = time.perf_counter()
        for _ in range(calls):
            step()
        print(f"    {name:36} {(time.perf_counter() - started) / calls * 1e6:6.2f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.rounds))
