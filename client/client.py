"""`Client` (sync) and `AsyncClient` for a headwater server, on httpx.

Each operation is written once, as a typed generator of steps decorated with `@operation`: it
yields a `Request` (a GraphQL document and its variables) or a `Sleep`, receives the result,
and returns the value. The sync and async clients differ only in how they drive those steps
(`_drive`), so their methods cannot drift.

Connection failures are retried with backoff. A request that may have reached the server is
retried only when repeating it is harmless: reads, and mutations that carry an idempotency key
(`create_flow_run` always sends one, generated when the caller gives none), so a retry after a
dropped connection never creates a second run.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import functools
import gzip
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Concatenate, Generator, ParamSpec

import httpx

from headwater.client import documents as doc
from headwater.client.deployment_apply import DeploymentFileOperations
from headwater.client.errors import (
    BadRequest,
    Conflict,
    HeadwaterError,
    NotFound,
    RunTimeout,
    ServerUnavailable,
    error_from_response,
)

DEFAULT_URL = "http://127.0.0.1:4200"
FINISHED_STATES = frozenset(
    {"Success", "Failed", "Cancelled", "Cached", "Mapped", "Skipped", "TimedOut", "TriggerFailed",
     "ValidationFailed", "Looped"}
)


@dataclass(frozen=True)
class Request:
    document: str
    variables: dict[str, Any] | None = None
    # Safe to resend after the server may have seen it (reads, idempotent writes).
    idempotent: bool = False
    # Pull the interesting part out of `data`.
    extract: Callable[[dict[str, Any]], Any] = field(default=lambda data: data)


@dataclass(frozen=True)
class Sleep:
    seconds: float


Steps = Generator["Request | Sleep", Any, Any]


P = ParamSpec("P")


def operation(steps: Callable[Concatenate[Any, P], Steps]) -> Callable[Concatenate[Any, P], Any]:
    """A public method from a generator of steps: `Client` runs them and returns the value,
    `AsyncClient` returns an awaitable. The generator stays reachable as `.steps` for reuse."""

    @functools.wraps(steps)
    def method(self: Any, *args: P.args, **kwargs: P.kwargs) -> Any:
        return self._drive(steps(self, *args, **kwargs))

    method.steps = steps  # type: ignore[attr-defined]
    return method


def _input(name: str, values: dict[str, Any], select: str = "id", idempotent: bool = False) -> Request:
    """A `mutation($input: ...)` request returning the payload's `select` field."""
    return Request(
        doc.mutation(name, select),
        {"input": values},
        idempotent=idempotent,
        extract=lambda data: data[name][select.split()[0]] if data.get(name) is not None else None,
    )


def compress(value: Any) -> str:
    """base64(gzip(JSON)): the form `create_flow_from_compressed_string` takes."""
    return base64.b64encode(gzip.compress(json.dumps(value).encode())).decode()


def _serialize_flow(flow: Any) -> dict[str, Any]:
    if isinstance(flow, dict):
        return flow
    serialize = getattr(flow, "serialize", None)
    if serialize is None:
        raise TypeError("register_flow needs a serialized flow dict or a Prefect Flow object")
    return serialize()


