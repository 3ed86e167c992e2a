"""Tenant mutations."""

from __future__ import annotations

from typing import Optional

import strawberry

from headwater.server.domain import tenants
from headwater.server.domain.errors import InvalidInput
from headwater.server.graphql.context import Info
from headwater.server.graphql.payloads import SuccessPayload, TenantIdPayload, ok
from headwater.server.graphql.scalars import JSON, UUID


@strawberry.input(name="create_tenant_input")
class CreateTenantInput:
    name: str
    slug: str


@strawberry.input(name="delete_tenant_input")
class DeleteTenantInput:
    tenant_id: UUID
    confirm: bool


@strawberry.input(name="update_tenant_name_input")
class UpdateTenantNameInput:
    name: str
    tenant_id: Optional[UUID] = None


@strawberry.input(name="update_tenant_slug_input")
class UpdateTenantSlugInput:
    slug: str
    tenant_id: Optional[UUID] = None


@strawberry.input(name="update_tenant_settings_input")
class UpdateTenantSettingsInput:
    tenant_id: Optional[UUID] = None
    settings: Optional[JSON] = None


# The web UI leaves `tenant_id` out of the update mutations (Prefect Server then refused them);
# here it defaults to the header's tenant or the only one (domain.tenants.resolve_tenant).
HINT_HEADER = "x-prefect-tenant-id"


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def create_tenant(self, info: Info, input: CreateTenantInput) -> Optional[TenantIdPayload]:
        async with info.context.transaction() as session:
            return TenantIdPayload(id=await tenants.create_tenant(session, input.name, input.slug))

    @strawberry.mutation
    async def delete_tenant(self, info: Info, input: DeleteTenantInput) -> Optional[SuccessPayload]:
        if not input.confirm:
            raise InvalidInput("Must pass `confirm: true` to delete a tenant and everything in it.")
        async with info.context.transaction() as session:
            await tenants.delete_tenant(session, input.tenant_id)
        return ok()

    @strawberry.mutation
    async def update_tenant_name(self, info: Info, input: UpdateTenantNameInput) -> Optional[TenantIdPayload]:
        async with info.context.transaction() as session:
            tenant_id = await tenants.resolve_tenant(session, input.tenant_id, info.context.headers.get(HINT_HEADER))
            return TenantIdPayload(id=await tenants.update_tenant(session, tenant_id, name=input.name))

    @strawberry.mutation
    async def update_tenant_slug(self, info: Info, input: UpdateTenantSlugInput) -> Optional[TenantIdPayload]:
        async with info.context.transaction() as session:
            tenant_id = await tenants.resolve_tenant(session, input.tenant_id, info.context.headers.get(HINT_HEADER))
            return TenantIdPayload(id=await tenants.update_tenant(session, tenant_id, slug=input.slug))

    @strawberry.mutation
    async def update_tenant_settings(
        self, info: Info, input: UpdateTenantSettingsInput
    ) -> Optional[TenantIdPayload]:
        settings = input.settings or {}
        if not isinstance(settings, dict):
            raise InvalidInput("Tenant settings must be a JSON object.")
        async with info.context.transaction() as session:
            tenant_id = await tenants.resolve_tenant(session, input.tenant_id, info.context.headers.get(HINT_HEADER))
            return TenantIdPayload(id=await tenants.update_tenant(session, tenant_id, settings=settings))
