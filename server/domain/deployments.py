"""Deployments: named, parameterised, scheduled entry points to a flow group.

A deployment belongs to a flow group (the identity that survives new versions) and runs the
group's active version unless it pins a `flow_id`. Its runs take, in increasing precedence, the
flow's parameter defaults, the group's default parameters, the deployment's `parameters` and
whatever a caller passes; its `tags`; and its `labels` when set (they replace the flow's labels
for agent routing).

Every write validates all fields before touching a row, so `apply_deployments` can promise all
or nothing: one bad item raises and the transaction around it writes none.

Scheduled runs are materialised by the scheduler (headwater.server.domain.deployment_scheduling).
A write that changes what those runs would be (schedule, parameters, tags, labels, pinned flow)
deletes the deployment's future auto-scheduled runs that have not started and schedules again
at once, so the window always reflects the stored deployment; the times are the same whenever
the schedule is, because each run's idempotency key is its deployment and time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from headwater.server.db.models import Deployment, Flow, FlowGroup, FlowRun
from headwater.server.domain.deployment_scheduling import schedule_deployment
from headwater.server.domain.deployment_schedules import as_schedule_list, schedule_error
from headwater.server.domain.errors import Conflict, InvalidInput, NotFound
from headwater.server.domain.flow_runs import find_deployment_flow
from headwater.server.domain.limits import MAX_LABEL_LENGTH, MAX_LABELS, MAX_NAME_LENGTH, check_payload, check_text
from headwater.server.domain.lookup import require
from headwater.server.domain.schedules import REQUIRED_PARAMETERS_ERROR

# The fields a caller may set; `flow_group_id` and `name` identify a deployment in `apply`.
FIELDS = ("name", "description", "flow_id", "parameters", "tags", "labels", "schedule", "is_schedule_active")
# Changing one of these changes the runs the schedule would create.
_RUN_SHAPING = ("flow_id", "parameters", "tags", "labels", "schedule")
MAX_DESCRIPTION_LENGTH = 10_000
UNSET: Any = object()


def _check_strings(values: Any, what: str) -> list[str]:
    if not isinstance(values, list):
        raise InvalidInput(f"{what}: expected a list of strings, got {values!r}")
    if len(values) > MAX_LABELS:
        raise InvalidInput(f"{what}: {len(values)} items; the limit is {MAX_LABELS}")
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"{what}: expected non-empty strings, got {value!r}")
        if len(value) > MAX_LABEL_LENGTH or "\x00" in value:
            raise InvalidInput(f"{what}: {value[:40]!r}... is longer than {MAX_LABEL_LENGTH} characters or holds NUL")
    return list(dict.fromkeys(values))


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("name: a deployment needs a non-empty name")
    if "/" in name:
        raise InvalidInput(f"name: {name!r} may not contain '/' (it separates flow and deployment in 'FLOW/DEPLOYMENT')")
    check_text(name, "name", MAX_NAME_LENGTH)
    return name


def _field_error(prefix: str, error: InvalidInput) -> InvalidInput:
    return InvalidInput(f"{prefix}{error.message}") if prefix else error


@dataclass
class _Checked:
    """A deployment's complete field values after validation, ready to write."""

    tenant_id: uuid.UUID
    flow_group_id: uuid.UUID
    values: dict[str, Any]


async def _validate(
    session: AsyncSession,
    group: FlowGroup,
    values: dict[str, Any],
    *,
    max_bytes: int,
    now: dt.datetime,
) -> dict[str, Any]:
    """Check and normalise a deployment's full field values (InvalidInput naming the field)."""
    values = dict(values)
    values["name"] = _check_name(values["name"])
    description = values.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidInput(f"description: expected a string, got {description!r}")
    check_text(description, "description", MAX_DESCRIPTION_LENGTH)
    parameters = values.get("parameters")
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise InvalidInput(f"parameters: expected an object, got {parameters!r}")
    check_payload(parameters, "parameters", max_bytes)
    values["parameters"] = parameters
    values["tags"] = _check_strings(values.get("tags") or [], "tags")
    if values.get("labels") is not None:
        values["labels"] = sorted(_check_strings(values["labels"], "labels"))
    schedules = as_schedule_list(values.get("schedule"))
    problem = await asyncio.to_thread(schedule_error, schedules, now) if schedules else None
    if problem is not None:
        raise InvalidInput(problem)
    values["schedule"] = schedules
    active = values.get("is_schedule_active")
    values["is_schedule_active"] = True if active is None else bool(active)
    flow_id = values.get("flow_id")
    if flow_id is not None:
        flow = await session.get(Flow, flow_id)
        if flow is None or flow.flow_group_id != group.id:
            raise InvalidInput(f"flow_id: flow {flow_id} is not a version of flow group {group.id}")
        if flow.archived:
            raise InvalidInput(f"flow_id: flow {flow_id} is archived")
    probe = Deployment(flow_group_id=group.id, flow_id=flow_id)
    try:
        flow, group_row = await find_deployment_flow(session, probe)
    except NotFound as error:
        raise InvalidInput(f"flow_group_id: {error.message}") from None
    if values["is_schedule_active"] and schedules:
        missing = unschedulable_parameters(flow, group_row, parameters)
        if missing:
            raise InvalidInput(
                f"parameters: {REQUIRED_PARAMETERS_ERROR} Give these a value in the deployment's "
                f"parameters or the flow group's defaults: {', '.join(sorted(missing))}."
            )
    return values


