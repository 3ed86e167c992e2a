"""The benchmark command keeps working: a quick run of two sections writes figures with p50,
p99 and both ratios, without a single error answer; and the figures' arithmetic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from bench import documents
from bench.loops import Sample
from bench.run import Figure

ROOT = Path(__file__).resolve().parent.parent


# `pure`: the suite starts no Postgres for it; the command starts its own embedded one.
@pytest.mark.slow
@pytest.mark.pure
def test_quick_run_writes_figures_with_percentiles_and_ratios(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    skip = ["states", "reads", "scheduler", "queue", "coldstart", "scaling"]
    env = {k: v for k, v in os.environ.items() if k not in ("HEADWATER_BENCH_DATABASE_URL",)}
    completed = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--seconds", "1", "--json", str(out), "--skip", *skip],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    result = json.loads(out.read_text())
    assert result["machine"]["cpus"] >= 1 and len(result["machine"]["load_average_start"]) == 3
    figures = {(f["section"], f["name"], f["concurrency"]): f for f in result["figures"]}
    assert {(section, concurrency) for section, _, concurrency in figures} == {
        ("create", 1), ("create", 32), ("heartbeats", 32), ("memory", None)}
    assert len(figures) == 6  # two creates, two heartbeats, RSS idle and loaded
    for (section, _, _), figure in figures.items():
        assert figure["p50"] > 0 and figure["p99"] >= figure["p50"], figure
        assert "errors" not in figure, figure
        for limit in ("asyncpg", "floor"):
            assert figure["limits"][limit]["p50"] > 0, figure
            assert "errors" not in figure["limits"][limit], figure
            assert figure["ratios"][limit]["p50"] > 0, figure
            if section != "memory":
                assert figure["ratios"][limit]["rps"] > 0, figure
                assert figure["rps"] > 0, figure
    assert "create_flow_run" in completed.stdout and "floor" in completed.stdout


@pytest.mark.pure
def test_ratios_are_limit_throughput_over_headwater_and_latency_over_limit() -> None:
    figure = Figure("create", "x", concurrency=32)
    headwater = Sample([10.0] * 100, seconds=1.0)  # 100 req/s, 10 ms
    floor = Sample([2.0] * 400, seconds=1.0)  # 400 req/s, 2 ms
    database = Sample([1.0] * 1000, seconds=1.0)
    figure.add_round(headwater, floor=floor, asyncpg=database)
    row = figure.as_dict()
    assert row["rps"] == 100 and row["p50"] == 10 and row["p99"] == 10
    assert row["ratios"]["floor"] == {"p50": 5.0, "p99": 5.0, "rps": 4.0}
    assert row["ratios"]["asyncpg"] == {"p50": 10.0, "p99": 10.0, "rps": 10.0}


@pytest.mark.pure
def test_documents_are_the_captured_client_documents_with_new_ids() -> None:
    run, task = str(uuid.uuid4()), str(uuid.uuid4())
    info = json.loads(documents.task_run_info(run, task))
    assert f'flow_run_id: "{run}", task_id: "{task}", map_index: -1' in info["query"]
    assert info["variables"] == "null"  # the client writes ids as literals
    walk = json.loads(documents.set_flow_run_state(run, "Submitted", 3))
    state = json.loads(walk["variables"])["input"]["states"][0]
    assert state["flow_run_id"] == run and state["version"] == 3
    assert state["state"]["type"] == "Submitted" and state["state"]["state"]["type"] == "Scheduled"
    create = json.loads(json.loads(documents.create_flow_run(run))["variables"])["input"]
    assert create["flow_id"] == run and len(create["idempotency_key"]) == 32


@pytest.mark.pure
def test_compare_trees_reads_wrk_latencies_in_every_unit() -> None:
    from bench.compare_trees import _ms

    assert (_ms("873.00us"), _ms("12.34ms"), _ms("1.02s")) == (pytest.approx(0.873), 12.34, 1020.0)


@pytest.mark.slow
@pytest.mark.pure
def test_request_cpu_measures_every_document_both_ways(tmp_path: Path) -> None:
    out = tmp_path / "cpu.json"
    env = {k: v for k, v in os.environ.items() if k not in ("HEADWATER_BENCH_DATABASE_URL",)}
    completed = subprocess.run(
        [sys.executable, "-m", "bench.request_cpu", "--requests", "20", "--rounds", "1", "--json", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    rows = json.loads(out.read_text())
    assert len(rows) == 7 and any(row["document"].startswith("flow_run_by_pk") for row in rows)
    for row in rows:
        assert row["off_ms"] > 0 and row["on_ms"] > 0 and len(row["rounds"]["on"]) == 1, row
    assert "| document | plans off | plans on |" in completed.stdout
