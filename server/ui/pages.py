"""The page handlers: each reads its data with a few GraphQL documents (headwater.server.ui.documents)
run as the browser's key, and renders a template. Buttons and live updates are static/app.js."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from functools import wraps
from typing import Any, Awaitable, Callable
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from headwater.server.ui import charts, documents
from headwater.server.ui.api import ApiError, LoginRequired, query
from headwater.server.ui.rendering import render

PAGE_SIZE = 25
LOG_TAIL = 500  # the newest log lines a flow-run page opens with; later ones arrive by polling
WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
FINAL_STATES = frozenset({"Success", "Failed", "Cancelled", "TimedOut", "TriggerFailed", "ValidationFailed",
                          "Skipped", "Cached", "Looped", "Finished", "ClientFailed"})
EPOCH = "1970-01-01T00:00:00+00:00"


class NotFound(Exception):
    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


Handler = Callable[[Request], Awaitable[Response]]


def page(handler: Handler) -> Handler:
    """Turns the UI's expected failures into pages: sign-in, not found, or the API's own message."""

    @wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except LoginRequired:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        except NotFound as missing:
            return render(request, "error.html", status=404, title="Not found", messages=[f"{missing.what} was not found."])
        except ApiError as error:
            return render(request, "error.html", status=error.status, title="The API refused", messages=error.messages)

    return wrapped


def now() -> datetime:
    return datetime.now(timezone.utc)


def uuid_or_none(value: str | None) -> str | None:
    try:
        return str(uuid.UUID(value)) if value else None
    except ValueError:
        return None


def page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return max(1, int(raw)) if raw.isdigit() else 1


def pages(total: int, current: int, *, cap: int | None = None, shown: int = 0) -> dict[str, Any]:
    """Where a paginated table is. A count that reached `cap` (it was counted with that limit) is
    shown as "10,000+"; the last page is then unknown and "Next" follows while pages are full."""
    if cap is not None and total >= cap:
        return {"current": current, "last": None, "total": f"{cap:,}+", "more": shown >= PAGE_SIZE}
    last = max(1, -(-total // PAGE_SIZE))
    current = min(current, last)
    return {"current": current, "last": last, "total": total, "more": current < last}


def link(request: Request, **changes: Any) -> str:
    """The current URL with query parameters changed (None removes one)."""
    params = dict(request.query_params)
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = str(value)
    return request.url.path + (f"?{urlencode(params)}" if params else "")


async def tenant(request: Request) -> dict[str, Any]:
    slug = request.path_params.get("tenant", "default")
    found = (await query(request, documents.TENANT, {"slug": slug}))["tenant"]
    if not found:
        raise NotFound(f"The tenant {slug!r}")
    return found[0]


def base_context(request: Request, current: dict[str, Any], section: str) -> dict[str, Any]:
    return {"tenant": current, "section": section, "link": lambda **c: link(request, **c), "browser_documents": documents.BROWSER}


# The dashboard counts each state up to this many runs and shows "10000+" beyond: an exact
# count of half a million finished runs would cost the page a scan of them on every load.
COUNT_CAP = 10_000


@page
async def dashboard(request: Request) -> Response:
    current = await tenant(request)
    window = request.query_params.get("window", "24h")
    window = window if window in WINDOWS else "24h"
    project = uuid_or_none(request.query_params.get("project"))
    scope: dict[str, Any] = {"tenant_id": {"_eq": current["id"]}}
    if project:
        scope["flow"] = {"project_id": {"_eq": project}}
    moment = now()
    chart_since = charts.chart_start(WINDOWS[window], moment, charts.BUCKETS[window])
    data = await query(request, documents.DASHBOARD, {
        "tenant": current["id"], "scope": scope, "since": (moment - WINDOWS[window]).isoformat(), "now": moment.isoformat(),
        "chart_since": chart_since.isoformat(), "history_limit": charts.CAP, "count_cap": COUNT_CAP,
    })
    counts = {name: data[name]["aggregate"]["count"] for name in ("scheduled", "submitted", "running", "success", "failed", "cancelled")}
    capped = {name for name, count in counts.items() if count >= COUNT_CAP}
    return render(
        request, "dashboard.html", **base_context(request, current, "dashboard"),
        data=data, counts=counts, capped=capped, window=window, windows=list(WINDOWS), project=project,
        chart=charts.run_history(data["history"], chart_since, moment, window),
        project_name=next((p["name"] for p in data["project"] if p["id"] == project), None),
    )


@page
async def flows(request: Request) -> Response:
    current = await tenant(request)
    search = request.query_params.get("q", "").strip()
    project = uuid_or_none(request.query_params.get("project"))
    number = page_number(request)
    where: dict[str, Any] = {"tenant_id": {"_eq": current["id"]}, "archived": {"_eq": False}}
    if search:
        escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where["name"] = {"_ilike": f"%{escaped}%"}
    if project:
        where["project_id"] = {"_eq": project}
    data = await query(request, documents.FLOWS, {
        "where": where, "limit": PAGE_SIZE, "offset": (number - 1) * PAGE_SIZE, "tenant": current["id"],
    })
    return render(
        request, "flows.html", **base_context(request, current, "flows"),
        flows=data["flow"], projects=data["project"], search=search, project=project,
        paging=pages(data["flow_aggregate"]["aggregate"]["count"], number),
    )


def active_version(versions: list[dict[str, Any]]) -> dict[str, Any] | None:
    unarchived = [v for v in versions if not v["archived"]]
    return (unarchived or versions or [None])[0]


def run_parameters(flow: dict[str, Any], group: dict[str, Any]) -> list[dict[str, Any]]:
    """The flow's declared parameters with the defaults a run gets (the group's override the flow's)."""
    overrides = group.get("default_parameters") or {}
    declared = []
    for parameter in flow.get("parameters") or []:
        name = parameter.get("name")
        has_default = name in overrides or parameter.get("default") is not None
        default = overrides.get(name, parameter.get("default"))
        declared.append({"name": name, "required": bool(parameter.get("required")) and not has_default,
                         "default": default, "has_default": has_default})
    return declared


