"""Tenants and projects."""

from __future__ import annotations

import uuid

from sqlalchemy import text


async def test_create_project_and_duplicate(gql, db, tenant_id):
    project = await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "etl", "description": None})
    assert uuid.UUID(project["id"])
    body = await gql.raw(
        "mutation($input: create_project_input!) { create_project(input: $input) { id } }",
        {"input": {"tenant_id": tenant_id, "name": "etl"}},
    )
    [error] = body["errors"]
    # The message names what exists; the reason keeps the exact text the Prefect 1.x client
    # looks for (`"'Uniqueness violation.'" in str(errors)`) to treat the project as existing.
    assert error["message"] == "project 'etl' already exists"
    assert error["extensions"] == {"code": "CONFLICT", "reason": "Uniqueness violation."}
    assert "'Uniqueness violation.'" in str(body["errors"])
    assert await db.scalar(text("SELECT count(*) FROM project")) == 1


async def test_project_name_rules(gql, db, tenant_id):
    assert await gql.mutate_error("create_project", {"tenant_id": tenant_id, "name": "  "}) == (
        "Project name must not be empty."
    )
    missing = str(uuid.uuid4())
    assert await gql.mutate_error("create_project", {"tenant_id": missing, "name": "x"}) == f"Tenant {missing} not found."
    assert "Could not parse UUID" in await gql.mutate_error("create_project", {"tenant_id": "nope", "name": "x"})
    message = await gql.mutate_error("create_project", {"name": "x"})
    assert "tenant_id" in message
    assert await db.scalar(text("SELECT count(*) FROM project")) == 0


async def test_rename_describe_and_delete(gql, db, tenant_id):
    first = (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "a"}))["id"]
    await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "b"})
    assert (await gql.mutate("set_project_name", {"project_id": first, "name": "c"}))["id"] == first
    assert await gql.mutate_error("set_project_name", {"project_id": first, "name": "b"}) == (
        "project 'b' already exists"
    )
    await gql.mutate("set_project_description", {"project_id": first, "description": "nightly"})
    row = (await db.execute(text("SELECT name, description FROM project WHERE id = :id"), {"id": first})).one()
    assert tuple(row) == ("c", "nightly")
    assert (await gql.mutate("delete_project", {"project_id": first}, "success"))["success"] is True
    assert await db.scalar(text("SELECT count(*) FROM project")) == 1
    missing = str(uuid.uuid4())
    assert await gql.mutate_error("delete_project", {"project_id": missing}, "success") == f"Project {missing} not found."


async def test_delete_project_removes_its_flows(gql, db, tenant_id):
    from tests import factories as f

    project = (await gql.mutate("create_project", {"tenant_id": tenant_id, "name": "p"}))["id"]
    await gql.mutate("create_flow", {"project_id": project, "serialized_flow": f.flow()})
    await gql.mutate("delete_project", {"project_id": project}, "success")
    assert await db.scalar(text("SELECT count(*) FROM flow")) == 0
    assert await db.scalar(text("SELECT count(*) FROM task")) == 0


async def test_tenants(gql, db, tenant_id):
    created = await gql.mutate("create_tenant", {"name": "Team B", "slug": "team-b"})
    assert await gql.mutate_error("create_tenant", {"name": "Again", "slug": "team-b"}) == "Uniqueness violation."
    assert "slugified" in await gql.mutate_error("create_tenant", {"name": "Bad", "slug": "Not A Slug"})
    await gql.mutate("update_tenant_name", {"tenant_id": created["id"], "name": "Team Bee"})
    assert await gql.mutate_error("update_tenant_slug", {"tenant_id": created["id"], "slug": "default"}) == (
        "Uniqueness violation."
    )
    await gql.mutate("update_tenant_settings", {"tenant_id": created["id"], "settings": {"a": 1}})
    await gql.mutate("update_tenant_settings", {"tenant_id": created["id"], "settings": {"b": 2}})
    settings = await db.scalar(text("SELECT settings FROM tenant WHERE id = :id"), {"id": created["id"]})
    assert settings == {"a": 1, "b": 2}
    assert "confirm" in await gql.mutate_error(
        "delete_tenant", {"tenant_id": created["id"], "confirm": False}, "success"
    )
    await gql.mutate("delete_tenant", {"tenant_id": created["id"], "confirm": True}, "success")
    assert await db.scalar(text("SELECT count(*) FROM tenant")) == 1
