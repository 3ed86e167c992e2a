"""Flow-group mutations: defaults and switches shared by every version of a flow."""

from __future__ import annotations

from typing import Optional

import strawberry

from headwater.server.domain import flow_groups
from headwater.server.graphql.context import Info
from headwater.server.graphql.payloads import SuccessPayload, ok
from headwater.server.graphql.scalars import JSON, UUID


@strawberry.input(name="cron_clock_input")
class CronClockInput:
    cron: str
    parameter_defaults: Optional[JSON] = None


@strawberry.input(name="interval_clock_input")
class IntervalClockInput:
    interval: int = strawberry.field(description="Seconds between runs.")
    parameter_defaults: Optional[JSON] = None


@strawberry.input(name="set_flow_group_default_parameters_input")
class SetFlowGroupDefaultParametersInput:
    flow_group_id: UUID
    parameters: JSON


@strawberry.input(name="set_flow_group_labels_input")
class SetFlowGroupLabelsInput:
    flow_group_id: UUID
    labels: Optional[list[str]] = None


@strawberry.input(name="set_flow_group_run_config_input")
class SetFlowGroupRunConfigInput:
    flow_group_id: UUID
    run_config: Optional[JSON] = None


@strawberry.input(name="set_flow_group_description_input")
class SetFlowGroupDescriptionInput:
    flow_group_id: UUID
    description: Optional[str] = None


@strawberry.input(name="set_flow_group_schedule_input")
class SetFlowGroupScheduleInput:
    flow_group_id: UUID
    cron_clocks: Optional[list[CronClockInput]] = None
    interval_clocks: Optional[list[IntervalClockInput]] = None
    timezone: Optional[str] = None


@strawberry.input(name="delete_flow_group_schedule_input")
class DeleteFlowGroupScheduleInput:
    flow_group_id: UUID


@strawberry.input(name="delete_flow_group_input")
class DeleteFlowGroupInput:
    flow_group_id: UUID


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def set_flow_group_default_parameters(
        self, info: Info, input: SetFlowGroupDefaultParametersInput
    ) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            limit = info.context.settings.max_payload_bytes
            await flow_groups.set_default_parameters(session, input.flow_group_id, input.parameters, limit)
        return ok()

    @strawberry.mutation(description="Labels for new runs; null unsets them, [] means no labels.")
    async def set_flow_group_labels(self, info: Info, input: SetFlowGroupLabelsInput) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            await flow_groups.set_labels(session, input.flow_group_id, input.labels)
        return ok()

    @strawberry.mutation
    async def set_flow_group_run_config(
        self, info: Info, input: SetFlowGroupRunConfigInput
    ) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            await flow_groups.set_run_config(session, input.flow_group_id, input.run_config)
        return ok()

    @strawberry.mutation
    async def set_flow_group_description(
        self, info: Info, input: SetFlowGroupDescriptionInput
    ) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            await flow_groups.set_description(session, input.flow_group_id, input.description)
        return ok()

    @strawberry.mutation(description="Replace the schedule of every version of the flow.")
    async def set_flow_group_schedule(
        self, info: Info, input: SetFlowGroupScheduleInput
    ) -> Optional[SuccessPayload]:
        schedule = flow_groups.build_schedule(
            [{"cron": c.cron, "parameter_defaults": c.parameter_defaults} for c in input.cron_clocks or []],
            [{"interval": c.interval, "parameter_defaults": c.parameter_defaults} for c in input.interval_clocks or []],
            input.timezone,
        )
        async with info.context.transaction() as session:
            await flow_groups.set_schedule(session, input.flow_group_id, schedule)
        return ok()

    @strawberry.mutation
    async def delete_flow_group_schedule(
        self, info: Info, input: DeleteFlowGroupScheduleInput
    ) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            await flow_groups.set_schedule(session, input.flow_group_id, None)
        return ok()

    @strawberry.mutation(description="Delete every version of the flow, with their runs.")
    async def delete_flow_group(self, info: Info, input: DeleteFlowGroupInput) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            await flow_groups.delete_group(session, input.flow_group_id)
        return ok()
