"""`/metrics` of a real `headwater start --workers 2`: one scrape sums both workers, a killed
worker's live gauges go while its counters stay, and the multiprocess folder is gone after stop."""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.server_process import ServerProcess

pytestmark = pytest.mark.slow

POOL_SIZE = 3
HOOK_DELIVERY = "HookDelivery"


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        body = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def hello_count(samples: dict) -> float:
    return samples.get(("headwater_graphql_request_duration_seconds_count",
                        frozenset({"type": "query", "operation": "hello"}.items())), 0.0)


def pool_size(samples: dict) -> float:
    return samples.get(("headwater_db_pool_size", frozenset()), 0.0)


def workers_of(server: ServerProcess) -> list[psutil.Process]:
    children = psutil.Process(server.process.pid).children(recursive=True)
    # uvicorn's workers are spawned by multiprocessing (its resource tracker is a child too).
    return [child for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE
            and any("spawn_main" in part for part in child.cmdline())]


def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def test_two_workers_are_summed_and_leave_no_files(engine, database_url: str, tmp_path):
    env = {"HEADWATER_DATABASE_URL": database_url, "HEADWATER_DB_POOL_SIZE": str(POOL_SIZE),
           "HEADWATER_SCHEDULER_ENABLED": "false", "HEADWATER_ZOMBIE_KILLER_ENABLED": "false",
           "HEADWATER_LAZARUS_ENABLED": "false", "HEADWATER_HOOK_DELIVERY_INTERVAL_SECONDS": "0.5"}
    with ServerProcess("--workers", "2", "--no-migrate", env=env, log_path=tmp_path / "workers.log") as server:
        workers = workers_of(server)
        assert len(workers) == 2
        folder = Path(workers[0].environ()["PROMETHEUS_MULTIPROC_DIR"])
        assert folder.is_dir()
        wait_for(lambda: pool_size(scrape(server.url)) == 2 * POOL_SIZE, "both workers' pools, summed")

        for _ in range(40):  # a new connection each: the kernel spreads them over both workers
            assert server.query("{ hello }") == {"data": {"hello": "👋"}}
        wait_for(lambda: {f.name.split("_")[-1] for f in folder.glob("histogram_*.db")} >= {f"{w.pid}.db" for w in workers},
                 "each worker recorded requests")
        for _ in range(6):  # whichever worker answers, the sum is the same
            assert hello_count(scrape(server.url)) == 40
        passes = scrape(server.url)[("headwater_service_passes_total", frozenset({"service": HOOK_DELIVERY}.items()))]
        assert passes >= 2

        victim = workers[0]
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        # uvicorn starts a replacement; the dead worker's pool no longer counts, its requests still do.
        wait_for(lambda: len(workers_of(server)) == 2 and pool_size(scrape(server.url)) == 2 * POOL_SIZE,
                 "a replacement worker, and the dead one's pool forgotten")
        samples = scrape(server.url)
        assert hello_count(samples) >= 40
        assert not list(folder.glob(f"gauge_live*_{victim.pid}.db")), "the dead worker's live gauges are removed"
        assert list(folder.glob(f"histogram_{victim.pid}.db")), "its counters stay, so totals never go back"
        assert server.stop() == 0
    assert not folder.exists(), "the multiprocess folder is removed on exit"
    assert os.environ.get("PROMETHEUS_MULTIPROC_DIR") is None
