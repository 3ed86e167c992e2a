"""Schema migrations, run at start (unless switched off) and by `headwater db upgrade`.

Several replicas may start at once against one database; a Postgres advisory lock makes them
take turns, so exactly one applies each revision and the others find the schema current.

Most starts find the schema current. Loading Alembic and its revision scripts to learn that cost
a few hundred milliseconds of every start, so `upgrade` to head first compares the database's
`alembic_version` with the head read from the version files' literals (`script_head`); only a
database elsewhere (or files it cannot read that way) goes through Alembic, under the lock. The
version row and the schema change commit together (Postgres DDL is transactional), so a row at
head means a finished migration.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger("headwater.migrate")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# An arbitrary constant shared by every headwater process: the migration lock's key.
MIGRATION_LOCK_KEY = 0x4EAD_3A7E


def alembic_config(connection: Connection) -> "Config":
    from alembic.config import Config

    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _take_migration_lock(connection: Connection) -> None:
    # The engine's statement timeout is for request work: waiting for another replica's
    # migration, or building an index on a big table, may take longer.
    connection.execute(text("SET LOCAL statement_timeout = 0"))
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})


def _upgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    _take_migration_lock(connection)
    command.upgrade(alembic_config(connection), revision)


def _downgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    _take_migration_lock(connection)
    command.downgrade(alembic_config(connection), revision)


def _literal(tree: ast.Module, name: str) -> object:
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(target, ast.Name) and target.id == name for target in targets) and node.value is not None:
            return ast.literal_eval(node.value)
    raise ValueError(f"no {name}")


def script_head() -> str | None:
    """The one head revision of the version files, from their `revision` / `down_revision`
    literals, without importing them or Alembic; None when that cannot be told this way."""
    revisions: set[str] = set()
    parents: set[str] = set()
    try:
        for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            revision, down = _literal(tree, "revision"), _literal(tree, "down_revision")
            if not isinstance(revision, str) or revision in revisions:
                return None
            revisions.add(revision)
            downs = (down,) if down is None or isinstance(down, str) else down
            if not isinstance(downs, (tuple, list)) or not all(d is None or isinstance(d, str) for d in downs):
                return None
            parents.update(d for d in downs if d is not None)
    except (OSError, SyntaxError, ValueError):
        return None
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


async def database_revisions(engine: AsyncEngine) -> set[str] | None:
    """The revisions in the database's alembic_version (None: no such table yet)."""
    async with engine.connect() as connection:
        if await connection.scalar(text("SELECT to_regclass('alembic_version')")) is None:
            return None
        return set((await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars())


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema up to `revision` (default: the newest)."""
    head = script_head() if revision == "head" else None
    if head is None or await database_revisions(engine) != {head}:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade, revision)
    logger.info("database schema is at %s", revision)


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    """Take the schema down to `revision`; `base` drops every table (used by `db reset`)."""
    async with engine.begin() as connection:
        await connection.run_sync(_downgrade, revision)
