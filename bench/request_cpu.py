"""Server CPU per request for the hot documents, with compiled plans off and on, in one process.

    python -m bench.request_cpu [--requests N] [--rounds R] [--json PATH]
    (HEADWATER_BENCH_DATABASE_URL or an embedded Postgres)

Each request goes through the whole ASGI app (middleware, authentication, the GraphQL endpoint,
JSON in and out) called in-process, one at a time: no sockets, no load generator, so the
figure is this process's CPU time per request (`time.process_time`), which other work on the
machine barely moves, unlike req/s. It includes the harness's own small part (the ASGI scope
and messages), the same in both modes, and not uvicorn's HTTP parsing. Rounds alternate plans off (every document through
graphql-core's executor, as before headwater.server.graphql.compiled) and on; the table shows
the median of the rounds and the ratio. The documents are the real Prefect 1.4.1 client's
(bench/documents.py), cycled over many runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any, Callable

from bench import documents
from bench.common import database_url
from headwater.server.app import create_app
from headwater.server.db import migrate
from headwater.server.db.engine import create_engine
from headwater.server.settings import Settings
from tests import factories

RUNS = 200


class InProcess:
    """Posts bodies straight to the ASGI app, as uvicorn would hand them over."""

    def __init__(self, app: Any):
        self.app = app

    async def post(self, body: bytes, decode: bool = True) -> Any:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": "/graphql", "raw_path": b"/graphql", "query_string": b"",
            "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 4200), "state": {},
            "headers": [(b"host", b"127.0.0.1:4200"), (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())],
        }
        delivered = False

        async def receive() -> dict:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the client never disconnects
            return {}

        chunks: list[bytes] = []

        async def send(message: dict) -> None:
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return json.loads(b"".join(chunks)) if decode else chunks

    async def data(self, query: str, variables: Any = None) -> dict:
        answer = await self.post(json.dumps({"query": query, "variables": json.dumps(variables)}).encode())
        if answer.get("errors"):
            raise RuntimeError(f"seeding failed: {answer['errors']}")
        return answer["data"]


async def seed(http: InProcess) -> dict[str, Any]:
    tenant = (await http.data("{ tenant(limit: 1) { id } }"))["tenant"][0]["id"]
    project = (await http.data("mutation($i: create_project_input!) { create_project(input: $i) { id } }",
                               {"i": {"tenant_id": tenant, "name": f"request-cpu-{time.time_ns()}"}}))
    flow = factories.flow("request-cpu", tasks=[factories.task(s) for s in ("extract-1", "transform-1", "load-1")],
                          edges=[factories.edge("extract-1", "transform-1"), factories.edge("transform-1", "load-1")])
    flow_id = (await http.data("mutation($i: create_flow_input!) { create_flow(input: $i) { id } }",
                               {"i": {"project_id": project["create_project"]["id"], "serialized_flow": flow}})
               )["create_flow"]["id"]
    runs = [(await http.data("mutation($i: create_flow_run_input!) { create_flow_run(input: $i) { id } }",
                             {"i": {"flow_id": flow_id}}))["create_flow_run"]["id"] for _ in range(RUNS)]
    task_ids = [row["id"] for row in (await http.data(
        "query($f: uuid!) { task(where: {flow_id: {_eq: $f}}) { id } }", {"f": flow_id}))["task"]]
    task_runs = [row["id"] for row in (await http.data(
        "query($r: [uuid!]) { task_run(where: {flow_run_id: {_in: $r}}) { id } }", {"r": runs}))["task_run"]]
    return {"tenant": tenant, "flow": flow_id, "runs": runs, "tasks": task_ids, "task_runs": task_runs}


def kinds(world: dict[str, Any]) -> dict[str, Callable[[int], str]]:
    runs, tasks, task_runs = world["runs"], world["tasks"], world["task_runs"]
    return {
        "{ hello } (the HTTP and GraphQL overhead)": lambda i: json.dumps({"query": "{ hello }"}),
        "flow_run_by_pk (the flow runner's read)": lambda i: documents.flow_run_info(runs[i % len(runs)]),
        "get_or_create_task_run_info": lambda i: documents.task_run_info(runs[i % len(runs)], tasks[i % len(tasks)]),
        "update_flow_run_heartbeat": lambda i: documents.flow_run_heartbeat(runs[i % len(runs)]),
        "update_task_run_heartbeat": lambda i: documents.task_run_heartbeat(task_runs[i % len(task_runs)]),
        "create_flow_run (3 tasks, idempotency key)":
            lambda i: documents.create_flow_run(world["flow"], f"cpu-{time.time_ns()}-{i}"),
        "get_runs_in_queue": lambda i: documents.runs_in_queue(world["tenant"], []),
    }


async def cpu_per_request(http: InProcess, bodies: list[bytes]) -> float:
    """Milliseconds of this process's CPU per request, the bodies sent one after another."""
    started = time.process_time()
    for body in bodies:
        await http.post(body, decode=False)
    return (time.process_time() - started) * 1000 / len(bodies)


async def measure(url: str, requests: int, rounds: int, log: Callable[[str], None]) -> list[dict[str, Any]]:
    engine = create_engine(url)
    await migrate.upgrade(engine)
    await engine.dispose()
    app = create_app(Settings(database_url=url, services_enabled=False, migrate_on_start=False))
    async with app.router.lifespan_context(app):
        http = InProcess(app)
        plans = app.state.compiled_plans
        world = await seed(http)
        results = []
        for name, make in kinds(world).items():
            figures: dict[str, list[float]] = {"off": [], "on": []}
            offset = 0
            for body in [make(i).encode() for i in range(20)]:  # warm up both ways
                for mode in ("off", "on"):
                    app.state.compiled_plans = plans if mode == "on" else None
                    answer = await http.post(body)
                    if answer.get("errors"):
                        raise RuntimeError(f"{name}: {answer['errors']}")
            for _ in range(rounds):
                for mode in ("off", "on"):
                    app.state.compiled_plans = plans if mode == "on" else None
                    bodies = [make(offset + i).encode() for i in range(requests)]
                    offset += requests
                    figures[mode].append(await cpu_per_request(http, bodies))
            app.state.compiled_plans = plans
            off, on = statistics.median(figures["off"]), statistics.median(figures["on"])
            results.append({"document": name, "off_ms": round(off, 3), "on_ms": round(on, 3),
                            "ratio": round(on / off, 2), "rounds": figures})
            log(f"{name}: {off:.3f} -> {on:.3f} ms ({on / off:.2f}x)")
        return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="requests per round (default 500)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per mode (default 3)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr, flush=True)
    with database_url() as url:
        results = asyncio.run(measure(url, args.requests, args.rounds, log))
    print("| document | plans off | plans on | on / off |")
    print("| --- | ---: | ---: | ---: |")
    for row in results:
        print(f"| {row['document']} | {row['off_ms']:.3f} ms | {row['on_ms']:.3f} ms | {row['ratio']:.2f} |")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
