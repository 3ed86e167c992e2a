"""Task-run mutations and queries used by the flow runner."""

from __future__ import annotations

from typing import Optional

import strawberry

from headwater.server.domain import task_runs
from headwater.server.domain.run_states import change_task_run_state, set_task_run_state
from headwater.server.domain.states import parse_state
from headwater.server.graphql.context import Info
from headwater.server.graphql.payloads import SuccessPayload, TaskRunIdPayload, ok, state_change_payload
from headwater.server.graphql.scalars import JSON, UUID, DateTime


@strawberry.input(name="get_or_create_task_run_input")
class GetOrCreateTaskRunInput:
    flow_run_id: UUID
    task_id: UUID
    map_index: Optional[int] = None


@strawberry.input(name="get_or_create_task_run_info_input")
class GetOrCreateTaskRunInfoInput(GetOrCreateTaskRunInput):
    pass


@strawberry.type(name="task_run_info_payload")
class TaskRunInfoPayload:
    id: Optional[UUID] = None
    version: Optional[int] = None
    state: Optional[str] = None
    serialized_state: Optional[JSON] = None

    @classmethod
    def of(cls, found: task_runs.TaskRunInfo) -> "TaskRunInfoPayload":
        return cls(id=found.id, version=found.version, state=found.state, serialized_state=found.serialized_state)


@strawberry.type(name="get_or_create_task_run_info_payload")
class GetOrCreateTaskRunInfoPayload(TaskRunInfoPayload):
    pass


@strawberry.type(name="mapped_children_payload")
class MappedChildrenPayload:
    min_start_time: Optional[DateTime] = None
    max_end_time: Optional[DateTime] = None
    state_counts: Optional[JSON] = None


@strawberry.input(name="set_task_run_state_input")
class SetTaskRunStateInput:
    task_run_id: UUID
    state: JSON
    version: Optional[int] = None
    flow_run_version: Optional[int] = None


@strawberry.input(name="set_task_run_states_input")
class SetTaskRunStatesInput:
    states: list[SetTaskRunStateInput]


SetTaskRunStatePayload = state_change_payload("set_task_run_state_payload")


@strawberry.type(name="set_task_run_states_payload")
class SetTaskRunStatesPayload:
    states: Optional[list[SetTaskRunStatePayload]] = None


@strawberry.input(name="set_task_run_name_input")
class SetTaskRunNameInput:
    task_run_id: UUID
    name: str


@strawberry.input(name="update_task_run_heartbeat_input")
class UpdateTaskRunHeartbeatInput:
    task_run_id: UUID


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def get_or_create_task_run(self, info: Info, input: GetOrCreateTaskRunInput) -> Optional[TaskRunIdPayload]:
        async with info.context.transaction() as session:
            found = await task_runs.get_or_create_task_run(session, input.flow_run_id, input.task_id, input.map_index)
        return TaskRunIdPayload(id=found.id)

    @strawberry.mutation(description="The task run for (flow run, task, map index), created on demand.")
    async def get_or_create_task_run_info(
        self, info: Info, input: GetOrCreateTaskRunInfoInput
    ) -> Optional[GetOrCreateTaskRunInfoPayload]:
        async with info.context.transaction() as session:
            found = await task_runs.get_or_create_task_run(session, input.flow_run_id, input.task_id, input.map_index)
        return GetOrCreateTaskRunInfoPayload.of(found)

    @strawberry.mutation
    async def set_task_run_states(self, info: Info, input: SetTaskRunStatesInput) -> Optional[SetTaskRunStatesPayload]:
        limit = info.context.settings.max_payload_bytes
        parsed = [(item, parse_state(item.state, limit)) for item in input.states]
        if len(parsed) == 1:
            # The flow runner's one change: one statement, the rules folded in (run_states.py).
            (item, state), = parsed
            async with info.context.autocommit() as connection:
                change = await change_task_run_state(connection, item.task_run_id, state, version=item.version)
            return SetTaskRunStatesPayload(states=[SetTaskRunStatePayload.of(change)])
        async with info.context.transaction() as session:
            changes = [
                await set_task_run_state(session, item.task_run_id, state, version=item.version)
                for item, state in parsed
            ]
        return SetTaskRunStatesPayload(states=[SetTaskRunStatePayload.of(c) for c in changes])

    @strawberry.mutation
    async def set_task_run_name(self, info: Info, input: SetTaskRunNameInput) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            await task_runs.set_task_run_name(session, input.task_run_id, input.name)
        return ok()

    @strawberry.mutation
    async def update_task_run_heartbeat(
        self, info: Info, input: UpdateTaskRunHeartbeatInput
    ) -> Optional[SuccessPayload]:
        async with info.context.autocommit() as connection:
            return SuccessPayload(success=await task_runs.heartbeat(connection, input.task_run_id))


@strawberry.type
class Query:
    @strawberry.field(description="A task run's current state (the client reads it after a version-lock error).")
    async def get_task_run_info(self, info: Info, task_run_id: UUID) -> Optional[TaskRunInfoPayload]:
        async with info.context.autocommit() as connection:
            found = await task_runs.get_task_run_info(connection, task_run_id)
        return TaskRunInfoPayload.of(found)

    @strawberry.field(description="Start, end and state counts of a mapped task's children.")
    async def mapped_children(self, info: Info, task_run_id: UUID) -> Optional[MappedChildrenPayload]:
        async with info.context.transaction() as session:
            summary = await task_runs.mapped_children(session, task_run_id)
        return MappedChildrenPayload(
            min_start_time=summary.min_start_time, max_end_time=summary.max_end_time, state_counts=summary.state_counts
        )
