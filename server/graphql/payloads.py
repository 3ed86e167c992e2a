"""The payload types mutations return, named as in Prefect Server (`success_payload`, `*_id_payload`)."""

from __future__ import annotations

from typing import Any, Optional

import strawberry

from headwater.server.graphql.scalars import UUID


@strawberry.type(name="success_payload")
class SuccessPayload:
    success: Optional[bool] = True
    error: Optional[str] = None


def _id_payload(name: str) -> type:
    cls = type(name, (), {"__annotations__": {"id": Optional[UUID]}, "id": None})
    return strawberry.type(cls, name=name)


TenantIdPayload = _id_payload("tenant_id_payload")
ProjectIdPayload = _id_payload("project_id_payload")
FlowIdPayload = _id_payload("flow_id_payload")
FlowRunIdPayload = _id_payload("flow_run_id_payload")
TaskRunIdPayload = _id_payload("task_run_id_payload")
AgentIdPayload = _id_payload("agent_id_payload")
AgentConfigIdPayload = _id_payload("agent_config_id_payload")
TaskRunArtifactIdPayload = _id_payload("task_run_artifact_id_payload")
DeploymentIdPayload = _id_payload("deployment_id_payload")
CloudHookIdPayload = _id_payload("cloud_hook_id_payload")


def state_change_payload(name: str) -> type:
    """`{id, status, message}` for one state change (flow-run and task-run variants share it)."""

    @strawberry.type(name=name)
    class StateChangePayload:
        id: Optional[UUID] = None
        status: Optional[str] = None
        message: Optional[str] = None

        @classmethod
        def of(cls, change: Any) -> "StateChangePayload":
            return cls(id=change.id, status=change.status, message=change.message)

    return StateChangePayload


def ok() -> SuccessPayload:
    return SuccessPayload(success=True)
