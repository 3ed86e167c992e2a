"""One benchmark command: headwater's hot paths, queue poll, scheduler, memory and cold start,
each next to two limits measured in the same run on the same database and machine.

    python -m bench.run [--quick] [--seconds N] [--json PATH] [--skip SECTION ...] [--workers 2]

It starts everything itself: an embedded Postgres in a temporary folder (or the database at
HEADWATER_BENCH_DATABASE_URL, which it writes to; never the server's DATABASE_URL), headwater
(`headwater start --no-services`), and the framework floor (bench/floor_app.py). HTTP load at
concurrency 32 is wrk's; concurrency 1 too; the queue poll and the database limit are small
bounded asyncio loops. Every figure gets its ratio to
  * `asyncpg`: asyncpg straight to the database doing the equivalent single-row work, and
  * `floor`: a bare Strawberry app inserting one row per request, driven the same way;
rounds are interleaved (floor, asyncpg, headwater, floor, ...) so ratios hold on a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from bench import documents, loops, seed, wrk
from bench.floor_app import DOCUMENT as FLOOR_DOCUMENT
from tests import factories
from tests.server_process import ServerProcess, free_port

SECTIONS = ("create", "states", "heartbeats", "reads", "memory", "scaling", "queue", "scheduler", "coldstart")
RESULTS = Path(__file__).resolve().parent / "results"
CONCURRENCY = 32
MAX_RATE = 3000  # req/s the pools of single-use bodies (creates, state walks) are sized for
LIMIT_TABLE = "bench_limit"


@dataclass
class Config:
    quick: bool
    seconds: int
    rounds: int
    skip: set[str]
    workers: int
    json_path: Path
    read_pool: int  # distinct runs the heartbeats and reads cycle over
    queue_sizes: tuple[int, ...]
    queue_polls: int
    schedules: int
    cold_starts: int
    seed_budget_s: float  # the most time seeding the queue may take
    markdown: Path | None = None

    @classmethod
    def from_args(cls, argv: list[str] | None = None) -> Config:
        parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
        parser.add_argument("--quick", action="store_true", help="small counts and one round (a smoke run)")
        parser.add_argument("--seconds", type=int, help="seconds of load per figure and side (default 10, quick 2)")
        parser.add_argument("--json", type=Path, help="where to write the results (default bench/results/<time>.json)")
        parser.add_argument("--skip", nargs="+", default=[], choices=SECTIONS, metavar="SECTION",
                            help=f"sections to leave out: {', '.join(SECTIONS)}")
        parser.add_argument("--workers", type=int, default=1,
                            help="also measure create and state changes with this many server processes")
        parser.add_argument("--markdown", type=Path, metavar="JSON",
                            help="print a saved result as a Markdown table and exit")
        args = parser.parse_args(argv)
        quick = args.quick
        seconds = args.seconds or (2 if quick else 10)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        return cls(
            quick=quick, seconds=max(1, seconds), rounds=1 if quick or seconds < 4 else 2,
            skip=set(args.skip) | (set() if args.workers > 1 else {"scaling"}), workers=args.workers,
            json_path=args.json or RESULTS / f"{stamp}.json",
            read_pool=200 if quick else 2000,
            queue_sizes=(10_000, 50_000) if quick else (100_000, 1_000_000),
            queue_polls=30 if quick else 300,
            schedules=200 if quick else 10_000,
            cold_starts=2 if quick else 3,
            seed_budget_s=60 if quick else 900, markdown=args.markdown,
        )

    @property
    def round_seconds(self) -> int:
        return max(1, round(self.seconds / self.rounds))


# --- the machine ------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    here = Path(__file__).parent
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=here).stdout.strip()
    if subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                      text=True, cwd=here).stdout.strip():
        commit += "-dirty"
    return {
        "cpus": os.cpu_count(), "cpu_model": model, "load_average_start": os.getloadavg(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1), "python": platform.python_version(),
        "wrk": wrk_version.strip(), "commit": commit, "started": dt.datetime.now(dt.UTC).isoformat(),
    }


# --- figures ----------------------------------------------------------------------------------

def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator or math.isnan(numerator) or math.isnan(denominator):
        return None
    return round(numerator / denominator, 2)


@dataclass
class Figure:
    """One row: headwater's figure and its limits. Ratios say how many times the limit's cost
    headwater's is: limit req/s / headwater req/s, and headwater p50 (p99) / limit p50 (p99)."""

    section: str
    name: str
    unit: str = "ms"
    concurrency: int | None = None
    rounds: list[dict[str, Any]] = field(default_factory=list)
    limits_what: dict[str, str] = field(default_factory=dict)
    note: str = ""
    limit_names: tuple[str, ...] = ("asyncpg", "floor")

    def add_round(self, headwater: Any, **limits: Any) -> None:
        self.rounds.append({"headwater": headwater, **limits})

    @staticmethod
    def _stats(values: list[Any]) -> dict[str, Any] | None:
        values = [value for value in values if value is not None]
        if not values:
            return None
        out: dict[str, Any] = {"p50": round(statistics.median(v.p50_ms for v in values), 3),
                               "p99": round(max(v.p99_ms for v in values), 3)}
        if all(getattr(v, "rps", None) is not None for v in values) and any(v.requests > 1 for v in values):
            seconds = sum(v.seconds for v in values)
            out["rps"] = round(sum(v.requests for v in values) / seconds, 1) if seconds else None
            out["requests"] = sum(v.requests for v in values)
        errors = sum(getattr(v, "errors", 0) for v in values)
        if errors:
            out["errors"] = errors
            out["first_error"] = next(v.first_error for v in values if getattr(v, "errors", 0))
        return out

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"section": self.section, "name": self.name, "unit": self.unit,
                                  "concurrency": self.concurrency, "rounds": len(self.rounds)}
        result.update(self._stats([r["headwater"] for r in self.rounds]) or {})
        limits, ratios = {}, {}
        for limit in self.limit_names:
            stats = self._stats([r.get(limit) for r in self.rounds])
            if stats is None:
                limits[limit] = None
                ratios[limit] = None
                continue
            limits[limit] = {"what": self.limits_what.get(limit, ""), **stats}
            per_round = [(r["headwater"], r[limit]) for r in self.rounds if r.get(limit) is not None]
            ratio: dict[str, Any] = {
                "p50": _median([_ratio(h.p50_ms, l.p50_ms) for h, l in per_round]),
                "p99": _median([_ratio(h.p99_ms, l.p99_ms) for h, l in per_round]),
            }
            if "rps" in result and "rps" in stats:
                ratio["rps"] = _median([_ratio(l.rps, h.rps) for h, l in per_round])
            ratios[limit] = ratio
        result["limits"], result["ratios"] = limits, ratios
        if self.note:
            result["note"] = self.note
        return result


