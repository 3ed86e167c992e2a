"""Starting on a database already at head skips Alembic (a cold-start cost); a database behind
head, or a fresh one, is still migrated through Alembic under its advisory lock."""

from __future__ import annotations

import uuid

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import make_url

from headwater.server.db import migrate
from headwater.server.db.engine import create_engine


@pytest.fixture
async def fresh_database(engine, database_url):
    """An empty database on the test Postgres, dropped afterwards."""
    admin = engine.execution_options(isolation_level="AUTOCOMMIT")
    name = f"migrate_{uuid.uuid4().hex[:10]}"
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    other = create_engine(make_url(database_url).set(database=name).render_as_string(hide_password=False))
    yield other
    await other.dispose()
    async with admin.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def alembic_ran(monkeypatch) -> list[str]:
    calls: list[str] = []
    upgrade = migrate._upgrade

    def spy(connection, revision):
        calls.append(revision)
        return upgrade(connection, revision)

    monkeypatch.setattr(migrate, "_upgrade", spy)
    return calls


@pytest.mark.pure
def test_the_literal_head_is_alembics_head():
    assert migrate.script_head() == ScriptDirectory(str(migrate.MIGRATIONS_DIR)).get_current_head()


@pytest.mark.pure
def test_a_head_it_cannot_read_from_literals_is_none(tmp_path, monkeypatch):
    (tmp_path / "versions").mkdir()
    (tmp_path / "versions" / "a.py").write_text("revision = 'a'\ndown_revision = None\n")
    (tmp_path / "versions" / "b.py").write_text("revision = 'b'\ndown_revision = 'a'\n")
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", tmp_path)
    assert migrate.script_head() == "b"
    (tmp_path / "versions" / "c.py").write_text("revision = 'c'\ndown_revision = 'a'\n")
    assert migrate.script_head() is None, "two heads: Alembic decides"
    (tmp_path / "versions" / "c.py").write_text("revision = make()\ndown_revision = 'b'\n")
    assert migrate.script_head() is None, "not a literal"


async def test_a_database_at_head_skips_alembic(engine, monkeypatch):
    calls = alembic_ran(monkeypatch)
    await migrate.upgrade(engine)
    assert calls == []


async def test_a_database_behind_head_and_a_fresh_one_are_migrated(fresh_database, monkeypatch):
    calls = alembic_ran(monkeypatch)
    await migrate.upgrade(fresh_database)
    head = migrate.script_head()
    assert calls == ["head"] and await migrate.database_revisions(fresh_database) == {head}
    await migrate.upgrade(fresh_database, "0004")  # an explicit revision always goes to Alembic
    async with fresh_database.begin() as connection:
        await connection.run_sync(migrate._downgrade, "0004")
    assert await migrate.database_revisions(fresh_database) == {"0004"}
    calls.clear()
    await migrate.upgrade(fresh_database)
    assert calls == ["head"] and await migrate.database_revisions(fresh_database) == {head}
    async with fresh_database.connect() as connection:
        for index in ("ix_flow_run_state_run_start_time_tenant", "ix_flow_run_queue"):  # 0006's and 0007's
            assert await connection.scalar(text(f"SELECT to_regclass('{index}')")) is not None, index


async def test_a_start_migrates_in_a_child_process(fresh_database, monkeypatch):
    """What a server's start runs: Alembic in a child, so the server never loads it; at head, no child."""
    calls = alembic_ran(monkeypatch)
    await migrate.upgrade_at_start(fresh_database)
    assert calls == [], "not in this process"
    assert await migrate.database_revisions(fresh_database) == {migrate.script_head()}

    async def no_child(engine):
        raise AssertionError("a database at head needs no migration process")

    monkeypatch.setattr(migrate, "upgrade_in_child", no_child)
    await migrate.upgrade_at_start(fresh_database)


async def test_a_failed_migration_in_the_child_is_one_clear_error(database_url):
    missing = create_engine(make_url(database_url).set(database="no_such_db_here").render_as_string(hide_password=False))
    try:
        with pytest.raises(RuntimeError, match=r'^database migration failed: .*"no_such_db_here" does not exist'):
            await migrate.upgrade_in_child(missing)
    finally:
        await missing.dispose()
