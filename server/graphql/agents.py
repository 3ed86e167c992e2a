"""Agent and agent-config mutations."""

from __future__ import annotations

from typing import Optional

import strawberry

from headwater.server.domain import agents
from headwater.server.graphql.context import Info
from headwater.server.graphql.payloads import AgentConfigIdPayload, AgentIdPayload, SuccessPayload, ok
from headwater.server.graphql.scalars import JSON, UUID


@strawberry.input(name="register_agent_input")
class RegisterAgentInput:
    type: str
    tenant_id: Optional[UUID] = None
    name: Optional[str] = None
    labels: Optional[list[str]] = None
    agent_config_id: Optional[UUID] = None


@strawberry.input(name="delete_agent_input")
class DeleteAgentInput:
    agent_id: UUID


@strawberry.input(name="create_agent_config_input")
class CreateAgentConfigInput:
    tenant_id: UUID
    name: Optional[str] = None
    settings: Optional[JSON] = None


@strawberry.input(name="update_agent_config_input")
class UpdateAgentConfigInput:
    agent_config_id: UUID
    name: Optional[str] = None
    settings: Optional[JSON] = None


@strawberry.input(name="delete_agent_config_input")
class DeleteAgentConfigInput:
    agent_config_id: UUID


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Register an agent, or return the id of the identical one already registered.")
    async def register_agent(self, info: Info, input: RegisterAgentInput) -> Optional[AgentIdPayload]:
        async with info.context.transaction() as session:
            agent_id = await agents.register_agent(
                session,
                type=input.type,
                tenant_id=input.tenant_id,
                name=input.name,
                labels=input.labels,
                agent_config_id=input.agent_config_id,
                core_version=info.context.core_version,
            )
        return AgentIdPayload(id=agent_id)

    @strawberry.mutation
    async def delete_agent(self, info: Info, input: DeleteAgentInput) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            await agents.delete_agent(session, input.agent_id)
        return ok()

    @strawberry.mutation
    async def create_agent_config(self, info: Info, input: CreateAgentConfigInput) -> Optional[AgentConfigIdPayload]:
        async with info.context.transaction() as session:
            config_id = await agents.create_agent_config(session, input.tenant_id, input.name, input.settings)
        return AgentConfigIdPayload(id=config_id)

    @strawberry.mutation
    async def update_agent_config(self, info: Info, input: UpdateAgentConfigInput) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            await agents.update_agent_config(session, input.agent_config_id, input.name, input.settings)
        return ok()

    @strawberry.mutation
    async def delete_agent_config(self, info: Info, input: DeleteAgentConfigInput) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            await agents.delete_agent_config(session, input.agent_config_id)
        return ok()
