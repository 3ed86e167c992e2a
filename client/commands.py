"""The `headwater project|flow|run ...` commands: the Client, from a terminal.

Output is a readable table (or one line); errors are one line on stderr. Exit codes:
0 done, 1 the server refused or failed, 2 bad usage, 3 server unreachable, 4 a watched run
ended in a state other than Success.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import TYPE_CHECKING, Any, Callable, Sequence

from headwater.client.errors import BadRequest, Conflict, HeadwaterError, NotFound, ServerUnavailable

if TYPE_CHECKING:
    # Imported where used: the server's `headwater start` builds this parser and never needs
    # httpx, which the client loads.
    from headwater.client.client import Client

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


def _flow_unarchive(hw: Client, args: argparse.Namespace) -> int:
    flow = _archived_flow_ref(hw, args.flow, args.project, args.version)
    if not flow["archived"]:
        print(f"{flow['name']!r} version {flow['version']} is already active ({flow['id']})")
        return 0
    hw.unarchive_flow(flow["id"])
    print(f"Unarchived {flow['name']!r} version {flow['version']} ({flow['id']}); it is the active version now")
    return 0


def _archived_flow_ref(hw: Client, flow: str, project: str | None, version: int | None) -> dict[str, Any]:
    """A flow by id, or by name: that version (`--version`), else the newest of that name."""
    if _is_uuid(flow):
        found = hw.get_flow(flow)
        if found is None:
            raise NotFound(f"Flow {flow} not found.")
        return found
    versions = [v for v in hw.list_flows(project=project, name=flow, all_versions=True, limit=1000)
                if version is None or v["version"] == version]
    if not versions:
        where = f" in project {project!r}" if project else ""
        which = f" version {version}" if version is not None else ""
        raise NotFound(f"No flow named {flow!r}{which}{where}.")
    if len({v["project"]["name"] for v in versions}) > 1:
        raise BadRequest(f"Several projects have a flow named {flow!r}; name the project.")
    return max(versions, key=lambda v: v["version"])


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


_UUID_TEMPLATE = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
MIN_PREFIX = 4


def _id_prefix(value: str) -> str | None:
    """`value` lowercased if it can begin a run id's text form (hex, hyphens where ids have them)."""
    value = value.lower()
    if not value or len(value) > len(_UUID_TEMPLATE):
        return None
    for char, slot in zip(value, _UUID_TEMPLATE):
        if (slot == "-") != (char == "-") or (char != "-" and char not in "0123456789abcdef"):
            return None
    return value


def _run_ref(hw: Client, ref: str) -> str:
    """A flow run id from a full id, a unique id prefix (at least 4 hex digits) or a run name."""
    if _is_uuid(ref) and hw.get_flow_run(ref.lower()) is not None:
        return ref.lower()
    candidates = {run["id"]: run for run in hw.find_flow_runs({"name": {"_eq": ref}}, limit=20)}
    prefix = _id_prefix(ref)
    digits = (prefix or "").replace("-", "")
    if prefix and len(digits) >= MIN_PREFIX:
        # Ids sort as their hex text, so the ids beginning with `prefix` form one range.
        low, high = (uuid.UUID(digits.ljust(32, pad)) for pad in "0f")
        where = {"id": {"_gte": str(low), "_lte": str(high)}}
        candidates.update({run["id"]: run for run in hw.find_flow_runs(where, limit=20)
                           if run["id"].startswith(prefix)})
    if len(candidates) == 1:
        return next(iter(candidates))
    if candidates:
        listed = "; ".join(f"{run['id']} ({run['name']} of {run['flow']['name']!r}, {run['state']})"
                           for run in candidates.values())
        raise BadRequest(f"{ref!r} matches {len(candidates)} flow runs: {listed}. Give more of the id.")
    if prefix and len(digits) < MIN_PREFIX:
        raise BadRequest(f"No flow run is named {ref!r}, and an id prefix needs at least {MIN_PREFIX} hex digits.")
    raise NotFound(f"No flow run with id, id prefix or name {ref!r}.")


def _run_create(hw: Client, args: argparse.Namespace) -> int:
    flow = _flow_ref(hw, args.flow, args.project)
    run_id = hw.create_flow_run(
        flow["id"], parameters=parse_params(args.param), labels=args.label or None, run_name=args.name,
    )
    print(f"Created flow run {run_id} of {flow['name']!r}", flush=True)
    return watch_until_finished(hw, run_id, args.timeout) if args.watch else 0


def watch_until_finished(hw: Client, run_id: str, timeout: float | None) -> int:
    """`--watch`: stream the run until it ends; the exit code says whether it succeeded (130
    when Ctrl-C stops the watching, which leaves the run going)."""
    from headwater.client.watch import watch_flow_run

    try:
        final = watch_flow_run(hw, run_id, timeout=timeout)
    except TimeoutError as exc:
        raise HeadwaterError(str(exc)) from None
    except KeyboardInterrupt:
        print(f"headwater: stopped watching; flow run {run_id} goes on (headwater run show {run_id})",
              file=sys.stderr)
        return 130
    print(f"Flow run {run_id} finished: {final}")
    return 0 if final == "Success" else EXIT_RUN_NOT_SUCCESSFUL


