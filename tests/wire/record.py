"""Record the GraphQL documents the real prefect==1.4.1 client sends, for tests/graphql/test_hasura_read.py.

    python -m tests.wire.record [OUT]        (default tests/wire/prefect1-capture.jsonl)

Starts `headwater start` on a temporary embedded Postgres, puts a small recording proxy in front of
it, and drives the unchanged Prefect CLI, Client, flow runner and local agent through registration,
`prefect get`/`describe`, runs with `--execute` and with an agent, and the read helpers of
`prefect.backend`. Each request becomes one JSON line (scenario, path, a few headers, body); the
last line, `{"world": ...}`, lists the rows the server held at the end, so that the replay test can
seed rows with the ids the recorded queries name.
"""

from __future__ import annotations

import http.client
import json
import shutil
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from tests.prefect_cli import Prefect
from tests.server_process import ServerProcess

OUT = Path(__file__).parent / "prefect1-capture.jsonl"
KEPT_HEADERS = ("Content-Type", "X-PREFECT-CORE-VERSION")

FLOW = """
from prefect import Flow, Parameter, task

@task
def numbers(n):
    return list(range(n))

@task(task_run_name="double-{x}")
def double(x):
    return 2 * x

@task
def total(values):
    return sum(values)

with Flow("wire-flow") as flow:
    total(double.map(numbers(Parameter("n", default=2))))
"""

CLI_FLOW = """
from prefect import Flow, task

@task
def hello():
    return "hello"

with Flow("cli-flow") as flow:
    hello()
"""

FAILING_FLOW = """
from prefect import Flow, task

@task
def boom():
    raise ValueError("this flow always fails")

with Flow("failing") as flow:
    boom()
"""


class Recorder:
    """A forwarding HTTP proxy that appends each request to `records` under the current scenario."""

    def __init__(self, upstream: str):
        self.upstream = urlsplit(upstream)
        self.scenario = "setup"
        self.records: list[dict] = []
        self.lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorder.record(self.command, self.path, self.headers, body)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                connection = http.client.HTTPConnection(recorder.upstream.hostname, recorder.upstream.port, timeout=120)
                connection.request(self.command, self.path, body or None, headers)
                response = connection.getresponse()
                payload = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                connection.close()

            do_GET = do_POST = forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def record(self, method: str, path: str, headers, body: bytes) -> None:
        if method != "POST" or not body:
            return
        try:
            parsed = json.loads(body)
        except ValueError:
            return
        kept = {name: headers[name] for name in KEPT_HEADERS if headers.get(name)}
        with self.lock:
            self.records.append({"scenario": self.scenario, "path": path, "headers": kept, "body": parsed})

    def close(self) -> None:
        self.server.shutdown()


def world(server: ServerProcess) -> dict:
    """The rows the replay needs, with their ids, read straight from the server (not recorded)."""
    data = server.query("""{
      project { id name }
      flow_group { id }
      flow { id name version project_id flow_group_id }
      task { id flow_id name slug mapped }
      flow_run(order_by: {created: asc}) { id flow_id name state }
      task_run(order_by: {map_index: asc}) { id flow_run_id task_id map_index state }
    }""")
    assert "errors" not in data, data
    return data["data"]