def _median(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 2) if values else None


@dataclass
class Value:
    """A figure that is a handful of measurements (a pass, a start, an RSS sample set)."""

    samples: list[float]
    errors: int = 0
    first_error: str = ""

    @property
    def p50_ms(self) -> float:
        return loops.percentile(self.samples, 50)

    @property
    def p99_ms(self) -> float:
        return loops.percentile(self.samples, 99)

    requests = 1
    rps = None
    seconds = 0.0


# --- processes --------------------------------------------------------------------------------

@contextmanager
def bench_database() -> Iterator[tuple[str, str]]:
    url = os.environ.get("HEADWATER_BENCH_DATABASE_URL")
    if url:
        for name in ("DATABASE_URL", "HEADWATER_DATABASE_URL"):
            if os.environ.get(name) and os.environ[name] == url:
                sys.exit(f"HEADWATER_BENCH_DATABASE_URL is the server's {name}: the benchmark writes "
                         "millions of rows; give it a database of its own")
        yield url, "external (HEADWATER_BENCH_DATABASE_URL)"
        return
    from headwater.server.embedded import EmbeddedPostgres

    data_dir = Path(tempfile.mkdtemp(prefix="headwater-bench-db-"))
    server = EmbeddedPostgres(data_dir)
    try:
        yield server.url, "embedded (pgserver, temporary)"
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)  # a full run leaves gigabytes


def server_env(database_url: str | None) -> dict[str, str]:
    env = {"HEADWATER_LOG_LEVEL": "WARNING"}
    if database_url:
        env["HEADWATER_DATABASE_URL"] = database_url
    return env


def headwater(database_url: str, workdir: Path, *args: str) -> ServerProcess:
    return ServerProcess("--no-services", *args, env=server_env(database_url),
                         log_path=workdir / f"headwater-{time.time_ns()}.log")


