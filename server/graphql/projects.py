"""Project mutations."""

from __future__ import annotations

from typing import Optional

import strawberry

from headwater.server.domain import projects
from headwater.server.graphql.context import Info
from headwater.server.graphql.payloads import ProjectIdPayload, SuccessPayload, ok
from headwater.server.graphql.scalars import UUID


@strawberry.input(name="create_project_input")
class CreateProjectInput:
    tenant_id: UUID
    name: str
    description: Optional[str] = None


@strawberry.input(name="delete_project_input")
class DeleteProjectInput:
    project_id: UUID


@strawberry.input(name="set_project_name_input")
class SetProjectNameInput:
    project_id: UUID
    name: str


@strawberry.input(name="set_project_description_input")
class SetProjectDescriptionInput:
    project_id: UUID
    description: Optional[str] = None


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def create_project(self, info: Info, input: CreateProjectInput) -> Optional[ProjectIdPayload]:
        async with info.context.transaction() as session:
            project_id = await projects.create_project(
                session, input.tenant_id, input.name, input.description
            )
        return ProjectIdPayload(id=project_id)

    @strawberry.mutation
    async def set_project_name(self, info: Info, input: SetProjectNameInput) -> Optional[ProjectIdPayload]:
        async with info.context.transaction() as session:
            return ProjectIdPayload(id=await projects.set_project_name(session, input.project_id, input.name))

    @strawberry.mutation
    async def set_project_description(
        self, info: Info, input: SetProjectDescriptionInput
    ) -> Optional[ProjectIdPayload]:
        async with info.context.transaction() as session:
            project_id = await projects.set_project_description(session, input.project_id, input.description)
        return ProjectIdPayload(id=project_id)

    @strawberry.mutation
    async def delete_project(self, info: Info, input: DeleteProjectInput) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            await projects.delete_project(session, input.project_id)
        return ok()
