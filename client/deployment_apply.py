"""Apply a deployment spec file to a server, all or nothing: `Client.apply_deployments(path)`.

Order matters, because flows named by `flow_location` must be registered before the server can
take their deployments, and a bad spec must cause no registration at all:

1. read and check the file locally (deployment_specs.py);
2. load the flow scripts (Prefect), look up the projects and registered flows on the server,
   check required parameters and duplicate names per flow;
3. a server dry run of every deployment whose flow group is already known;
4. only then write: create the "default" project if a script flow needs it, register each script
   flow (idempotency key = its serialized hash, so an unchanged flow makes no new version), and
   apply every deployment in one server transaction.

Any problem in steps 1-3 raises `DeploymentSpecError` listing them all, and nothing is written.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headwater.client.deployment_flows import ScriptFlow, load_script_flows, require_prefect, serialized_for_registration
from headwater.client.deployment_specs import (
    DEFAULT_PROJECT,
    Deployment,
    DeploymentSpecError,
    SpecFile,
    duplicate_problems,
    load_spec_file,
)
from headwater.client.errors import BadRequest, HeadwaterError, NotFound

_SERVER_ITEM = re.compile(r"^deployments\[(\d+)\](?: \(name .*?\))?: ")


@dataclass
class Target:
    """The flow a deployment runs: a script flow to register, or a registered flow group."""

    project: str
    flow_name: str
    script_flow: ScriptFlow | None = None
    flow_group_id: str | None = None  # known before writing for registered flows (and known script flows)
    required: list[str] = field(default_factory=list)
    group_defaults: dict[str, Any] = field(default_factory=dict)


def _item(deployment: Deployment, flow_group_id: str) -> dict[str, Any]:
    item = {
        "flow_group_id": flow_group_id,
        "name": deployment.name,
        "description": deployment.description,
        "parameters": deployment.parameters,
        "tags": deployment.tags,
        "labels": deployment.labels,
        "schedule": deployment.schedules or None,
    }
    if deployment.is_schedule_active is not None:
        item["is_schedule_active"] = deployment.is_schedule_active
    return item


def _spec_error(spec: SpecFile, items: list[Deployment], error: HeadwaterError) -> HeadwaterError:
    """The server's `deployments[i] (name 'x'): field: ...` as `file: deployment 'x' (#n): field: ...`."""
    match = _SERVER_ITEM.match(error.message)
    if match is None or not isinstance(error, BadRequest) or int(match.group(1)) >= len(items):
        return error
    deployment = items[int(match.group(1))]
    return DeploymentSpecError([spec.problem(deployment, None, error.message[match.end():])])