def unschedulable_parameters(flow: Flow, group: FlowGroup | None, parameters: dict[str, Any]) -> set[str]:
    """Required flow parameters that neither the group's defaults nor `parameters` give a value."""
    required = {p.get("name") for p in (flow.parameters or []) if isinstance(p, dict) and p.get("required")}
    return required - set((group.default_parameters if group is not None else None) or {}) - set(parameters)


async def _group(session: AsyncSession, flow_group_id: uuid.UUID) -> FlowGroup:
    group = await session.get(FlowGroup, flow_group_id)
    if group is None:
        raise NotFound(f"Flow group {flow_group_id} not found.")
    return group


async def _by_name(session: AsyncSession, flow_group_id: uuid.UUID, name: str, *, for_update: bool = False):
    query = select(Deployment).where(Deployment.flow_group_id == flow_group_id, Deployment.name == name)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


def _row_values(deployment: Deployment) -> dict[str, Any]:
    return {name: getattr(deployment, name) for name in FIELDS}


async def _insert(session: AsyncSession, group: FlowGroup, values: dict[str, Any], now: dt.datetime) -> uuid.UUID:
    deployment_id = await session.scalar(
        Deployment.__table__.insert()
        .values(tenant_id=group.tenant_id, flow_group_id=group.id, **values)
        .returning(Deployment.__table__.c.id)
    )
    await _schedule_now(session, deployment_id, values, now)
    return deployment_id


async def _write(session: AsyncSession, deployment: Deployment, values: dict[str, Any], now: dt.datetime) -> bool:
    """Store changed values; returns False (and writes nothing, `updated` included) when none differ."""
    old = _row_values(deployment)
    changed = {name: value for name, value in values.items() if old.get(name) != value}
    if not changed:
        return False
    await session.execute(update(Deployment).where(Deployment.id == deployment.id).values(**changed))
    if any(name in changed for name in _RUN_SHAPING) or changed.get("is_schedule_active") is False:
        await remove_future_runs(session, [deployment.id])
    await _schedule_now(session, deployment.id, {**old, **values}, now)
    return True


async def _schedule_now(
    session: AsyncSession, deployment_id: uuid.UUID, values: dict[str, Any], now: dt.datetime
) -> None:
    if values["is_schedule_active"] and values["schedule"]:
        await schedule_deployment(session, deployment_id, now=now)


async def create_deployment(
    session: AsyncSession,
    *,
    flow_group_id: uuid.UUID,
    name: str,
    description: str | None = None,
    flow_id: uuid.UUID | None = None,
    parameters: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    labels: list[str] | None = None,
    schedule: Any = None,
    is_schedule_active: bool | None = None,
    max_bytes: int,
    now: dt.datetime | None = None,
) -> uuid.UUID:
    """Create a deployment (its schedule active unless told otherwise) and its first runs.

    `now` (default: the current time) is when schedules are checked and runs counted from."""
    now = now or dt.datetime.now(dt.timezone.utc)
    group = await _group(session, flow_group_id)
    values = await _validate(
        session, group,
        {"name": name, "description": description, "flow_id": flow_id, "parameters": parameters, "tags": tags,
         "labels": labels, "schedule": schedule, "is_schedule_active": is_schedule_active},
        max_bytes=max_bytes, now=now,
    )
    if await _by_name(session, flow_group_id, values["name"]) is not None:
        raise Conflict(f"name: a deployment named {values['name']!r} already exists in flow group {flow_group_id}")
    return await _insert(session, group, values, now)


async def update_deployment(
    session: AsyncSession,
    deployment_id: uuid.UUID,
    changes: dict[str, Any],
    *,
    max_bytes: int,
    now: dt.datetime | None = None,
) -> None:
    """Change the given fields (a key left out keeps its value; None clears it).

    Changing the schedule, parameters, tags, labels or pinned flow deletes the deployment's
    future auto-scheduled runs that have not started; they are created again at once from the
    new values (at identical times when the schedule is unchanged).
    """
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"{unknown[0]}: not a deployment field")
    now = now or dt.datetime.now(dt.timezone.utc)
    deployment = await require(session, Deployment, deployment_id, for_update=True)
    group = await _group(session, deployment.flow_group_id)
    merged = {**_row_values(deployment), **changes}
    values = await _validate(session, group, merged, max_bytes=max_bytes, now=now)
    if values["name"] != deployment.name:
        other = await _by_name(session, deployment.flow_group_id, values["name"])
        if other is not None:
            raise Conflict(f"name: a deployment named {values['name']!r} already exists in flow group {group.id}")
    await _write(session, deployment, values, now)