def scenarios(recorder: Recorder, prefect: Prefect) -> None:
    def step(name: str) -> None:
        recorder.scenario = name
        print(f"-- {name}", flush=True)

    step("create_project")
    prefect.cli("create", "project", "test-proj")
    prefect.cli("create", "project", "test-proj", "--skip-if-exists")

    step("flow_register")
    prefect.write("wire_flow.py", FLOW)
    prefect.python("""
        import sys; sys.path.insert(0, ".")
        from wire_flow import flow
        flow.register(project_name="test-proj")
        flow.register(project_name="test-proj")  # unchanged: the client checks and skips
    """)

    step("prefect_register")
    cli_flow = prefect.write("cli_flow.py", CLI_FLOW)
    prefect.cli("register", "--project", "test-proj", "-p", str(cli_flow))

    step("cli_get")
    prefect.cli("get", "projects")
    prefect.cli("get", "flows")
    prefect.cli("get", "flows", "--project", "test-proj", "--all-versions")
    prefect.cli("describe", "flows", "--name", "wire-flow")
    prefect.cli("get", "tasks", "--flow-name", "wire-flow")

    step("run_execute")
    prefect.cli("run", "--name", "wire-flow", "--project", "test-proj", "--execute", timeout=240)

    step("exec_fail")
    failing = prefect.write("failing_flow.py", FAILING_FLOW)
    prefect.cli("register", "--project", "test-proj", "-p", str(failing))
    prefect.cli("run", "--name", "failing", "--project", "test-proj", "--execute", timeout=240, check=False)

    step("cli_get_runs")
    prefect.cli("get", "flow-runs")
    prefect.cli("describe", "flow-runs", "--name", "does-not-exist", check=False)

    step("agent")
    agent = prefect.agent("--agent-address", "", log=prefect.home / "agent.log")
    try:
        prefect.cli("run", "--name", "cli-flow", "--project", "test-proj", "--watch", timeout=240)
        prefect.cli("run", "--name", "wire-flow", "--project", "test-proj", "--param", "n=3", "--watch",
                    timeout=240)
    finally:
        agent.terminate()
        agent.wait(timeout=30)

    step("cli_get_after_runs")
    prefect.cli("get", "flow-runs", "--project", "test-proj", "--limit", "5")
    prefect.cli("get", "logs", "--name", "wire-run-1", check=False)
    prefect.cli("describe", "tasks", "--name", "wire-flow")
    prefect.cli("describe", "flows", "--name", "cli-flow", "--project", "test-proj")
    prefect.cli("get", "tasks", "--flow-name", "wire-flow", "--flow-version", "1", check=False)

    step("backend_views")
    prefect.python("""
        from prefect import Client
        from prefect.backend import FlowRunView, FlowView, TaskRunView, TenantView
        client = Client()
        flow = FlowView.from_flow_name("wire-flow", project_name="test-proj")
        FlowView.from_flow_id(flow.flow_id)
        run = FlowRunView.from_flow_run_id(client.graphql(
            {"query": {"flow_run(where: {flow: {name: {_eq: \\"wire-flow\\"}}})": {"id"}}}
        ).data.flow_run[0].id)
        run.get_logs()
        run.get_all_task_runs()
        mapped = run.get_task_run(task_slug="double-1")
        run.get_task_run(task_run_id=mapped.task_run_id)
        for child in mapped.iter_mapped():
            child.get_result()
        TaskRunView.from_task_slug("total-1", flow_run_id=run.flow_run_id).get_result()
        TenantView.from_current_tenant()
        run.get_latest()
        mapped.get_latest()
        FlowRunView.from_flow_run_id(run.flow_run_id, load_static_tasks=True)
        client.get_task_run_info(run.flow_run_id, mapped.task_id, map_index=0)
        info = client.get_flow_run_info(run.flow_run_id)
        client.get_flow_run_state(run.flow_run_id)
        client.get_task_run_state(info.task_runs[0].id)
        client.set_flow_run_name(run.flow_run_id, "wire-run-1")
        queued = client.create_flow_run(flow_id=flow.flow_id, run_name="wire-queued")
        client.get_flow_run_info(queued)
        FlowRunView.from_flow_run_id(queued).get_all_task_runs()
        client.cancel_flow_run(queued)
        client.get_cloud_url("flow-run", run.flow_run_id)
    """)


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else OUT
    from headwater.server.embedded import EmbeddedPostgres

    workdir = Path(tempfile.mkdtemp(prefix="headwater-wire-"))
    postgres = EmbeddedPostgres(workdir / "pgdata")
    try:
        env = {"HEADWATER_DATABASE_URL": postgres.url, "HEADWATER_LOG_LEVEL": "WARNING"}
        with ServerProcess("--no-services", env=env, log_path=workdir / "headwater.log") as server:
            recorder = Recorder(server.url)
            try:
                scenarios(recorder, Prefect(recorder.url, workdir / "home"))
            finally:
                recorder.close()
            rows = world(server)
        # Machine paths (tracebacks in logs, storage directories) say nothing about the wire.
        places = {str(workdir): "<workdir>", sys.prefix: "<prefix>", str(Path(__file__).resolve().parents[2]): "<repo>"}
        with out.open("w") as handle:
            for record in [*recorder.records, {"world": rows}]:
                line = json.dumps(record, sort_keys=True)
                for place, name in sorted(places.items(), key=lambda item: -len(item[0])):
                    line = line.replace(place, name)
                handle.write(line + "\n")
        print(f"{len(recorder.records)} requests recorded in {out}")
    finally:
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
