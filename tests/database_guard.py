"""The test suite empties every table before each test, so it must only ever touch a database it
owns: the embedded one it starts, or one named by HEADWATER_TEST_DATABASE_URL that is empty or that
the suite marked as its own (a `COMMENT ON DATABASE`) the first time it prepared it."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from headwater.server.db.models import Base, Private

MARKER = "headwater test database: the test suite empties it before every test"


class ForeignDatabase(Exception):
    """The database holds headwater data the suite did not create."""


async def database_comment(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.scalar(text(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()"
        ))


async def foreign_rows(engine: AsyncEngine) -> list[str]:
    """`table: n rows` for every headwater table holding rows, except a lone default tenant (which
    any first start creates)."""
    tables = [t.name for t in [*Base.metadata.sorted_tables, *Private.metadata.sorted_tables]]
    found = []
    async with engine.connect() as connection:
        existing = set((await connection.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ))).scalars())
        for table in tables:
            if table not in existing:
                continue
            where = " WHERE slug <> 'default'" if table == "tenant" else ""
            count = await connection.scalar(text(f'SELECT count(*) FROM "{table}"{where}'))
            if count:
                found.append(f"{table}: {count} row(s)")
    return found


async def claim_test_database(engine: AsyncEngine) -> None:
    """Mark the database as the suite's, or raise ForeignDatabase if it holds data the suite did
    not create. Run before migrating or emptying anything."""
    if await database_comment(engine) == MARKER:
        return
    found = await foreign_rows(engine)
    if found:
        raise ForeignDatabase(
            f"refusing to run the tests against {engine.url.render_as_string(hide_password=True)}: it holds "
            f"headwater data the test suite did not create ({', '.join(found)}), and the suite empties every "
            "table before each test. Point HEADWATER_TEST_DATABASE_URL at an empty database, or unset it "
            "to use an embedded Postgres."
        )
    async with engine.begin() as connection:
        name = await connection.scalar(text("SELECT current_database()"))
        quoted = '"' + name.replace('"', '""') + '"'
        await connection.execute(text(f"COMMENT ON DATABASE {quoted} IS '{MARKER}'"))
