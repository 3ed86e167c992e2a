"""Task-run artifacts (markdown and links a task publishes while it runs)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from headwater.server.db.models import TaskRun, TaskRunArtifact
from headwater.server.domain.errors import InvalidInput
from headwater.server.domain.lookup import require


def _check_size(data: Any, max_bytes: int) -> None:
    if len(json.dumps(data)) > max_bytes:
        raise InvalidInput(f"Artifact data payload exceeds {max_bytes} bytes limit.")


async def create_artifact(
    session: AsyncSession, task_run_id: uuid.UUID, kind: str, data: Any, max_bytes: int,
    tenant_id: uuid.UUID | None = None,
) -> uuid.UUID:
    if not kind or not kind.strip():
        raise InvalidInput("An artifact needs a `kind` (e.g. markdown, link).")
    _check_size(data, max_bytes)
    # "not found" in the message makes the client retry: the task run may still be in flight.
    task_run = await require(session, TaskRun, task_run_id)
    if tenant_id is not None and task_run.tenant_id is not None and tenant_id != task_run.tenant_id:
        raise InvalidInput("Invalid tenant ID.")
    artifact = TaskRunArtifact(task_run_id=task_run_id, tenant_id=task_run.tenant_id, kind=kind, data=data)
    session.add(artifact)
    await session.flush()
    return artifact.id


async def update_artifact(session: AsyncSession, artifact_id: uuid.UUID, data: Any, max_bytes: int) -> None:
    _check_size(data, max_bytes)
    await require(session, TaskRunArtifact, artifact_id)
    await session.execute(update(TaskRunArtifact).where(TaskRunArtifact.id == artifact_id).values(data=data))


async def delete_artifact(session: AsyncSession, artifact_id: uuid.UUID) -> None:
    await require(session, TaskRunArtifact, artifact_id)
    await session.execute(delete(TaskRunArtifact).where(TaskRunArtifact.id == artifact_id))
