"""Task-run artifact mutations."""

from __future__ import annotations

from typing import Optional

import strawberry

from headwater.server.domain import artifacts
from headwater.server.graphql.context import Info
from headwater.server.graphql.payloads import SuccessPayload, TaskRunArtifactIdPayload, ok
from headwater.server.graphql.scalars import JSON, UUID


@strawberry.input(name="create_task_run_artifact_input")
class CreateTaskRunArtifactInput:
    task_run_id: UUID
    kind: str
    data: JSON
    tenant_id: Optional[UUID] = None


@strawberry.input(name="update_task_run_artifact_input")
class UpdateTaskRunArtifactInput:
    task_run_artifact_id: UUID
    data: JSON


@strawberry.input(name="delete_task_run_artifact_input")
class DeleteTaskRunArtifactInput:
    task_run_artifact_id: UUID


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def create_task_run_artifact(
        self, info: Info, input: CreateTaskRunArtifactInput
    ) -> Optional[TaskRunArtifactIdPayload]:
        limit = info.context.settings.max_payload_bytes
        async with info.context.transaction() as session:
            artifact_id = await artifacts.create_artifact(
                session, input.task_run_id, input.kind, input.data, limit, tenant_id=input.tenant_id
            )
        return TaskRunArtifactIdPayload(id=artifact_id)

    @strawberry.mutation
    async def update_task_run_artifact(
        self, info: Info, input: UpdateTaskRunArtifactInput
    ) -> Optional[SuccessPayload]:
        limit = info.context.settings.max_payload_bytes
        async with info.context.transaction() as session:
            await artifacts.update_artifact(session, input.task_run_artifact_id, input.data, limit)
        return ok()

    @strawberry.mutation
    async def delete_task_run_artifact(
        self, info: Info, input: DeleteTaskRunArtifactInput
    ) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            await artifacts.delete_artifact(session, input.task_run_artifact_id)
        return ok()