class FloorProcess:
    """bench/floor_app.py in a subprocess on a free port."""

    def __init__(self, database_url: str, workdir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        self.log = workdir / "floor.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> float:
        """Start it; returns the seconds to its first answered request."""
        started = time.perf_counter()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "bench.floor_app", str(self.port),
                                             self.database_url], stdout=log, stderr=log)
        wait_answer(self.url, self.process, "{ hello }")
        return time.perf_counter() - started

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(2)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_answer(url: str, process: subprocess.Popen, query: str, timeout: float = 120.0) -> None:
    """Poll until `query` is answered with data (every 10 ms)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{url}: the process exited with {process.returncode}")
            try:
                if http.post(url + "/", json={"query": query}).json().get("data"):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.01)
    raise TimeoutError(f"{url} did not answer {query}")


def tree_rss(pid: int) -> float:
    """MiB resident in a process and its children (uvicorn workers)."""
    try:
        process = psutil.Process(pid)
        total = process.memory_info().rss
        for child in process.children(recursive=True):
            try:
                if "postgres" not in child.name():
                    total += child.memory_info().rss
            except psutil.Error:
                pass
        return total / 2**20
    except psutil.Error:
        return float("nan")


class MemorySampler(threading.Thread):
    """RSS of headwater and of the floor every 0.25 s, tagged with what was running."""

    def __init__(self, pids: dict[str, int]):
        super().__init__(daemon=True)
        self.pids = pids
        self.phase = "idle"
        self.samples: list[tuple[str, str, float]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.25):
            for name, pid in self.pids.items():
                self.samples.append((self.phase, name, tree_rss(pid)))

    def values(self, phase: str, name: str) -> list[float]:
        return [rss for p, n, rss in self.samples if p == phase and n == name and not math.isnan(rss)]


# --- the run ----------------------------------------------------------------------------------

class Bench:
    def __init__(self, config: Config, database_url: str, workdir: Path):
        self.config = config
        self.database_url = database_url
        self.workdir = workdir
        self.figures: list[Figure] = []
        self.hw_url = ""
        self.floor: FloorProcess | None = None
        self.memory: MemorySampler | None = None
        self.floor_bodies: wrk.BodyFile | None = None
        self.floor_offset = 0

    # helpers

    def log(self, message: str) -> None:
        print(f"  [{time.strftime('%H:%M:%S')}] {message}", flush=True)

    def db(self, work: Callable[[asyncpg.Connection], Any]) -> Any:
        async def go():
            connection = await asyncpg.connect(self.database_url)
            try:
                return await work(connection)
            finally:
                await connection.close()
        return asyncio.run(go())

    def bodies(self, bodies: list[str]) -> wrk.BodyFile:
        return wrk.BodyFile(bodies, self.workdir)

    def phase(self, name: str) -> None:
        if self.memory:
            self.memory.phase = name

    def run_wrk(self, who: str, url: str, bodies: wrk.BodyFile, connections: int, offset: int = 0) -> wrk.Load:
        self.phase(who)
        try:
            return wrk.run(url, bodies, seconds=self.config.round_seconds, connections=connections,
                           offset=offset, workdir=self.workdir)
        finally:
            self.phase("other")

    def floor_round(self, connections: int) -> wrk.Load:
        assert self.floor and self.floor_bodies
        load = self.run_wrk("floor", self.floor.url, self.floor_bodies, connections, self.floor_offset)
        self.floor_offset += load.requests + connections
        return load

    def database_round(self, operation, connections: int) -> loops.Sample:
        return asyncio.run(loops.database_load(
            self.database_url, operation, concurrency=connections,
            seconds=min(self.config.round_seconds, 3), count=self.config.round_seconds * 20_000))

    def load_figure(self, section: str, name: str, bodies: wrk.BodyFile, operation, what: str, *,
                    connections: int = CONCURRENCY, single_use_block: int = 0, url: str | None = None) -> Figure:
        """Interleaved rounds of floor, asyncpg and headwater under wrk. Bodies that may be sent
        only once (`single_use_block` > 0) are continued from where the last round stopped, at
        the next block boundary."""
        figure = Figure(section, name, concurrency=connections, limits_what={
            "asyncpg": what, "floor": "bare Strawberry mutation inserting one row (wrk)"})
        offset = self.warm_up(url or self.hw_url, bodies, connections, single_use_block)
        for _ in range(self.config.rounds):
            floor = self.floor_round(connections)
            database = self.database_round(operation, connections)
            load = self.run_wrk("headwater", url or self.hw_url, bodies, connections, offset)
            figure.add_round(load, floor=floor, asyncpg=database)
            if single_use_block:
                used = offset + load.requests + connections
                offset = math.ceil(used / single_use_block) * single_use_block
        if single_use_block and offset > bodies.count:
            figure.note = f"body pool of {bodies.count} exhausted; raise MAX_RATE"
        self.figures.append(figure)
        self.show(figure)
        return figure

    def warm_up(self, url: str, bodies: wrk.BodyFile, connections: int, single_use_block: int = 0) -> int:
        """One unrecorded second of the load (caches, pool, JIT warm); returns where to go on."""
        load = wrk.run(url, bodies, seconds=1, connections=connections, workdir=self.workdir)
        if not single_use_block:
            return 0
        return math.ceil((load.requests + connections) / single_use_block) * single_use_block

    def show(self, figure: Figure) -> None:
        print(format_row(figure.as_dict()), flush=True)

    # set-up

    def setup(self) -> None:
        async def tables(connection: asyncpg.Connection) -> None:
            await connection.execute(
                f"CREATE TABLE IF NOT EXISTS {LIMIT_TABLE} (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), "
                "value text NOT NULL, created timestamptz NOT NULL DEFAULT now())")
            return await connection.fetchval("SHOW server_version")
        self.postgres_version = self.db(tables)
        url = self.hw_url
        self.tenant = loops.graphql(url, "{ tenant { id } }")["tenant"][0]["id"]
        self.project = loops.graphql(
            url, "mutation($input: create_project_input!) { create_project(input: $input) { id } }",
            {"input": {"tenant_id": self.tenant, "name": f"bench-{uuid.uuid4().hex[:8]}"}})["create_project"]["id"]
        tasks = [factories.task("extract-1"), factories.task("transform-1"), factories.task("load-1")]
        edges = [factories.edge("extract-1", "transform-1"), factories.edge("transform-1", "load-1")]
        self.flow_id = self.create_flow(factories.flow("bench-3-tasks", tasks=tasks, edges=edges))
        probe = httpx.post(self.floor.url + "/", json={"query": FLOOR_DOCUMENT, "variables": {"value": "probe"}}).json()
        if probe.get("errors") or not probe.get("data"):
            raise RuntimeError(f"the floor app does not answer its mutation: {probe}")
        self.floor_bodies = self.bodies([
            json.dumps({"query": FLOOR_DOCUMENT, "variables": {"value": f"row-{i}"}}) for i in range(1000)])

    def create_flow(self, serialized: dict, active: bool = False) -> str:
        return loops.graphql(
            self.hw_url, "mutation($input: create_flow_input!) { create_flow(input: $input) { id } }",
            {"input": {"project_id": self.project, "serialized_flow": serialized,
                       "set_schedule_active": active}})["create_flow"]["id"]

    def new_run(self, flow_id: str | None = None) -> str:
        body = json.loads(documents.create_flow_run(flow_id or self.flow_id))
        return loops.graphql(self.hw_url, body["query"], json.loads(body["variables"]))["create_flow_run"]["id"]

    def send(self, body: str) -> dict:
        decoded = json.loads(body)
        return loops.graphql(self.hw_url, decoded["query"], json.loads(decoded["variables"]))

    def walked_template(self, through: tuple[str, ...]) -> tuple[str, int]:
        """A run made by headwater and walked through `through`; returns it and its version."""
        run = self.new_run()
        version = self.db(lambda c: c.fetchval("SELECT version FROM flow_run WHERE id = $1", uuid.UUID(run)))
        for state in through:
            self.send(documents.set_flow_run_state(run, state, version if state != "Success" else None))
            version = self.db(lambda c: c.fetchval("SELECT version FROM flow_run WHERE id = $1", uuid.UUID(run)))
        return run, version

    def read_pool(self) -> list[str]:
        """Runs a fleet has in flight: Running, with their task runs, cloned from a real one."""
        if not hasattr(self, "_read_pool"):
            template, _ = self.walked_template(("Submitted", "Running"))
            self._read_pool = self.db(lambda c: seed.clone_runs(c, template, self.config.read_pool))
            self._read_tasks = self.db(lambda c: seed.task_runs_of(c, self._read_pool))
        return self._read_pool

    # sections

    def section_create(self) -> None:
        pool = MAX_RATE * self.config.seconds
        make = lambda: self.bodies([documents.create_flow_run(self.flow_id) for _ in range(pool)])
        insert = lambda c, i: c.execute(f"INSERT INTO {LIMIT_TABLE} (value) VALUES ($1)", f"v{i}")
        what = "INSERT of one row"
        self.send(documents.create_flow_run(self.flow_id))  # warm
        self.load_figure("create", "create_flow_run (3 tasks, idempotency key)", make(), insert, what,
                         connections=1, single_use_block=1)
        self.load_figure("create", "create_flow_run (3 tasks, idempotency key)", make(), insert, what,
                         single_use_block=1)

    def walk_bodies(self, runs: list[str], version: int, block: int) -> list[str]:
        bodies = []
        for start in range(0, len(runs), block):
            chunk = runs[start:start + block]
            bodies += [documents.set_flow_run_state(run, "Submitted", version) for run in chunk]
            bodies += [documents.set_flow_run_state(run, "Running", version + 1) for run in chunk]
            bodies += [documents.set_flow_run_state(run, "Success", None) for run in chunk]
        return bodies

    def walk_pool(self, block: int) -> wrk.BodyFile:
        """Scheduled runs (cloned from a real one) and their walks, in blocks: Submitted for a
        block of runs, then Running, then Success, so no run has two steps in flight at once."""
        template, version = self.walked_template(())
        count = math.ceil(MAX_RATE * self.config.seconds / 3 / block) * block
        runs = self.db(lambda c: seed.clone_runs(c, template, count))
        probe, runs = runs[0], runs[1:]
        for body in self.walk_bodies([probe], version, 1):
            self.send(body)  # raises on an error answer
        return self.bodies(self.walk_bodies(runs[:len(runs) // block * block], version, block))

    def pk_update(self, column: str = "heartbeat"):
        ids = [uuid.UUID(run) for run in self.read_pool()]
        return lambda c, i: c.execute(f"UPDATE flow_run SET {column} = now() WHERE id = $1", ids[i % len(ids)])

    def pk_select(self, table: str = "flow_run"):
        ids = [uuid.UUID(run) for run in self.read_pool()]
        if table == "task_run":
            ids = [uuid.UUID(task_run) for _, _, task_run in self._read_tasks]
        return lambda c, i: c.fetchrow(f"SELECT * FROM {table} WHERE id = $1", ids[i % len(ids)])

    def section_states(self) -> None:
        block = 200
        self.load_figure("states", "set_flow_run_states (Submitted, Running, Success walks)",
                         self.walk_pool(block), self.pk_update("state_timestamp"), "UPDATE by primary key",
                         single_use_block=3 * block)

    def section_heartbeats(self) -> None:
        runs = self.read_pool()
        self.load_figure("heartbeats", "update_flow_run_heartbeat",
                         self.bodies([documents.flow_run_heartbeat(run) for run in runs]),
                         self.pk_update(), "UPDATE by primary key")
        ids = [uuid.UUID(task_run) for _, _, task_run in self._read_tasks]
        self.load_figure("heartbeats", "update_task_run_heartbeat",
                         self.bodies([documents.task_run_heartbeat(task_run) for _, _, task_run in self._read_tasks]),
                         lambda c, i: c.execute("UPDATE task_run SET heartbeat = now() WHERE id = $1",
                                                ids[i % len(ids)]),
                         "UPDATE by primary key")

    def section_reads(self) -> None:
        runs = self.read_pool()
        self.send(documents.flow_run_info(runs[0]))
        self.load_figure("reads", "flow_run_by_pk (the flow runner's read)",
                         self.bodies([documents.flow_run_info(run) for run in runs]),
                         self.pk_select(), "SELECT by primary key")
        self.send(documents.task_run_info(*self._read_tasks[0][:2]))
        self.load_figure("reads", "get_or_create_task_run_info (the task runner's read)",
                         self.bodies([documents.task_run_info(run, task) for run, task, _ in self._read_tasks]),
                         self.pk_select("task_run"), "SELECT by primary key")

    def section_memory(self, idle: dict[str, list[float]], baseline: float) -> None:
        assert self.memory
        for label, phase in (("idle", "idle"), ("loaded", None)):
            figure = Figure("memory", f"RSS {label}", unit="MiB", limits_what={
                "floor": "the floor app's RSS, same phase",
                "asyncpg": "a bare Python process holding an asyncpg pool of 20 connections"})
            if phase == "idle":
                hw, floor = idle["headwater"], idle["floor"]
            else:
                hw, floor = self.memory.values("headwater", "headwater"), self.memory.values("floor", "floor")
            if not hw:
                continue
            figure.add_round(Value(hw), floor=Value(floor) if floor else None, asyncpg=Value([baseline]))
            self.figures.append(figure)
            self.show(figure)

    def section_scaling(self) -> None:
        workers = self.config.workers
        with headwater(self.database_url, self.workdir, "--workers", str(workers)) as many:
            for name, single_use, make, operation in (
                ("create_flow_run", 1,
                 lambda: self.bodies([documents.create_flow_run(self.flow_id)
                                      for _ in range(MAX_RATE * self.config.seconds)]), None),
                ("set_flow_run_states", 600, lambda: self.walk_pool(200), None),
            ):
                one, more = make(), make()
                figure = Figure("scaling", f"{name} with {workers} workers", concurrency=CONCURRENCY,
                                limit_names=("one_worker", "floor"),
                                limits_what={"floor": "bare Strawberry mutation inserting one row (wrk)",
                                             "one_worker": "the same load on one worker (ratio = 1 / speed-up)"})
                offsets = [self.warm_up(self.hw_url, one, CONCURRENCY, single_use),
                           self.warm_up(many.url, more, CONCURRENCY, single_use)]
                for _ in range(self.config.rounds):
                    floor = self.floor_round(CONCURRENCY)
                    single = self.run_wrk("headwater", self.hw_url, one, CONCURRENCY, offsets[0])
                    multi = self.run_wrk("scaling", many.url, more, CONCURRENCY, offsets[1])
                    figure.add_round(multi, floor=floor, one_worker=single)
                    for i, load in enumerate((single, multi)):
                        used = offsets[i] + load.requests + CONCURRENCY
                        offsets[i] = math.ceil(used / single_use) * single_use
                row = figure.as_dict()
                speedup = _ratio(row.get("rps"), (row["limits"]["one_worker"] or {}).get("rps"))
                figure.note = (f"{speedup}x the {row['limits']['one_worker']['rps']:,.0f} req/s of one worker"
                               if speedup else "")
                self.figures.append(figure)
                self.show(figure)

    def section_scheduler(self) -> None:
        from headwater.server.db.engine import create_engine, create_sessionmaker
        from headwater.services.scheduler import Scheduler

        start = {"dt": "2024-01-01T00:00:00", "tz": "UTC"}
        kinds = {
            "interval": {"type": "IntervalClock", "interval": 3_600_000_000, "start_date": start},
            "cron": {"type": "CronClock", "cron": "0 * * * *", "start_date": start},
        }
        tasks = [factories.task("a-1"), factories.task("b-1")]
        edges = [factories.edge("a-1", "b-1")]
        count = self.config.schedules

        async def passes(kind: str) -> list[tuple[str, float, int]]:
            engine = create_engine(self.database_url, pool_size=4)
            sessions = create_sessionmaker(engine)
            out = []
            now = dt.datetime.now(dt.UTC)
            try:
                for label in ("first pass", "nothing due", "nothing due", "nothing due"):
                    scheduler = Scheduler(sessions, interval=3600, batch_size=500, clock=lambda: now)
                    started = time.perf_counter()
                    created = await scheduler.run_once()
                    out.append((label, time.perf_counter() - started, created))
            finally:
                await engine.dispose()
            return out

        for kind, clock in kinds.items():
            self.db(lambda c: c.execute("UPDATE flow SET is_schedule_active = false WHERE is_schedule_active"))
            schedule = {"type": "Schedule", "clocks": [clock], "__version__": factories.CORE_VERSION}
            template = self.create_flow(factories.flow(f"bench-{kind}", tasks=tasks, edges=edges, schedule=schedule))
            self.db(lambda c: seed.clone_scheduled_flows(c, template, count))
            self.log(f"{count} {kind} schedules seeded")
            results = asyncio.run(passes(kind))
            created = results[0][2]

            async def read_schedules(c: asyncpg.Connection) -> float:
                started = time.perf_counter()
                await c.fetch("SELECT id, schedule FROM flow WHERE is_schedule_active")
                return time.perf_counter() - started

            async def insert_runs(c: asyncpg.Connection) -> float:
                started = time.perf_counter()
                await c.fetch("SELECT id, schedule FROM flow WHERE is_schedule_active")
                await c.execute(f"INSERT INTO {LIMIT_TABLE} (value) SELECT 'run' FROM generate_series(1, $1::int)",
                                created * (1 + len(tasks)))
                return time.perf_counter() - started

            first = Figure("scheduler", f"scheduler pass, {count} {kind} schedules: first ({created} runs)",
                           unit="ms", limits_what={
                               "asyncpg": "read every active schedule, one INSERT of as many rows as runs and task runs",
                               "floor": "n/a (not a request)"})
            first.add_round(Value([results[0][1] * 1000]), asyncpg=Value([self.db(insert_runs) * 1000]))
            idle = Figure("scheduler", f"scheduler pass, {count} {kind} schedules: nothing due", unit="ms",
                          limits_what={"asyncpg": "read every active schedule", "floor": "n/a (not a request)"})
            idle.add_round(Value([seconds * 1000 for _, seconds, _ in results[1:]]),
                           asyncpg=Value([self.db(read_schedules) * 1000 for _ in range(3)]))
            if any(runs for _, _, runs in results[1:]):
                idle.note = "a pass with nothing due created runs"
            for figure in (first, idle):
                self.figures.append(figure)
                self.show(figure)
        self.db(lambda c: c.execute("UPDATE flow SET is_schedule_active = false WHERE is_schedule_active"))

    def section_queue(self) -> None:
        # The hot paths leave thousands of due, Scheduled runs (unused walks) that no agent with
        # the queue's labels takes; a poll would wade through them. They go first.
        left = self.db(lambda c: c.execute("DELETE FROM flow_run WHERE flow_id = $1 AND state = 'Scheduled'",
                                           uuid.UUID(self.flow_id)))
        self.log(f"removed the hot paths' unused Scheduled runs ({left})")
        queue_flow = self.create_flow(factories.flow("bench-queue"))
        template = self.new_run(queue_flow)
        labels = ["bench"]
        body = documents.runs_in_queue(self.tenant, labels)
        answer = self.send(body)["get_runs_in_queue"]["flow_run_ids"]
        tenant = uuid.UUID(self.tenant)
        have = 0
        deadline = time.monotonic() + self.config.seed_budget_s

        async def poll_sql(c: asyncpg.Connection, i: int):
            return await c.fetch(QUEUE_SQL, tenant, dt.datetime.now(dt.UTC), json.dumps(labels))

        for size in self.config.queue_sizes:
            started = time.perf_counter()
            others = self.db(lambda c: c.fetchval("SELECT count(*) FROM flow_run")) - have
            have = self.db(lambda c: seed.grow_queue(c, template, have, max(size - others, have), deadline))
            total = self.db(lambda c: c.fetchval("SELECT count(*) FROM flow_run"))
            self.log(f"queue grown to {have} runs ({total} in flow_run) in {time.perf_counter() - started:.0f} s")
            figure = Figure("queue", f"get_runs_in_queue, {total:,} runs in the table", concurrency=1, limits_what={
                "asyncpg": "the poll's SQL (same conditions, prepared) straight to Postgres",
                "floor": "bare Strawberry mutation inserting one row (sequential)"})
            bound = max(self.config.round_seconds * 3, 5)
            polls = self.config.queue_polls // self.config.rounds
            for _ in range(self.config.rounds):
                floor = asyncio.run(loops.sequential_http(self.floor.url, [FLOOR_BODY], seconds=bound, count=polls))
                database = asyncio.run(loops.database_load(self.database_url, poll_sql, concurrency=1,
                                                           seconds=bound, count=polls))
                self.phase("headwater")
                hw = asyncio.run(loops.sequential_http(self.hw_url, [body], seconds=bound, count=polls))
                self.phase("other")
                figure.add_round(hw, floor=floor, asyncpg=database)
            answer = self.send(body)["get_runs_in_queue"]["flow_run_ids"]
            figure.note = f"answers {len(answer)} run ids"
            if total < size:
                figure.note += f"; seeding stopped at {total:,} runs (time budget)"
            self.figures.append(figure)
            self.show(figure)

    def section_coldstart(self) -> None:
        data_dir = Path(tempfile.mkdtemp(prefix="headwater-bench-cold-"))
        server = ServerProcess("--no-services", "--data-dir", str(data_dir), env={"HEADWATER_LOG_LEVEL": "WARNING"},
                               log_path=self.workdir / "cold.log")
        for name in ("DATABASE_URL", "HEADWATER_DATABASE_URL", "HEADWATER_DATA_DIR"):
            server.env.pop(name, None)
        try:
            with server:  # the first start creates and migrates the data dir
                pass
            starts = []
            for _ in range(self.config.cold_starts):
                started = time.perf_counter()
                with open(server.log_path, "ab") as log:
                    server.process = subprocess.Popen(
                        [sys.executable, "-m", "headwater.server.cli", *server.args],
                        env=server.env, stdout=log, stderr=subprocess.STDOUT)
                try:
                    wait_answer(server.url, server.process, "{ hello }")
                    starts.append((time.perf_counter() - started) * 1000)
                finally:
                    server.stop()
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
        floors = []
        for _ in range(self.config.cold_starts):
            floor = FloorProcess(self.database_url, self.workdir)
            try:
                floors.append(floor.start() * 1000)
            finally:
                floor.stop()

        async def connect_once() -> float:
            started = time.perf_counter()
            connection = await asyncpg.connect(self.database_url)
            await connection.fetchval("SELECT 1")
            elapsed = time.perf_counter() - started
            await connection.close()
            return elapsed * 1000

        connects = [asyncio.run(connect_once()) for _ in range(self.config.cold_starts)]
        figure = Figure("coldstart", "cold start to first { hello } (data dir exists, embedded Postgres)",
                        unit="ms", limits_what={
                            "asyncpg": "asyncpg connect and SELECT 1 (Postgres already up)",
                            "floor": "the floor app's start to its first answer (Postgres already up)"})
        figure.add_round(Value(starts), floor=Value(floors), asyncpg=Value(connects))
        self.figures.append(figure)
        self.show(figure)


FLOOR_BODY = json.dumps({"query": FLOOR_DOCUMENT, "variables": {"value": "queue"}})

# What get_runs_in_queue asks (server/domain/flow_runs.py), written out: a waiting run due
# before now, or a Running one with a waiting task run due; labels a non-empty subset of the agent's.
QUEUE_SQL = """
SELECT fr.id FROM flow_run fr
WHERE fr.tenant_id = $1
  AND ((fr.state IN ('Scheduled', 'Paused', 'Resume', 'Retrying', 'Queued') AND fr.state_start_time <= $2)
       OR (fr.state = 'Running' AND EXISTS (
           SELECT 1 FROM task_run tr WHERE tr.flow_run_id = fr.id
             AND tr.state IN ('Scheduled', 'Paused', 'Resume', 'Retrying', 'Queued') AND tr.state_start_time <= $2)))
  AND fr.labels <@ $3::jsonb AND jsonb_array_length(fr.labels) > 0
