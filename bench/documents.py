"""The Prefect 1.4.1 client's own request bodies, taken from the recorded wire capture
(tests/wire/prefect1-capture.jsonl) with its ids swapped for the benchmark's.

The client writes ids into its hottest documents as literals (heartbeats, the flow runner's
reads), so every run gets a document of its own; the others carry `variables` as a JSON string,
as the client sends them. `update_task_run_heartbeat` is not in the capture (Core 1.4.1 does not
send it); it is written in the same style as the flow-run heartbeat.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import re
import uuid
from pathlib import Path
from typing import Any

CAPTURE = Path(__file__).resolve().parent.parent / "tests" / "wire" / "prefect1-capture.jsonl"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

TASK_RUN_HEARTBEAT = """mutation {
    update_task_run_heartbeat(input: { task_run_id: "%s" }) {
        success
    }
}"""


@functools.cache
def captured() -> list[dict[str, Any]]:
    records = (json.loads(line) for line in CAPTURE.read_text().splitlines() if line.strip())
    return [record["body"] for record in records if "body" in record]


def find(marker: str, where=lambda body: True) -> dict[str, Any]:
    for body in captured():
        if marker in body["query"] and where(body):
            return body
    raise LookupError(f"no captured request holds {marker!r}")


def variables(body: dict[str, Any]) -> dict[str, Any]:
    return json.loads(body["variables"])


def encode(query: str, variables: Any = None) -> str:
    """A request body as the client sends it: `variables` is itself a JSON string."""
    return json.dumps({"query": query, "variables": json.dumps(variables)})


def with_ids(query: str, *ids: str) -> str:
    """The captured document with its literal ids replaced, in order of first appearance."""
    originals = list(dict.fromkeys(UUID.findall(query)))
    if len(originals) != len(ids):
        raise ValueError(f"the document holds {len(originals)} ids, {len(ids)} given")
    for original, new in zip(originals, ids):
        query = query.replace(original, str(new))
    return query


def create_flow_run(flow_id: str, idempotency_key: str | None = None) -> str:
    """`Client.create_flow_run(flow_id, idempotency_key=...)` as the agent-side client sends it."""
    body = find("create_flow_run(", lambda b: "labels" not in variables(b)["input"])
    values = variables(body)
    values["input"]["flow_id"] = str(flow_id)
    values["input"]["idempotency_key"] = idempotency_key or uuid.uuid4().hex
    return encode(body["query"], values)


def set_flow_run_state(flow_run_id: str, state: str, version: int | None) -> str:
    """One step of a run's walk: Submitted (by the agent), Running and Success (by the flow runner)."""
    wanted = {"Submitted": "Submitted", "Running": "Running", "Success": "Success"}[state]

    def match(body: dict[str, Any]) -> bool:
        states = variables(body)["input"]["states"]
        return "flow_run_id" in states[0] and states[0]["state"]["type"] == wanted

    body = find("set_flow_run_states(", match)
    values = copy.deepcopy(variables(body))
    entry = values["input"]["states"][0]
    entry["flow_run_id"] = str(flow_run_id)
    entry["version"] = version
    if state == "Submitted":
        entry["state"]["state"]["start_time"] = dt.datetime.now(dt.UTC).isoformat()
    return encode(body["query"], values)


def flow_run_heartbeat(flow_run_id: str) -> str:
    return encode(with_ids(find("update_flow_run_heartbeat(")["query"], flow_run_id))


def task_run_heartbeat(task_run_id: str) -> str:
    return encode(TASK_RUN_HEARTBEAT % task_run_id)


def flow_run_info(flow_run_id: str) -> str:
    """The flow runner's `get_flow_run_info` read."""
    return encode(with_ids(find("flow_run_by_pk(", lambda b: "task_runs(" in b["query"])["query"], flow_run_id))


def task_run_info(flow_run_id: str, task_id: str) -> str:
    """The task runner's `get_task_run_info` (get-or-create of an existing task run, map index -1)."""
    body = find("get_or_create_task_run_info(", lambda b: "map_index: -1" in b["query"])
    return encode(with_ids(body["query"], flow_run_id, task_id))


def runs_in_queue(tenant_id: str, labels: list[str]) -> str:
    """The agent's poll, `before` now."""
    body = find("get_runs_in_queue(")
    values = variables(body)
    values["input"].update(tenant_id=str(tenant_id), labels=labels,
                           before=dt.datetime.now(dt.UTC).isoformat())
    return encode(body["query"], values)
