"""A real headwater process behind Debian's PgBouncer in transaction pooling mode, configured as
the README's PgBouncer section says (`HEADWATER_DB_STATEMENT_CACHE_SIZE=0`,
`ignore_startup_parameters = statement_timeout, jit`): the Prefect client's hot paths, one by one
and concurrently, answer without an error.

PgBouncer refuses to run as root, so as root it is started with `-u nobody`; a user that cannot
reach the embedded Postgres's socket folder, so PgBouncer reaches Postgres over TCP, through a
small forwarder to that socket in this process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy.engine import make_url

from bench import documents
from tests import factories as f
from tests.server_process import ServerProcess, free_port

pytestmark = pytest.mark.slow

PGBOUNCER = shutil.which("pgbouncer") or next(
    (path for path in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(path, os.X_OK)), None)


class UnixForwarder:
    """127.0.0.1:<port> -> a Unix socket, one thread pair per connection."""

    def __init__(self, path: str):
        self.path = path
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.path)
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.closed = True
        self.listener.close()


@pytest.fixture
def pgbouncer(engine, database_url, tmp_path):
    """PgBouncer in transaction pooling mode in front of the test database; yields its URL."""
    if PGBOUNCER is None:
        pytest.skip("pgbouncer is not installed (Debian: apt-get install -y pgbouncer)")
    url = make_url(database_url)
    forwarder = None
    if url.host:
        host, port = url.host, url.port or 5432
    else:  # the embedded Postgres: a Unix socket folder in the URL's query
        socket_dir = url.query["host"]
        forwarder = UnixForwarder(os.path.join(socket_dir, f".s.PGSQL.{url.port or 5432}"))
        host, port = "127.0.0.1", forwarder.port
    user = url.username or "postgres"
    password = f" password={url.password}" if url.password else ""
    listen = free_port()
    (tmp_path / "userlist.txt").write_text(f'"{user}" ""\n')
    ini = tmp_path / "pgbouncer.ini"
    ini.write_text(
        f"""[databases]
headwater = host={host} port={port} dbname={url.database} user={user}{password}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = trust
auth_file = {tmp_path / "userlist.txt"}
pool_mode = transaction
; fewer server connections than headwater's pool, so transactions really share them
default_pool_size = 4
max_client_conn = 200
ignore_startup_parameters = statement_timeout, jit
"""
    )
    for path in (tmp_path, ini, tmp_path / "userlist.txt"):
        path.chmod(0o755 if path.is_dir() else 0o644)  # readable by `nobody`
    command = [PGBOUNCER, *(["-u", "nobody"] if os.geteuid() == 0 else []), str(ini)]
    log = open(tmp_path / "pgbouncer.log", "wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            assert process.poll() is None, (tmp_path / "pgbouncer.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", listen), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "pgbouncer did not listen"
                time.sleep(0.1)
        yield f"postgresql://{user}@127.0.0.1:{listen}/headwater", tmp_path / "pgbouncer.log"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
        if forwarder is not None:
            forwarder.close()


def post(server: ServerProcess, body: str) -> dict:
    request = urllib.request.Request(server.url + "/graphql", body.encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.loads(response.read())
    assert not answer.get("errors"), answer
    return answer["data"]


def walk(server: ServerProcess, flow_id: str, task_id: str, tenant_id: str) -> None:
    """A run's life as the agent and the flow and task runners drive it."""
    run = post(server, documents.create_flow_run(flow_id, uuid.uuid4().hex))["create_flow_run"]["id"]
    post(server, documents.runs_in_queue(tenant_id, ["dev"]))
    version = None
    for state in ("Submitted", "Running"):
        post(server, documents.set_flow_run_state(run, state, version))
        version = post(server, documents.flow_run_info(run))["flow_run_by_pk"]["version"]
    post(server, documents.flow_run_heartbeat(run))
    task_run = post(server, documents.task_run_info(run, task_id))["get_or_create_task_run_info"]["id"]
    post(server, documents.task_run_heartbeat(task_run))
    post(server, documents.set_flow_run_state(run, "Success", version))


def test_hot_paths_through_pgbouncer_in_transaction_pooling_mode(pgbouncer, tmp_path):
    bouncer_url, bouncer_log = pgbouncer
    env = {"HEADWATER_DATABASE_URL": bouncer_url, "HEADWATER_DB_STATEMENT_CACHE_SIZE": "0",
           "HEADWATER_LOG_LEVEL": "WARNING"}
    log = tmp_path / "headwater.log"
    with ServerProcess("--no-services", "--no-migrate", env=env, log_path=log) as server:
        tenant = post(server, documents.encode("{ tenant { id } }"))["tenant"][0]["id"]
        project = post(server, documents.encode(
            "mutation($i: create_project_input!) { create_project(input: $i) { id } }",
            {"i": {"tenant_id": tenant, "name": "bouncer"}}))["create_project"]["id"]
        flow_id = post(server, documents.encode(
            "mutation($i: create_flow_input!) { create_flow(input: $i) { id } }",
            {"i": {"project_id": project, "serialized_flow": f.flow("behind-bouncer")}}))["create_flow"]["id"]
        task_id = post(server, documents.encode(
            '{ task(where: {flow_id: {_eq: "%s"}}, limit: 1) { id } }' % flow_id))["task"][0]["id"]

        walk(server, flow_id, task_id, tenant)
        with ThreadPoolExecutor(16) as pool:  # more clients than PgBouncer's 4 server connections
            list(pool.map(lambda _: walk(server, flow_id, task_id, tenant), range(48)))

        finished = post(server, documents.encode(
            '{ flow_run_aggregate(where: {flow_id: {_eq: "%s"}, state: {_eq: "Success"}}) '
            "{ aggregate { count } } }" % flow_id))
        assert finished["flow_run_aggregate"]["aggregate"]["count"] == 49
        # The health probe and the metrics' run gauges use connections of their own.
        with urllib.request.urlopen(server.url + "/metrics", timeout=30) as response:
            assert "headwater_flow_runs" in response.read().decode()
        with urllib.request.urlopen(server.url + "/health", timeout=30) as response:
            assert json.loads(response.read())["database"] == "ok"
    assert "prepared statement" not in log.read_text()
    assert "server_login_retry" not in bouncer_log.read_text()
