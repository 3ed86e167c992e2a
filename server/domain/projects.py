"""Projects: named folders of flows, unique by name within a tenant."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, exists, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from headwater.server.db.models import Project, Tenant
from headwater.server.domain.errors import UNIQUENESS_VIOLATION, Conflict, InvalidInput
from headwater.server.domain.lookup import require


def _name_taken(name: str) -> Conflict:
    """Names what exists; `reason` keeps the text the Prefect client looks for to treat the
    project as existing (`prefect create project` run twice)."""
    return Conflict(f"project '{name}' already exists", reason=UNIQUENESS_VIOLATION)


def _check_name(name: str) -> str:
    if not name or not name.strip():
        raise InvalidInput("Project name must not be empty.")
    return name.strip()


async def create_project(
    session: AsyncSession, tenant_id: uuid.UUID, name: str, description: str | None = None
) -> uuid.UUID:
    name = _check_name(name)
    await require(session, Tenant, tenant_id)
    project_id = await session.scalar(
        insert(Project)
        .values(tenant_id=tenant_id, name=name, description=description)
        .on_conflict_do_nothing(constraint="project_tenant_id_name_key")
        .returning(Project.id)
    )
    if project_id is None:
        raise _name_taken(name)
    return project_id


async def set_project_name(session: AsyncSession, project_id: uuid.UUID, name: str) -> uuid.UUID:
    name = _check_name(name)
    project = await require(session, Project, project_id, for_update=True)
    taken = await session.scalar(
        select(
            exists().where(
                Project.tenant_id == project.tenant_id, Project.name == name, Project.id != project_id
            )
        )
    )
    if taken:
        raise _name_taken(name)
    await session.execute(update(Project).where(Project.id == project_id).values(name=name))
    return project_id


async def set_project_description(
    session: AsyncSession, project_id: uuid.UUID, description: str | None
) -> uuid.UUID:
    await require(session, Project, project_id)
    await session.execute(update(Project).where(Project.id == project_id).values(description=description))
    return project_id


async def delete_project(session: AsyncSession, project_id: uuid.UUID) -> None:
    """Delete a project; its flows, their tasks and runs go with it (foreign-key cascade)."""
    await require(session, Project, project_id)
    await session.execute(delete(Project).where(Project.id == project_id))
