"""The per-flow switches (heartbeat, Lazarus, version locking), kept in the flow group's
`settings` so they apply to every version of the flow. A missing key means its default."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, update
from sqlalchemy.ext.asyncio import AsyncSession

from headwater.server.db.models import Flow, FlowGroup
from headwater.server.db.sql import jsonb_merge
from headwater.server.domain.lookup import require

# Prefect Server wrote both keys; the client reads `heartbeat_enabled`.
HEARTBEAT_ON = {"heartbeat_enabled": True, "disable_heartbeat": False}
HEARTBEAT_OFF = {"heartbeat_enabled": False, "disable_heartbeat": True}
LAZARUS_ON = {"lazarus_enabled": True}
LAZARUS_OFF = {"lazarus_enabled": False}
VERSION_LOCK_ON = {"version_locking_enabled": True}
VERSION_LOCK_OFF = {"version_locking_enabled": False}


# What a new flow group starts with.
DEFAULTS = {"heartbeat_enabled": True, "lazarus_enabled": True, "version_locking_enabled": False}


def version_locking_enabled(settings: dict[str, Any] | None) -> bool:
    return (settings or {}).get("version_locking_enabled", False) is True


def heartbeat_enabled_clause() -> ColumnElement[bool]:
    """SQL: the flow group has not switched heartbeats (and so the zombie killer) off."""
    return ~FlowGroup.settings.contains({"heartbeat_enabled": False})


def lazarus_enabled_clause() -> ColumnElement[bool]:
    return ~FlowGroup.settings.contains(LAZARUS_OFF)


async def update_flow_settings(session: AsyncSession, flow_id: uuid.UUID, patch: dict[str, Any]) -> None:
    """Merge `patch` into the settings of the flow's group (atomic: other keys are kept)."""
    flow = await require(session, Flow, flow_id)
    await session.execute(
        update(FlowGroup)
        .where(FlowGroup.id == flow.flow_group_id)
        .values(settings=jsonb_merge(FlowGroup.settings, patch))
    )