def _iso(value: dt.datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.isoformat()


class Operations(DeploymentFileOperations):
    """Every operation, as steps; `Client` and `AsyncClient` add the transport (spec files:
    deployment_apply.py)."""

    _tenant_id: str | None = None

    # --- tenant and health -------------------------------------------------------------
    def _tenant(self) -> Steps:
        if self._tenant_id is None:
            rows = yield Request(doc.TENANT_ID, idempotent=True, extract=lambda d: d["tenant"])
            if not rows:
                raise NotFound("The server has no tenant.")
            self._tenant_id = rows[0]["id"]
        return self._tenant_id

    @operation
    def hello(self) -> Steps:
        """The server's liveness answer."""
        return (yield Request(doc.HELLO, idempotent=True, extract=lambda d: d["hello"]))

    # --- projects ------------------------------------------------------------------------
    @operation
    def create_project(self, name: str, description: str | None = None, *, exist_ok: bool = False) -> Steps:
        """Create a project in the default tenant; returns its id. A taken name raises Conflict,
        or with `exist_ok=True` returns the existing project's id (its description unchanged),
        so a setup script can run twice, as `prefect create project` can."""
        tenant_id = yield from self._tenant()
        values = {"tenant_id": tenant_id, "name": name, "description": description}
        try:
            return (yield _input("create_project", values))
        except Conflict:
            if not exist_ok:
                raise
        # The server trims names; look up the name it compared.
        rows = yield from self.list_projects.steps(self, name.strip())
        if not rows:  # deleted in between: nothing exists after all
            return (yield _input("create_project", values))
        return rows[0]["id"]

    @operation
    def list_projects(self, name: str | None = None) -> Steps:
        """Projects (all, or the one with this name), with their active flow counts."""
        where = {"name": {"_eq": name}} if name else {}
        return (yield Request(doc.PROJECTS, {"where": where}, idempotent=True, extract=lambda d: d["project"]))

    def _project_id(self, project: str) -> Steps:
        """A project's id from its name (or its id, given as is)."""
        try:
            return str(uuid.UUID(project))
        except ValueError:
            rows = yield from self.list_projects.steps(self, project)
        if not rows:
            raise NotFound(f"Project {project!r} not found.")
        return rows[0]["id"]

    @operation
    def delete_project(self, project: str) -> Steps:
        """Delete a project (by name or id) with its flows and runs."""
        project_id = yield from self._project_id(project)
        return (yield _input("delete_project", {"project_id": project_id}, "success"))

    @operation
    def set_project_name(self, project_id: str, name: str) -> Steps:
        """Rename a project; returns its id."""
        return (yield _input("set_project_name", {"project_id": project_id, "name": name}))

    @operation
    def set_project_description(self, project_id: str, description: str | None) -> Steps:
        """Set (or with None, clear) a project's description."""
        return (yield _input("set_project_description", {"project_id": project_id, "description": description}))

    # --- flows ---------------------------------------------------------------------------
    @operation
    def register_flow(
        self,
        flow: Any,
        project: str,
        *,
        idempotency_key: str | None = None,
        compressed: bool = True,
        set_schedule_active: bool = True,
        version_group_id: str | None = None,
        description: str | None = None,
    ) -> Steps:
        """Register a serialized flow dict or a Prefect `Flow` in a project (name or id); returns the flow id."""
        serialized = _serialize_flow(flow)
        project_id = yield from self._project_id(project)
        values = {
            "project_id": project_id,
            "serialized_flow": compress(serialized) if compressed else serialized,
            "set_schedule_active": set_schedule_active,
            "version_group_id": version_group_id,
            "description": description,
            "idempotency_key": idempotency_key,
        }
        name = "create_flow_from_compressed_string" if compressed else "create_flow"
        # With a key, registering twice returns the same flow: safe to resend.
        return (yield _input(name, values, idempotent=idempotency_key is not None))

    @operation
    def get_flow(self, flow_id: str) -> Steps:
        """One flow version by id, with its project and flow group (None if unknown)."""
        return (yield Request(doc.FLOW, {"id": flow_id}, idempotent=True, extract=lambda d: d["flow_by_pk"]))

    @operation
    def list_flows(
        self, project: str | None = None, name: str | None = None, all_versions: bool = False, limit: int = 100
    ) -> Steps:
        """Flows, active versions only unless `all_versions`; optionally one project or one name."""
        where: dict[str, Any] = {}
        if not all_versions:
            where["archived"] = {"_eq": False}
        if name:
            where["name"] = {"_eq": name}
        if project:
            where["project"] = {"name": {"_eq": project}}
        return (yield Request(doc.FLOWS, {"where": where, "limit": limit}, idempotent=True, extract=lambda d: d["flow"]))

    @operation
    def find_flow(self, name: str, project: str | None = None) -> Steps:
        """The active version of the flow with this name (in this project)."""
        flows = yield from self.list_flows.steps(self, project=project, name=name)
        if not flows:
            where = f" in project {project!r}" if project else ""
            raise NotFound(f"No active flow named {name!r}{where}.")
        if len(flows) > 1:
            raise BadRequest(f"Several projects have a flow named {name!r}; name the project.")
        return flows[0]

    def _flow_mutation(self, name: str, flow_id: str) -> Steps:
        return (yield _input(name, {"flow_id": flow_id}, "success", idempotent=True))

    @operation
    def archive_flow(self, flow_id: str) -> Steps:
        """Archive a flow: it keeps its history and gets no new runs."""
        return (yield from self._flow_mutation("archive_flow", flow_id))

    @operation
    def unarchive_flow(self, flow_id: str) -> Steps:
        """Make an archived version the active one again."""
        return (yield from self._flow_mutation("unarchive_flow", flow_id))

    @operation
    def delete_flow(self, flow_id: str) -> Steps:
        """Delete a flow version with its runs."""
        return (yield from self._flow_mutation("delete_flow", flow_id))

    @operation
    def set_schedule_inactive(self, flow_id: str) -> Steps:
        """Turn the flow's schedule off; its future auto-scheduled runs are removed."""
        return (yield from self._flow_mutation("set_schedule_inactive", flow_id))

    @operation
    def enable_flow_heartbeat(self, flow_id: str) -> Steps:
        """Heartbeats (and the zombie killer) on for every version of the flow."""
        return (yield from self._flow_mutation("enable_flow_heartbeat", flow_id))

    @operation
    def disable_flow_heartbeat(self, flow_id: str) -> Steps:
        """Heartbeats (and the zombie killer) off for every version of the flow."""
        return (yield from self._flow_mutation("disable_flow_heartbeat", flow_id))

    @operation
    def enable_flow_lazarus_process(self, flow_id: str) -> Steps:
        """Lazarus on for every version of the flow."""
        return (yield from self._flow_mutation("enable_flow_lazarus_process", flow_id))

    @operation
    def disable_flow_lazarus_process(self, flow_id: str) -> Steps:
        """Lazarus off for every version of the flow."""
        return (yield from self._flow_mutation("disable_flow_lazarus_process", flow_id))

    @operation
    def enable_flow_version_lock(self, flow_id: str) -> Steps:
        """Version locking on: state changes compare-and-set, runs enter Running once."""
        return (yield from self._flow_mutation("enable_flow_version_lock", flow_id))

    @operation
    def disable_flow_version_lock(self, flow_id: str) -> Steps:
        """Version locking off."""
        return (yield from self._flow_mutation("disable_flow_version_lock", flow_id))

    @operation
    def set_schedule_active(self, flow_id: str) -> Steps:
        """Turn the flow's schedule on (runs are created at once); returns whether it is on."""
        result = yield Request(
            doc.SET_SCHEDULE_ACTIVE, {"input": {"flow_id": flow_id}}, idempotent=True,
            extract=lambda d: d["set_schedule_active"],
        )
        return bool(result and result["success"])

    @operation
    def set_flow_group_default_parameters(self, flow_group_id: str, parameters: dict[str, Any]) -> Steps:
        """Replace the default parameters of every version of a flow."""
        values = {"flow_group_id": flow_group_id, "parameters": parameters}
        return (yield _input("set_flow_group_default_parameters", values, "success", idempotent=True))

    @operation
    def set_flow_group_labels(self, flow_group_id: str, labels: list[str] | None) -> Steps:
        """Set the labels new runs get (None: fall back to the run config's)."""
        values = {"flow_group_id": flow_group_id, "labels": labels}
        return (yield _input("set_flow_group_labels", values, "success", idempotent=True))

    # --- flow runs -----------------------------------------------------------------------
    @operation
    def create_flow_run(
        self,
        flow_id: str | None = None,
        *,
        version_group_id: str | None = None,
        parameters: dict[str, Any] | None = None,
        labels: list[str] | None = None,
        run_config: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
        scheduled_start_time: dt.datetime | str | None = None,
        run_name: str | None = None,
        idempotency_key: str | None = None,
    ) -> Steps:
        """Create a run of a flow (or of a version group's active flow); returns the run id."""
        values: dict[str, Any] = {
            "flow_id": flow_id,
            "version_group_id": version_group_id,
            "parameters": parameters,
            "labels": labels,
            "run_config": run_config,
            "context": context,
            "scheduled_start_time": _iso(scheduled_start_time),
            "flow_run_name": run_name,
            # Always a key, so a retry after a lost response cannot create a second run.
            "idempotency_key": idempotency_key or uuid.uuid4().hex,
        }
        return (yield _input("create_flow_run", {k: v for k, v in values.items() if v is not None}, idempotent=True))

    @operation
    def get_flow_run(self, flow_run_id: str) -> Steps:
        """One run with its state, parameters, labels and times (None if unknown)."""
        return (yield Request(doc.FLOW_RUN, {"id": flow_run_id}, idempotent=True, extract=lambda d: d["flow_run_by_pk"]))

    @operation
    def list_flow_runs(
        self, flow_id: str | None = None, state: str | None = None, flow_name: str | None = None, limit: int = 20,
        project: str | None = None,
    ) -> Steps:
        """Recent runs, newest scheduled first; optionally of one flow, state, flow name or project (by name)."""
        where: dict[str, Any] = {}
        if flow_id:
            where["flow_id"] = {"_eq": flow_id}
        if state:
            where["state"] = {"_eq": state}
        flow: dict[str, Any] = {}
        if flow_name:
            flow["name"] = {"_eq": flow_name}
        if project:
            flow["project"] = {"name": {"_eq": project}}
        if flow:
            where["flow"] = flow
        return (
            yield Request(doc.FLOW_RUNS, {"where": where, "limit": limit}, idempotent=True, extract=lambda d: d["flow_run"])
        )

    @operation
    def get_flow_run_states(self, flow_run_id: str) -> Steps:
        """A run's state history, oldest first."""
        return (
            yield Request(doc.FLOW_RUN_STATES, {"id": flow_run_id}, idempotent=True, extract=lambda d: d["flow_run_state"])
        )

    @operation
    def get_task_runs(self, flow_run_id: str) -> Steps:
        """A run's task runs (mapped children included), by task slug and map index."""
        return (yield Request(doc.TASK_RUNS, {"id": flow_run_id}, idempotent=True, extract=lambda d: d["task_run"]))

    @operation
    def get_logs(self, flow_run_id: str, limit: int | None = None) -> Steps:
        """A run's logs, oldest first."""
        return (yield Request(doc.LOGS, {"id": flow_run_id, "limit": limit}, idempotent=True, extract=lambda d: d["log"]))

    @operation
    def find_flow_runs(self, where: dict[str, Any], limit: int = 20) -> Steps:
        """Runs (id, name, state, flow name) matching a `flow_run_bool_exp`, newest first."""
        return (
            yield Request(doc.FLOW_RUN_REFS, {"where": where, "limit": limit}, idempotent=True,
                          extract=lambda d: d["flow_run"])
        )

    @operation
    def get_flow_run_state_history(self, flow_run_id: str) -> Steps:
        """A run's states with their ids, oldest first (a watcher prints each once)."""
        return (
            yield Request(doc.FLOW_RUN_STATE_HISTORY, {"id": flow_run_id}, idempotent=True,
                          extract=lambda d: d["flow_run_state"])
        )

    @operation
    def get_logs_since(
        self, flow_run_id: str, since: str | None = None, limit: int = 500, offset: int = 0
    ) -> Steps:
        """One page of a run's logs stored (`created`) at or after `since`, in storage order."""
        variables = {"id": flow_run_id, "since": since, "limit": limit, "offset": offset}
        return (yield Request(doc.LOGS_SINCE, variables, idempotent=True, extract=lambda d: d["log"]))

    @operation
    def list_agents(self) -> Steps:
        """Registered agents with their labels and when each last asked for work."""
        return (yield Request(doc.AGENTS, idempotent=True, extract=lambda d: d["agent"]))

    @operation
    def cancel_flow_run(self, flow_run_id: str) -> Steps:
        """Cancel a run; returns the state it is now in (Cancelling while its process stops)."""
        return (yield _input("cancel_flow_run", {"flow_run_id": flow_run_id}, "state", idempotent=True))

    @operation
    def delete_flow_run(self, flow_run_id: str) -> Steps:
        """Delete a run with its task runs, states and logs."""
        return (yield _input("delete_flow_run", {"flow_run_id": flow_run_id}, "success"))

    @operation
    def set_flow_run_name(self, flow_run_id: str, name: str) -> Steps:
        """Rename a run."""
        return (yield _input("set_flow_run_name", {"flow_run_id": flow_run_id, "name": name}, "success", idempotent=True))

    # --- deployments ---------------------------------------------------------------------
    @operation
    def create_deployment(
        self,
        flow_group_id: str,
        name: str,
        *,
        description: str | None = None,
        flow_id: str | None = None,
        parameters: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        labels: list[str] | None = None,
        schedule: dict[str, Any] | list[dict[str, Any]] | None = None,
        is_schedule_active: bool | None = None,
    ) -> Steps:
        """Create a deployment of a flow group (schedule active unless told otherwise); returns its id."""
        values: dict[str, Any] = {
            "flow_group_id": flow_group_id, "name": name, "description": description, "flow_id": flow_id,
            "parameters": parameters, "tags": tags, "labels": labels, "schedule": schedule,
            "is_schedule_active": is_schedule_active,
        }
        return (yield _input("create_deployment", {k: v for k, v in values.items() if v is not None}))

    @operation
    def update_deployment(self, deployment_id: str, **fields: Any) -> Steps:
        """Change the given fields (name, description, flow_id, parameters, tags, labels, schedule,
        is_schedule_active); a field given as None is cleared, one left out keeps its value."""
        return (yield _input("update_deployment", {"deployment_id": deployment_id, **fields}, idempotent=True))

    @operation
    def delete_deployment(self, deployment_id: str) -> Steps:
        """Delete a deployment and its runs that have not started (other runs are kept)."""
        return (yield _input("delete_deployment", {"deployment_id": deployment_id}, "success"))

    @operation
    def set_deployment_schedule_active(self, deployment_id: str, active: bool) -> Steps:
        """Resume (True) or pause (False) a deployment's schedule."""
        name = "set_deployment_schedule_active" if active else "set_deployment_schedule_inactive"
        return (yield _input(name, {"deployment_id": deployment_id}, "success", idempotent=True))

    @operation
    def get_deployments(self, flow_group_id: str | None = None, name: str | None = None) -> Steps:
        """Deployments (by flow group, then name), each with its columns, `flow_group_name` and
        the active version's `flow_name` and `project_name` (None when the group has none)."""
        where: dict[str, Any] = {}
        if flow_group_id:
            where["flow_group_id"] = {"_eq": flow_group_id}
        if name:
            where["name"] = {"_eq": name}
        rows = yield Request(doc.DEPLOYMENTS, {"where": where}, idempotent=True, extract=lambda d: d["deployment"])
        result = []
        for row in rows:
            group = row.pop("flow_group") or {}
            active = (group.get("flows") or [None])[0] or {}
            result.append({
                **row,
                "flow_group_name": group.get("name"),
                "flow_name": active.get("name"),
                "project_name": (active.get("project") or {}).get("name"),
            })
        return result

    @operation
    def apply_deployment_items(self, items: list[dict[str, Any]], dry_run: bool = False) -> Steps:
        """Create or update deployments by (flow_group_id, name), all or nothing; returns
        `[{id, name, flow_group_id, outcome}]` with outcome "created", "updated" or "unchanged"."""
        values = {"deployments": items, "dry_run": dry_run}
        request = _input("apply_deployments", values, "deployments { id name flow_group_id outcome }", idempotent=True)
        return (yield request)

    @operation
    def run_deployment(
        self,
        deployment_id: str,
        parameters: dict[str, Any] | None = None,
        labels: list[str] | None = None,
        run_name: str | None = None,
        idempotency_key: str | None = None,
    ) -> Steps:
        """Start a run of a deployment now (its parameters, tags and labels; those given here win);
        returns the run id."""
        values: dict[str, Any] = {
            "deployment_id": deployment_id, "parameters": parameters, "labels": labels, "flow_run_name": run_name,
            "idempotency_key": idempotency_key or uuid.uuid4().hex,
        }
        return (yield _input("create_flow_run", {k: v for k, v in values.items() if v is not None}, idempotent=True))

    @operation
    def wait_for_flow_run(
        self, flow_run_id: str, timeout: float | None = None, poll_interval: float = 1.0,
        on_change: Callable[[dict[str, Any]], None] | None = None,
    ) -> Steps:
        """Poll until the run is finished; `on_change` sees each new state."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last_state = None
        while True:
            run = yield from self.get_flow_run.steps(self, flow_run_id)
            if run is None:
                raise NotFound(f"Flow run {flow_run_id} not found.")
            if run["state"] != last_state:
                last_state = run["state"]
                if on_change is not None:
                    on_change(run)
            if run["state"] in FINISHED_STATES:
                return run
            if deadline is not None and time.monotonic() >= deadline:
                raise RunTimeout(f"Flow run {flow_run_id} is still {run['state']} after {timeout} s.")
            yield Sleep(poll_interval)


class _Transport:
    """Settings shared by both clients: URL, API key, timeouts, retries."""

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.5,
        transport: Any = None,
    ):
        self.url = (url or os.environ.get("HEADWATER_URL") or DEFAULT_URL).rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("HEADWATER_API_KEY")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._transport = transport
        self._tenant_id = None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _body(self, request: Request) -> dict[str, Any]:
        return {"query": request.document, "variables": request.variables}

    @staticmethod
    def _may_retry(request: Request, exc: Exception) -> bool:
        # A refused connection never reached the server; anything later might have.
        return isinstance(exc, httpx.ConnectError) or request.idempotent

    def _result(self, request: Request, response: httpx.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            raise ServerUnavailable(f"The server answered HTTP {response.status_code} without JSON.") from None
        if body.get("errors"):
            raise error_from_response(body["errors"])
        return request.extract(body.get("data") or {})

    def _give_up(self, exc: Exception) -> ServerUnavailable:
        return ServerUnavailable(f"Cannot reach headwater at {self.url}: {exc.__class__.__name__}: {exc}")


RETRYABLE = (httpx.TransportError,)
RETRY_STATUS = {502, 503, 504}


class Client(_Transport, Operations):
    """Synchronous client. `Client(url, api_key=...)`; URL defaults to $HEADWATER_URL or 127.0.0.1:4200."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._http = httpx.Client(timeout=self.timeout, transport=self._transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def execute(self, request: Request) -> Any:
        for attempt in range(self.retries + 1):
            try:
                response = self._http.post(self.url, json=self._body(request), headers=self._headers())
                if response.status_code in RETRY_STATUS and request.idempotent and attempt < self.retries:
                    time.sleep(self.backoff * 2**attempt)
                    continue
                return self._result(request, response)
            except RETRYABLE as exc:
                if attempt >= self.retries or not self._may_retry(request, exc):
                    raise self._give_up(exc) from exc
                time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")

    def _drive(self, steps: Steps) -> Any:
        try:
            step = next(steps)
            while True:
                if isinstance(step, Sleep):
                    time.sleep(step.seconds)
                    step = steps.send(None)
                else:
                    try:
                        result = self.execute(step)
                    except HeadwaterError as exc:
                        # The operation may handle it (e.g. `exist_ok`); if not, it propagates.
                        step = steps.throw(exc)
                    else:
                        step = steps.send(result)
        except StopIteration as done:
            return done.value


class AsyncClient(_Transport, Operations):
    """Asynchronous twin of `Client`: the same methods, awaited."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._http = httpx.AsyncClient(timeout=self.timeout, transport=self._transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def execute(self, request: Request) -> Any:
        for attempt in range(self.retries + 1):
            try:
                response = await self._http.post(self.url, json=self._body(request), headers=self._headers())
                if response.status_code in RETRY_STATUS and request.idempotent and attempt < self.retries:
                    await asyncio.sleep(self.backoff * 2**attempt)
                    continue
                return self._result(request, response)
            except RETRYABLE as exc:
                if attempt >= self.retries or not self._may_retry(request, exc):
                    raise self._give_up(exc) from exc
                await asyncio.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")

    async def _drive(self, steps: Steps) -> Any:
        try:
            step = next(steps)
            while True:
                if isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                    step = steps.send(None)
                else:
                    try:
                        result = await self.execute(step)
                    except HeadwaterError as exc:
                        step = steps.throw(exc)
                    else:
                        step = steps.send(result)
        except StopIteration as done:
            return done.value