def _run_list(hw: Client, args: argparse.Namespace) -> int:
    runs = hw.list_flow_runs(flow_name=args.flow, state=args.state, limit=args.limit, project=args.project)
    print(format_table(runs, [("NAME", "name"), ("FLOW", "flow.name"), ("PROJECT", "flow.project.name"), ("STATE", "state"),
                              ("SCHEDULED", "scheduled_start_time"), ("ID", "id")]))
    return 0


def _run_show(hw: Client, args: argparse.Namespace) -> int:
    run_id = _run_ref(hw, args.run)
    run = hw.get_flow_run(run_id)
    if run is None:
        raise NotFound(f"Flow run {run_id} not found.")
    print(f"{run['name']} ({run['id']}) of flow {run['flow']['name']!r}: {run['state']}")
    print(f"parameters: {json.dumps(run['parameters'])}  labels: {', '.join(run['labels']) or '-'}")
    print(format_table(hw.get_task_runs(run_id), [("TASK", "task.slug"), ("MAP INDEX", "map_index"),
                                                        ("STATE", "state"), ("MESSAGE", "state_message")]))
    return 0


def _run_logs(hw: Client, args: argparse.Namespace) -> int:
    for entry in hw.get_logs(_run_ref(hw, args.run)):
        print(f"{entry['timestamp']}  {entry['level']:<8} {entry['name'] or ''}: {entry['message']}")
    return 0


PARAM_HELP = (
    "a flow parameter, repeatable. VALUE is everything after the first '=', read as JSON when it "
    "parses as JSON (n=3 is the number 3, on=true a boolean, x=null null, xs='[1,2]' a list, "
    "s='\"3\"' the string \"3\"), otherwise taken as the string itself (city=Paris); an empty "
    "VALUE is the empty string"
)


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

    flow_help = "flow id, or name of its active version"
    project_help = "project name, when several projects have a flow of that name"

    projects = group("project", "create and list projects")
    create = command(projects, "create", "create a project", _project_create)
    create.add_argument("name", help="project name (unique)")
    create.add_argument("--description", help="free text shown by `project list`")
    create.add_argument("--skip-if-exists", action="store_true",
                        help="succeed (exit 0) when a project of that name exists, as `prefect create project` does")
    command(projects, "list", "list projects", _project_list)

    flows = group("flow", "list, show, archive and unarchive flows")
    listing = command(flows, "list", "list flows (active versions unless --all-versions)", _flow_list)
    listing.add_argument("--project", help="only the flows of this project (by name)")
    listing.add_argument("--all-versions", action="store_true", help="include archived versions")
    for name, help, handler in (("show", "show a flow", _flow_show), ("archive", "archive a flow", _flow_archive)):
        parser = command(flows, name, help, handler)
        parser.add_argument("flow", help=flow_help)
        parser.add_argument("--project", help=project_help)
    unarchive = command(flows, "unarchive", "make an archived flow version the active one again (the active "
                        "version of its group is archived)", _flow_unarchive)
    unarchive.add_argument("flow", help="flow id, or flow name (its newest version unless --version)")
    unarchive.add_argument("--project", help=project_help)
    unarchive.add_argument("--version", type=int, help="with a flow name: this version number")

    runs = group("run", "create, list and inspect flow runs")
    create_run = command(runs, "create", "create a flow run", _run_create)
    create_run.add_argument("flow", help=flow_help)
    create_run.add_argument("--project", help=project_help)
    create_run.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help=PARAM_HELP)
    create_run.add_argument("--label", action="append", metavar="LABEL",
                            help="a run label, repeatable (default: the flow's labels); an agent takes the run "
                                 "only if it has all of them")
    create_run.add_argument("--name", help="run name (default: a random readable one)")
    create_run.add_argument("--watch", action="store_true",
                            help="stream the run's states and logs until it finishes, explaining a run no agent "
                                 "takes; exit 0 on Success, 4 on any other final state")
    create_run.add_argument("--timeout", type=float, help="with --watch: give up (exit 1) after this many seconds")
    list_runs = command(runs, "list", "list recent flow runs", _run_list)
    list_runs.add_argument("--flow", help="only runs of flows with this name")
    list_runs.add_argument("--project", help="only runs of flows in this project (by name)")
    list_runs.add_argument("--state", help="only runs in this state (e.g. Running, Failed)")
    list_runs.add_argument("--limit", type=int, default=20, help="at most this many runs, newest first (default 20)")
    for name, help, handler in (("show", "show a run and its task runs", _run_show), ("logs", "print a run's logs", _run_logs)):
        parser = command(runs, name, help, handler)
        parser.add_argument("run", metavar="RUN",
                            help=f"run id, a unique prefix of it (at least {MIN_PREFIX} hex digits) or the run's name")

    from headwater.client.deployment_commands import add_deployment_commands

    add_deployment_commands(commands, common)


def run_client_command(args: argparse.Namespace) -> int:
    from headwater.client.client import Client

    try:
        with Client(args.url, api_key=args.api_key) as hw:
            return args.handler(hw, args)
    except ServerUnavailable as exc:
        print(f"headwater: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except HeadwaterError as exc:
        print(f"headwater: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, BadRequest) else EXIT_FAILED
