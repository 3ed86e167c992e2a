"""Deployment mutations: create, update, delete, pause/resume the schedule, and apply many at once.

Reads (`deployment`, `deployment_by_pk`, `deployment_aggregate` and the relationships) come from
the generic Hasura-style layer; these are the writes. All need the role flow registration needs.
"""

from __future__ import annotations

from typing import Optional

import strawberry

from headwater.server.domain import deployments
from headwater.server.graphql.context import Info
from headwater.server.graphql.payloads import DeploymentIdPayload, SuccessPayload, ok
from headwater.server.graphql.scalars import JSON, UUID

_SCHEDULE_HELP = (
    "One schedule object or a list: {interval: seconds, anchor_date?, timezone?}, "
    "{cron, timezone?, day_or?} or {rrule, timezone?}."
)


@strawberry.input(name="create_deployment_input")
class CreateDeploymentInput:
    flow_group_id: UUID
    name: str
    description: Optional[str] = None
    flow_id: Optional[UUID] = strawberry.field(default=None, description="Pin a version; default: the group's active one.")
    parameters: Optional[JSON] = None
    tags: Optional[list[str]] = None
    labels: Optional[list[str]] = strawberry.field(default=None, description="Replace the flow's labels on its runs.")
    schedule: Optional[JSON] = strawberry.field(default=None, description=_SCHEDULE_HELP)
    is_schedule_active: Optional[bool] = None


@strawberry.input(name="update_deployment_input", description="A field left out keeps its value; null clears it.")
class UpdateDeploymentInput:
    deployment_id: UUID
    name: Optional[str] = strawberry.UNSET
    description: Optional[str] = strawberry.UNSET
    flow_id: Optional[UUID] = strawberry.UNSET
    parameters: Optional[JSON] = strawberry.UNSET
    tags: Optional[list[str]] = strawberry.UNSET
    labels: Optional[list[str]] = strawberry.UNSET
    schedule: Optional[JSON] = strawberry.field(default=strawberry.UNSET, description=_SCHEDULE_HELP)
    is_schedule_active: Optional[bool] = strawberry.UNSET


@strawberry.input(name="apply_deployment_item")
class ApplyDeploymentItem:
    flow_group_id: UUID
    name: str
    description: Optional[str] = None
    flow_id: Optional[UUID] = None
    parameters: Optional[JSON] = None
    tags: Optional[list[str]] = None
    labels: Optional[list[str]] = None
    schedule: Optional[JSON] = strawberry.field(default=None, description=_SCHEDULE_HELP)
    is_schedule_active: Optional[bool] = None


@strawberry.input(name="apply_deployments_input")
class ApplyDeploymentsInput:
    deployments: list[ApplyDeploymentItem]
    dry_run: Optional[bool] = False


@strawberry.type(name="apply_deployment_outcome")
class ApplyDeploymentOutcome:
    id: Optional[UUID] = None
    name: Optional[str] = None
    flow_group_id: Optional[UUID] = None
    outcome: Optional[str] = strawberry.field(default=None, description='"created", "updated" or "unchanged".')


@strawberry.type(name="apply_deployments_payload")
class ApplyDeploymentsPayload:
    deployments: Optional[list[ApplyDeploymentOutcome]] = None


def _deployment_id_input(name: str) -> type:
    cls = type(name, (), {"__annotations__": {"deployment_id": UUID}})
    return strawberry.input(cls, name=name)


DeleteDeploymentInput = _deployment_id_input("delete_deployment_input")
SetDeploymentScheduleActiveInput = _deployment_id_input("set_deployment_schedule_active_input")
SetDeploymentScheduleInactiveInput = _deployment_id_input("set_deployment_schedule_inactive_input")

_ITEM_FIELDS = ("flow_group_id", *deployments.FIELDS)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create a deployment of a flow group (its schedule active unless told otherwise).")
    async def create_deployment(self, info: Info, input: CreateDeploymentInput) -> Optional[DeploymentIdPayload]:
        async with info.context.transaction() as session:
            deployment_id = await deployments.create_deployment(
                session,
                flow_group_id=input.flow_group_id,
                name=input.name,
                description=input.description,
                flow_id=input.flow_id,
                parameters=input.parameters,
                tags=input.tags,
                labels=input.labels,
                schedule=input.schedule,
                is_schedule_active=input.is_schedule_active,
                max_bytes=info.context.settings.max_payload_bytes,
            )
        return DeploymentIdPayload(id=deployment_id)

    @strawberry.mutation(description="Change a deployment's fields; its future scheduled runs follow.")
    async def update_deployment(self, info: Info, input: UpdateDeploymentInput) -> Optional[DeploymentIdPayload]:
        changes = {
            name: getattr(input, name)
            for name in deployments.FIELDS
            if getattr(input, name) is not strawberry.UNSET
        }
        async with info.context.transaction() as session:
            await deployments.update_deployment(
                session, input.deployment_id, changes, max_bytes=info.context.settings.max_payload_bytes
            )
        return DeploymentIdPayload(id=input.deployment_id)

    @strawberry.mutation(description="Delete a deployment and its runs that have not started.")
    async def delete_deployment(self, info: Info, input: DeleteDeploymentInput) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            await deployments.delete_deployment(session, input.deployment_id)
        return ok()

    @strawberry.mutation(description="Resume the deployment's schedule (its runs come back at the same times).")
    async def set_deployment_schedule_active(
        self, info: Info, input: SetDeploymentScheduleActiveInput
    ) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            await deployments.set_schedule_active(session, input.deployment_id, True)
        return ok()

    @strawberry.mutation(description="Pause the deployment's schedule, deleting its runs that have not started.")
    async def set_deployment_schedule_inactive(
        self, info: Info, input: SetDeploymentScheduleInactiveInput
    ) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            await deployments.set_schedule_active(session, input.deployment_id, False)
        return ok()

    @strawberry.mutation(
        description="Create or update deployments by (flow_group_id, name) in one transaction: all or nothing."
    )
    async def apply_deployments(self, info: Info, input: ApplyDeploymentsInput) -> Optional[ApplyDeploymentsPayload]:
        items = [{name: getattr(item, name) for name in _ITEM_FIELDS} for item in input.deployments]
        async with info.context.transaction() as session:
            outcomes = await deployments.apply_deployments(
                session, items, dry_run=bool(input.dry_run), max_bytes=info.context.settings.max_payload_bytes
            )
        return ApplyDeploymentsPayload(
            deployments=[
                ApplyDeploymentOutcome(id=o.id, name=o.name, flow_group_id=o.flow_group_id, outcome=o.outcome)
                for o in outcomes
            ]
        )
