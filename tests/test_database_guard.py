"""The suite empties every table before each test, so it must refuse a database holding headwater
data it did not create, and must never follow the server's DATABASE_URL / HEADWATER_DATABASE_URL."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import make_url, text

from headwater.server.db import migrate
from headwater.server.db.engine import create_engine
from tests.database_guard import MARKER, ForeignDatabase, claim_test_database, database_comment

REPO = Path(__file__).resolve().parent.parent


async def test_the_suite_runs_on_a_database_it_marked(db):
    comment = await db.scalar(text(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()"
    ))
    assert comment == MARKER


@pytest.fixture
async def second_database(engine, database_url):
    """A fresh database on the same Postgres; yields a factory of (url, engine) and drops them after."""
    admin = engine.execution_options(isolation_level="AUTOCOMMIT")
    made = []

    async def make() -> tuple[str, object]:
        name = f"guard_{uuid.uuid4().hex[:10]}"
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
        other = create_engine(url)
        made.append((name, other))
        return url, other

    yield make
    for name, other in made:
        await other.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def holding_a_project(other) -> None:
    """A headwater database as a live server leaves it: migrated, a tenant and a project."""
    await migrate.upgrade(other)
    async with other.begin() as connection:
        tenant = await connection.scalar(text(
            "INSERT INTO tenant (name, slug) VALUES ('acme', 'acme') RETURNING id"
        ))
        await connection.execute(text("INSERT INTO project (tenant_id, name) VALUES (:t, 'prod')"), {"t": tenant})


async def project_count(other) -> int:
    async with other.connect() as connection:
        return await connection.scalar(text("SELECT count(*) FROM project"))


async def test_refuses_a_database_holding_rows_it_did_not_create(second_database):
    url, other = await second_database()
    await holding_a_project(other)
    with pytest.raises(ForeignDatabase, match="refusing to run the tests") as refused:
        await claim_test_database(other)
    assert "project: 1 row(s)" in str(refused.value) and "tenant: 1 row(s)" in str(refused.value)
    assert await database_comment(other) is None
    assert await project_count(other) == 1


async def test_accepts_an_empty_database_and_then_its_own_rows(second_database):
    url, other = await second_database()
    await claim_test_database(other)  # nothing in it: not even tables
    assert await database_comment(other) == MARKER
    await holding_a_project(other)
    await claim_test_database(other)  # its rows now, by the marker


async def test_accepts_a_migrated_database_with_only_the_default_tenant(second_database):
    url, other = await second_database()
    await migrate.upgrade(other)
    async with other.begin() as connection:
        await connection.execute(text("INSERT INTO tenant (name, slug) VALUES ('default', 'default')"))
    await claim_test_database(other)
    assert await database_comment(other) == MARKER


def run_suite(env: dict[str, str]) -> subprocess.CompletedProcess:
    """One quick test of this suite in a fresh pytest session, with `env` over a clean environment."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "HEADWATER_DATABASE_URL", "HEADWATER_TEST_DATABASE_URL")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_database_guard.py::test_the_suite_runs_on_a_database_it_marked"],
        cwd=REPO, env={**base, **env}, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.slow
async def test_a_pytest_session_refuses_a_live_database_and_ignores_database_url(second_database):
    url, other = await second_database()
    await holding_a_project(other)

    refused = run_suite({"HEADWATER_TEST_DATABASE_URL": url})
    assert refused.returncode == pytest.ExitCode.USAGE_ERROR, refused.stdout + refused.stderr
    assert "refusing to run the tests" in refused.stdout + refused.stderr
    assert await project_count(other) == 1

    # The server's variables are not the suite's: it runs on its own embedded Postgres instead.
    ignored = run_suite({"DATABASE_URL": url, "HEADWATER_DATABASE_URL": url})
    assert ignored.returncode == 0, ignored.stdout + ignored.stderr
    assert await project_count(other) == 1
    assert await database_comment(other) is None