async def delete_deployment(session: AsyncSession, deployment_id: uuid.UUID) -> None:
    """Delete a deployment and its runs that have not started; other runs stay, deployment_id NULL."""
    await require(session, Deployment, deployment_id, for_update=True)
    await remove_future_runs(session, [deployment_id])
    await session.execute(delete(Deployment).where(Deployment.id == deployment_id))


async def set_schedule_active(
    session: AsyncSession, deployment_id: uuid.UUID, active: bool, *, now: dt.datetime | None = None
) -> None:
    """Turn the schedule on (creating its next runs; refused when a required parameter has no
    value) or off (deleting its runs that have not started). Resuming recreates them at
    identical times."""
    deployment = await require(session, Deployment, deployment_id, for_update=True)
    values = _row_values(deployment)
    if active and deployment.schedule:
        flow, group = await find_deployment_flow(session, deployment)
        missing = unschedulable_parameters(flow, group, deployment.parameters or {})
        if missing:
            raise InvalidInput(
                f"{REQUIRED_PARAMETERS_ERROR} Give these a value in the deployment's parameters "
                f"or the flow group's defaults: {', '.join(sorted(missing))}."
            )
    await _write(session, deployment, {**values, "is_schedule_active": active}, now or dt.datetime.now(dt.timezone.utc))


async def remove_future_runs(session: AsyncSession, deployment_ids: Iterable[uuid.UUID]) -> int:
    """Delete the deployments' auto-scheduled runs still Scheduled and not started; ad-hoc runs
    and runs already submitted, running or finished are kept."""
    ids = list(deployment_ids)
    if not ids:
        return 0
    result = await session.execute(
        delete(FlowRun).where(
            FlowRun.deployment_id.in_(ids),
            FlowRun.state == "Scheduled",
            FlowRun.auto_scheduled.is_(True),
            FlowRun.start_time.is_(None),
        )
    )
    return result.rowcount or 0


@dataclass(frozen=True)
class ApplyOutcome:
    id: uuid.UUID | None  # None for an item a dry run would create
    name: str
    flow_group_id: uuid.UUID
    outcome: str  # "created", "updated" or "unchanged"


async def apply_deployments(
    session: AsyncSession,
    items: list[dict[str, Any]],
    *,
    dry_run: bool = False,
    max_bytes: int,
    now: dt.datetime | None = None,
) -> list[ApplyOutcome]:
    """Create or update deployments by (flow_group_id, name), all or nothing.

    Every item is validated before anything is written; an error names the item
    (`deployments[i] (name 'x'): field: ...`). An item whose fields all equal the stored ones is
    "unchanged" and not written at all. Fields an item leaves out take their defaults, as in
    create (the item describes the whole deployment), except `is_schedule_active`: left out, an
    existing deployment keeps it, so a paused schedule stays paused. With `dry_run`, nothing is
    written.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    seen: dict[tuple[Any, Any], int] = {}
    plans: list[tuple[FlowGroup, Deployment | None, dict[str, Any]]] = []
    for index, item in enumerate(items):
        name = item.get("name")
        prefix = f"deployments[{index}] (name {name!r}): "
        unknown = sorted(set(item) - {"flow_group_id", *FIELDS})
        if unknown:
            raise InvalidInput(f"{prefix}{unknown[0]}: not a deployment field")
        key = (item.get("flow_group_id"), name)
        if key in seen:
            raise InvalidInput(f"{prefix}name: duplicate of deployments[{seen[key]}] in the same flow group")
        seen[key] = index
        try:
            if item.get("flow_group_id") is None:
                raise InvalidInput("flow_group_id: required")
            try:
                group = await _group(session, item["flow_group_id"])
            except NotFound as error:
                raise InvalidInput(f"flow_group_id: {error.message}") from None
            values = {field: item.get(field) for field in FIELDS}
            existing = await _by_name(session, group.id, name, for_update=True) if isinstance(name, str) else None
            if existing is not None and values["is_schedule_active"] is None:
                # A pause outlives re-applying a spec that does not mention it.
                values["is_schedule_active"] = existing.is_schedule_active
            values = await _validate(session, group, values, max_bytes=max_bytes, now=now)
        except InvalidInput as error:
            raise _field_error(prefix, error) from None
        plans.append((group, existing, values))
    outcomes = []
    for group, existing, values in plans:
        if existing is None:
            new_id = None if dry_run else await _insert(session, group, values, now)
            outcomes.append(ApplyOutcome(new_id, values["name"], group.id, "created"))
            continue
        differs = _row_values(existing) != values
        if differs and not dry_run:
            await _write(session, existing, values, now)
        outcomes.append(ApplyOutcome(existing.id, values["name"], group.id, "updated" if differs else "unchanged"))
    return outcomes
