"""The `headwater deployment create|ls|inspect|run|pause|resume|delete` commands.

Same conventions as client/commands.py: tables for lists, one line per result, errors on stderr
prefixed `headwater: `, and exit codes 0 done, 1 the server refused or failed, 2 bad usage or a
bad spec file, 3 server unreachable, 4 a watched run ended in a state other than Success
(130: Ctrl-C stopped watching; the run goes on).
A deployment is named `FLOW/DEPLOYMENT`, by its id, or by a name only one deployment has.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from headwater.client.commands import EXIT_USAGE, format_table, parse_params, watch_until_finished
from headwater.client.deployment_specs import DeploymentSpecError, spec_kind

if TYPE_CHECKING:
    from headwater.client.client import Client  # imported where used (client/commands.py says why)


def schedule_summary(schedules: Any) -> str:
    """One short text for a deployment's schedules: `every 1h; cron 0 9 * * * (Europe/Berlin)`."""
    if isinstance(schedules, dict):
        schedules = [schedules]
    parts = []
    for schedule in schedules or []:
        zone = f" ({schedule['timezone']})" if schedule.get("timezone") else ""
        if "interval" in schedule:
            parts.append(f"every {_duration(schedule['interval'])}{zone}")
        elif "cron" in schedule:
            parts.append(f"cron {schedule['cron']}{zone}")
        elif "rrule" in schedule:
            parts.append(f"rrule {schedule['rrule']}{zone}")
    return "; ".join(parts) or "-"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    text = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            text += f"{seconds // size}{unit}"
            seconds %= size
    return text or "0s"


def _label(deployment: dict[str, Any]) -> str:
    return f"{deployment['flow_name']}/{deployment['name']}"


def _create(hw: Client, args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        kind = spec_kind(path)
        print(f"Loading deployments from {kind} at {str(path)!r}...", flush=True)
        applied = hw.apply_deployments(path)
    except DeploymentSpecError as error:
        for problem in error.problems:
            print(f"headwater: {problem}", file=sys.stderr)
        return EXIT_USAGE
    for deployment in applied:
        print(f"{deployment['outcome'].capitalize()} deployment {deployment['name']!r} for flow {deployment['flow_name']!r}")
    return 0


def _ls(hw: Client, args: argparse.Namespace) -> int:
    rows = [
        {**d, "schedule_summary": schedule_summary(d.get("schedule")), "tag_list": ", ".join(d.get("tags") or []) or "-"}
        for d in hw.get_deployments()
        if args.flow is None or d["flow_name"] == args.flow
    ]
    rows.sort(key=lambda d: (d["flow_name"] or "", d["name"]))
    print(format_table(rows, [("FLOW", "flow_name"), ("NAME", "name"), ("SCHEDULE", "schedule_summary"),
                              ("ACTIVE", "is_schedule_active"), ("TAGS", "tag_list"), ("ID", "id")]))
    return 0


def _inspect(hw: Client, args: argparse.Namespace) -> int:
    deployment = hw.find_deployment(args.deployment)
    if args.json:
        print(json.dumps(deployment, indent=2, sort_keys=True))
        return 0
    details = {
        "name": deployment["name"],
        "flow": deployment["flow_name"],
        "project": deployment["project_name"],
        "id": deployment["id"],
        "description": deployment.get("description") or "-",
        "parameters": json.dumps(deployment.get("parameters") or {}),
        "tags": ", ".join(deployment.get("tags") or []) or "-",
        "labels": ", ".join(deployment["labels"]) if deployment.get("labels") is not None else "- (the flow's)",
        "schedule": schedule_summary(deployment.get("schedule")),
        "schedule active": deployment.get("is_schedule_active"),
        "pinned flow": deployment.get("flow_id") or "- (the active version)",
        "flow group": deployment["flow_group_id"],
        "created": deployment.get("created"),
        "updated": deployment.get("updated"),
    }
    width = max(map(len, details))
    print("\n".join(f"{key.ljust(width)}  {value}" for key, value in details.items()))
    return 0


def _run(hw: Client, args: argparse.Namespace) -> int:
    deployment = hw.find_deployment(args.deployment)
    run_id = hw.run_deployment(deployment["id"], parameters=parse_params(args.param) or None,
                               labels=args.label or None, run_name=args.name)
    print(f"Created flow run {run_id} of deployment {_label(deployment)!r}", flush=True)
    return watch_until_finished(hw, run_id, args.timeout) if args.watch else 0


def _pause(hw: Client, args: argparse.Namespace) -> int:
    deployment = hw.find_deployment(args.deployment)
    hw.set_deployment_schedule_active(deployment["id"], False)
    print(f"Paused the schedule of deployment {_label(deployment)!r}; its future runs are removed")
    return 0


def _resume(hw: Client, args: argparse.Namespace) -> int:
    deployment = hw.find_deployment(args.deployment)
    hw.set_deployment_schedule_active(deployment["id"], True)
    print(f"Resumed the schedule of deployment {_label(deployment)!r}")
    return 0


def _delete(hw: Client, args: argparse.Namespace) -> int:
    deployment = hw.find_deployment(args.deployment)
    hw.delete_deployment(deployment["id"])
    print(f"Deleted deployment {_label(deployment)!r} ({deployment['id']})")
    return 0


def add_deployment_commands(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add `deployment ...` to the `headwater` parser; `common` holds --url and --api-key."""
    parser = commands.add_parser("deployment", help="create deployments from spec files, list, run and schedule them")
    sub = parser.add_subparsers(dest="deployment_command", required=True, metavar="ACTION")

    def command(name: str, help: str, handler: Callable) -> argparse.ArgumentParser:
        action = sub.add_parser(name, help=help, parents=[common])
        action.set_defaults(handler=handler, client_command=True)
        return action

    def reference(action: argparse.ArgumentParser) -> None:
        action.add_argument("deployment", help="FLOW/DEPLOYMENT, a deployment id, or a name only one deployment has")

    create = command("create", "create or update the deployments of a spec file (.py or .yaml), all or nothing", _create)
    create.add_argument("file", help="a .py file creating DeploymentSpec(...) objects, or a .yaml/.yml list of deployments")
    listing = command("ls", "list deployments", _ls)
    listing.add_argument("--flow", help="only this flow's (by name)")
    inspect = command("inspect", "show a deployment", _inspect)
    reference(inspect)
    inspect.add_argument("--json", action="store_true", help="print the deployment as JSON")
    run = command("run", "create a flow run from a deployment (its parameters, tags and labels)", _run)
    reference(run)
    run.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                     help="override one of the deployment's parameters (JSON values are parsed: n=3)")
    run.add_argument("--label", action="append", metavar="LABEL", help="run with these labels instead")
    run.add_argument("--name", help="run name (default: a random readable one)")
    run.add_argument("--watch", action="store_true", help="follow the run's states and logs until it finishes")
    run.add_argument("--timeout", type=float, help="with --watch: give up after this many seconds")
    for name, help, handler in (
        ("pause", "turn the deployment's schedule off (its future runs are removed)", _pause),
        ("resume", "turn the deployment's schedule on again", _resume),
        ("delete", "delete a deployment and its runs that have not started", _delete),
    ):
        reference(command(name, help, handler))
