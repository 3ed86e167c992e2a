"""API keys with roles: storage (hashed), authentication, the role of each key, revocation
without a restart, and the legacy HEADWATER_API_KEY setting as an admin key."""

from __future__ import annotations

import hashlib
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import text

from headwater.server.app import create_app
from headwater.server.db.engine import create_sessionmaker, transaction
from headwater.server.domain import api_keys
from headwater.server.domain.errors import Conflict, InvalidInput, NotFound
from tests import factories as f
from tests.conftest import GraphQL

HELLO = "{ hello }"


@pytest.fixture
def sessions(engine):
    return create_sessionmaker(engine)


async def create(sessions, name: str, role: str) -> str:
    async with transaction(sessions) as session:
        _, key = await api_keys.create_key(session, name, role)
    return key


async def revoke(sessions, name: str) -> None:
    async with transaction(sessions) as session:
        await api_keys.revoke_key(session, name)


@asynccontextmanager
async def server(settings, **changes):
    """An app of its own (so its key cache is fresh) and a way to call it with a key."""
    application = create_app(settings.replace(**changes))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)

        def client(key: str | None = None) -> GraphQL:
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            http = httpx.AsyncClient(transport=transport, base_url="http://headwater.test", headers=headers)
            return GraphQL(http)

        client.app = application  # type: ignore[attr-defined]
        yield client


def error_code(body: dict) -> str:
    return body["errors"][0]["extensions"]["code"]


# --- the domain -----------------------------------------------------------------------------


async def test_create_stores_a_hash_and_returns_the_key_once(sessions, db):
    async with transaction(sessions) as session:
        info, key = await api_keys.create_key(session, "ci", "run")
    assert key.startswith("hw_") and len(key) > 40
    assert info.name == "ci" and info.role == "run" and key.startswith(info.prefix) and len(info.prefix) == 11
    row = (await db.execute(text("SELECT * FROM api_key"))).mappings().one()
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in {str(v) for v in row.values()}, "the key itself is never stored"
    assert row["last_used"] is None and row["revoked"] is None


async def test_list_revoke_and_authenticate(sessions):
    ci = await create(sessions, "ci", "run")
    viewer = await create(sessions, "viewer", "read")
    async with transaction(sessions) as session:
        assert await api_keys.authenticate(session, ci) == api_keys.Principal("ci", "run")
        assert await api_keys.authenticate(session, viewer) == api_keys.Principal("viewer", "read")
        assert await api_keys.authenticate(session, ci + "x") is None
        assert await api_keys.authenticate(session, "hw_nope") is None
    await revoke(sessions, "ci")
    async with transaction(sessions) as session:
        assert await api_keys.authenticate(session, ci) is None
        listed = {k.name: k for k in await api_keys.list_keys(session)}
    assert set(listed) == {"ci", "viewer"}
    assert listed["ci"].revoked is not None and listed["viewer"].revoked is None
    assert listed["ci"].last_used is not None, "a successful authentication records its time"


async def test_duplicate_name_unknown_role_and_unknown_key_are_clear_errors(sessions):
    await create(sessions, "ci", "run")
    with pytest.raises(Conflict, match="An API key named 'ci' already exists"):
        await create(sessions, "ci", "read")
    with pytest.raises(InvalidInput, match="Unknown role 'owner'"):
        await create(sessions, "other", "owner")
    with pytest.raises(NotFound, match="No API key named 'ghost'"):
        await revoke(sessions, "ghost")


async def test_the_role_check_constraint_holds_in_the_database(db):
    with pytest.raises(Exception, match="ck_api_key_role"):
        await db.execute(text("INSERT INTO api_key (name, role, key_hash, prefix) VALUES ('x', 'root', 'h', 'p')"))
    await db.rollback()


async def test_api_keys_are_not_readable_through_the_api(gql):
    message = await gql.error("{ api_key { key_hash } }")
    assert "api_key" in message


# --- authentication over HTTP ---------------------------------------------------------------


async def test_without_any_key_the_server_stays_open(settings):
    async with server(settings) as client:
        assert await client()(HELLO) == {"hello": "👋"}
        project = await client()("mutation { create_tenant(input: {name: \"t\", slug: \"t\"}) { id } }")
        assert project["create_tenant"]["id"]


async def test_once_a_key_exists_requests_need_one(settings, sessions):
    key = await create(sessions, "ci", "admin")
    async with server(settings) as client:
        for missing in (None, "wrong", "hw_" + "x" * 43, key + "x"):
            body = await client(missing).raw(HELLO)
            assert error_code(body) == "UNAUTHENTICATED"
            assert "PREFECT__CLOUD__API_KEY" in body["errors"][0]["message"]
        assert await client(key)(HELLO) == {"hello": "👋"}


