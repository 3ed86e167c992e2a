"""Agents: processes that poll for runs and start them. Registration is idempotent, so a
restarted agent reuses its row (same tenant, name, type, Core version and labels)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from headwater.server.db.models import Agent, AgentConfig, Tenant
from headwater.server.domain.errors import InvalidInput, NotFound
from headwater.server.domain.lookup import require


async def _tenant_or_default(session: AsyncSession, tenant_id: uuid.UUID | None) -> uuid.UUID:
    if tenant_id is not None:
        return (await require(session, Tenant, tenant_id)).id
    first = await session.scalar(select(Tenant.id).order_by(Tenant.created).limit(1))
    if first is None:
        raise NotFound("No tenant found.")
    return first


async def register_agent(
    session: AsyncSession,
    *,
    type: str,
    tenant_id: uuid.UUID | None = None,
    name: str | None = None,
    labels: list[str] | None = None,
    agent_config_id: uuid.UUID | None = None,
    core_version: str | None = None,
) -> uuid.UUID:
    if not type or not type.strip():
        raise InvalidInput("An agent needs a `type` (e.g. LocalAgent).")
    tenant = await _tenant_or_default(session, tenant_id)
    if agent_config_id is not None:
        await require(session, AgentConfig, agent_config_id)
    sorted_labels = sorted(set(labels or []))
    existing = await session.scalar(
        select(Agent.id)
        .where(
            Agent.tenant_id == tenant,
            Agent.name.is_not_distinct_from(name),
            Agent.type == type,
            Agent.core_version.is_not_distinct_from(core_version),
            Agent.labels == sorted_labels,
        )
        .limit(1)
    )
    if existing is not None:
        await session.execute(update(Agent).where(Agent.id == existing).values(agent_config_id=agent_config_id))
        return existing
    agent = Agent(
        tenant_id=tenant, name=name, type=type, core_version=core_version,
        labels=sorted_labels, agent_config_id=agent_config_id,
    )
    session.add(agent)
    await session.flush()
    return agent.id


async def delete_agent(session: AsyncSession, agent_id: uuid.UUID) -> None:
    await require(session, Agent, agent_id)
    await session.execute(delete(Agent).where(Agent.id == agent_id))


async def create_agent_config(
    session: AsyncSession, tenant_id: uuid.UUID, name: str | None, settings: Any
) -> uuid.UUID:
    if settings is not None and not isinstance(settings, dict):
        raise InvalidInput("Agent config settings must be a JSON object.")
    await require(session, Tenant, tenant_id)
    config = AgentConfig(tenant_id=tenant_id, name=name, settings=settings or {})
    session.add(config)
    await session.flush()
    return config.id


async def update_agent_config(
    session: AsyncSession, agent_config_id: uuid.UUID, name: str | None, settings: Any
) -> None:
    if settings is not None and not isinstance(settings, dict):
        raise InvalidInput("Agent config settings must be a JSON object.")
    await require(session, AgentConfig, agent_config_id)
    values = {k: v for k, v in {"name": name, "settings": settings}.items() if v is not None}
    if values:
        await session.execute(update(AgentConfig).where(AgentConfig.id == agent_config_id).values(**values))


async def delete_agent_config(session: AsyncSession, agent_config_id: uuid.UUID) -> None:
    await require(session, AgentConfig, agent_config_id)
    await session.execute(delete(AgentConfig).where(AgentConfig.id == agent_config_id))
