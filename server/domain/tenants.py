"""Tenants. headwater serves one team per database, but keeps Prefect's tenant model because
the client asks for `tenant { id }` before it does anything; a `default` tenant always exists."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import delete, exists, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from headwater.server.db.models import Tenant
from headwater.server.domain.errors import UNIQUENESS_VIOLATION, Conflict, InvalidInput
from headwater.server.domain.lookup import require

DEFAULT_TENANT = {"name": "default", "slug": "default"}
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# A tenant's pages live at /<slug>/..., so a slug may not be a path the server answers itself
# (the web UI's routes test keeps this list complete).
RESERVED_SLUGS = frozenset({"api", "graphql", "login", "logout", "health", "ready", "metrics"})


def slugify(name: str) -> str:
    return "-".join(re.findall(r"[a-z0-9]+", name.lower()))


def _check_slug(slug: str) -> None:
    if not _SLUG.match(slug or ""):
        raise InvalidInput('Slug must be "slugified" (lowercase letters, digits and single hyphens).')
    if slug in RESERVED_SLUGS:
        raise InvalidInput(f"The slug {slug!r} is reserved: /{slug} is one of the server's own paths. Choose another.")


def _check_name(name: str) -> str:
    if not name or not name.strip():
        raise InvalidInput("Tenant name must not be empty.")
    return name.strip()


async def ensure_default_tenant(session: AsyncSession) -> None:
    """Create the default tenant unless some tenant exists; safe when replicas start together."""
    if await session.scalar(select(exists().where(Tenant.id.isnot(None)))):
        return
    await session.execute(insert(Tenant).values(**DEFAULT_TENANT).on_conflict_do_nothing(index_elements=["slug"]))


async def create_tenant(session: AsyncSession, name: str, slug: str | None = None) -> uuid.UUID:
    name = _check_name(name)
    slug = slug if slug is not None else slugify(name)
    _check_slug(slug)
    tenant_id = await session.scalar(
        insert(Tenant)
        .values(name=name, slug=slug)
        .on_conflict_do_nothing(index_elements=["slug"])
        .returning(Tenant.id)
    )
    if tenant_id is None:
        raise Conflict(UNIQUENESS_VIOLATION)
    return tenant_id


async def delete_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    await require(session, Tenant, tenant_id)
    await session.execute(delete(Tenant).where(Tenant.id == tenant_id))


async def update_tenant(session: AsyncSession, tenant_id: uuid.UUID, **values: Any) -> uuid.UUID:
    tenant = await require(session, Tenant, tenant_id, for_update=True)
    if "name" in values:
        values["name"] = _check_name(values["name"])
    if "slug" in values:
        _check_slug(values["slug"])
        taken = await session.scalar(
            select(exists().where(Tenant.slug == values["slug"], Tenant.id != tenant_id))
        )
        if taken:
            raise Conflict(UNIQUENESS_VIOLATION)
    if "settings" in values:
        # A shallow merge, as Prefect Server did: keys not mentioned keep their values.
        values["settings"] = {**(tenant.settings or {}), **(values["settings"] or {})}
    await session.execute(update(Tenant).where(Tenant.id == tenant_id).values(**values))
    return tenant_id


async def resolve_tenant(session: AsyncSession, tenant_id: uuid.UUID | None, hinted: str | None) -> uuid.UUID:
    """The tenant a mutation means when the caller may leave it out, as the Prefect web UI does
    (`update_tenant_settings(input: {settings})`): the given id, else the tenant the UI names in
    its `X-Prefect-Tenant-Id` header, else the only tenant there is."""
    if tenant_id is not None:
        return tenant_id
    if hinted:
        try:
            return uuid.UUID(hinted.strip())
        except ValueError:
            raise InvalidInput(f"The X-Prefect-Tenant-Id header {hinted!r} is not a UUID.") from None
    ids = (await session.scalars(select(Tenant.id).limit(2))).all()
    if len(ids) == 1:
        return ids[0]
    raise InvalidInput("`tenant_id` is required: this server has several tenants.")
