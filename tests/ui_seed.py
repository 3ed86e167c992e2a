"""The data every Prefect-UI page has something to show for: a project, a flow with a parameter,
a mapped task and a schedule, a finished and a failed run (task runs, mapped children, logs, an
artifact), a run still scheduled, an agent that submitted the runs, a cloud hook and a message.

Seeded the way clients write it, through the public GraphQL API (`post` sends one document and
returns its `data`); only the message goes through the domain, because no mutation creates one
(hook delivery does, in a service). Shared by tests/graphql/test_ui_read_documents.py and
`python -m bench.ui_documents`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol

from headwater.server.domain import messages
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tests import factories as f


class Post(Protocol):
    def __call__(self, query: str, variables: Any = None, **headers: str) -> Awaitable[dict]: ...


@dataclass
class Seed:
    tenant_id: str
    tenant_slug: str
    project_id: str
    project_name: str
    flow_id: str
    flow_name: str
    flow_group_id: str
    version_group_id: str
    tasks: dict[str, str]                    # slug -> task id
    agent_id: str
    success_run_id: str
    failed_run_id: str
    scheduled_run_id: str
    task_runs: dict[str, dict[str, str]]     # run -> slug -> parent task run id (map_index -1)
    mapped_children: dict[str, list[str]]    # run -> child task run ids of the mapped task
    failed_task_run_id: str                  # the failed run's failing mapped child
    log_ids: list[str]
    artifact_id: str
    cloud_hook_id: str
    message_id: str
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def mapped_task_id(self) -> str:
        return self.tasks["square-1"]


TASKS = [f.task("extract-1"), f.task("square-1"), f.task("load-1")]
EDGES = [f.edge("extract-1", "square-1", key="x", mapped=True), f.edge("square-1", "load-1", key="rows")]
CHILDREN = 3


def _state(name: str, **extra: Any) -> dict[str, Any]:
    return {"type": name, "message": f"{name} (seed)", "__version__": f.CORE_VERSION, **extra}


async def _mutate(post: Post, name: str, input: dict, selection: str = "id", **headers: str) -> Any:
    data = await post(f"mutation($input: {name}_input!) {{ {name}(input: $input) {{ {selection} }} }}",
                      {"input": input}, **headers)
    return data[name]


async def _flow_run_states(post: Post, run: str, *names: str, **headers: str) -> None:
    for name in names:
        await _mutate(post, "set_flow_run_states", {"states": [{"flow_run_id": run, "state": _state(name)}]},
                      "states { status }", **headers)


async def _task_run_states(post: Post, task_run: str, *names: str) -> None:
    for name in names:
        await _mutate(post, "set_task_run_states", {"states": [{"task_run_id": task_run, "state": _state(name)}]},
                      "states { status }")


async def _play_run(post: Post, seed_tasks: dict[str, str], run: str, agent: str, fail: bool) -> tuple[dict, list, list]:
    """Submitted by the agent, then Running; each task runs, the mapped one through its children;
    with `fail` the last child fails, the downstream task is TriggerFailed and so is the run."""
    await _flow_run_states(post, run, "Submitted", **{"X-Prefect-Agent-Id": agent})
    await _flow_run_states(post, run, "Running")
    rows = (await post("query($r: uuid) { task_run(where: {flow_run_id: {_eq: $r}}) { id task_id } }",
                       {"r": run}))["task_run"]
    by_task = {row["task_id"]: row["id"] for row in rows}
    parents = {slug: by_task[task_id] for slug, task_id in seed_tasks.items() if task_id in by_task}
    await _task_run_states(post, parents["extract-1"], "Running", "Success")
    await _task_run_states(post, parents["square-1"], "Running", "Mapped")
    children = []
    for index in range(CHILDREN):
        child = (await _mutate(post, "get_or_create_task_run",
                               {"flow_run_id": run, "task_id": seed_tasks["square-1"], "map_index": index}))["id"]
        children.append(child)
        last = "Failed" if fail and index == CHILDREN - 1 else "Success"
        await _task_run_states(post, child, "Running", last)
    await _task_run_states(post, parents["load-1"], *(["TriggerFailed"] if fail else ["Running", "Success"]))
    await _flow_run_states(post, run, "Failed" if fail else "Success")
    now = dt.datetime.now(dt.UTC)
    logs = [
        {"flow_run_id": run, "name": "prefect.FlowRunner", "level": "INFO", "message": "Beginning flow run",
         "timestamp": (now - dt.timedelta(seconds=3)).isoformat()},
        {"flow_run_id": run, "task_run_id": parents["extract-1"], "name": "prefect.TaskRunner", "level": "INFO",
         "message": "extracted 3 rows", "timestamp": (now - dt.timedelta(seconds=2)).isoformat()},
        {"flow_run_id": run, "task_run_id": children[-1], "name": "prefect.TaskRunner",
         "level": "ERROR" if fail else "INFO", "message": "square of 2 failed" if fail else "square of 2 done",
         "timestamp": (now - dt.timedelta(seconds=1)).isoformat()},
    ]
    await _mutate(post, "write_run_logs", {"logs": logs}, "success")
    log_ids = [row["id"] for row in (await post(
        "query($r: uuid) { log(where: {flow_run_id: {_eq: $r}}) { id } }", {"r": run}))["log"]]
    return parents, children, log_ids


async def seed(post: Post, engine: AsyncEngine) -> Seed:
    [tenant] = (await post("{ tenant(where: {slug: {_eq: \"default\"}}) { id slug } }"))["tenant"]
    tenant_id = tenant["id"]
    project_name = "ui-documents"
    project = (await _mutate(post, "create_project",
                             {"tenant_id": tenant_id, "name": project_name, "description": "every UI page"}))["id"]
    flow_name = "ui-flow"
    serialized = f.flow(flow_name, tasks=[dict(t) for t in TASKS], edges=EDGES,
                        parameters=[f.parameter("n", default=3)], schedule=f.interval_schedule(3600))
    flow_id = (await _mutate(post, "create_flow", {"project_id": project, "serialized_flow": serialized}))["id"]
    flow = (await post("query($id: uuid!) { flow_by_pk(id: $id) { flow_group_id version_group_id tasks { id slug } } }",
                       {"id": flow_id}))["flow_by_pk"]
    tasks = {row["slug"]: row["id"] for row in flow["tasks"]}
    agent = (await _mutate(post, "register_agent",
                           {"tenant_id": tenant_id, "type": "LocalAgent", "name": "ui-agent", "labels": ["dev"]}))["id"]

    runs, task_runs, children, log_ids = {}, {}, {}, []
    for name, fail in (("success", False), ("failed", True)):
        runs[name] = (await _mutate(post, "create_flow_run", {"flow_id": flow_id, "flow_run_name": f"ui-{name}-run"}))["id"]
        task_runs[name], children[name], logs = await _play_run(post, tasks, runs[name], agent, fail)
        log_ids += logs
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    scheduled = (await _mutate(post, "create_flow_run", {"flow_id": flow_id, "flow_run_name": "ui-scheduled-run",
                                                         "scheduled_start_time": later}))["id"]
    artifact = (await _mutate(post, "create_task_run_artifact",
                              {"task_run_id": task_runs["success"]["extract-1"], "kind": "markdown",
                               "data": {"markdown": "# 3 rows"}}))["id"]
    hook = (await _mutate(post, "create_cloud_hook",
                          {"tenant_id": tenant_id, "type": "PREFECT_MESSAGE", "states": ["Failed"], "name": "ui-hook",
                           "version_group_id": flow["version_group_id"], "config": {}}))["id"]
    async with engine.begin() as connection:
        session = AsyncSession(bind=connection)
        message = await messages.create_message(
            session, uuid.UUID(tenant_id), "CLOUD_HOOK",
            {"flow_run_id": runs["failed"], "state": "Failed", "flow_name": flow_name}, "ui-failed-run is Failed")
        await session.flush()
    return Seed(
        tenant_id=tenant_id, tenant_slug=tenant["slug"], project_id=project, project_name=project_name,
        flow_id=flow_id, flow_name=flow_name, flow_group_id=flow["flow_group_id"],
        version_group_id=flow["version_group_id"], tasks=tasks, agent_id=agent,
        success_run_id=runs["success"], failed_run_id=runs["failed"], scheduled_run_id=scheduled,
        task_runs=task_runs, mapped_children=children, failed_task_run_id=children["failed"][-1],
        log_ids=log_ids, artifact_id=artifact, cloud_hook_id=hook, message_id=str(message),
    )
