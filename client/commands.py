"""The `headwater project|flow|run ...` commands: the Client, from a terminal.

Output is a readable table (or one line); errors are one line on stderr. Exit codes:
0 done, 1 the server refused or failed, 2 bad usage, 3 server unreachable, 4 a watched run
ended in a state other than Success.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Sequence

from headwater.client.client import Client
from headwater.client.errors import BadRequest, Conflict, HeadwaterError, ServerUnavailable

EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_RUN_NOT_SUCCESSFUL = 1, 2, 3, 4


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """Rows as aligned columns; `columns` is (heading, key) with dotted keys for nesting."""

    def cell(row: dict[str, Any], key: str) -> str:
        value: Any = row
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            return ""
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        return str(value)

    table = [[heading for heading, _ in columns]] + [[cell(row, key) for _, key in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in table)


def parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    """`k=v` pairs; a value that parses as JSON is used as such (`n=3` is the number 3)."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise BadRequest(f"--param takes KEY=VALUE, got {pair!r}")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


def _project_create(hw: Client, args: argparse.Namespace) -> int:
    try:
        project_id = hw.create_project(args.name, args.description)
    except Conflict:
        if not args.skip_if_exists:
            raise
        project_id = hw.create_project(args.name, args.description, exist_ok=True)
        print(f"Project {args.name!r} already exists ({project_id})")
        return 0
    print(f"Created project {args.name!r} ({project_id})")
    return 0


def _project_list(hw: Client, args: argparse.Namespace) -> int:
    print(format_table(hw.list_projects(), [("NAME", "name"), ("FLOWS", "flows_aggregate.aggregate.count"),
                                            ("DESCRIPTION", "description"), ("ID", "id")]))
    return 0


def _flow_ref(hw: Client, flow: str, project: str | None) -> dict[str, Any]:
    """A flow from an id or a name (its active version)."""
    try:
        found = hw.get_flow(flow) if len(flow) == 36 and flow.count("-") == 4 else None
    except BadRequest:
        found = None
    return found or hw.find_flow(flow, project)


def _flow_list(hw: Client, args: argparse.Namespace) -> int:
    flows = hw.list_flows(project=args.project, all_versions=args.all_versions)
    print(format_table(flows, [("NAME", "name"), ("VERSION", "version"), ("PROJECT", "project.name"),
                               ("ARCHIVED", "archived"), ("SCHEDULE ACTIVE", "is_schedule_active"), ("ID", "id")]))
    return 0


def _flow_show(hw: Client, args: argparse.Namespace) -> int:
    flow = _flow_ref(hw, args.flow, args.project)
    settings = (flow.get("flow_group") or {}).get("settings") or {}
    details = {
        "id": flow["id"],
        "name": flow["name"],
        "version": flow["version"],
        "project": flow["project"]["name"],
        "archived": flow["archived"],
        "schedule active": flow["is_schedule_active"],
        "parameters": ", ".join(p["name"] for p in flow.get("parameters") or []) or "-",
        "labels": ", ".join((flow.get("run_config") or {}).get("labels") or []) or "-",
        "heartbeat": settings.get("heartbeat_enabled", True),
        "lazarus": settings.get("lazarus_enabled", True),
        "version lock": settings.get("version_locking_enabled", False),
        "flow group": flow["flow_group_id"],
    }
    width = max(map(len, details))
    print("\n".join(f"{key.ljust(width)}  {value}" for key, value in details.items()))
    return 0


def _flow_archive(hw: Client, args: argparse.Namespace) -> int:
    flow = _flow_ref(hw, args.flow, args.project)
    hw.archive_flow(flow["id"])
    print(f"Archived {flow['name']!r} version {flow['version']} ({flow['id']})")
    return 0


def _run_create(hw: Client, args: argparse.Namespace) -> int:
    flow = _flow_ref(hw, args.flow, args.project)
    run_id = hw.create_flow_run(
        flow["id"], parameters=parse_params(args.param), labels=args.label or None, run_name=args.name,
    )
    print(f"Created flow run {run_id} of {flow['name']!r}")
    if not args.watch:
        return 0

    def show(run: dict[str, Any]) -> None:
        message = f": {run['state_message']}" if run.get("state_message") else ""
        print(f"  {run['state']}{message}", flush=True)

    final = hw.wait_for_flow_run(run_id, timeout=args.timeout, poll_interval=1.0, on_change=show)
    return 0 if final["state"] == "Success" else EXIT_RUN_NOT_SUCCESSFUL


