"""Throughput of the hot paths a fleet of running flows hits, against a live server process.

    python -m bench.hot_paths [SECONDS] [CONCURRENCY] [WORKERS]   (default 10 s, 16 clients, 1 worker)

Starts `headwater start --no-services` on the embedded Postgres (or DATABASE_URL), registers a
flow, then for each operation runs CONCURRENCY clients for SECONDS and prints requests/second:
create_flow_run, a state change (set_flow_run_states), a heartbeat, and the flow runner's
`flow_run_by_pk` read. The documents are the Prefect client's own.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bench.common import database_url
from tests.factories import flow as serialized_flow
from tests.server_process import ServerProcess

CREATE_RUN = "mutation($input: create_flow_run_input!) { create_flow_run(input: $input) { id } }"
SET_STATES = ("mutation($input: set_flow_run_states_input!) { set_flow_run_states(input: $input) "
              "{ states { id status message } } }")
HEARTBEAT = 'mutation { update_flow_run_heartbeat(input: { flow_run_id: "%s" }) { success } }'
RUN_INFO = ('query { flow_run_by_pk(id: "%s") { id name flow_id parameters context version scheduled_start_time '
            'serialized_state task_runs(where: { map_index: { _eq: -1 } }) { id task { id slug } version '
            'serialized_state } flow { project { name id } } } }')


async def post(http: httpx.AsyncClient, url: str, query: str, variables=None) -> dict:
    response = await http.post(url, json={"query": query, "variables": json.dumps(variables)})
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return body["data"]


async def measure(label: str, url: str, seconds: float, concurrency: int, make_request) -> None:
    count = 0
    deadline = time.perf_counter() + seconds

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            query, variables = make_request()
            await post(http, url, query, variables)
            count += 1

    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as http:
        started = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    print(f"{label:28s} {count / elapsed:8.0f} req/s  ({count} in {elapsed:.1f} s)")


async def run(url: str, seconds: float, concurrency: int) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        tenant = (await post(http, url, "{ tenant { id } }"))["tenant"][0]["id"]
        project = (await post(http, url, "mutation($input: create_project_input!) { create_project(input: $input) { id } }",
                              {"input": {"tenant_id": tenant, "name": f"bench-{uuid.uuid4().hex[:6]}"}}))["create_project"]["id"]
        flow_id = (await post(http, url, "mutation($input: create_flow_input!) { create_flow(input: $input) { id } }",
                              {"input": {"project_id": project, "serialized_flow": serialized_flow("bench")}}))["create_flow"]["id"]
        runs = [(await post(http, url, CREATE_RUN, {"input": {"flow_id": flow_id}}))["create_flow_run"]["id"]
                for _ in range(concurrency * 4)]
    cycle = iter(range(10**9))
    await measure("create_flow_run", url, seconds, concurrency,
                  lambda: (CREATE_RUN, {"input": {"flow_id": flow_id, "idempotency_key": uuid.uuid4().hex}}))
    states = ["Running", "Success"]
    await measure("set_flow_run_states", url, seconds, concurrency, lambda: (SET_STATES, {"input": {"states": [
        {"flow_run_id": runs[next(cycle) % len(runs)], "version": None,
         "state": {"type": states[next(cycle) % 2], "message": "bench", "__version__": "1.4.1"}}]}}))
    await measure("update_flow_run_heartbeat", url, seconds, concurrency,
                  lambda: (HEARTBEAT % runs[next(cycle) % len(runs)], None))
    await measure("flow_run_by_pk (runner)", url, seconds, concurrency,
                  lambda: (RUN_INFO % runs[next(cycle) % len(runs)], None))


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    workers = sys.argv[3] if len(sys.argv) > 3 else "1"
    with database_url() as db_url:
        log = Path(tempfile.mkdtemp()) / "server.log"
        env = {"HEADWATER_DATABASE_URL": db_url, "HEADWATER_LOG_LEVEL": "WARNING"}
        with ServerProcess("--no-services", "--workers", workers, env=env, log_path=log) as server:
            print(f"{workers} server process(es), {concurrency} concurrent clients, {seconds:.0f} s per operation")
            asyncio.run(run(server.url, seconds, concurrency))


if __name__ == "__main__":
    main()