def apply_deployments_steps(hw: Any, path: str | Path):
    """Steps (see client.py) that apply a spec file; returns one dict per deployment, in file order:
    `{"id", "name", "flow_name", "project", "flow_group_id", "outcome"}` (created/updated/unchanged)."""
    spec = load_spec_file(path)
    problems: list[str] = []
    targets: dict[int, Target] = {}

    # --- step 2: flows, projects, parameters ---------------------------------------------
    scripts: dict[Path, dict[str, ScriptFlow] | None] = {}
    if any(d.flow_location for d in spec.deployments):
        require_prefect()
    for d in spec.deployments:
        if d.flow_location is None:
            continue
        if d.flow_location not in scripts:
            try:
                scripts[d.flow_location] = load_script_flows(d.flow_location)
            except ValueError as exc:
                scripts[d.flow_location] = None
                problems.append(spec.problem(d, "flow_location", str(exc)))
                continue
        flows = scripts[d.flow_location]
        if flows is None:
            continue
        if d.flow_name is not None and d.flow_name not in flows:
            problems.append(spec.problem(d, "flow_name", f"no flow {d.flow_name!r} in {d.flow_location} "
                                                        f"(it has {', '.join(map(repr, sorted(flows)))})"))
            continue
        if d.flow_name is None and len(flows) > 1:
            problems.append(spec.problem(d, "flow_name", f"{d.flow_location} holds several flows "
                                                        f"({', '.join(map(repr, sorted(flows)))}); name one"))
            continue
        script_flow = flows[d.flow_name] if d.flow_name else next(iter(flows.values()))
        targets[d.index] = Target(d.project, script_flow.name, script_flow=script_flow,
                                  required=script_flow.required_parameters())

    projects: dict[str, str | None] = {}
    for d in spec.deployments:
        if d.project not in projects:
            rows = yield from hw.list_projects.steps(hw, d.project)
            projects[d.project] = rows[0]["id"] if rows else None
        if projects[d.project] is None and not (d.flow_location and d.project == DEFAULT_PROJECT):
            problems.append(spec.problem(d, "project", f"unknown project {d.project!r}"))
            targets.pop(d.index, None)
            continue
        flow_name = targets[d.index].flow_name if d.index in targets else d.flow_name
        if flow_name is None or (d.flow_location and d.index not in targets):
            continue  # the script failed to load: reported above
        registered = []
        if projects[d.project] is not None:
            registered = yield from hw.list_flows.steps(hw, project=d.project, name=flow_name)
        if d.flow_location is None:
            if not registered:
                problems.append(spec.problem(d, "flow_name", f"unknown flow {flow_name!r} in project {d.project!r}"))
                continue
            flow = registered[0]
            targets[d.index] = Target(
                d.project, flow_name, flow_group_id=flow["flow_group_id"],
                required=sorted(p["name"] for p in flow.get("parameters") or []
                                if p.get("required") and p.get("default") is None),
            )
        elif registered:  # a script flow registered before: its group can take a dry run
            targets[d.index].flow_group_id = registered[0]["flow_group_id"]
        target = targets[d.index]
        if registered:
            target.group_defaults = (registered[0].get("flow_group") or {}).get("default_parameters") or {}

    for d in spec.deployments:
        target = targets.get(d.index)
        if target is None:
            continue
        missing = [p for p in target.required if p not in d.parameters and p not in target.group_defaults]
        if missing:
            problems.append(spec.problem(d, "parameters", f"missing required parameter{'s' if len(missing) > 1 else ''} "
                                                         f"{', '.join(map(repr, missing))} of flow {target.flow_name!r}"))
    problems.extend(duplicate_problems(
        spec.path, [d for d in spec.deployments if d.index in targets],
        flow_of=lambda d: (targets[d.index].project, targets[d.index].flow_name),
    ))
    if problems:
        raise DeploymentSpecError(problems)

    # --- step 3: the server checks what it can before anything is written -------------------
    known = [d for d in spec.deployments if targets[d.index].flow_group_id]
    if known:
        items = [_item(d, targets[d.index].flow_group_id) for d in known]
        for d, item in zip(known, items):
            if targets[d.index].script_flow is not None:
                # The server would check required parameters against the version registered
                # now, not the script about to be registered (checked above instead); an
                # inactive schedule skips only that check.
                item["is_schedule_active"] = False
        try:
            yield from hw.apply_deployment_items.steps(hw, items, dry_run=True)
        except HeadwaterError as error:
            raise _spec_error(spec, known, error) from None

    # --- step 4: write ----------------------------------------------------------------------
    registered_groups: dict[tuple[Path, str], str] = {}
    for d in spec.deployments:
        target = targets[d.index]
        if target.script_flow is None:
            continue
        key = (target.script_flow.script, target.flow_name)
        if key not in registered_groups:
            if projects[target.project] is None:
                projects[target.project] = yield from hw.create_project.steps(hw, target.project, exist_ok=True)
            serialized, flow_hash = serialized_for_registration(target.script_flow)
            flow_id = yield from hw.register_flow.steps(hw, serialized, projects[target.project], idempotency_key=flow_hash)
            flow = yield from hw.get_flow.steps(hw, flow_id)
            if flow is None:
                raise NotFound(f"Flow {flow_id} vanished right after registration.")
            registered_groups[key] = flow["flow_group_id"]
        target.flow_group_id = registered_groups[key]
    try:
        outcomes = yield from hw.apply_deployment_items.steps(
            hw, [_item(d, targets[d.index].flow_group_id) for d in spec.deployments])
    except HeadwaterError as error:
        raise _spec_error(spec, spec.deployments, error) from None
    return [
        {**outcome, "flow_name": targets[d.index].flow_name, "project": targets[d.index].project}
        for d, outcome in zip(spec.deployments, outcomes)
    ]


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def find_deployment_steps(hw: Any, reference: str):
    """A deployment from `FLOW/DEPLOYMENT`, its id, or a name only one deployment has."""
    flow_name, slash, name = reference.rpartition("/")
    rows = yield from hw.get_deployments.steps(hw, name=name)
    if slash:
        rows = [row for row in rows if row["flow_name"] == flow_name]
    if not rows and not slash and _is_uuid(reference):
        rows = [row for row in (yield from hw.get_deployments.steps(hw)) if row["id"] == reference]
    if not rows:
        raise NotFound(f"No deployment {reference!r}.")
    if len(rows) > 1:
        choices = ", ".join(sorted(f"{row['flow_name']}/{row['name']}" for row in rows))
        raise BadRequest(f"Several deployments are named {reference!r} ({choices}); write FLOW/DEPLOYMENT.")
    return rows[0]


class DeploymentFileOperations:
    """Mixed into Client and AsyncClient, which bring `_drive` and the low-level deployment
    methods (`get_deployments`, `apply_deployment_items`, `run_deployment`, ...)."""

    def apply_deployments(self, path: str | Path) -> Any:
        """Create or update every deployment a spec file (.py or .yaml) describes, all or nothing.

        Returns one dict per deployment (`id`, `name`, `flow_name`, `project`, `flow_group_id`,
        `outcome`: "created", "updated" or "unchanged"). A bad file raises `DeploymentSpecError`
        (a BadRequest) listing every problem, and nothing is written; without Prefect Core, a
        spec with `flow_location` raises `PrefectMissing` (also a BadRequest)."""
        return self._drive(apply_deployments_steps(self, path))

    def find_deployment(self, reference: str) -> Any:
        """One deployment (as `get_deployments` returns it) from `FLOW/DEPLOYMENT`, its id, or a
        name no other deployment has (NotFound, or BadRequest when the name is ambiguous)."""
        return self._drive(find_deployment_steps(self, reference))