async def test_the_api_key_setting_is_an_admin_key_beside_the_table(settings, sessions, tenant_id):
    viewer = await create(sessions, "viewer", "read")
    async with server(settings, api_key="s3cret") as client:
        created = await client("s3cret").mutate("create_project", {"tenant_id": tenant_id, "name": "legacy"})
        assert created["id"]
        assert await client(viewer)(HELLO) == {"hello": "👋"}
        assert error_code(await client("wrong").raw(HELLO)) == "UNAUTHENTICATED"


async def test_a_revoked_key_stops_working_within_the_cache_ttl_without_a_restart(settings, sessions):
    key = await create(sessions, "ci", "run")
    async with server(settings) as client:
        now = [1000.0]
        client.app.state.api_key_cache = api_keys.KeyCache(ttl=5.0, clock=lambda: now[0])
        assert await client(key)(HELLO) == {"hello": "👋"}
        await revoke(sessions, "ci")
        now[0] += 4.0
        assert await client(key)(HELLO) == {"hello": "👋"}, "within the TTL the cached answer stands"
        now[0] += 1.5
        assert error_code(await client(key).raw(HELLO)) == "UNAUTHENTICATED"


async def test_a_new_key_closes_an_open_server_without_a_restart(settings, sessions):
    async with server(settings, api_key_cache_seconds=0) as client:
        assert await client()(HELLO) == {"hello": "👋"}
        key = await create(sessions, "first", "read")
        assert error_code(await client().raw(HELLO)) == "UNAUTHENTICATED"
        assert await client(key)(HELLO) == {"hello": "👋"}
        await revoke(sessions, "first")
        assert error_code(await client().raw(HELLO)) == "UNAUTHENTICATED", "revoking the last key keeps it closed"


async def test_last_used_is_written_at_most_once_a_minute(settings, sessions, db):
    key = await create(sessions, "ci", "run")
    async with server(settings, api_key_cache_seconds=0) as client:
        await client(key)(HELLO)
        first = await db.scalar(text("SELECT last_used FROM api_key"))
        await db.commit()
        await client(key)(HELLO)
        assert await db.scalar(text("SELECT last_used FROM api_key")) == first


async def test_the_database_down_while_checking_a_key_is_a_503_not_a_500(settings, sessions):
    from headwater.server.db.engine import create_engine

    key = await create(sessions, "ci", "run")
    async with server(settings) as client:
        unreachable = create_engine("postgresql://nobody@127.0.0.1:9/nowhere")
        client.app.state.sessions = create_sessionmaker(unreachable)
        try:
            response = await client(key).http.post("/", json={"query": HELLO})
            assert response.status_code == 503
            assert response.json()["errors"][0]["extensions"]["code"] == "DATABASE_UNAVAILABLE"
        finally:
            await unreachable.dispose()


# --- roles ----------------------------------------------------------------------------------


@pytest.fixture
async def keys(sessions) -> dict[str, str]:
    return {role: await create(sessions, f"{role}-key", role) for role in api_keys.ROLES}


@pytest.fixture
async def world(settings, keys, tenant_id):
    """An app with one key per role, a project, a flow and a flow run made with the admin key."""
    async with server(settings, api_key_cache_seconds=0) as client:
        admin = client(keys["admin"])
        project_id = (await admin.mutate("create_project", {"tenant_id": tenant_id, "name": "p"}))["id"]
        flow_id = (await admin.mutate("create_flow", {"project_id": project_id, "serialized_flow": f.flow("roles")}))["id"]
        run_id = (await admin.mutate("create_flow_run", {"flow_id": flow_id}))["id"]
        yield {"client": client, "keys": keys, "tenant_id": tenant_id, "project_id": project_id,
               "flow_id": flow_id, "run_id": run_id}


def as_role(world, role: str) -> GraphQL:
    return world["client"](world["keys"][role])


async def test_read_may_query_but_not_mutate(world):
    reader = as_role(world, "read")
    runs = await reader("{ flow_run { id } }")
    assert [r["id"] for r in runs["flow_run"]] == [world["run_id"]]
    body = await reader.raw(
        'mutation { update_flow_run_heartbeat(input: { flow_run_id: "%s" }) { success } }' % world["run_id"]
    )
    assert error_code(body) == "FORBIDDEN"
    assert body["errors"][0]["message"] == (
        "The API key 'read-key' has role 'read', which may not run mutation update_flow_run_heartbeat."
    )
    message = await reader.mutate_error("create_project", {"tenant_id": world["tenant_id"], "name": "nope"})
    assert message == "The API key 'read-key' has role 'read', which may not run mutation create_project."


