"""Before/after on the hot paths: two source trees served side by side on one database, driven
by wrk in interleaved rounds; req/s and the server's CPU per request (its process tree's
utime+stime from /proc). On a loaded machine read the ratios within one run.

    python -m bench.compare_trees BEFORE_TREE [SECONDS] [CONNECTIONS] [ROUNDS] [WORKERS]

BEFORE_TREE is a checkout of the older code (e.g. `git archive <rev> | tar -x -C /tmp/before`);
the current directory's tree is "after". Targets only 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from bench.common import database_url
from tests.factories import flow as serialized_flow
from tests.factories import task
from tests.server_process import ServerProcess

TICKS = os.sysconf("SC_CLK_TCK")

# wrk cycles through pre-built bodies, so documents differ as a fleet's do.
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


def tree_cpu_seconds(pid: int) -> float:
    """utime+stime of `pid` and its descendants."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / TICKS
    family, frontier = {pid}, [pid]
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current and child not in family:
                family.add(child)
                frontier.append(child)
    return sum(times.get(p, 0.0) for p in family)


def hw_path(tree: Path) -> str:
    hw = tree / ".hw" / "headwater"
    hw.mkdir(parents=True, exist_ok=True)
    for name in ("server", "services", "client"):
        link = hw / name
        if not link.exists():
            link.symlink_to(tree / name)
    return str(tree / ".hw")


def seed(server: ServerProcess) -> dict:
    tenant = server.query("{ tenant { id } }")["data"]["tenant"][0]["id"]
    project = server.query(
        "mutation($input: create_project_input!) { create_project(input: $input) { id } }",
        {"input": {"tenant_id": tenant, "name": f"cmp-{uuid.uuid4().hex[:8]}"}},
    )["data"]["create_project"]["id"]
    flow_id = server.query(
        "mutation($input: create_flow_input!) { create_flow(input: $input) { id } }",
        {"input": {"project_id": project, "serialized_flow": serialized_flow("cmp", tasks=[task("a"), task("b"), task("c")], edges=[])}},
    )["data"]["create_flow"]["id"]
    create = "mutation($input: create_flow_run_input!) { create_flow_run(input: $input) { id } }"
    runs = [server.query(create, {"input": {"flow_id": flow_id}})["data"]["create_flow_run"]["id"] for _ in range(500)]
    task_runs = [
        server.query('{ task_run(where: {flow_run_id: {_eq: "%s"}}) { id } }' % run)["data"]["task_run"][0]["id"]
        for run in runs[:200]
    ]
    return {"flow_id": flow_id, "runs": runs, "task_runs": task_runs}


def scenarios(seeded: dict, round_no: int) -> dict[str, list[str]]:
    create = "mutation($input: create_flow_run_input!) { create_flow_run(input: $input) { id } }"
    states = ("mutation($input: set_flow_run_states_input!) { set_flow_run_states(input: $input) "
              "{ states { id status message } } }")
    info = ("query { flow_run_by_pk(id: %s) { id name flow_id parameters context version "
            "scheduled_start_time serialized_state task_runs(where: { map_index: { _eq: -1 } }) "
            "{ id task { id slug } version serialized_state } flow { project { name id } } } }")
    tag = uuid.uuid4().hex[:8]
    return {
        "create_flow_run": [
            body(create, {"input": {"flow_id": seeded["flow_id"], "idempotency_key": f"{tag}-{round_no}-{i}"}})
            for i in range(3000)
        ],
        "set_flow_run_states": [
            body(states, {"input": {"states": [{"flow_run_id": run, "version": None, "state": {
                "type": "Running", "message": "wrk", "__version__": "1.4.1"}}]}})
            for run in seeded["runs"]
        ],
        "update_flow_run_heartbeat": [
            body('mutation { update_flow_run_heartbeat(input: { flow_run_id: "%s" }) { success } }' % run)
            for run in seeded["runs"]
        ],
        "update_task_run_heartbeat": [
            body('mutation { update_task_run_heartbeat(input: { task_run_id: "%s" }) { success } }' % run)
            for run in seeded["task_runs"]
        ],
        "flow_run_by_pk": [body(info % json.dumps(run)) for run in seeded["runs"]],
        "get_task_run_info": [
            body('query { get_task_run_info(task_run_id: "%s") { id version state } }' % run)
            for run in seeded["task_runs"]
        ],
    }