def _run_list(hw: Client, args: argparse.Namespace) -> int:
    runs = hw.list_flow_runs(flow_name=args.flow, state=args.state, limit=args.limit)
    print(format_table(runs, [("NAME", "name"), ("FLOW", "flow.name"), ("STATE", "state"),
                              ("SCHEDULED", "scheduled_start_time"), ("ID", "id")]))
    return 0


def _run_show(hw: Client, args: argparse.Namespace) -> int:
    run = hw.get_flow_run(args.run_id)
    if run is None:
        raise HeadwaterError(f"Flow run {args.run_id} not found.")
    print(f"{run['name']} ({run['id']}) of flow {run['flow']['name']!r}: {run['state']}")
    print(f"parameters: {json.dumps(run['parameters'])}  labels: {', '.join(run['labels']) or '-'}")
    print(format_table(hw.get_task_runs(args.run_id), [("TASK", "task.slug"), ("MAP INDEX", "map_index"),
                                                        ("STATE", "state"), ("MESSAGE", "state_message")]))
    return 0


def _run_logs(hw: Client, args: argparse.Namespace) -> int:
    for entry in hw.get_logs(args.run_id):
        print(f"{entry['timestamp']}  {entry['level']:<8} {entry['name'] or ''}: {entry['message']}")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add `project`, `flow`, `run` and `deployment` (deployment_commands.py) to the `headwater` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="headwater URL (default $HEADWATER_URL or http://127.0.0.1:4200)")
    common.add_argument("--api-key", help="API key (default $HEADWATER_API_KEY)")

    def group(name: str, help: str) -> argparse._SubParsersAction:
        parser = commands.add_parser(name, help=help)
        return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="ACTION")

    def command(sub: argparse._SubParsersAction, name: str, help: str, handler: Callable) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help, parents=[common])
        parser.set_defaults(handler=handler, client_command=True)
        return parser

    projects = group("project", "create and list projects")
    create = command(projects, "create", "create a project", _project_create)
    create.add_argument("name")
    create.add_argument("--description")
    create.add_argument("--skip-if-exists", action="store_true",
                        help="succeed (exit 0) when a project of that name exists, as `prefect create project` does")
    command(projects, "list", "list projects", _project_list)

    flows = group("flow", "list, show and archive flows")
    listing = command(flows, "list", "list flows (active versions unless --all-versions)", _flow_list)
    listing.add_argument("--project")
    listing.add_argument("--all-versions", action="store_true")
    for name, help, handler in (("show", "show a flow", _flow_show), ("archive", "archive a flow", _flow_archive)):
        parser = command(flows, name, help, handler)
        parser.add_argument("flow", help="flow id, or name of its active version")
        parser.add_argument("--project")

    runs = group("run", "create, list and inspect flow runs")
    create_run = command(runs, "create", "create a flow run", _run_create)
    create_run.add_argument("flow", help="flow id, or name of its active version")
    create_run.add_argument("--project")
    create_run.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    create_run.add_argument("--label", action="append", metavar="LABEL")
    create_run.add_argument("--name", help="run name (default: a random readable one)")
    create_run.add_argument("--watch", action="store_true", help="follow the run's state until it finishes")
    create_run.add_argument("--timeout", type=float, help="with --watch: give up after this many seconds")
    list_runs = command(runs, "list", "list recent flow runs", _run_list)
    list_runs.add_argument("--flow", help="flow name")
    list_runs.add_argument("--state")
    list_runs.add_argument("--limit", type=int, default=20)
    for name, help, handler in (("show", "show a run and its task runs", _run_show), ("logs", "print a run's logs", _run_logs)):
        parser = command(runs, name, help, handler)
        parser.add_argument("run_id")

    from headwater.client.deployment_commands import add_deployment_commands

    add_deployment_commands(commands, common)


def run_client_command(args: argparse.Namespace) -> int:
    try:
        with Client(args.url, api_key=args.api_key) as hw:
            return args.handler(hw, args)
    except ServerUnavailable as exc:
        print(f"headwater: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except HeadwaterError as exc:
        print(f"headwater: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, BadRequest) else EXIT_FAILED
