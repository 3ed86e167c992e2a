"""Schema migrations, run at start (unless switched off) and by `headwater db upgrade`.

Several replicas may start at once against one database; a Postgres advisory lock makes them
take turns, so exactly one applies each revision and the others find the schema current.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger("headwater.migrate")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# An arbitrary constant shared by every headwater process: the migration lock's key.
MIGRATION_LOCK_KEY = 0x4EAD_3A7E


def alembic_config(connection: Connection) -> Config:
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
    _take_migration_lock(connection)
    command.upgrade(alembic_config(connection), revision)


def _downgrade(connection: Connection, revision: str) -> None:
    _take_migration_lock(connection)
    command.downgrade(alembic_config(connection), revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema up to `revision` (default: the newest)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade, revision)
    logger.info("database schema is at %s", revision)


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    """Take the schema down to `revision`; `base` drops every table (used by `db reset`)."""
    async with engine.begin() as connection:
        await connection.run_sync(_downgrade, revision)
