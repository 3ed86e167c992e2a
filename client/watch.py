"""Follow a flow run from a terminal, as `prefect run --watch` does: its state changes and its
logs as they arrive, and, while no agent takes it, why not.

Logs are paged by the server's insert time (`created`), not by their own timestamp, because a
flow run's process sends its logs in batches: a line may arrive after a later-stamped one. Each
poll re-reads a short overlap and skips the ids already printed, so no line is lost or printed
twice.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from typing import Any, Callable, TextIO

from headwater.client.client import FINISHED_STATES
from headwater.client.errors import NotFound

# A run still Scheduled after this long gets a hint about the agents; it is re-checked this
# often after that, and printed again only when the explanation changes.
HINT_AFTER_SECONDS = 10.0
HINT_EVERY_SECONDS = 10.0
# An agent that has not asked for work for this long is treated as gone (agents poll every ~10 s).
AGENT_STALE_SECONDS = 120.0
# How far back each poll re-reads logs, to catch ones whose insert committed late.
LOG_OVERLAP = dt.timedelta(seconds=5)
LOG_PAGE = 500


def watch_flow_run(
    client: Any,
    flow_run_id: str,
    *,
    out: TextIO = sys.stdout,
    poll_seconds: float = 1.0,
    timeout: float | None = None,
) -> str:
    """Print the run's state changes and logs until it finishes; returns the final state name.
    Raises TimeoutError after `timeout` seconds and NotFound for an unknown run."""
    return _Watcher(client, flow_run_id, out, time.monotonic).run(poll_seconds, timeout)


def _parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _clock(value: str | None) -> str:
    moment = _parse(value) if value else dt.datetime.now(dt.timezone.utc)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"


def _labels(labels: list[str]) -> str:
    return "[" + ", ".join(labels) + "]"


def agent_hint(run: dict[str, Any], agents: list[dict[str, Any]], now: dt.datetime) -> tuple[Any, str]:
    """Why no agent takes a Scheduled run: (a key that changes when the reason does, the text).

    The server hands a run to an agent whose labels include all of the run's, and an unlabeled
    run only to an unlabeled agent (server/domain/flow_runs.py, get_runs_in_queue)."""
    scheduled = run.get("scheduled_start_time")
    if scheduled and _parse(scheduled) > now:
        wait = int((_parse(scheduled) - now).total_seconds())
        return ("future", scheduled), f"the run is scheduled to start at {_clock(scheduled)} (in {wait}s)"
    if not agents:
        return ("no agents",), "no agent has ever queried this server; start one (e.g. `prefect agent local start`)"
    run_labels = sorted(set(run.get("labels") or []))

    def seen(agent: dict[str, Any]) -> float | None:
        last = agent.get("last_queried")
        return None if not last else (now - _parse(last)).total_seconds()

    def describe(agent: dict[str, Any]) -> str:
        age = seen(agent)
        when = "never seen" if age is None else f"last seen {_ago(age)}"
        return f"{agent.get('name') or agent['id']} {_labels(sorted(agent.get('labels') or []))} {when}"

    listing = "; agents: " + ", ".join(describe(a) for a in agents)
    live = [a for a in agents if seen(a) is not None and seen(a) <= AGENT_STALE_SECONDS]
    names = tuple(sorted((a.get("name") or a["id"], tuple(sorted(a.get("labels") or []))) for a in agents))
    if not live:
        minutes = max(1, int(AGENT_STALE_SECONDS // 60))
        return ("stale", names), f"no agent has queried in the last {minutes} minute(s){listing}"

    def fits(agent: dict[str, Any]) -> bool:
        labels = set(agent.get("labels") or [])
        return set(run_labels) <= labels and (bool(run_labels) or not labels)

    takers = [a for a in live if fits(a)]
    live_names = tuple(sorted(a.get("name") or a["id"] for a in live))
    if takers:
        who = ", ".join(describe(a) for a in takers)
        return ("waiting", live_names), f"agent(s) that can take it: {who}; waiting for one to submit it"
    if not run_labels:
        return ("unlabeled", live_names), f"the run has no labels and only an agent without labels takes it{listing}"
    known = set().union(*(set(a.get("labels") or []) for a in live))
    missing = [label for label in run_labels if label not in known]
    if missing:
        return ("missing", tuple(missing), live_names), f"no agent has label(s) {', '.join(missing)}{listing}"
    return (
        ("split", tuple(run_labels), live_names),
        f"no single agent has all of the run's labels {_labels(run_labels)}{listing}",
    )


class _Watcher:
    def __init__(self, client: Any, flow_run_id: str, out: TextIO, monotonic: Callable[[], float]):
        self.client = client
        self.flow_run_id = flow_run_id
        self.out = out
        self.monotonic = monotonic
        self.seen_states: set[str] = set()
        self.seen_logs: set[str] = set()
        self.log_since: dt.datetime | None = None
        self.task_names: dict[str, str] = {}
        self.scheduled_since: float | None = None
        self.next_hint_at = 0.0
        self.last_hint: Any = None

    def run(self, poll_seconds: float, timeout: float | None) -> str:
        deadline = None if timeout is None else self.monotonic() + timeout
        while True:
            run = self.client.get_flow_run(self.flow_run_id)
            if run is None:
                raise NotFound(f"Flow run {self.flow_run_id} not found.")
            self.print_news(self.new_states() + self.new_logs())
            if run["state"] in FINISHED_STATES:
                # The run's process may still be flushing its last batch of logs.
                time.sleep(min(poll_seconds, 1.0))
                self.print_news(self.new_logs())
                return run["state"]
            self.maybe_hint(run)
            if deadline is not None and self.monotonic() >= deadline:
                raise TimeoutError(f"Flow run {self.flow_run_id} is still {run['state']} after {timeout:g} s.")
            time.sleep(poll_seconds if deadline is None else max(0.0, min(poll_seconds, deadline - self.monotonic())))

    def line(self, timestamp: str | None, kind: str, text: str) -> None:
        print(f"{_clock(timestamp)} | {kind:<8} | {text}", file=self.out, flush=True)

    def print_news(self, news: list[tuple[str, str, str]]) -> None:
        """(timestamp, kind, text) lines, oldest first: a poll's states and logs interleaved."""
        for timestamp, kind, text in sorted(news, key=lambda item: _parse(item[0])):
            self.line(timestamp, kind, text)

    def new_states(self) -> list[tuple[str, str, str]]:
        news = []
        for state in self.client.get_flow_run_state_history(self.flow_run_id):
            if state["id"] not in self.seen_states:
                self.seen_states.add(state["id"])
                message = f": {state['message']}" if state.get("message") else ""
                news.append((state["timestamp"], "STATE", f"{state['state']}{message}"))
        return news

    def new_logs(self) -> list[tuple[str, str, str]]:
        since = None if self.log_since is None else (self.log_since - LOG_OVERLAP).isoformat()
        news = []
        offset = 0
        while True:
            page = self.client.get_logs_since(self.flow_run_id, since, limit=LOG_PAGE, offset=offset)
            for entry in page:
                created = _parse(entry["created"])
                self.log_since = created if self.log_since is None else max(self.log_since, created)
                if entry["id"] not in self.seen_logs:
                    self.seen_logs.add(entry["id"])
                    task = self.task_name(entry.get("task_run_id"))
                    text = f"{task} | " if task else ""
                    news.append((entry["timestamp"], entry.get("level") or "", text + (entry.get("message") or "")))
            if len(page) < LOG_PAGE:
                return news
            offset += LOG_PAGE

    def task_name(self, task_run_id: str | None) -> str | None:
        if not task_run_id:
            return None
        if task_run_id not in self.task_names:
            for task_run in self.client.get_task_runs(self.flow_run_id):
                name = (task_run.get("task") or {}).get("name") or task_run.get("name") or ""
                index = task_run.get("map_index")
                self.task_names[task_run["id"]] = f"{name}[{index}]" if index is not None and index >= 0 else name
            self.task_names.setdefault(task_run_id, "")  # gone meanwhile: ask once, not per line
        return self.task_names[task_run_id] or None

    def maybe_hint(self, run: dict[str, Any]) -> None:
        if run["state"] != "Scheduled":
            self.scheduled_since = None
            return
        now = self.monotonic()
        if self.scheduled_since is None:
            self.scheduled_since = now
            self.next_hint_at = now + HINT_AFTER_SECONDS
        if now < self.next_hint_at:
            return
        self.next_hint_at = now + HINT_EVERY_SECONDS
        key, text = agent_hint(run, self.client.list_agents(), dt.datetime.now(dt.timezone.utc))
        if key != self.last_hint:
            self.last_hint = key
            self.line(None, "HINT", text)