ORDER BY fr.state_start_time LIMIT 25
"""


def asyncpg_process_rss(database_url: str) -> float:
    """MiB resident in a bare Python process holding an asyncpg pool of 20 connections."""
    code = ("import asyncio, asyncpg, sys, time\n"
            "async def main():\n"
            "    pool = await asyncpg.create_pool(sys.argv[1], min_size=20, max_size=20)\n"
            "    print('ready', flush=True)\n"
            "    await asyncio.sleep(30)\n"
            "asyncio.run(main())\n")
    process = subprocess.Popen([sys.executable, "-c", code, database_url], stdout=subprocess.PIPE, text=True)
    try:
        process.stdout.readline()
        time.sleep(0.5)
        return tree_rss(process.pid)
    finally:
        process.kill()
        process.wait()


# --- output -----------------------------------------------------------------------------------

def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def format_row(row: dict[str, Any]) -> str:
    ratios = row.get("ratios") or {}

    def ratio(limit: str) -> str:
        r = ratios.get(limit) or {}
        value = r.get("rps") if r.get("rps") is not None else r.get("p50")
        return "-" if value is None else f"{value:.2f}x"

    name = row["name"] + (f" @{row['concurrency']}" if row.get("concurrency") else "")
    unit = row.get("unit", "ms")
    errors = f" ERRORS {row['errors']}: {row.get('first_error', '')[:120]}" if row.get("errors") else ""
    note = f" ({row['note']})" if row.get("note") else ""
    return (f"{name[:70]:70s} {_fmt(row.get('rps'), 0):>8s} {_fmt(row.get('p50'), 2):>10s} "
            f"{_fmt(row.get('p99'), 2):>10s} {unit:>3s} {ratio('asyncpg'):>8s} {ratio('floor'):>8s}{note}{errors}")


HEADER = (f"{'figure':70s} {'req/s':>8s} {'p50':>10s} {'p99':>10s} {'':>3s} {'asyncpg':>8s} {'floor':>8s}")


def print_header(info: dict[str, Any], config: Config) -> None:
    load = ", ".join(f"{value:.2f}" for value in info["load_average_start"])
    print(f"headwater benchmark, commit {info['commit']}: {info['cpus']} CPUs ({info['cpu_model']}), "
          f"{info['memory_gib']} GiB, load average {load}")
    print(f"Python {info['python']}, {info['wrk']}, database {info['database']}, Postgres {info['postgres']}")
    print(f"{config.seconds} s of load per figure and side in {config.rounds} interleaved round(s); "
          f"ratios = limit req/s / headwater req/s (load rows), else headwater p50 / limit p50")
    print(HEADER)


def markdown(result: dict[str, Any]) -> str:
    """A saved result as a Markdown table (for the README, or to compare before and after)."""
    info = result["machine"]
    load = " / ".join(f"{value:.1f}" for value in info["load_average_start"])
    lines = [f"{info['cpus']} CPUs ({info['cpu_model']}), load average {load} at the start, "
             f"Postgres {info.get('postgres')} ({info.get('database')}), commit {info['commit']}", "",
             "| figure | req/s | p50 | p99 | × asyncpg | × floor |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for row in result["figures"]:
        ratios = row.get("ratios") or {}

        def ratio(limit: str) -> str:
            r = ratios.get(limit) or {}
            value = r.get("rps") if r.get("rps") is not None else r.get("p50")
            return "–" if value is None else f"{value:.2f}"

        name = row["name"] + (f" @{row['concurrency']}" if row.get("concurrency") else "")
        unit = " MiB" if row.get("unit") == "MiB" else " ms"
        note = f" ({row['note']})" if row.get("note") else ""
        lines.append(f"| {name}{note} | {_fmt(row.get('rps'), 0)} | {_fmt(row.get('p50'), 1)}{unit} | "
                     f"{_fmt(row.get('p99'), 1)}{unit} | {ratio('asyncpg')} | {ratio('floor')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    config = Config.from_args(argv)
    if config.markdown:
        print(markdown(json.loads(config.markdown.read_text())))
        return 0
    if not wrk.available():
        sys.exit("wrk is not installed (apt-get install wrk)")
    workdir = Path(tempfile.mkdtemp(prefix="headwater-bench-"))
    info = machine()
    with ExitStack() as stack:
        database_url, database_kind = stack.enter_context(bench_database())
        info["database"] = database_kind
        bench = Bench(config, database_url, workdir)
        bench.floor = FloorProcess(database_url, workdir)
        bench.floor.start()
        stack.callback(bench.floor.stop)
        server = stack.enter_context(headwater(database_url, workdir))
        bench.hw_url = server.url
        bench.setup()
        info["postgres"] = bench.postgres_version
        print_header(info, config)
        memory = MemorySampler({"headwater": server.process.pid, "floor": bench.floor.process.pid})
        bench.memory = memory
        memory.start()
        stack.callback(memory.stopping.set)
        bench.send(documents.flow_run_heartbeat(str(uuid.uuid4())))  # warm
        time.sleep(2.5)
        idle = {name: memory.values("idle", name) for name in ("headwater", "floor")}
        memory.phase = "other"
        for section in SECTIONS:
            if section == "memory":
                continue  # reported last, from samples taken all along
            if section in config.skip:
                continue
            getattr(bench, f"section_{section}")()
        if "memory" not in config.skip:
            bench.section_memory(idle, asyncpg_process_rss(database_url))
    info["load_average_end"] = os.getloadavg()
    info["finished"] = dt.datetime.now(dt.UTC).isoformat()
    result = {"machine": info, "config": {"quick": config.quick, "seconds": config.seconds,
                                          "rounds": config.rounds, "skip": sorted(config.skip),
                                          "workers": config.workers},
              "figures": [figure.as_dict() for figure in bench.figures]}
    shutil.rmtree(workdir, ignore_errors=True)  # kept, with the servers' logs, when the run fails
    config.json_path.parent.mkdir(parents=True, exist_ok=True)
    config.json_path.write_text(json.dumps(result, indent=2, default=str))
    end = ", ".join(f"{value:.2f}" for value in info["load_average_end"])
    print(f"load average at the end {end}; results in {config.json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
