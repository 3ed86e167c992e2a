"""Cloud-hook and message mutations, with Prefect Server's names, inputs and payloads.

The reads (`cloud_hook`, `cloud_hook_delivery`, `message`, with `_by_pk` and `_aggregate`) come
from the generic read layer.
"""

from __future__ import annotations

import enum
from typing import Optional

import strawberry

from headwater.server.domain import cloud_hooks, messages
from headwater.server.domain.hook_delivery import DeliveryPolicy, send_test
from headwater.server.domain.hook_requests import DeliveryFailed
from headwater.server.graphql.context import Info
from headwater.server.graphql.payloads import CloudHookIdPayload, SuccessPayload
from headwater.server.graphql.scalars import JSON, UUID


@strawberry.enum(name="cloud_hook_type")
class CloudHookType(enum.Enum):
    PAGERDUTY = "PAGERDUTY"
    SLACK_WEBHOOK = "SLACK_WEBHOOK"
    TWILIO = "TWILIO"
    WEBHOOK = "WEBHOOK"
    PREFECT_MESSAGE = "PREFECT_MESSAGE"


@strawberry.enum(name="test_cloud_hook_state_type")
class TestCloudHookStateType(enum.Enum):
    SCHEDULED = "SCHEDULED"
    SUBMITTED = "SUBMITTED"
    SUCCESS = "SUCCESS"
    RUNNING = "RUNNING"
    FAILED = "FAILED"


@strawberry.input(name="create_cloud_hook_input")
class CreateCloudHookInput:
    tenant_id: UUID
    type: CloudHookType
    states: list[str]
    name: Optional[str] = None
    version_group_id: Optional[str] = None
    config: Optional[JSON] = None


def _hook_input(name: str) -> type:
    cls = type(name, (), {"__annotations__": {"cloud_hook_id": UUID}})
    return strawberry.input(cls, name=name)


DeleteCloudHookInput = _hook_input("delete_cloud_hook_input")
SetCloudHookActiveInput = _hook_input("set_cloud_hook_active_input")
SetCloudHookInactiveInput = _hook_input("set_cloud_hook_inactive_input")


@strawberry.input(name="test_cloud_hook_input")
class TestCloudHookInput:
    cloud_hook_id: UUID
    flow_run_id: Optional[UUID] = None
    state_type: Optional[TestCloudHookStateType] = None


def _message_input(name: str) -> type:
    cls = type(name, (), {"__annotations__": {"message_id": UUID}})
    return strawberry.input(cls, name=name)


MarkMessageAsReadInput = _message_input("mark_message_as_read_input")
MarkMessageAsUnreadInput = _message_input("mark_message_as_unread_input")
DeleteMessageInput = _message_input("delete_message_input")


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create a cloud hook: notify on a tenant's flow-run state changes.")
    async def create_cloud_hook(self, info: Info, input: CreateCloudHookInput) -> Optional[CloudHookIdPayload]:
        async with info.context.transaction() as session:
            hook_id = await cloud_hooks.create_cloud_hook(
                session, input.tenant_id, input.type.value, input.states, config=input.config,
                version_group_id=input.version_group_id, name=input.name,
            )
        return CloudHookIdPayload(id=hook_id)

    @strawberry.mutation(description="Delete a cloud hook, with its queued deliveries.")
    async def delete_cloud_hook(self, info: Info, input: DeleteCloudHookInput) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            found = await cloud_hooks.delete_cloud_hook(session, input.cloud_hook_id)
        return SuccessPayload(success=found)

    @strawberry.mutation(description="Turn a cloud hook on.")
    async def set_cloud_hook_active(self, info: Info, input: SetCloudHookActiveInput) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            found = await cloud_hooks.set_cloud_hook_active(session, input.cloud_hook_id, True)
        return SuccessPayload(success=found)

    @strawberry.mutation(description="Turn a cloud hook off: it queues nothing new.")
    async def set_cloud_hook_inactive(self, info: Info, input: SetCloudHookInactiveInput) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            found = await cloud_hooks.set_cloud_hook_active(session, input.cloud_hook_id, False)
        return SuccessPayload(success=found)

    @strawberry.mutation(
        description="Send a test event through a cloud hook now, whatever its states; a failed send is "
        "answered `success: false` with the error."
    )
    async def test_cloud_hook(self, info: Info, input: TestCloudHookInput) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            test = await cloud_hooks.test_event(
                session, input.cloud_hook_id, input.flow_run_id,
                input.state_type.value if input.state_type else None,
            )
        # The transaction is closed: a slow receiver holds no database connection.
        try:
            await send_test(info.context.sessions, test, DeliveryPolicy.from_settings(info.context.settings))
        except DeliveryFailed as exc:
            return SuccessPayload(success=False, error=str(exc))
        return SuccessPayload(success=True)

    @strawberry.mutation(description="Mark a message read.")
    async def mark_message_as_read(self, info: Info, input: MarkMessageAsReadInput) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            found = await messages.set_message_read(session, input.message_id, True)
        return SuccessPayload(success=found)

    @strawberry.mutation(description="Mark a message unread.")
    async def mark_message_as_unread(self, info: Info, input: MarkMessageAsUnreadInput) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            found = await messages.set_message_read(session, input.message_id, False)
        return SuccessPayload(success=found)

    @strawberry.mutation(description="Delete a message.")
    async def delete_message(self, info: Info, input: DeleteMessageInput) -> Optional[SuccessPayload]:
        async with info.context.transaction() as session:
            found = await messages.delete_message(session, input.message_id)
        return SuccessPayload(success=found)