async def test_run_may_do_what_agents_and_flow_runners_do(world, db):
    runner = as_role(world, "run")
    run_id = world["run_id"]
    heartbeat = await runner('mutation { update_flow_run_heartbeat(input: { flow_run_id: "%s" }) { success } }' % run_id)
    assert heartbeat["update_flow_run_heartbeat"]["success"] is True
    queue = await runner.mutate("get_runs_in_queue", {"tenant_id": world["tenant_id"], "labels": ["dev"]}, "flow_run_ids")
    assert run_id in queue["flow_run_ids"]
    agent = await runner.mutate("register_agent", {"tenant_id": world["tenant_id"], "type": "LocalAgent",
                                                   "name": "a", "labels": []})
    assert agent["id"]
    states = await runner.mutate(
        "set_flow_run_states",
        {"states": [{"flow_run_id": run_id, "version": None,
                     "state": {"type": "Running", "message": "go", "__version__": "1.4.1"}}]},
        "states { status }",
    )
    assert states["states"][0]["status"] == "SUCCESS"
    logs = await runner.mutate("write_run_logs", {"logs": [{"flow_run_id": run_id, "message": "hi",
                                                           "level": "INFO", "name": "t"}]}, "success")
    assert logs["success"] is True
    second = await runner.mutate("create_flow_run", {"flow_id": world["flow_id"]})
    assert second["id"]
    assert await db.scalar(text("SELECT state FROM flow_run WHERE id = :id"), {"id": run_id}) == "Running"
    assert await db.scalar(text("SELECT count(*) FROM log")) == 1


async def test_run_may_not_register_or_delete(world, db):
    runner = as_role(world, "run")
    message = await runner.mutate_error("create_project", {"tenant_id": world["tenant_id"], "name": "nope"})
    assert message == "The API key 'run-key' has role 'run', which may not run mutation create_project."
    message = await runner.mutate_error("delete_flow", {"flow_id": world["flow_id"]}, "success")
    assert "may not run mutation delete_flow" in message
    assert await db.scalar(text("SELECT count(*) FROM flow")) == 1
    assert await db.scalar(text("SELECT count(*) FROM project")) == 1


async def test_a_forbidden_field_refuses_the_whole_mutation(world, db):
    """An allowed field beside a forbidden one (by alias or fragment) runs neither."""
    runner = as_role(world, "run")
    run_id = world["run_id"]
    for document in (
        'mutation { hb: update_flow_run_heartbeat(input: { flow_run_id: "%s" }) { success } '
        'gone: delete_flow_run(input: { flow_run_id: "%s" }) { success } }' % (run_id, run_id),
        'mutation { ...F } fragment F on Mutation { delete_flow_run(input: { flow_run_id: "%s" }) { success } }' % run_id,
        'mutation { ... on Mutation { delete_flow_run(input: { flow_run_id: "%s" }) { success } } }' % run_id,
    ):
        body = await runner.raw(document)
        assert error_code(body) == "FORBIDDEN", document
        assert "delete_flow_run" in body["errors"][0]["message"]
        assert body["data"] is None
    assert await db.scalar(text("SELECT heartbeat FROM flow_run WHERE id = :id"), {"id": run_id}) is None
    assert await db.scalar(text("SELECT count(*) FROM flow_run")) == 1


async def test_admin_may_do_everything(world, db):
    admin = as_role(world, "admin")
    assert (await admin.mutate("delete_flow", {"flow_id": world["flow_id"]}, "success"))["success"] is True
    assert await db.scalar(text("SELECT count(*) FROM flow")) == 0


async def test_every_run_mutation_exists_in_the_schema():
    from headwater.server.graphql.authorization import ALLOWED_MUTATIONS, RUN_MUTATIONS
    from headwater.server.graphql.schema import schema

    mutations = set(schema._schema.mutation_type.fields)
    assert RUN_MUTATIONS <= mutations, RUN_MUTATIONS - mutations
    assert set(ALLOWED_MUTATIONS) == set(api_keys.ROLES)


# --- the headwater client -------------------------------------------------------------------


async def test_the_headwater_client_sends_its_key_and_reports_the_role(world):
    from headwater.client import AsyncClient, Forbidden, Unauthenticated

    transport = httpx.ASGITransport(app=world["client"].app)
    url = "http://headwater.test"
    async with AsyncClient(url, api_key=world["keys"]["read"], transport=transport) as reader:
        assert await reader.hello() == "👋"
        with pytest.raises(Forbidden, match="role 'read', which may not run mutation create_project"):
            await reader.create_project("nope")
    async with AsyncClient(url, api_key="", transport=transport) as anonymous:
        with pytest.raises(Unauthenticated, match="PREFECT__CLOUD__API_KEY"):
            await anonymous.hello()
    async with AsyncClient(url, api_key=world["keys"]["admin"], transport=transport) as admin:
        assert await admin.create_project("yes")


async def test_concurrent_requests_share_one_lookup_when_the_cache_expires(sessions, monkeypatch):
    import asyncio

    key = await create(sessions, "ci", "run")
    lookups = []
    real = api_keys.authenticate

    async def counting(session, token):
        lookups.append(token)
        return await real(session, token)

    monkeypatch.setattr(api_keys, "authenticate", counting)
    cache = api_keys.KeyCache(ttl=5.0)
    answers = await asyncio.gather(*(cache.authenticate(sessions, key) for _ in range(50)))
    assert answers == [api_keys.Principal("ci", "run")] * 50
    assert len(lookups) == 1
