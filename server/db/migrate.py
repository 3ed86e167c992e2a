"""Schema migrations, run at start (unless switched off) and by `headwater db upgrade`.

Several replicas may start at once against one database; a Postgres advisory lock makes them
take turns, so exactly one applies each revision and the others find the schema current.

Most starts find the schema current. Loading Alembic and its revision scripts to learn that cost
a few hundred milliseconds of every start, so `upgrade` to head first compares the database's
`alembic_version` with the head read from the version files' literals (`script_head`); only a
database elsewhere (or files it cannot read that way) goes through Alembic, under the lock. The
version row and the schema change commit together (Postgres DDL is transactional), so a row at
head means a finished migration.

A server's start (`upgrade_at_start`) runs Alembic in a child process when the schema is
behind: Alembic, Mako and Pygments stayed loaded for good (8-12 MiB of a ~90 MiB server) in a
process that migrated once. The child (`python -m headwater.server.db.migrate`) does the same
`upgrade` under the same lock, logs to the same stderr, and its failure is this process's error.
"""

from __future__ import annotations

import ast
import asyncio
import logging
import os
import sys
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


# The child's inputs, from the parent's environment: the URL stays out of the process list.
CHILD_URL = "HEADWATER_MIGRATE_DATABASE_URL"
CHILD_LOG_LEVEL = "HEADWATER_MIGRATE_LOG_LEVEL"
CHILD_STATEMENT_CACHE = "HEADWATER_MIGRATE_STATEMENT_CACHE_SIZE"


async def upgrade_at_start(engine: AsyncEngine) -> None:
    """`upgrade(engine)` as a server's start runs it: a schema at head is only checked here; one
    behind (or a fresh database) is migrated by a child process, so this one never loads Alembic."""
    head = script_head()
    if head is not None and await database_revisions(engine) == {head}:
        logger.info("database schema is at %s", "head")
        return
    await upgrade_in_child(engine)


async def upgrade_in_child(engine: AsyncEngine) -> None:
    """`upgrade` to head in `python -m headwater.server.db.migrate`; raises if it does not succeed."""
    from headwater.server.db.engine import POOLER_OPTION

    env = {
        **os.environ,
        CHILD_URL: engine.url.render_as_string(hide_password=False),
        CHILD_LOG_LEVEL: str(logging.getLogger().getEffectiveLevel()),
        # Behind a transaction pooler (no statement cache) the child prepares nothing by name either.
        CHILD_STATEMENT_CACHE: "0" if engine.get_execution_options().get(POOLER_OPTION) else "100",
    }
    # stdout carries the child's one-line reason on failure; its log lines go to our stderr.
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "headwater.server.db.migrate", env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
    )
    try:
        said, _ = await child.communicate()
    except BaseException:
        # Cancelled (the start was abandoned): a killed migration's transaction rolls back.
        if child.returncode is None:
            child.kill()
            await child.wait()
        raise
    if child.returncode != 0:
        lines = said.decode(errors="replace").strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"the migration process exited with {child.returncode}")


def _child_main() -> int:
    """The child of `upgrade_in_child`: upgrade the database named in the environment to head."""
    from headwater.server.db.engine import create_engine

    level = int(os.environ.get(CHILD_LOG_LEVEL, logging.INFO))
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                        datefmt="%Y-%m-%d %H:%M:%S")
    logging.getLogger("alembic.runtime.plugins").setLevel(max(logging.WARNING, level))  # as server/cli.py

    async def run() -> None:
        engine = create_engine(os.environ[CHILD_URL], pool_size=1,
                               statement_cache_size=int(os.environ.get(CHILD_STATEMENT_CACHE, "100")))
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except Exception as exc:  # noqa: BLE001 - one line for the parent, the traceback at DEBUG
        logger.debug("migration failed", exc_info=True)
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        print(f"database migration failed: {reason[0] if reason else type(exc).__name__}", flush=True)
        return 1
    return 0


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    """Take the schema down to `revision`; `base` drops every table (used by `db reset`)."""
    async with engine.begin() as connection:
        await connection.run_sync(_downgrade, revision)


if __name__ == "__main__":
    sys.exit(_child_main())
