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
        try:
            yield from apply_items_steps(
                hw, [_item(d, targets[d.index].flow_group_id) for d in known], dry_run=True)
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
        outcomes = yield from apply_items_steps(
            hw, [_item(d, targets[d.index].flow_group_id) for d in spec.deployments])
    except HeadwaterError as error:
        raise _spec_error(spec, spec.deployments, error) from None
    return [
        {**outcome, "flow_name": targets[d.index].flow_name, "project": targets[d.index].project}
        for d, outcome in zip(spec.deployments, outcomes)
    ]


# Deployments with the name of their flow (its newest version's), for FLOW/DEPLOYMENT references.
DEPLOYMENTS_WITH_FLOW = """
query($where: deployment_bool_exp, $limit: Int) {
  deployment(where: $where, order_by: [{name: asc}], limit: $limit) {
    id name description flow_group_id flow_id parameters tags labels schedule is_schedule_active created updated
    flow_group { id flows(order_by: {version: desc}, limit: 1) { id name version project { name } } }
  }
}"""


def _request(*args: Any, **kwargs: Any) -> Any:
    from headwater.client.client import Request  # client.py mixes this module in: import late

    return Request(*args, **kwargs)


def _with_flow(row: dict[str, Any]) -> dict[str, Any]:
    flows = (row.get("flow_group") or {}).get("flows") or [{}]
    return {**row, "flow_name": flows[0].get("name"), "project": (flows[0].get("project") or {}).get("name")}


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def list_deployments_steps(hw: Any, flow_name: str | None = None, name: str | None = None, limit: int = 1000):
    where: dict[str, Any] = {}
    if name:
        where["name"] = {"_eq": name}
    request = _request(DEPLOYMENTS_WITH_FLOW, {"where": where, "limit": limit}, idempotent=True,
                              extract=lambda d: d["deployment"])
    rows = [_with_flow(row) for row in (yield request)]
    return [row for row in rows if flow_name is None or row["flow_name"] == flow_name]


def find_deployment_steps(hw: Any, reference: str):
    """A deployment from `FLOW/DEPLOYMENT`, its id, or a name only one deployment has."""
    if _is_uuid(reference):
        rows = yield from _by_id(hw, reference)
        if rows:
            return rows[0]
    flow_name, slash, name = reference.rpartition("/")
    rows = yield from list_deployments_steps(hw, flow_name if slash else None, name)
    if not rows:
        raise NotFound(f"No deployment {reference!r}.")
    if len(rows) > 1:
        choices = ", ".join(sorted(f"{row['flow_name']}/{row['name']}" for row in rows))
        raise BadRequest(f"Several deployments are named {reference!r} ({choices}); write FLOW/DEPLOYMENT.")
    return rows[0]


def _by_id(hw: Any, deployment_id: str):
    request = _request(DEPLOYMENTS_WITH_FLOW, {"where": {"id": {"_eq": deployment_id}}, "limit": 1},
                              idempotent=True, extract=lambda d: d["deployment"])
    return [_with_flow(row) for row in (yield request)]


APPLY_DEPLOYMENTS = """
mutation($input: apply_deployments_input!) {
  apply_deployments(input: $input) { deployments { id name flow_group_id outcome } }
}"""


def apply_items_steps(hw: Any, items: list[dict[str, Any]], dry_run: bool = False):
    """`apply_deployments` on the server: one transaction, upsert by (flow_group_id, name)."""
    # Upserts by name: resending after a lost answer gives the same result ("unchanged").
    request = _request(APPLY_DEPLOYMENTS, {"input": {"deployments": items, "dry_run": dry_run}}, idempotent=True,
                       extract=lambda d: d["apply_deployments"]["deployments"])
    return (yield request)


def _deployment_mutation(name: str, values: dict[str, Any], select: str = "success", idempotent: bool = True):
    document = f"mutation($input: {name}_input!) {{ {name}(input: $input) {{ {select} }} }}"
    return (yield _request(document, {"input": values}, idempotent=idempotent,
                           extract=lambda d: (d.get(name) or {}).get(select)))


def run_deployment_steps(hw: Any, deployment_id: str, parameters: dict[str, Any] | None = None,
                         labels: list[str] | None = None, run_name: str | None = None,
                         idempotency_key: str | None = None):
    values = {"deployment_id": deployment_id, "parameters": parameters, "labels": labels,
              "flow_run_name": run_name, "idempotency_key": idempotency_key or uuid.uuid4().hex}
    return (yield from _deployment_mutation(
        "create_flow_run", {k: v for k, v in values.items() if v is not None}, "id"))


class DeploymentFileOperations:
    """Mixed into Client and AsyncClient (which bring `_drive`). The low-level methods here are
    what the spec files and the CLI need; Operations may define richer ones of the same names."""

    def apply_deployment_items(self, items: list[dict[str, Any]], dry_run: bool = False) -> Any:
        """Create or update deployments by (flow_group_id, name) in one transaction (all or
        nothing); returns `{id, name, flow_group_id, outcome}` per item."""
        return self._drive(apply_items_steps(self, items, dry_run))

    def run_deployment(self, deployment_id: str, parameters: dict[str, Any] | None = None,
                       labels: list[str] | None = None, run_name: str | None = None,
                       idempotency_key: str | None = None) -> Any:
        """A flow run of the deployment (its flow, parameters, tags, labels; these override); returns the run id."""
        return self._drive(run_deployment_steps(self, deployment_id, parameters, labels, run_name, idempotency_key))

    def set_deployment_schedule_active(self, deployment_id: str, active: bool) -> Any:
        """Turn a deployment's schedule on (runs are created) or off (its future runs are removed)."""
        name = "set_deployment_schedule_active" if active else "set_deployment_schedule_inactive"
        return self._drive(_deployment_mutation(name, {"deployment_id": deployment_id}))

    def delete_deployment(self, deployment_id: str) -> Any:
        """Delete a deployment and its runs that have not started (the others stay, without it)."""
        return self._drive(_deployment_mutation("delete_deployment", {"deployment_id": deployment_id}, idempotent=False))

    def apply_deployments(self, path: str | Path) -> Any:
        """Create or update every deployment a spec file (.py or .yaml) describes, all or nothing.

        Returns one dict per deployment (`id`, `name`, `flow_name`, `project`, `flow_group_id`,
        `outcome`: "created", "updated" or "unchanged"). A bad file raises `DeploymentSpecError`
        (a BadRequest) listing every problem, and nothing is written; without Prefect Core, a
        spec with `flow_location` raises `PrefectMissing` (also a BadRequest)."""
        return self._drive(apply_deployments_steps(self, path))

    def list_deployments_with_flows(self, flow_name: str | None = None, name: str | None = None) -> Any:
        """Deployments (optionally of one flow, by name, or with one name), each with `flow_name`
        and `project` (its flow's newest version's)."""
        return self._drive(list_deployments_steps(self, flow_name, name))

    def find_deployment(self, reference: str) -> Any:
        """One deployment from `FLOW/DEPLOYMENT`, its id, or a name no other deployment has
        (NotFound, or BadRequest when the name is ambiguous)."""
        return self._drive(find_deployment_steps(self, reference))
