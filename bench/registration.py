"""Flow registration time for big flows, through the whole GraphQL request path.

    python -m bench.registration [TASKS ...]     (default 1000 10000 50000; HEADWATER_BENCH_DATABASE_URL or embedded Postgres)

Each flow is a chain `t-0 -> t-1 -> ... -> t-(N-1)` (N tasks, N-1 edges) registered with one
`create_flow` request on an in-process app, as the Prefect client sends it. Prints the wall
time of each registration. Limits on tasks and edges per flow are raised to fit.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx

from bench.common import database_url
from headwater.server.app import create_app
from headwater.server.settings import Settings
from tests import factories as f

CREATE = "mutation($input: create_flow_input!) { create_flow(input: $input) { id } }"


def chain_flow(tasks: int) -> dict:
    slugs = [f"t-{i}" for i in range(tasks)]
    return f.flow(
        f"chain-{tasks}",
        tasks=[f.task(slug) for slug in slugs],
        edges=[f.edge(a, b) for a, b in zip(slugs, slugs[1:])],
    )


async def main(sizes: list[int]) -> None:
    with database_url() as url:
        biggest = max(sizes)
        settings = Settings(
            database_url=url, services_enabled=False, max_request_bytes=1 << 30,
            max_flow_tasks=biggest, max_flow_edges=biggest,
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=None) as client:
                tenant = await client.post("/", json={"query": "{ tenant { id } }"})
                tenant_id = tenant.json()["data"]["tenant"][0]["id"]
                project = await client.post("/", json={
                    "query": "mutation($t: UUID!) { create_project(input: {tenant_id: $t, name: \"bench\"}) { id } }",
                    "variables": {"t": tenant_id}})
                project_id = project.json()["data"]["create_project"]["id"]
                for size in sizes:
                    body = json.dumps({"query": CREATE, "variables": json.dumps(
                        {"input": {"project_id": project_id, "serialized_flow": chain_flow(size)}})})
                    started = time.perf_counter()
                    response = await client.post("/", content=body, headers={"Content-Type": "application/json"})
                    elapsed = time.perf_counter() - started
                    answer = response.json()
                    assert "errors" not in answer, answer["errors"]
                    print(f"{size:>7} tasks, {size - 1:>7} edges: {elapsed:7.2f} s", flush=True)


if __name__ == "__main__":
    asyncio.run(main([int(arg) for arg in sys.argv[1:]] or [1000, 10_000, 50_000]))
