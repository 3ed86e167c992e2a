"""Flow mutations: registration, versions, archiving, schedule activation and the flow settings."""

from __future__ import annotations

from typing import Any, Optional

import strawberry

from headwater.server.domain import flow_settings, flows, schedules
from headwater.server.domain.serialized_flow import decompress_flow
from headwater.server.graphql.context import Info
from headwater.server.graphql.payloads import FlowIdPayload, SuccessPayload, ok
from headwater.server.graphql.scalars import JSON, UUID


@strawberry.input(name="create_flow_input")
class CreateFlowInput:
    serialized_flow: JSON
    project_id: UUID
    version_group_id: Optional[str] = None
    set_schedule_active: Optional[bool] = strawberry.UNSET
    description: Optional[str] = None
    idempotency_key: Optional[str] = None


@strawberry.input(name="create_flow_from_compressed_string_input")
class CreateFlowFromCompressedStringInput(CreateFlowInput):
    """`create_flow_input` with the flow as base64(gzip(JSON)) text."""

    serialized_flow: str


@strawberry.input(name="register_tasks_input")
class RegisterTasksInput:
    flow_id: UUID
    serialized_tasks: JSON


@strawberry.input(name="register_edges_input")
class RegisterEdgesInput:
    flow_id: UUID
    serialized_edges: JSON


@strawberry.input(name="update_flow_project_input")
class UpdateFlowProjectInput:
    flow_id: UUID
    project_id: UUID


def _flow_id_input(name: str) -> type:
    cls = type(name, (), {"__annotations__": {"flow_id": UUID}})
    return strawberry.input(cls, name=name)


ArchiveFlowInput = _flow_id_input("archive_flow_input")
UnarchiveFlowInput = _flow_id_input("unarchive_flow_input")
DeleteFlowInput = _flow_id_input("delete_flow_input")
SetScheduleActiveInput = _flow_id_input("set_schedule_active_input")
SetScheduleInactiveInput = _flow_id_input("set_schedule_inactive_input")
EnableFlowHeartbeatInput = _flow_id_input("enable_flow_heartbeat_input")
DisableFlowHeartbeatInput = _flow_id_input("disable_flow_heartbeat_input")
EnableFlowLazarusProcessInput = _flow_id_input("enable_flow_lazarus_process_input")
DisableFlowLazarusProcessInput = _flow_id_input("disable_flow_lazarus_process_input")
EnableFlowVersionLockInput = _flow_id_input("enable_flow_version_lock_input")
DisableFlowVersionLockInput = _flow_id_input("disable_flow_version_lock_input")


async def _create(info: Info, input: Any, serialized_flow: Any) -> FlowIdPayload:
    # Omitted means "activate" (Prefect Server's default); an explicit null means "do not".
    activate = True if input.set_schedule_active is strawberry.UNSET else bool(input.set_schedule_active)
    async with info.context.transaction() as session:
        flow_id = await flows.create_flow(
            session,
            input.project_id,
            serialized_flow,
            version_group_id=input.version_group_id,
            set_schedule_active=activate,
            description=input.description,
            idempotency_key=input.idempotency_key,
            max_tasks=info.context.settings.max_flow_tasks,
            max_edges=info.context.settings.max_flow_edges,
        )
    return FlowIdPayload(id=flow_id)


async def _toggle(info: Info, flow_id: Any, patch: dict[str, Any]) -> SuccessPayload:
    async with info.context.transaction() as session:
        await flow_settings.update_flow_settings(session, flow_id, patch)
    return ok()


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Register a serialized Prefect Core flow as a new version.")
    async def create_flow(self, info: Info, input: CreateFlowInput) -> Optional[FlowIdPayload]:
        return await _create(info, input, input.serialized_flow)

    @strawberry.mutation(description="`create_flow` with the flow as base64(gzip(JSON)), as the client sends it.")
    async def create_flow_from_compressed_string(
        self, info: Info, input: CreateFlowFromCompressedStringInput
    ) -> Optional[FlowIdPayload]:
        # Inflate at most a few times the request limit: enough for any real flow.
        limit = info.context.settings.max_request_bytes * 8
        return await _create(info, input, await decompress_flow(input.serialized_flow, limit))

    @strawberry.mutation
    async def register_tasks(self, info: Info, input: RegisterTasksInput) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            await flows.register_tasks(
                session, input.flow_id, input.serialized_tasks, max_tasks=info.context.settings.max_flow_tasks
            )
        return ok()

    @strawberry.mutation
    async def register_edges(self, info: Info, input: RegisterEdgesInput) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            await flows.register_edges(
                session, input.flow_id, input.serialized_edges, max_edges=info.context.settings.max_flow_edges
            )
        return ok()

    @strawberry.mutation
    async def archive_flow(self, info: Info, input: ArchiveFlowInput) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            await flows.archive_flow(session, input.flow_id)
        return ok()

    @strawberry.mutation(description="Make an archived version the active one (archives the others).")
    async def unarchive_flow(self, info: Info, input: UnarchiveFlowInput) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            await flows.unarchive_flow(session, input.flow_id)
        return ok()

    @strawberry.mutation
    async def delete_flow(self, info: Info, input: DeleteFlowInput) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            await flows.delete_flow(session, input.flow_id)
        return ok()

    @strawberry.mutation
    async def update_flow_project(self, info: Info, input: UpdateFlowProjectInput) -> Optional[FlowIdPayload]:
        async with info.context.transaction() as session:
            return FlowIdPayload(id=await flows.update_flow_project(session, input.flow_id, input.project_id))

    @strawberry.mutation
    async def set_schedule_active(self, info: Info, input: SetScheduleActiveInput) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            reason = await schedules.activate(session, input.flow_id)
        return SuccessPayload(success=reason is None, error=reason)

    @strawberry.mutation
    async def set_schedule_inactive(self, info: Info, input: SetScheduleInactiveInput) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            await schedules.deactivate(session, input.flow_id)
        return ok()

    @strawberry.mutation
    async def enable_flow_heartbeat(self, info: Info, input: EnableFlowHeartbeatInput) -> Optional[SuccessPayload]:
        return await _toggle(info, input.flow_id, flow_settings.HEARTBEAT_ON)

    @strawberry.mutation
    async def disable_flow_heartbeat(self, info: Info, input: DisableFlowHeartbeatInput) -> Optional[SuccessPayload]:
        return await _toggle(info, input.flow_id, flow_settings.HEARTBEAT_OFF)

    @strawberry.mutation
    async def enable_flow_lazarus_process(
        self, info: Info, input: EnableFlowLazarusProcessInput
    ) -> Optional[SuccessPayload]:
        return await _toggle(info, input.flow_id, flow_settings.LAZARUS_ON)

    @strawberry.mutation
    async def disable_flow_lazarus_process(
        self, info: Info, input: DisableFlowLazarusProcessInput
    ) -> Optional[SuccessPayload]:
        return await _toggle(info, input.flow_id, flow_settings.LAZARUS_OFF)

    @strawberry.mutation(description="Runs of this flow compare-and-set their version on every state change.")
    async def enable_flow_version_lock(
        self, info: Info, input: EnableFlowVersionLockInput
    ) -> Optional[SuccessPayload]:
        return await _toggle(info, input.flow_id, flow_settings.VERSION_LOCK_ON)

    @strawberry.mutation
    async def disable_flow_version_lock(
        self, info: Info, input: DisableFlowVersionLockInput
    ) -> Optional[SuccessPayload]:
        return await _toggle(info, input.flow_id, flow_settings.VERSION_LOCK_OFF)
