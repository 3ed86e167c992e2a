"""Server-side throughput of the hot paths, measured with `wrk` (a C load generator, so the
client does not steal the server's CPU the way a Python client does).

    apt-get install wrk && python -m bench.wrk_hot_paths [SECONDS] [CONNECTIONS]

Starts `headwater start --no-services` (embedded Postgres, or DATABASE_URL), seeds a flow and
runs, then drives each operation for SECONDS with CONNECTIONS connections. Requests cycle
over 1,000 runs, as many distinct documents as a busy fleet sends (the Prefect client writes
ids into its hottest documents as literals), and so that state changes do not queue on one lock.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import database_url
from tests.factories import flow as serialized_flow
from tests.server_process import ServerProcess

LUA_ROTATING = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = %s
local i = 0
request = function()
  i = i + 1
  return wrk.format(nil, nil, nil, bodies[(i %% #bodies) + 1])
end
"""


def lua_table(bodies: list[str]) -> str:
    return "{" + ",".join("[==[" + body + "]==]" for body in bodies) + "}"


def body(query: str, variables: dict | None = None) -> str:
    return json.dumps({"query": query, "variables": json.dumps(variables)})


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    seconds = sys.argv[1] if len(sys.argv) > 1 else "8"
    connections = sys.argv[2] if len(sys.argv) > 2 else "16"
    workdir = Path(tempfile.mkdtemp(prefix="headwater-wrk-"))
    with database_url() as db_url:
        env = {"HEADWATER_DATABASE_URL": db_url, "HEADWATER_LOG_LEVEL": "WARNING"}
        with ServerProcess("--no-services", env=env, log_path=workdir / "server.log") as server:
            tenant = server.query("{ tenant { id } }")["data"]["tenant"][0]["id"]
            project = server.query(
                "mutation($input: create_project_input!) { create_project(input: $input) { id } }",
                {"input": {"tenant_id": tenant, "name": f"wrk-{workdir.name}"}},
            )["data"]["create_project"]["id"]
            flow_id = server.query(
                "mutation($input: create_flow_input!) { create_flow(input: $input) { id } }",
                {"input": {"project_id": project, "serialized_flow": serialized_flow("wrk")}},
            )["data"]["create_flow"]["id"]
            create = "mutation($input: create_flow_run_input!) { create_flow_run(input: $input) { id } }"
            runs = [server.query(create, {"input": {"flow_id": flow_id}})["data"]["create_flow_run"]["id"]
                    for _ in range(1000)]
            states = ("mutation($input: set_flow_run_states_input!) { set_flow_run_states(input: $input) "
                      "{ states { id status message } } }")
            info = ("query { flow_run_by_pk(id: %s) { id name flow_id parameters context version "
                    "scheduled_start_time serialized_state task_runs(where: { map_index: { _eq: -1 } }) "
                    "{ id task { id slug } version serialized_state } flow { project { name id } } } }")
            scenarios = {
                "hello": [body("{ hello }")],
                "create_flow_run": [body(create, {"input": {"flow_id": flow_id}})],
                "set_flow_run_states": [
                    body(states, {"input": {"states": [{"flow_run_id": run, "version": None, "state": {
                        "type": "Running", "message": "wrk", "__version__": "1.4.1"}}]}})
                    for run in runs
                ],
                "update_flow_run_heartbeat": [
                    body('mutation { update_flow_run_heartbeat(input: { flow_run_id: "%s" }) { success } }' % run)
                    for run in runs
                ],
                "flow_run_by_pk (runner)": [body(info % json.dumps(run)) for run in runs],
            }
            print(f"wrk: {connections} connections, {seconds} s per operation, one server process")
            only = sys.argv[3] if len(sys.argv) > 3 else None
            for name, bodies in scenarios.items():
                if only and not name.startswith(only):
                    continue
                script = workdir / "script.lua"
                script.write_text(LUA_ROTATING % lua_table(bodies))
                probe = server.query(json.loads(bodies[0])["query"], json.loads(json.loads(bodies[0])["variables"]))
                assert "errors" not in probe, probe
                output = subprocess.run(
                    ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), server.url],
                    capture_output=True, text=True, check=True,
                ).stdout
                rate = next(line.split(":")[1].strip() for line in output.splitlines() if "Requests/sec" in line)
                errors = [line.strip() for line in output.splitlines() if "Non-2xx" in line or "errors" in line]
                print(f"{name:28s} {float(rate):8.0f} req/s  {' '.join(errors)}")


if __name__ == "__main__":
    main()
