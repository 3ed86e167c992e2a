"""The reads the Prefect 1 web UI (legacy-ui, Server mode) depends on, one `Read` per page or
panel, rendered from headwater's own schema (tests/graphql/ui_selection.py).

What is taken from the UI is facts only: which root fields each page reads, which relationships
it follows, which argument kinds and variable types it sends. Each read selects every scalar
field of every type on its paths (and every aggregate), so it covers whatever the UI selects
there. Argument values (or input-object fields) that are functions of the seed
(tests/ui_seed.py) go as variables; the others are written into the document. `expect` says what the seed guarantees the answer holds.
test_ui_read_documents.py runs each one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.graphql.ui_selection import Part, render
from tests.ui_seed import Seed

Data = dict[str, Any]


@dataclass(frozen=True)
class Read:
    id: str
    parts: tuple[Part, ...]
    expect: Callable[[Data, Seed], Any]
    document: str = field(init=False)
    variables: Callable[[Seed], dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        document, variables = render(self.id, self.parts)
        object.__setattr__(self, "document", document)
        object.__setattr__(self, "variables", variables)


def read(id: str, *parts: Part, expect: Callable[[Data, Seed], Any]) -> Read:
    return Read(id, parts, expect)


def part(root: str, *follow: str, alias: str | None = None, **args: Any) -> Part:
    """`args` keys use `__` for the dots of a relationship path: `task_runs__where`."""
    return Part(root, follow, {key.replace("__", "."): value for key, value in args.items()}, alias)


def count(data: Mapping[str, Any], key: str) -> int:
    return data[key]["aggregate"]["count"]


def ids(rows: Iterable[Mapping[str, Any]], key: str = "id") -> list[str]:
    return [row[key] for row in rows]


def day_back(seed: Seed) -> str:
    return (seed.now - dt.timedelta(days=1)).isoformat()


def day_ahead(seed: Seed) -> str:
    return (seed.now + dt.timedelta(days=1)).isoformat()


def hour_ahead(seed: Seed) -> str:
    return (seed.now + dt.timedelta(hours=1)).isoformat()


def eq(value: Any) -> dict[str, Any]:
    return {"_eq": value}


IN_FLIGHT = ["Running", "Submitted", "Cancelling"]
FINISHED = ["Success", "Failed"]

# Every state the dashboard and the flow page count runs in (the UI shows one tile per state).
DASHBOARD_STATES = ["Success", "Running", "Pending", "Failed", "ClientFailed", "Submitted", "Queued", "Resume",
                    "Retrying", "Looped", "Cached", "Mapped", "TimedOut", "TriggerFailed", "Skipped", "Finished",
                    "Cancelled"]


def state_tiles(where: Callable[[Seed, str], dict]) -> list[Part]:
    return [part("flow_run_aggregate", alias=f"n_{state.lower()}", where=lambda s, state=state: where(s, state))
            for state in DASHBOARD_STATES]


TASK_GRAPH = ("task.upstream_edges.upstream_task", "task.downstream_edges.downstream_task")


READS: list[Read] = [
    # --- start-up and team switcher ------------------------------------------------------------
    read("startup",
         part("api"), part("reference_data"), part("tenant", order_by={"name": "asc"}), part("project"),
         part("tenant", alias="slug_taken", where=lambda s: {"slug": eq(s.tenant_slug)}),
         expect=lambda d, s: d["api"]["backend"] == "SERVER" and "Failed" in d["reference_data"]["state_info"]
         and ids(d["tenant"]) == [s.tenant_id] and d["project"][0]["tenant_id"] == s.tenant_id
         and ids(d["slug_taken"]) == [s.tenant_id]),

    # --- dashboard -----------------------------------------------------------------------------
    read("dashboard-summary",
         part("flow_aggregate", where=lambda s: {"project_id": eq(s.project_id), "archived": eq(False)}),
         part("flow_run", "flow", distinct_on=["flow_id"], order_by=[{"flow_id": "asc"}, {"scheduled_start_time": "desc"}],
              where=lambda s: {"tenant_id": eq(s.tenant_id), "flow": {"project_id": eq(s.project_id)},
                               "state": eq("Failed"), "scheduled_start_time": {"_gte": day_back(s)}}),
         part("task_run", "task.flow", distinct_on="task_id",
              where=lambda s: {"state": eq("Failed"), "updated": {"_gte": day_back(s)}}),
         part("flow", "flow_group", "project", limit=10, offset=0, order_by=lambda s: [{"name": "asc"}],
              where=lambda s: {"_and": [{"archived": eq(False)}, {"name": {"_ilike": "%ui%"}}]}),
         expect=lambda d, s: count(d, "flow_aggregate") == 1 and ids(d["flow_run"], "flow_id") == [s.flow_id]
         and d["flow"][0]["parameters"][0]["name"] == "n" and d["flow"][0]["schedule"]
         and d["flow"][0]["project"]["name"] == s.project_name and d["flow"][0]["flow_group"]["id"] == s.flow_group_id
         and [r["task"]["id"] for r in d["task_run"]] == [s.mapped_task_id]
         and d["task_run"][0]["task"]["flow"]["name"] == s.flow_name),
    read("dashboard-state-tiles",
         *state_tiles(lambda s, state: {"flow": {"project_id": eq(s.project_id)}, "state": eq(state),
                                        "scheduled_start_time": {"_gte": day_back(s)}}),
         expect=lambda d, s: count(d, "n_success") == 1 and count(d, "n_failed") == 1 and count(d, "n_skipped") == 0
         and d["n_success"]["aggregate"]["max"]["name"] == "ui-success-run"),
    read("dashboard-activity",
         part("flow_run", "flow", alias="changed", limit=10, order_by={"updated": "desc_nulls_last"},
              where=lambda s: {"flow": {"project_id": eq(s.project_id)}, "state_timestamp": {"_gte": day_back(s)},
                               "state": {"_nin": ["Scheduled"]}}),
         part("flow_run", "flow", alias="in_flight", order_by={"start_time": "desc"},
              where=lambda s: {"flow": {"project_id": eq(s.project_id)}, "state": {"_in": IN_FLIGHT}}),
         part("flow_run", "flow", alias="coming_up", order_by=[{"scheduled_start_time": "asc"}, {"flow": {"name": "asc"}}],
              where=lambda s: {"flow": {"project_id": eq(s.project_id)}, "state": eq("Scheduled")}),
         expect=lambda d, s: {r["state"] for r in d["changed"]} == set(FINISHED) and d["in_flight"] == []
         and d["coming_up"][0]["flow"]["name"] == s.flow_name and d["coming_up"][0]["labels"] == ["dev"]),
    read("dashboard-timeline",
         part("flow_run", alias="recent", limit=lambda s: 50, order_by={"scheduled_start_time": "desc"},
              where=lambda s: {"flow": {"project_id": eq(s.project_id)}, "state": {"_neq": "Scheduled"},
                               "scheduled_start_time": {"_gte": day_back(s)}}),
         part("flow_run", alias="next", limit=10, order_by={"scheduled_start_time": "asc_nulls_last"},
              where=lambda s: {"flow": {"project_id": eq(s.project_id)}, "state": eq("Scheduled")}),
         part("flow_by_pk", "project", id=lambda s: s.flow_id),
         expect=lambda d, s: len(d["recent"]) == 2 and len(d["next"]) == 10
         and d["flow_by_pk"]["project"]["name"] == s.project_name),

    # --- agents --------------------------------------------------------------------------------
    read("agents",
         part("agent", "flow_runs", flow_runs__order_by={"name": "asc"}),
         part("flow_run", "flow", alias="queue", where={"state": {"_eq": "Scheduled"}}),
         expect=lambda d, s: ids(d["agent"]) == [s.agent_id] and d["agent"][0]["name"] == "ui-agent"
         and len(d["agent"][0]["flow_runs"]) == 2 and s.scheduled_run_id in ids(d["queue"])),
    read("agent-runs",
         part("flow_run", "flow", alias="active", order_by={"start_time": "desc"},
              where=lambda s: {"agent_id": eq(s.agent_id), "state": {"_in": IN_FLIGHT}}),
         part("flow_run", alias="recent", limit=10, order_by={"start_time": "desc_nulls_last"},
              where=lambda s: {"_and": [{"state": {"_neq": "Scheduled"}}, {"agent_id": eq(s.agent_id)}],
                               "_or": [{"scheduled_start_time": {"_gt": day_back(s)}},
                                       {"start_time": {"_gt": day_back(s)}}]}),
         part("flow_run", alias="timeline", limit=100, order_by={"scheduled_start_time": "desc"},
              where=lambda s: {"agent_id": eq(s.agent_id)}),
         expect=lambda d, s: d["active"] == [] and ids(d["recent"]) == [s.failed_run_id, s.success_run_id]
         and len(d["timeline"]) == 2),
    read("agent-run-table",
         part("flow_run_aggregate", where=lambda s: {"agent_id": eq(s.agent_id), "name": {"_ilike": "%ui-%"},
                                                    "state": {"_in": FINISHED, "_neq": "Scheduled"}}),
         part("flow_run", "flow", limit=lambda s: 5, offset=lambda s: 0, order_by=lambda s: [{"start_time": "desc"}],
              where=lambda s: {"agent_id": eq(s.agent_id), "name": {"_ilike": "%fail%"},
                               "state": {"_in": ["Failed"], "_neq": "Scheduled"}}),
         expect=lambda d, s: count(d, "flow_run_aggregate") == 2 and ids(d["flow_run"]) == [s.failed_run_id]),

    # --- flow page -----------------------------------------------------------------------------
    read("flow-group-page",
         part("flow_group_by_pk", "flows.project", "flows_aggregate", id=lambda s: s.flow_group_id,
              flows_aggregate__where=lambda s: {"version": eq(1)}),
         part("cloud_hook", where=lambda s: {"version_group_id": eq(s.version_group_id)}),
         expect=lambda d, s: d["flow_group_by_pk"]["flows"][0]["project"]["id"] == s.project_id
         and count(d["flow_group_by_pk"], "flows_aggregate") == 1 and ids(d["cloud_hook"]) == [s.cloud_hook_id]),
    read("flow-page",
         part("flow_by_pk", "flow_group", "project", "tasks_aggregate", id=lambda s: s.flow_id),
         part("flow", alias="same_version_group", where=lambda s: {"version_group_id": eq(s.version_group_id)}),
         part("flow_group_by_pk", "flows", alias="versions", id=lambda s: s.flow_group_id,
              flows__order_by=lambda s: [{"version": "desc"}], flows__limit=lambda s: 10, flows__offset=lambda s: 0,
              flows__where=lambda s: {"version": eq(1)}),
         expect=lambda d, s: d["flow_by_pk"]["flow_group_id"] == s.flow_group_id and d["flow_by_pk"]["version"] == 1
         and count(d["flow_by_pk"], "tasks_aggregate") == 4 and ids(d["same_version_group"]) == [s.flow_id]
         and ids(d["versions"]["flows"]) == [s.flow_id]),
    read("flow-state-tiles",
         *state_tiles(lambda s, state: {"flow": {"flow_group_id": eq(s.flow_group_id), "id": eq(s.flow_id)},
                                        "updated": {"_gte": day_back(s)}, "state": eq(state)}),
         expect=lambda d, s: count(d, "n_success") == 1 and count(d, "n_failed") == 1 and count(d, "n_cancelled") == 0),
    read("flow-run-table",
         part("flow_run_aggregate", where=lambda s: {"flow": {"flow_group_id": eq(s.flow_group_id)},
                                                    "name": {"_ilike": "%"}, "state": {"_in": FINISHED + ["Scheduled"]}}),
         part("flow_run", limit=2, offset=1,
              order_by=[{"scheduled_start_time": "desc_nulls_first"}, {"name": "asc"}],
              where=lambda s: {"flow": {"id": eq(s.flow_id)}, "name": {"_ilike": "%run"},
                               "state": {"_in": FINISHED + ["Scheduled"]}}),
         expect=lambda d, s: count(d, "flow_run_aggregate") >= 3 and len(d["flow_run"]) == 2),
    read("flow-tasks",
         part("task_aggregate", order_by=lambda s: [{"name": "asc"}],
              where=lambda s: {"flow_id": eq(s.flow_id), "name": {"_ilike": "%"}}),
         part("task", limit=lambda s: 10, offset=lambda s: 0, order_by=lambda s: [{"name": "desc"}],
              where=lambda s: {"flow_id": eq(s.flow_id), "name": {"_ilike": "%a%"}}),
         expect=lambda d, s: count(d, "task_aggregate") == 4
         and [t["name"] for t in d["task"]] == ["square", "load", "extract"]),
    read("flow-activity",
         part("flow_run", "task_runs.task", alias="errors", limit=50, order_by=[{"updated": "desc"}],
              where=lambda s: {"updated": {"_gte": day_back(s)}, "flow": {"flow_group_id": eq(s.flow_group_id)}},
              task_runs__where={"state": {"_eq": "Failed"}}),
         part("flow_run", alias="changed", limit=10, order_by={"updated": "desc_nulls_last"},
              where=lambda s: {"flow": {"flow_group_id": eq(s.flow_group_id)}, "state": eq("Failed")}),
         part("flow_run", alias="last", limit=1, order_by={"scheduled_start_time": "desc"},
              where=lambda s: {"flow_id": eq(s.flow_id), "state": {"_neq": "Scheduled"}}),
         expect=lambda d, s: any(r["task_runs"] and r["id"] == s.failed_run_id for r in d["errors"])
         and ids(d["changed"]) == [s.failed_run_id] and len(d["last"]) == 1),
    read("flow-timeline",
         part("flow_run", alias="timeline", limit=100, order_by={"scheduled_start_time": "desc"},
              where=lambda s: {"flow": {"flow_group_id": eq(s.flow_group_id)}}),
         part("flow_run", alias="upcoming", order_by={"scheduled_start_time": "asc"},
              where=lambda s: {"flow": {"id": eq(s.flow_id)}, "state": eq("Scheduled")}),
         expect=lambda d, s: {s.success_run_id, s.failed_run_id} <= set(ids(d["timeline"]))
         and d["upcoming"][0]["labels"] == ["dev"]),

    # --- flow-run page -------------------------------------------------------------------------
    read("flow-run-page",
         part("flow_run_by_pk", "states", "flow.project", "agent", id=lambda s: s.failed_run_id,
              states__order_by={"timestamp": "asc"}),
         part("task_run", alias="failing", where=lambda s: {"flow_run_id": eq(s.failed_run_id),
                                                             "state": {"_in": ["Failed", "TriggerFailed"]}}),
         expect=lambda d, s: d["flow_run_by_pk"]["agent"]["id"] == s.agent_id
         and d["flow_run_by_pk"]["parameters"] == {"n": 3}
         and [x["state"] for x in d["flow_run_by_pk"]["states"]] == ["Scheduled", "Submitted", "Running", "Failed"]
         and d["flow_run_by_pk"]["flow"]["project"]["id"] == s.project_id and len(d["failing"]) == 2),
    read("flow-run-task-runs",
         part("task_run_aggregate", where=lambda s: {
             "flow_run_id": eq(s.success_run_id), "updated": {"_gte": day_back(s)},
             "_or": [{"task": {"name": {"_ilike": "%square%"}}, "state": {"_in": ["Success", "Mapped"]}}]}),
         part("flow_run", "task_runs.task", where=lambda s: {"id": eq(s.success_run_id)},
              task_runs__where=lambda s: {"task": {"name": {"_ilike": "%"}}, "state": {"_in": ["Success", "Mapped"]}},
              task_runs__order_by=lambda s: [{"task": {"name": "asc"}}, {"map_index": "asc"}],
              task_runs__limit=lambda s: 20, task_runs__offset=lambda s: 0),
         part("task_run", "task", alias="changed", limit=10, order_by={"state_timestamp": "desc_nulls_last"},
              where=lambda s: {"flow_run_id": eq(s.failed_run_id), "state_timestamp": {"_gte": day_back(s)}}),
         expect=lambda d, s: count(d, "task_run_aggregate") == 4 and len(d["changed"]) == 7
         and [t["task"]["name"] for t in d["flow_run"][0]["task_runs"]][:2] == ["extract", "load"]),
    read("flow-run-timeline",
         part("task_run", "states", where=lambda s: {"flow_run_id": eq(s.success_run_id), "map_index": eq(-1)}),
         part("task", alias="tasks", where=lambda s: {"flow_id": eq(s.flow_id)}),
         part("task_run", alias="children", where=lambda s: {"_and": [
             {"flow_run_id": eq(s.success_run_id)}, {"map_index": eq(1)}, {"map_index": {"_gte": 0}}]}),
         expect=lambda d, s: len(d["task_run"]) == 4 and all(t["states"] for t in d["task_run"])
         and len(d["tasks"]) == 4 and [t["map_index"] for t in d["children"]] == [1]),
    read("flow-run-logs",
         part("flow_run_by_pk", "logs", id=lambda s: s.failed_run_id, logs__limit=100, logs__offset=0,
              logs__order_by={"timestamp": "desc"},
              logs__where=lambda s: {"level": {"_in": ["ERROR", "CRITICAL"]}, "message": {"_ilike": "%"},
                                     "timestamp": {"_gte": day_back(s), "_lte": day_ahead(s)}}),
         part("flow_run_by_pk", "before:logs", "after:logs", alias="window", id=lambda s: s.failed_run_id,
              before__where=lambda s: {"timestamp": {"_lte": s.now.isoformat()}}, before__limit=50,
              before__order_by={"timestamp": "desc"}, after__order_by={"timestamp": "asc"},
              after__where=lambda s: {"timestamp": {"_gte": s.now.isoformat()}}),
         part("flow_run_by_pk", "logs", alias="first_run", id=lambda s: s.success_run_id,
              logs__where=lambda s: {"level": {"_in": ["INFO"]}, "message": {"_ilike": "%flow%"}}),
         expect=lambda d, s: ids(d["flow_run_by_pk"]["logs"], "task_run_id") == [s.failed_task_run_id]
         and len(d["window"]["before"]) == 3 and d["window"]["after"] == []
         and [l["message"] for l in d["first_run"]["logs"]] == ["Beginning flow run"]),

    # --- task-run page -------------------------------------------------------------------------
    read("task-run-page",
         part("task_run_by_pk", *TASK_GRAPH, "flow_run.flow.project", id=lambda s: s.failed_task_run_id),
         part("task_run", "states", "states_aggregate", alias="history",
              where=lambda s: {"id": eq(s.failed_task_run_id)}, states__limit=lambda s: 10,
              states__order_by={"timestamp": "desc_nulls_last"},
              states__where=lambda s: {"timestamp": {"_gte": day_back(s)}}),
         expect=lambda d, s: d["task_run_by_pk"]["map_index"] == 2 and d["task_run_by_pk"]["flow_run"]["state"] == "Failed"
         and d["task_run_by_pk"]["task"]["upstream_edges"][0]["upstream_task"]["name"] == "extract"
         and count(d["history"][0], "states_aggregate") == 3 and d["history"][0]["states"][0]["state"] == "Failed"),
    read("mapped-children",
         part("mapped_children", alias="ok", task_run_id=lambda s: s.task_runs["success"]["square-1"]),
         part("mapped_children", alias="bad", task_run_id=lambda s: s.task_runs["failed"]["square-1"]),
         part("task_run_aggregate", where=lambda s: {"flow_run_id": eq(s.failed_run_id), "task_id": eq(s.mapped_task_id),
                                                    "map_index": {"_neq": -1}}),
         part("task_run", limit=lambda s: 10, offset=lambda s: 0, order_by=lambda s: [{"map_index": "asc"}],
              where=lambda s: {"flow_run_id": eq(s.failed_run_id), "task_id": eq(s.mapped_task_id),
                               "map_index": {"_neq": -1}, "state": {"_in": ["Failed"]}}),
         expect=lambda d, s: d["ok"]["state_counts"] == {"Success": 3}
         and d["bad"]["state_counts"] == {"Success": 2, "Failed": 1} and d["bad"]["min_start_time"]
         and count(d, "task_run_aggregate") == 3 and [t["map_index"] for t in d["task_run"]] == [2]),
    read("downstream-tasks",
         part("utility_downstream_tasks", "task.task_runs",
              args={"start_task_ids": lambda s: "{" + s.mapped_task_id + "}"},
              task__task_runs__where=lambda s: {"flow_run_id": eq(s.failed_run_id)}),
         expect=lambda d, s: sorted(r["depth"] for r in d["utility_downstream_tasks"]) == [0, 1]
         and all(len(r["task"]["task_runs"]) >= 1 for r in d["utility_downstream_tasks"])),
    read("task-run-neighbours",
         part("task_run", "task", alias="upstream",
              where=lambda s: {"flow_run_id": eq(s.success_run_id), "task_id": eq(s.tasks["extract-1"]),
                               "map_index": {"_in": [-1]}}),
         part("task_run", *TASK_GRAPH, alias="downstream",
              where=lambda s: {"flow_run_id": eq(s.success_run_id), "task_id": eq(s.tasks["load-1"]),
                               "map_index": {"_in": [-1]}}),
         expect=lambda d, s: ids(d["upstream"]) == [s.task_runs["success"]["extract-1"]]
         and d["downstream"][0]["task"]["upstream_edges"]),
    read("task-run-logs",
         part("task_run_by_pk", "logs", id=lambda s: s.task_runs["success"]["extract-1"],
              logs__order_by={"timestamp": "desc"}, logs__where=lambda s: {"message": {"_ilike": "%rows%"}}),
         part("task_run_by_pk", "after:logs", alias="window", id=lambda s: s.failed_task_run_id,
              after__where=lambda s: {"timestamp": {"_gte": day_back(s)}}, after__limit=lambda s: 5),
         expect=lambda d, s: [l["message"] for l in d["task_run_by_pk"]["logs"]] == ["extracted 3 rows"]
         and len(d["window"]["after"]) == 1),

    # --- task page -----------------------------------------------------------------------------
    read("task-page",
         part("task_by_pk", "upstream_edges.upstream_task", "downstream_edges.downstream_task", "flow.project",
              id=lambda s: s.mapped_task_id),
         part("task_run_aggregate", where=lambda s: {"task_id": eq(s.mapped_task_id), "updated": {"_gte": day_back(s)},
                                                    "flow_run": {"state": {"_neq": "Scheduled"}}}),
         expect=lambda d, s: d["task_by_pk"]["upstream_edges"][0]["upstream_task"]["name"] == "extract"
         and d["task_by_pk"]["flow"]["project"]["id"] == s.project_id and count(d, "task_run_aggregate") == 8),
    read("task-runs",
         part("task_by_pk", "task_runs.flow_run", id=lambda s: s.mapped_task_id, task_runs__limit=4,
              task_runs__order_by=lambda s: [{"flow_run": {"name": "asc"}}, {"map_index": "desc"}],
              task_runs__where=lambda s: {"flow_run": {"state": {"_neq": "Scheduled"}}, "updated": {"_gte": day_back(s)}}),
         part("task_run", "task", alias="changed", limit=10, order_by={"updated": "desc_nulls_last"},
              where=lambda s: {"task_id": eq(s.mapped_task_id), "updated": {"_gte": day_back(s)}, "state": eq("Failed")}),
         part("task_run", alias="last", limit=1, order_by={"updated": "desc"},
              where=lambda s: {"task_id": eq(s.tasks["load-1"]), "state": {"_neq": "Scheduled"},
                               "start_time": {"_is_null": False}}),
         expect=lambda d, s: [t["flow_run"]["name"] for t in d["task_by_pk"]["task_runs"]] == ["ui-failed-run"] * 4
         and ids(d["changed"]) == [s.failed_task_run_id] and d["last"][0]["state"] == "Success"),

    # --- schematics ----------------------------------------------------------------------------
    read("schematic",
         part("flow", alias="flows", order_by={"created": "desc"},
              where={"archived": {"_eq": False}, "name": {"_neq": "Welcome Flow"}}),
         part("flow_by_pk", "tasks_aggregate", "tasks.upstream_edges.upstream_task", "tasks.downstream_edges.downstream_task",
              id=lambda s: s.flow_id),
         part("flow_run_by_pk", *(f"task_runs.{p}" for p in TASK_GRAPH), id=lambda s: s.success_run_id,
              task_runs__where={"map_index": {"_eq": -1}}),
         expect=lambda d, s: [f["name"] for f in d["flows"]] == [s.flow_name]
         and count(d["flow_by_pk"], "tasks_aggregate") == 4
         and any(t["task"]["downstream_edges"] for t in d["flow_run_by_pk"]["task_runs"])),

    # --- calendar ------------------------------------------------------------------------------
    read("calendar",
         part("flow_group", "flows", flows__where={"archived": {"_eq": False}}),
         part("flow_by_pk", id=lambda s: s.flow_id),
         part("flow_run", alias="started", where=lambda s: {"_and": [{"start_time": {"_gt": day_back(s)}},
                                                                      {"start_time": {"_lt": day_ahead(s)}}]}),
         part("flow_run", alias="ongoing", distinct_on="flow_id", limit=1,
              where=lambda s: {"_and": [{"start_time": {"_lt": hour_ahead(s)}}, {"end_time": {"_gte": day_back(s)}}]}),
         part("flow_run", alias="running", distinct_on=lambda s: ["flow_id"], limit=1,
              where=lambda s: {"_and": [{"state": eq("Running")}, {"start_time": {"_lt": s.now.isoformat()}}]}),
         expect=lambda d, s: ids(d["flow_group"][0]["flows"]) == [s.flow_id] and d["flow_by_pk"]["name"] == s.flow_name
         and len(d["started"]) == 2 and ids(d["ongoing"], "flow_id") == [s.flow_id] and d["running"] == []),
    read("calendar-day",
         part("flow_run", alias="scheduled", where=lambda s: {"_and": [
             {"scheduled_start_time": {"_gt": s.now.isoformat()}}, {"scheduled_start_time": {"_lt": day_ahead(s)}},
             {"start_time": {"_is_null": True}}, {"flow_id": eq(s.flow_id)}]}),
         part("flow_run", alias="ongoing", where=lambda s: {"_and": [
             {"flow_id": eq(s.flow_id)}, {"start_time": {"_lt": hour_ahead(s)}}, {"end_time": {"_gt": day_back(s)}}]}),
         part("flow_run", alias="running", where=lambda s: {"_and": [
             {"flow_id": eq(s.flow_id)}, {"state": eq("Running")}, {"start_time": {"_lt": hour_ahead(s)}}]}),
         expect=lambda d, s: s.scheduled_run_id in ids(d["scheduled"]) and len(d["ongoing"]) == 2 and d["running"] == []),

    # --- global search and navigation ----------------------------------------------------------
    read("search-by-id",
         part("flow", "project", where=lambda s: {"_or": [{"id": eq(s.flow_group_id)}, {"flow_group_id": eq(s.flow_group_id)}]}),
         part("flow_run", "flow.project", where=lambda s: {"id": eq(s.failed_task_run_id)}),
         part("project", where=lambda s: {"id": eq(s.flow_group_id)}),
         part("task", "flow.project", where=lambda s: {"id": eq(s.flow_group_id)}),
         part("task_run", "task.flow.project", where=lambda s: {"id": eq(s.failed_task_run_id)}),
         expect=lambda d, s: ids(d["flow"]) == [s.flow_id] and d["flow_run"] == [] and d["project"] == []
         and d["task_run"][0]["task"]["flow"]["project"]["id"] == s.project_id),
    read("search-by-name",
         part("flow", "project", limit=5, where={"name": {"_ilike": "%ui%"}, "archived": {"_eq": False}}),
         part("flow_run", "flow.project", limit=5,
              where={"name": {"_ilike": "%ui%"}, "flow": {"archived": {"_eq": False}}}),
         part("project", limit=5, where={"name": {"_ilike": "%ui%"}}),
         part("task", "flow.project", limit=5, where={"name": {"_ilike": "%a%"}, "flow": {"archived": {"_eq": False}}}),
         part("task_run", limit=5, where={"name": {"_ilike": "%ui%"}}),
         expect=lambda d, s: d["flow"] and len(d["flow_run"]) >= 3 and d["project"] and d["task"]),
    read("navigation",
         part("flow", alias="flow_or_group",
              where=lambda s: {"_or": [{"id": eq(s.flow_id)}, {"flow_group_id": eq(s.flow_id)}]}),
         part("flow", alias="live", where={"archived": {"_eq": False}}),
         part("task", alias="one", where=lambda s: {"id": eq(s.mapped_task_id)}),
         part("task", alias="of_flow", where=lambda s: {"flow_id": eq(s.flow_id)}),
         expect=lambda d, s: d["flow_or_group"][0]["project_id"] == s.project_id and len(d["live"]) == 1
         and d["one"][0]["name"] == "square" and {t["name"] for t in d["of_flow"]} == {"extract", "square", "load", "n"}),

    # --- artifacts -----------------------------------------------------------------------------
    read("artifacts",
         part("task_run_artifact", "task_run.task", where=lambda s: {"task_run_id": {"_in": list(s.task_runs["success"].values())}}),
         part("task_run", alias="with_index", limit=lambda s: 10, offset=lambda s: 0,
              where=lambda s: {"flow_run": {"id": eq(s.success_run_id)}, "map_index": {"_gte": 0}}),
         expect=lambda d, s: ids(d["task_run_artifact"]) == [s.artifact_id]
         and d["task_run_artifact"][0]["task_run"]["task"]["name"] == "extract" and len(d["with_index"]) == 3),

    # --- notifications -------------------------------------------------------------------------
    read("notifications",
         part("message", limit=lambda s: 20, offset=lambda s: 0, order_by=lambda s: [{"created": "desc"}],
              where=lambda s: {"tenant_id": eq(s.tenant_id)}),
         part("message_aggregate", alias="unread", where={"read": {"_eq": False}}),
         part("message_aggregate", alias="not_read", where=lambda s: {"_not": {"read": eq(True)}}),
         part("message", alias="hook_messages", where=lambda s: {"type": eq("CLOUD_HOOK")}),
         expect=lambda d, s: d["message"][0]["text"] == "ui-failed-run is Failed"
         and d["message"][0]["content"]["state"] == "Failed" and count(d, "unread") == 1 and count(d, "not_read") == 1
         and ids(d["hook_messages"]) == [s.message_id]),

    # --- project and team settings -------------------------------------------------------------
    read("projects",
         part("project", "live:flows_aggregate", "old:flows_aggregate",
              live__where={"archived": {"_eq": False}}, old__where={"archived": {"_eq": True}}),
         part("project_by_pk", "flows", id=lambda s: s.project_id),
         part("project", alias="named", where=lambda s: {"name": eq(s.project_name)}),
         expect=lambda d, s: count(d["project"][0], "live") == 1 and count(d["project"][0], "old") == 0
         and ids(d["project_by_pk"]["flows"]) == [s.flow_id] and ids(d["named"]) == [s.project_id]),
    read("team-settings",
         part("flow", "project", alias="per_version_group", distinct_on=["version_group_id"]),
         part("flow", "project", alias="of_project", distinct_on=lambda s: "version_group_id",
              where=lambda s: {"_and": [{"project_id": eq(s.project_id), "archived": eq(False)}]}),
         part("flow", alias="of_hook", where=lambda s: {"_and": [{"version_group_id": eq(s.version_group_id)},
                                                                  {"archived": eq(False)}]}),
         part("cloud_hook", where=lambda s: {"_or": [{"version_group_id": eq(s.version_group_id)},
                                                    {"name": {"_like": "ui-%"}}]}),
         part("cloud_hook_by_pk", id=lambda s: s.cloud_hook_id),
         expect=lambda d, s: ids(d["per_version_group"], "version_group_id") == [s.version_group_id]
         and len(d["of_project"]) == 1 and ids(d["of_hook"]) == [s.flow_id]
         and d["cloud_hook"][0]["states"] == ["FAILED"] and d["cloud_hook_by_pk"]["active"] is True),
    # --- shapes beyond the UI's own: more operators, aggregates and jsonb ----------------------
    read("run-statistics",
         part("flow_run_aggregate", where=lambda s: {"flow_id": eq(s.flow_id)}),
         part("flow_group_by_pk", "flows.flow_runs_aggregate", "flows.flow_runs.task_runs_aggregate",
              "flows.flow_runs.logs_aggregate", id=lambda s: s.flow_group_id,
              flows__flow_runs_aggregate__where={"state": {"_in": FINISHED}},
              flows__flow_runs__where={"state": {"_neq": "Scheduled"}}, flows__flow_runs__order_by={"name": "asc"},
              flows__flow_runs__limit=2, flows__flow_runs__task_runs_aggregate__where={"map_index": {"_gte": 0}}),
         expect=lambda d, s: d["flow_run_aggregate"]["aggregate"]["count"] >= 3
         and d["flow_run_aggregate"]["aggregate"]["max"]["start_time"]
         and d["flow_run_aggregate"]["aggregate"]["sum"]["version"] >= 10
         and count(d["flow_group_by_pk"]["flows"][0], "flow_runs_aggregate") == 2
         and all(count(r, "task_runs_aggregate") == 3 for r in d["flow_group_by_pk"]["flows"][0]["flow_runs"])
         and all(count(r, "logs_aggregate") == 3 for r in d["flow_group_by_pk"]["flows"][0]["flow_runs"])),
    read("jsonb-and-patterns",
         part("flow_run", alias="by_parameters", where=lambda s: {
             "parameters": {"_contains": {"n": 3}}, "context": {"_is_null": False},
             "_not": {"parameters": {"_has_key": "missing"}}}),
         part("flow_run", alias="named_like",
              order_by=[{"flow": {"project": {"name": "asc"}}}, {"end_time": "asc_nulls_first"}],
              where=lambda s: {"_and": [{"name": {"_like": "ui-%-run"}}, {"_not": {"state": eq("Scheduled")}}]}),
         part("flow_group", "flows", where=lambda s: {"id": eq(s.flow_group_id)}),
         expect=lambda d, s: s.failed_run_id in ids(d["by_parameters"]) and len(d["named_like"]) == 2
         and d["flow_group"][0]["flows"][0]["schedule"]),
]


# The root query fields the Prefect UI's read documents select, as plain API names (a fact
# about the UI). test_ui_read_documents checks the corpus above reaches every one.
UI_ROOT_FIELDS = frozenset({
    "agent", "api", "cloud_hook", "flow", "flow_aggregate", "flow_by_pk", "flow_group", "flow_group_by_pk",
    "flow_run", "flow_run_aggregate", "flow_run_by_pk", "mapped_children", "message", "message_aggregate",
    "project", "project_by_pk", "task", "task_aggregate", "task_by_pk", "task_run", "task_run_aggregate",
    "task_run_artifact", "task_run_by_pk", "tenant", "utility_downstream_tasks",
})
