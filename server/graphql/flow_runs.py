"""Flow-run mutations: creation, states, the agent queue, cancellation, heartbeats."""

from __future__ import annotations

import uuid
from typing import Optional

import strawberry

from headwater.server.domain import flow_runs
from headwater.server.domain.run_states import change_flow_run_state, set_flow_run_state
from headwater.server.domain.states import parse_state
from headwater.server.graphql.context import Info
from headwater.server.graphql.payloads import FlowRunIdPayload, SuccessPayload, ok, state_change_payload
from headwater.server.graphql.scalars import JSON, UUID, DateTime, parse_uuid


@strawberry.input(name="create_flow_run_input")
class CreateFlowRunInput:
    flow_id: Optional[UUID] = None
    version_group_id: Optional[str] = None
    parameters: Optional[JSON] = None
    context: Optional[JSON] = None
    labels: Optional[list[str]] = None
    run_config: Optional[JSON] = None
    scheduled_start_time: Optional[DateTime] = None
    idempotency_key: Optional[str] = None
    flow_run_name: Optional[str] = None
    deployment_id: Optional[UUID] = strawberry.field(
        default=None,
        description="Run this deployment: its flow, parameters, tags and labels (values given here win).",
    )
    tags: Optional[list[str]] = strawberry.field(default=None, description="Added to the deployment's tags.")


@strawberry.input(name="set_flow_run_name_input")
class SetFlowRunNameInput:
    flow_run_id: UUID
    name: str


@strawberry.input(name="set_flow_run_labels_input")
class SetFlowRunLabelsInput:
    flow_run_id: UUID
    labels: list[str]


def _flow_run_id_input(name: str) -> type:
    cls = type(name, (), {"__annotations__": {"flow_run_id": UUID}})
    return strawberry.input(cls, name=name)


DeleteFlowRunInput = _flow_run_id_input("delete_flow_run_input")
CancelFlowRunInput = _flow_run_id_input("cancel_flow_run_input")
UpdateFlowRunHeartbeatInput = _flow_run_id_input("update_flow_run_heartbeat_input")


@strawberry.input(name="set_flow_run_state_input")
class SetFlowRunStateInput:
    flow_run_id: UUID
    state: JSON
    version: Optional[int] = None


@strawberry.input(name="set_flow_run_states_input")
class SetFlowRunStatesInput:
    states: list[SetFlowRunStateInput]


SetFlowRunStatePayload = state_change_payload("set_flow_run_state_payload")


@strawberry.type(name="set_flow_run_states_payload")
class SetFlowRunStatesPayload:
    states: Optional[list[SetFlowRunStatePayload]] = None


@strawberry.type(name="cancel_flow_run_payload")
class CancelFlowRunPayload:
    state: Optional[str] = None


@strawberry.input(name="get_runs_in_queue_input")
class GetRunsInQueueInput:
    tenant_id: UUID
    before: Optional[DateTime] = None
    labels: Optional[list[str]] = None


@strawberry.type(name="runs_in_queue_payload")
class RunsInQueuePayload:
    flow_run_ids: Optional[list[str]] = None


def header_uuid(value: str | None) -> uuid.UUID | None:
    """A uuid from a header, or None when absent or malformed (headers are advisory)."""
    if not value:
        return None
    try:
        return parse_uuid(value)
    except ValueError:
        return None


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create a run of a flow (or of the latest version of a version group).")
    async def create_flow_run(self, info: Info, input: CreateFlowRunInput) -> Optional[FlowRunIdPayload]:
        # A flow's run: the flow lookup, then one statement, in autocommit (flow_runs.INSERT_RUN);
        # a deployment's run reads the deployment first, in a transaction.
        opened = info.context.transaction() if input.deployment_id is not None else info.context.autocommit()
        async with opened as session:
            run_id = await flow_runs.create_flow_run(
                session,
                flow_id=input.flow_id,
                version_group_id=input.version_group_id,
                parameters=input.parameters,
                context=input.context,
                labels=input.labels,
                run_config=input.run_config,
                scheduled_start_time=input.scheduled_start_time,
                idempotency_key=input.idempotency_key,
                flow_run_name=input.flow_run_name,
                deployment_id=input.deployment_id,
                tags=input.tags,
                max_bytes=info.context.settings.max_payload_bytes,
            )
        return FlowRunIdPayload(id=run_id)

    @strawberry.mutation
    async def set_flow_run_states(self, info: Info, input: SetFlowRunStatesInput) -> Optional[SetFlowRunStatesPayload]:
        limit = info.context.settings.max_payload_bytes
        parsed = [(item, parse_state(item.state, limit)) for item in input.states]
        agent_id = header_uuid(info.context.agent_id)
        if len(parsed) == 1 and parsed[0][1].type != "Cancelled":
            # The common request, one change: one statement with the rules folded in (run_states.py).
            (item, state), = parsed
            async with info.context.autocommit() as connection:
                change = await change_flow_run_state(
                    connection, item.flow_run_id, state, version=item.version, agent_id=agent_id
                )
            return SetFlowRunStatesPayload(states=[SetFlowRunStatePayload.of(change)])
        async with info.context.transaction() as session:
            changes = [
                await set_flow_run_state(session, item.flow_run_id, state, version=item.version, agent_id=agent_id)
                for item, state in parsed
            ]
        return SetFlowRunStatesPayload(states=[SetFlowRunStatePayload.of(c) for c in changes])

    @strawberry.mutation(description="Runs an agent with these labels may start now (read-only).")
    async def get_runs_in_queue(self, info: Info, input: GetRunsInQueueInput) -> Optional[RunsInQueuePayload]:
        async with info.context.transaction() as session:
            run_ids = await flow_runs.get_runs_in_queue(
                session,
                input.tenant_id,
                before=input.before,
                labels=input.labels,
                agent_id=header_uuid(info.context.agent_id),
            )
        return RunsInQueuePayload(flow_run_ids=[str(run_id) for run_id in run_ids])

    @strawberry.mutation
    async def cancel_flow_run(self, info: Info, input: CancelFlowRunInput) -> Optional[CancelFlowRunPayload]:
        async with info.context.transaction() as session:
            return CancelFlowRunPayload(state=await flow_runs.cancel_flow_run(session, input.flow_run_id))

    @strawberry.mutation
    async def delete_flow_run(self, info: Info, input: DeleteFlowRunInput) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            await flow_runs.delete_flow_run(session, input.flow_run_id)
        return ok()

    @strawberry.mutation
    async def set_flow_run_name(self, info: Info, input: SetFlowRunNameInput) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            await flow_runs.set_flow_run_name(session, input.flow_run_id, input.name)
        return ok()

    @strawberry.mutation
    async def set_flow_run_labels(self, info: Info, input: SetFlowRunLabelsInput) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            await flow_runs.set_flow_run_labels(session, input.flow_run_id, input.labels)
        return ok()

    @strawberry.mutation(description="The flow run's process is alive; `success` is false for an unknown run.")
    async def update_flow_run_heartbeat(
        self, info: Info, input: UpdateFlowRunHeartbeatInput
    ) -> Optional[SuccessPayload]:
        async with info.context.autocommit() as connection:
            return SuccessPayload(success=await flow_runs.heartbeat(connection, input.flow_run_id))
