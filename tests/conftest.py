"""Test fixtures: a real Postgres (embedded via pgserver, or HEADWATER_TEST_DATABASE_URL), migrated
once per session, emptied before every test; an in-process app and a `gql` helper to query it."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from headwater.server.app import create_app
from headwater.server.db import migrate
from headwater.server.db.engine import create_engine
from headwater.server.db.models import Base, Private
from headwater.server.domain.tenants import ensure_default_tenant
from headwater.server.settings import Settings
from tests.database_guard import ForeignDatabase, claim_test_database
from tests.server_process import ServerProcess

# The server's own variables must never steer the suite (or the servers it starts) to a live
# database: tests name theirs with HEADWATER_TEST_DATABASE_URL only.
for _variable in ("DATABASE_URL", "HEADWATER_DATABASE_URL"):
    os.environ.pop(_variable, None)


@pytest.fixture(scope="session")
def database_url() -> AsyncIterator[str]:
    """HEADWATER_TEST_DATABASE_URL when set (CI with an external Postgres), else an embedded one
    for the session, whose data dir is removed afterwards."""
    url = os.environ.get("HEADWATER_TEST_DATABASE_URL")
    if url:
        yield url
        return
    from headwater.server.embedded import EmbeddedPostgres

    data_dir = Path(tempfile.mkdtemp(prefix="headwater-tests-"))
    try:
        server = EmbeddedPostgres(data_dir)
        try:
            yield server.url
        finally:
            server.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
async def engine(database_url: str):
    engine = create_engine(database_url)
    try:
        await claim_test_database(engine)
    except ForeignDatabase as refused:
        await engine.dispose()
        pytest.exit(str(refused), returncode=pytest.ExitCode.USAGE_ERROR)
    await migrate.upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    # The in-process clients address the app as http://headwater.test; the app's bind host is
    # loopback, so that name must be allowed like any other non-loopback Host.
    return Settings(
        database_url=database_url, services_enabled=False, migrate_on_start=False, allowed_hosts="headwater.test"
    )


@pytest.fixture(autouse=True)
def clean_database(request) -> None:
    """Every test starts from empty tables and the default tenant, as after a first start.
    Tests marked `pure` need no database and do not start one."""
    if not request.node.get_closest_marker("pure"):
        request.getfixturevalue("emptied_database")


@pytest.fixture
async def emptied_database(engine) -> None:
    await empty_database(engine)


async def empty_database(engine) -> None:
    """Empty every table and create the default tenant (also for module-scoped seeds)."""
    tables = ", ".join(t.name for t in [*Base.metadata.sorted_tables, *Private.metadata.sorted_tables])
    for attempt in range(5):
        try:
            async with engine.begin() as connection:
                await connection.execute(text(f"TRUNCATE {tables} CASCADE"))
            break
        except DBAPIError as error:
            # A process the previous test started (an agent's flow run finishing) may still be
            # writing: its row locks and TRUNCATE's table locks can deadlock. Try again.
            if "deadlock detected" not in str(error) or attempt == 4:
                raise
            await asyncio.sleep(0.5 * (attempt + 1))
    async with engine.begin() as connection:
        session = AsyncSession(bind=connection)
        await ensure_default_tenant(session)
        await session.flush()


@pytest.fixture(scope="session")
def live_server(engine, database_url: str, tmp_path_factory) -> Iterator[ServerProcess]:
    """A real `headwater start` process on a free port, sharing the test database."""
    log = tmp_path_factory.mktemp("live-server") / "headwater.log"
    env = {"HEADWATER_DATABASE_URL": database_url, "HEADWATER_LOG_LEVEL": "WARNING"}
    with ServerProcess("--no-services", "--no-migrate", env=env, log_path=log) as server:
        yield server


@pytest.fixture
async def app(settings: Settings):
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def http(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://headwater.test") as client:
        yield client


class GraphQL:
    """Posts documents the way the Prefect client does (variables as a JSON string)."""

    def __init__(self, http: httpx.AsyncClient):
        self.http = http

    async def raw(self, query: str, variables: Any = None, **headers: str) -> dict:
        import json

        response = await self.http.post(
            "/", json={"query": query, "variables": json.dumps(variables)}, headers=headers
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def __call__(self, query: str, variables: Any = None, **headers: str) -> dict:
        """The `data` of a request that must succeed."""
        body = await self.raw(query, variables, **headers)
        assert "errors" not in body, body["errors"]
        return body["data"]

    async def error(self, query: str, variables: Any = None, **headers: str) -> str:
        """The first error message of a request that must fail."""
        body = await self.raw(query, variables, **headers)
        assert body.get("errors"), f"expected an error, got {body}"
        return body["errors"][0]["message"]

    async def mutate(self, name: str, input: dict, selection: str = "id") -> Any:
        """Run mutation `name` with `$input` and return its payload."""
        type_name = f"{name}_input"
        data = await self(
            f"mutation($input: {type_name}!) {{ {name}(input: $input) {{ {selection} }} }}", {"input": input}
        )
        return data[name]

    async def mutate_error(self, name: str, input: dict, selection: str = "id") -> str:
        return await self.error(
            f"mutation($input: {name}_input!) {{ {name}(input: $input) {{ {selection} }} }}", {"input": input}
        )


def unordered(answer: Any) -> Any:
    """An answer with every list in a canonical order (dict key order kept): rows a document does
    not order come back in whatever order Postgres reads them, which may change between two runs
    of one statement (ordering is tested in test_hasura_read)."""
    import json

    if isinstance(answer, dict):
        return {key: unordered(value) for key, value in answer.items()}
    if isinstance(answer, list):
        return sorted((unordered(item) for item in answer), key=lambda item: json.dumps(item, sort_keys=True))
    return answer


async def role_keys(engine, name: str, roles: tuple[str, ...] = ("read", "admin")) -> dict[str, str]:
    """A new API key for each role, by role (named `<role>-<name>`)."""
    from headwater.server.db.engine import create_sessionmaker, transaction
    from headwater.server.domain import api_keys

    keys = {}
    for role in roles:
        async with transaction(create_sessionmaker(engine)) as session:
            keys[role] = (await api_keys.create_key(session, f"{role}-{name}", role))[1]
    return keys


@asynccontextmanager
async def app_client(settings: Settings, key: str | None = None, **changes: Any) -> AsyncIterator[GraphQL]:
    """A client of a new app whose settings differ by `changes`, sending API key `key` if given;
    the app is the client's `app`."""
    application = create_app(settings.replace(**changes))
    async with application.router.lifespan_context(application):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application),
                                     base_url="http://headwater.test", headers=headers) as http:
            client = GraphQL(http)
            client.app = application
            yield client


@pytest.fixture
def gql(http: httpx.AsyncClient) -> GraphQL:
    return GraphQL(http)


@pytest.fixture
async def db(engine):
    """A connection for asserting on rows directly."""
    async with engine.connect() as connection:
        yield connection


@pytest.fixture
async def tenant_id(app, db) -> str:
    """The default tenant's id (created by the app's lifespan)."""
    return str(await db.scalar(text("SELECT id FROM tenant WHERE slug = 'default'")))
