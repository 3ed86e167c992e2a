"""`watch_flow_run` against a real server: state changes and logs stream once each, in order,
and a run no agent can take gets one hint per reason."""

from __future__ import annotations

import datetime as dt
import io
import threading
import time
from typing import Any

import pytest

from headwater.client import Client
from headwater.client import watch
from headwater.client.client import Request
from headwater.client.watch import agent_hint, watch_flow_run
from tests import factories as f

pytestmark = pytest.mark.slow

SET_STATES = "mutation($input: set_flow_run_states_input!) { set_flow_run_states(input: $input) { states { id } } }"
WRITE_LOGS = "mutation($input: write_run_logs_input!) { write_run_logs(input: $input) { success } }"
REGISTER_AGENT = "mutation($input: register_agent_input!) { register_agent(input: $input) { id } }"


def set_state(hw: Client, run_id: str, state: str, message: str) -> None:
    hw.execute(Request(SET_STATES, {"input": {"states": [
        {"flow_run_id": run_id, "state": {"type": state, "message": message}}]}}))


def write_logs(hw: Client, run_id: str, *logs: dict[str, Any]) -> None:
    hw.execute(Request(WRITE_LOGS, {"input": {"logs": [{"flow_run_id": run_id, **log} for log in logs]}}))


def register_agent(hw: Client, name: str, labels: list[str]) -> str:
    return hw.execute(Request(REGISTER_AGENT, {"input": {"type": "LocalAgent", "name": name, "labels": labels}}))


class Watch(threading.Thread):
    """watch_flow_run in a thread, so the test can drive the run meanwhile."""

    def __init__(self, url: str, run_id: str, timeout: float = 60):
        super().__init__(daemon=True)
        self.url, self.run_id, self.timeout = url, run_id, timeout
        self.out = io.StringIO()
        self.result: Any = None

    def run(self) -> None:
        with Client(self.url) as hw:
            try:
                self.result = watch_flow_run(hw, self.run_id, out=self.out, poll_seconds=0.2, timeout=self.timeout)
            except Exception as exc:  # handed to the test
                self.result = exc

    def wait_for(self, text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.out.getvalue():
            assert time.monotonic() < deadline, f"{text!r} not printed; got:\n{self.out.getvalue()}"
            time.sleep(0.05)


@pytest.fixture
def hw(live_server):
    with Client(live_server.url) as client:
        client.create_project("etl")
        yield client


def test_streams_states_and_logs_once_in_order(live_server, hw):
    flow_id = hw.register_flow(f.flow("load"), "etl")
    run_id = hw.create_flow_run(flow_id)
    task_run_id = next(t["id"] for t in hw.get_task_runs(run_id) if t["task"]["slug"] == "extract-1")
    watcher = Watch(live_server.url, run_id)
    watcher.start()
    watcher.wait_for("Scheduled")
    set_state(hw, run_id, "Running", "Started by test")
    now = dt.datetime.now(dt.timezone.utc)
    # The later line arrives first, the earlier in a later batch: both are printed once.
    write_logs(hw, run_id, {"timestamp": (now + dt.timedelta(seconds=1)).isoformat(), "level": "INFO",
                            "message": "second line", "task_run_id": task_run_id})
    watcher.wait_for("second line")
    write_logs(hw, run_id, {"timestamp": now.isoformat(), "level": "WARNING", "message": "late line"})
    watcher.wait_for("late line")
    time.sleep(0.6)  # a few more polls re-read the overlap: nothing is printed again
    write_logs(hw, run_id, {"level": "ERROR", "message": "last line"})
    set_state(hw, run_id, "Success", "All reference tasks succeeded.")
    watcher.join(30)
    assert watcher.result == "Success", watcher.out.getvalue()

    lines = watcher.out.getvalue().splitlines()
    texts = [line.split(" | ", 1)[1] for line in lines]
    assert texts == [
        "STATE    | Scheduled: Flow run scheduled.",
        "STATE    | Running: Started by test",
        "INFO     | extract | second line",
        "WARNING  | late line",
        "ERROR    | last line",
        "STATE    | Success: All reference tasks succeeded.",
    ], lines
    assert all(len(line.split(" | ")[0]) == len("2026-01-01 00:00:00") for line in lines)


def test_timeout_and_unknown_run(live_server, hw):
    run_id = hw.create_flow_run(hw.register_flow(f.flow("load"), "etl"))
    with pytest.raises(TimeoutError, match="still Scheduled after 0.5 s"):
        watch_flow_run(hw, run_id, out=io.StringIO(), poll_seconds=0.1, timeout=0.5)
    with pytest.raises(Exception, match="not found"):
        watch_flow_run(hw, "00000000-0000-0000-0000-000000000000", out=io.StringIO(), timeout=1)


def test_hints_why_no_agent_takes_the_run(live_server, hw, monkeypatch):
    monkeypatch.setattr(watch, "HINT_AFTER_SECONDS", 0.3)
    monkeypatch.setattr(watch, "HINT_EVERY_SECONDS", 0.2)
    flow_id = hw.register_flow(f.flow("load"), "etl")
    run_id = hw.create_flow_run(flow_id, labels=["gpu", "eu"])
    watcher = Watch(live_server.url, run_id)
    watcher.start()
    watcher.wait_for("no agent has ever queried this server")
    register_agent(hw, "cpu-box", ["eu"])
    watcher.wait_for("no agent has label(s) gpu; agents: cpu-box [eu] last seen")
    register_agent(hw, "gpu-box", ["gpu"])
    watcher.wait_for("no single agent has all of the run's labels [eu, gpu]")
    time.sleep(1.0)  # several re-checks with the same reason
    set_state(hw, run_id, "Cancelled", "done")
    watcher.join(30)
    assert watcher.result == "Cancelled"
    hints = [line for line in watcher.out.getvalue().splitlines() if "| HINT " in line]
    assert len(hints) == 3, "one hint per change, not one per poll:\n" + "\n".join(hints)


@pytest.mark.pure
def test_agent_hint_reasons():
    now = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
    ago = lambda seconds: (now - dt.timedelta(seconds=seconds)).isoformat()
    run = {"labels": [], "scheduled_start_time": ago(30)}
    stale = [{"id": "1", "name": "old", "labels": [], "last_queried": ago(3600)}]
    assert agent_hint(run, stale, now)[1] == (
        "no agent has queried in the last 2 minute(s); agents: old [] last seen 60m ago"
    )
    labeled = [{"id": "2", "name": "a", "labels": ["x"], "last_queried": ago(3)}]
    assert agent_hint(run, labeled, now)[1].startswith("the run has no labels and only an agent without labels")
    assert "agent(s) that can take it: a [x] last seen 3s ago" in agent_hint({**run, "labels": ["x"]}, labeled, now)[1]
    future = {**run, "scheduled_start_time": (now + dt.timedelta(seconds=90)).isoformat()}
    assert "(in 90s)" in agent_hint(future, labeled, now)[1]