def _ms(value: str) -> float:
    """wrk's latency figure ("873.00us", "12.34ms", "1.02s") in milliseconds."""
    for unit, scale in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * scale
    return float(value)


def drive(server: ServerProcess, bodies: list[str], seconds: str, connections: str, workdir: Path) -> tuple[float, float, float, float]:
    script = workdir / f"{uuid.uuid4().hex}.lua"
    script.write_text(LUA_ROTATING % lua_table(bodies))
    probe = server.query(json.loads(bodies[-1])["query"], json.loads(json.loads(bodies[-1])["variables"]))
    assert "errors" not in probe, probe
    before = tree_cpu_seconds(server.process.pid)
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), server.url],
        capture_output=True, text=True, check=True,
    ).stdout
    cpu = tree_cpu_seconds(server.process.pid) - before
    requests = int(next(line.split()[0] for line in output.splitlines() if "requests in" in line))
    rate = float(next(line.split(":")[1].strip() for line in output.splitlines() if "Requests/sec" in line))
    assert "Non-2xx" not in output, output
    percentiles = {line.split()[0]: _ms(line.split()[1]) for line in output.splitlines() if line.strip().startswith(("50%", "99%"))}
    return rate, 1000 * cpu / max(requests, 1), percentiles["50%"], percentiles["99%"]


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    before_tree = Path(sys.argv[1]).resolve()
    seconds, connections = (sys.argv[2:4] + ["6", "32"][len(sys.argv[2:4]):])[:2]
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    workers = sys.argv[5] if len(sys.argv) > 5 else "1"
    only = os.environ.get("ONLY")
    workdir = Path(tempfile.mkdtemp(prefix="headwater-cmp-"))
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with database_url() as db_url:
        env = {"HEADWATER_DATABASE_URL": db_url, "HEADWATER_LOG_LEVEL": "WARNING"}
        trees = {"before": before_tree, "after": Path.cwd()}
        servers = {}
        try:
            for name, tree in trees.items():
                servers[name] = ServerProcess(
                    "--no-services", "--workers", workers,
                    env={**env, "PYTHONPATH": hw_path(tree)}, log_path=workdir / f"{name}.log",
                ).__enter__()
            seeded = {name: seed(server) for name, server in servers.items()}
            for round_no in range(rounds):
                for name, server in (servers.items() if round_no % 2 == 0 else reversed(servers.items())):
                    for op, bodies in scenarios(seeded[name], round_no).items():
                        if only and op not in only.split(","):
                            continue
                        results.setdefault((op, name), []).append(drive(server, bodies, seconds, connections, workdir))
        finally:
            for server in servers.values():
                server.__exit__(None, None, None)
    print(f"wrk -c{connections} {seconds}s x {rounds} rounds, {workers} worker(s); "
          "best round: req/s, its server CPU ms/request, its p50 / p99 ms")
    print(f"{'operation':28s} {'before':>30s} {'after':>30s} {'req/s ratio':>11s} {'CPU ratio':>9s}")
    for op in dict.fromkeys(op for op, _ in results):
        b = max(results[(op, "before")]); a = max(results[(op, "after")])
        print(f"{op:28s} {b[0]:7.0f} {b[1]:6.2f}ms {b[2]:6.1f}/{b[3]:6.1f} {a[0]:7.0f} {a[1]:6.2f}ms {a[2]:6.1f}/{a[3]:6.1f}"
              f" {a[0] / b[0]:10.2f}x {a[1] / b[1]:8.2f}x")


if __name__ == "__main__":
    main()
