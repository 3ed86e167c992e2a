"""The UI benchmark runs end to end on a small database (`--runs 2000`) and prints every page."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.ui_pages import pages

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_the_ui_benchmark_prints_each_pages_graphql_time(database_url):
    env = {**os.environ, "DATABASE_URL": database_url}
    done = subprocess.run([sys.executable, "-m", "bench.ui_pages", "--runs", "2000", "--renders", "3"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    # Exit 1 means a page was over the 150 ms budget: timing on a shared test machine is not asserted.
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stdout[-3000:] + done.stderr[-3000:]
    assert "seeded 2,000 flow runs" in done.stdout
    table = done.stdout[done.stdout.index("p50 ms"):]
    for label, _path in pages({"group": "g", "run": "r", "task_run": "t"}):
        assert f"\n{label}" in table, label