TABS = ("overview", "runs", "versions", "tasks", "deployments")


def schedule_summary(schedules: list[dict[str, Any]] | None) -> list[str]:
    """One readable line per deployment schedule ("every 1h (UTC)", "cron 0 9 * * 1-5 (Europe/Berlin)")."""
    lines = []
    for item in schedules or []:
        zone = item.get("timezone") or "UTC"
        if item.get("interval") is not None:
            seconds = int(item["interval"])
            parts = [(seconds // 86400, "d"), (seconds % 86400 // 3600, "h"), (seconds % 3600 // 60, "m"), (seconds % 60, "s")]
            lines.append("every " + "".join(f"{n}{u}" for n, u in parts if n) + f" ({zone})")
        elif item.get("cron"):
            lines.append(f"cron {item['cron']} ({zone})")
        elif item.get("rrule"):
            lines.append(f"rrule {item['rrule']} ({zone})")
    return lines


async def deployment_list(request: Request, where: dict[str, Any], number: int) -> dict[str, Any]:
    """A page of deployments (by name) with their next runs, for the flow's tab and the tenant's page."""
    data = await query(request, documents.DEPLOYMENTS, {
        "where": where, "limit": PAGE_SIZE, "offset": (number - 1) * PAGE_SIZE, "now": now().isoformat()})
    rows = [{**d, "schedule_lines": schedule_summary(d["schedule"])} for d in data["deployment"]]
    return {"deployments": rows, "paging": pages(data["deployment_aggregate"]["aggregate"]["count"], number)}


@page
async def flow(request: Request) -> Response:
    current = await tenant(request)
    group_id = uuid_or_none(request.path_params["id"])
    if group_id is None:
        raise NotFound("That flow")
    group = (await query(request, documents.FLOW_GROUP, {"id": group_id}))["flow_group_by_pk"]
    if group is None or group["tenant_id"] != current["id"] or not group["flows"]:
        raise NotFound("That flow")
    tab = request.query_params.get("tab", "overview")
    tab = tab if tab in TABS else "overview"
    versions = group["flows"]
    active = active_version(versions)
    ids = [v["id"] for v in versions]
    state = request.query_params.get("state") or None
    number = page_number(request)
    where: dict[str, Any] = {"flow_id": {"_in": ids}}
    if state:
        where["state"] = {"_eq": state}
    runs = await query(request, documents.FLOW_RUNS, {
        "where": where,
        "limit": PAGE_SIZE if tab == "runs" else 10,
        "offset": (number - 1) * PAGE_SIZE if tab == "runs" else 0,
        "count_cap": COUNT_CAP,
        "next": {"flow_id": {"_in": ids}, "state": {"_eq": "Scheduled"}, "scheduled_start_time": {"_gte": now().isoformat()}},
    })
    tasks = (await query(request, documents.FLOW_TASKS, {"flow": active["id"]}))["task"] if tab == "tasks" else []
    deployments = (await deployment_list(request, {"flow_group_id": {"_eq": group_id}}, number)
                   if tab == "deployments" else None)
    settings = group.get("settings") or {}
    toggles = [
        ("schedule", "Schedule", active["is_schedule_active"] and bool(active["schedule"] or group["schedule"]),
         "SET_SCHEDULE_ACTIVE", "SET_SCHEDULE_INACTIVE", bool(active["schedule"] or group["schedule"])),
        ("heartbeat", "Heartbeat", settings.get("heartbeat_enabled", True) is not False, "ENABLE_HEARTBEAT", "DISABLE_HEARTBEAT", True),
        ("lazarus", "Lazarus", settings.get("lazarus_enabled", True) is not False, "ENABLE_LAZARUS", "DISABLE_LAZARUS", True),
        ("version-lock", "Version lock", settings.get("version_locking_enabled", False) is True,
         "ENABLE_VERSION_LOCK", "DISABLE_VERSION_LOCK", True),
    ]
    return render(
        request, "flow.html", **base_context(request, current, "flows"),
        group=group, active=active, versions=versions, tab=tab, tabs=TABS, runs=runs["flow_run"],
        next_runs=runs["next_runs"], state_filter=state, toggles=toggles, tasks=tasks,
        paging=pages(runs["flow_run_aggregate"]["aggregate"]["count"], number, cap=COUNT_CAP, shown=len(runs["flow_run"])),
        parameters=run_parameters(active, group), schedule=active["schedule"] or group["schedule"],
        labels=group["labels"] if group["labels"] is not None else None, deployments=deployments,
    )


def group_task_runs(task_runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per task; a mapped task's children under it, with their count per state."""
    groups: dict[str, dict[str, Any]] = {}
    for run in task_runs:
        entry = groups.setdefault(run["task"]["id"], {"task": run["task"], "parent": None, "children": []})
        if run["map_index"] < 0:
            entry["parent"] = run
        else:
            entry["children"].append(run)
    rows = []
    for entry in groups.values():
        counts: dict[str, int] = {}
        for child in entry["children"]:
            counts[child["state"] or "Pending"] = counts.get(child["state"] or "Pending", 0) + 1
        rows.append({**entry, "counts": sorted(counts.items()), "row": entry["parent"] or entry["children"][0]})
    return rows


@page
async def flow_run(request: Request) -> Response:
    current = await tenant(request)
    run_id = uuid_or_none(request.path_params["id"])
    if run_id is None:
        raise NotFound("That flow run")
    data = await query(request, documents.FLOW_RUN, {"id": run_id, "since": EPOCH, "log_order": "desc", "log_limit": LOG_TAIL})
    run = data["flow_run_by_pk"]
    if run is None or run["tenant_id"] != current["id"]:
        raise NotFound("That flow run")
    return render(
        request, "flow_run.html", **base_context(request, current, "flows"),
        run=run, task_groups=group_task_runs(run["task_runs"]), logs=list(reversed(data["log"])),
        final=run["state"] in FINAL_STATES, log_tail=LOG_TAIL,
    )


@page
async def task_run(request: Request) -> Response:
    current = await tenant(request)
    run_id = uuid_or_none(request.path_params["id"])
    if run_id is None:
        raise NotFound("That task run")
    data = await query(request, documents.TASK_RUN, {"id": run_id})
    run = data["task_run_by_pk"]
    if run is None or run["tenant_id"] != current["id"]:
        raise NotFound("That task run")
    return render(request, "task_run.html", **base_context(request, current, "flows"), run=run, logs=data["log"],
                  final=run["state"] in FINAL_STATES and run["flow_run"]["state"] in FINAL_STATES)


@page
async def deployments(request: Request) -> Response:
    current = await tenant(request)
    listed = await deployment_list(request, {"tenant_id": {"_eq": current["id"]}}, page_number(request))
    return render(request, "deployments.html", **base_context(request, current, "deployments"), **listed)


@page
async def agents(request: Request) -> Response:
    current = await tenant(request)
    data = await query(request, documents.AGENTS, {"tenant": current["id"]})
    return render(request, "agents.html", **base_context(request, current, "agents"), agents=data["agent"])
