"""prometheus-client's multiprocess mode, for `headwater start --workers N`.

Each worker writes its values to files in PROMETHEUS_MULTIPROC_DIR (chosen by prometheus-client
when it is first imported, so the variable is set before the workers start) and the worker that
answers a scrape reads and sums them all. `headwater start` makes a fresh folder per start and
removes it on exit (`metrics_folder`). A worker that ended has its live gauges (the pool's)
removed: by itself when it stops, and by the next scrape when it was killed; its counters stay,
so totals never go back.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from typing import Iterator

ENV = "PROMETHEUS_MULTIPROC_DIR"
LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]*_(\d+)\.db$")


def folder() -> str | None:
    """The multiprocess folder of this process, or None (one process: metrics kept in memory)."""
    return os.environ.get(ENV) or None


@contextmanager
def metrics_folder() -> Iterator[str]:
    """A fresh folder exported as PROMETHEUS_MULTIPROC_DIR for the workers started inside; removed after."""
    path = tempfile.mkdtemp(prefix="headwater-metrics-")
    previous = os.environ.get(ENV)
    os.environ[ENV] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = previous
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def forget_dead_workers(path: str) -> list[int]:
    """Drop the live gauges of processes that no longer exist; returns their pids."""
    from prometheus_client import multiprocess

    dead = sorted({
        int(match.group(1))
        for name in glob.glob(os.path.join(path, "gauge_live*_*.db"))
        if (match := LIVE_GAUGE_FILE.search(name)) and not _alive(int(match.group(1)))
    })
    for pid in dead:
        multiprocess.mark_process_dead(pid, path)
    return dead


def forget_this_worker() -> None:
    """At a worker's clean stop: its pool is gone, so its live gauges go too."""
    path = folder()
    if path is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid(), path)
