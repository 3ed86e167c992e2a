"""Flow groups: what every version of a flow shares: default parameters, labels, a run config,
a schedule, a description (and the switches in `settings`, see flow_settings.py)."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from typing import Any

from croniter import croniter
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from headwater.server.db.models import Flow, FlowGroup
from headwater.server.domain import scheduling, schedules
from headwater.server.domain.errors import InvalidInput
from headwater.server.domain.flows import delete_flow
from headwater.server.domain.limits import check_labels, check_payload
from headwater.server.domain.lookup import require

async def _group(session: AsyncSession, flow_group_id: uuid.UUID) -> FlowGroup:
    return await require(session, FlowGroup, flow_group_id, for_update=True)


async def _set(session: AsyncSession, flow_group_id: uuid.UUID, **values: Any) -> None:
    await _group(session, flow_group_id)
    await session.execute(update(FlowGroup).where(FlowGroup.id == flow_group_id).values(**values))


async def set_default_parameters(
    session: AsyncSession, flow_group_id: uuid.UUID, parameters: Any, max_bytes: int
) -> None:
    """Replace the group's default parameters (they overlay the flow's own defaults on new runs)."""
    if not isinstance(parameters, dict):
        raise InvalidInput("Default parameters must be a JSON object of name: value.")
    check_payload(parameters, "parameters", max_bytes)
    await _set(session, flow_group_id, default_parameters=parameters)


async def set_labels(session: AsyncSession, flow_group_id: uuid.UUID, labels: list[str] | None) -> None:
    """Set the labels new runs get; None means "unset" (fall back to the run config's)."""
    if labels is not None:
        check_labels(labels)
        labels = sorted(set(labels))
    await _set(session, flow_group_id, labels=labels)


async def set_run_config(session: AsyncSession, flow_group_id: uuid.UUID, run_config: Any) -> None:
    if run_config is not None and (not isinstance(run_config, dict) or "type" not in run_config):
        raise InvalidInput("A run config must be a serialized RunConfig object with a `type`.")
    await _set(session, flow_group_id, run_config=run_config)


async def set_description(session: AsyncSession, flow_group_id: uuid.UUID, description: str | None) -> None:
    await _set(session, flow_group_id, description=description)


def _start_date(timezone: str | None) -> dict[str, str] | None:
    if timezone is None:
        return None
    try:
        zone = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"Invalid timezone provided for schedule: {timezone}") from None
    local_now = dt.datetime.now(zone).replace(tzinfo=None, microsecond=0)
    return {"dt": local_now.isoformat(), "tz": timezone}


def build_schedule(
    cron_clocks: list[dict[str, Any]], interval_clocks: list[dict[str, Any]], timezone: str | None
) -> dict[str, Any]:
    """A serialized Core schedule from the mutation's clock inputs, validated clock by clock."""
    start_date = _start_date(timezone)
    clocks: list[dict[str, Any]] = []
    for index, clock in enumerate(cron_clocks):
        problem = _cron_problem(clock["cron"])
        if problem is not None:
            # Prefect Server's words first (its clients match on them), then why.
            raise InvalidInput(f"Invalid clock provided for schedule: cron_clocks[{index}]: {problem}")
        clocks.append({"type": "CronClock", "cron": clock["cron"], "start_date": start_date,
                       **_parameter_defaults(clock)})
    for index, clock in enumerate(interval_clocks):
        if clock["interval"] <= 0:
            raise InvalidInput(
                f"Invalid clock provided for schedule: interval_clocks[{index}]: the interval must be a "
                f"positive number of seconds, got {clock['interval']}."
            )
        clocks.append({"type": "IntervalClock", "interval": clock["interval"] * 1_000_000,
                       "start_date": start_date, **_parameter_defaults(clock)})
    if not clocks:
        raise InvalidInput("A schedule needs at least one cron or interval clock.")
    return {"type": "Schedule", "clocks": clocks}


def _cron_problem(expression: str) -> str | None:
    """Why croniter cannot use `expression`, in its words; None when it can."""
    if croniter.is_valid(expression):
        return None
    try:
        croniter(expression)
    except Exception as exc:  # noqa: BLE001 - croniter raises several kinds; each says why
        reason = str(exc).strip() or type(exc).__name__
    else:
        reason = "not a cron expression"
    return f"{expression!r} is not a valid cron expression ({reason})."


def _parameter_defaults(clock: dict[str, Any]) -> dict[str, Any]:
    defaults = clock.get("parameter_defaults")
    if defaults is None:
        return {}
    if not isinstance(defaults, dict):
        raise InvalidInput("A clock's parameter_defaults must be a JSON object.")
    return {"parameter_defaults": defaults}


async def _flow_ids(session: AsyncSession, flow_group_id: uuid.UUID) -> list[uuid.UUID]:
    return list((await session.scalars(select(Flow.id).where(Flow.flow_group_id == flow_group_id))).all())


async def set_schedule(session: AsyncSession, flow_group_id: uuid.UUID, schedule: dict[str, Any] | None) -> None:
    """Replace (or with None, remove) the group's schedule. Runs the old one created are removed;
    active versions get the new schedule's runs at once, and so do versions whose scheduling
    was turned on before there was a schedule. A version left with no schedule at all turns
    inactive until one returns. A schedule that can never fire is refused."""
    await schedules.validate_schedule(schedule)
    await _set(session, flow_group_id, schedule=schedule)
    flows = (
        await session.execute(
            select(Flow.id, Flow.schedule, Flow.is_schedule_active, Flow.settings).where(
                Flow.flow_group_id == flow_group_id
            )
        )
    ).all()
    await schedules.remove_future_runs(session, [flow_id for flow_id, *_ in flows])
    for flow_id, own_schedule, active, settings in flows:
        if schedule is not None and schedules.waits_for_schedule(settings):
            await schedules.activate(session, flow_id, raise_on_required_parameters=False)
        elif schedule is None and own_schedule is None and active:
            await schedules.wait_for_schedule(session, flow_id)
        else:
            await scheduling.schedule_flow(session, flow_id)


async def delete_group(session: AsyncSession, flow_group_id: uuid.UUID) -> None:
    """Delete the group with every flow version in it and their runs."""
    await _group(session, flow_group_id)
    for flow_id in await _flow_ids(session, flow_group_id):
        await delete_flow(session, flow_id)
    await session.execute(delete(FlowGroup).where(FlowGroup.id == flow_group_id))
