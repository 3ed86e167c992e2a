"""Engine and session factory: one async engine per process, one session per unit of work."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from typing import AsyncIterator

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def async_url(url: str) -> str:
    """Turn any Postgres URL (postgres://, postgresql://, +psycopg) into an asyncpg one."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"headwater needs a Postgres database URL, got {parsed.get_backend_name()!r}")
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def create_engine(
    url: str, pool_size: int = 20, statement_timeout_seconds: float = 0, statement_cache_size: int = 100
) -> AsyncEngine:
    """The process's engine. With `statement_timeout_seconds` > 0, Postgres cancels any statement
    running longer (SQLSTATE 57014), so no single request holds a connection for minutes;
    migrations switch it off for their own transaction. `statement_cache_size` 0 prepares nothing
    by name (PgBouncer's transaction pooling); each statement is then prepared unnamed per use.

    JIT is off: headwater's statements are short OLTP work, and Postgres' JIT (on by default
    where it is built in, as in Debian's packages) compiled them whenever a row estimate was
    high, 20-70 ms of compiling for a few ms of work (the README's Benchmarks section)."""
    server_settings = {"timezone": "UTC", "application_name": "headwater", "jit": "off"}
    if statement_timeout_seconds > 0:
        server_settings["statement_timeout"] = str(max(1, round(statement_timeout_seconds * 1000)))  # ms
    return create_async_engine(
        async_url(url),
        # A fixed pool: requests beyond it wait for a connection rather than open (and soon
        # close) a new one, which costs more than the query and made throughput collapse.
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=30,
        # No pre-ping round trip per checkout: a dropped connection is detected on use and
        # discarded by the pool, and the client retries.
        pool_pre_ping=False,
        pool_recycle=1800,
        # Timestamps are stored and compared in UTC whatever the server's default zone is.
        connect_args={"server_settings": server_settings, **_statement_cache_args(statement_cache_size)},
        # Read by autocommit(): without a statement cache we may be behind a transaction pooler.
        execution_options={POOLER_OPTION: statement_cache_size <= 0},
    )


POOLER_OPTION = "headwater_behind_transaction_pooler"


def _statement_cache_args(size: int) -> dict:
    """asyncpg's cache and SQLAlchemy's adapter cache, both `size`; off, statements get unique names
    so no two clients' prepared statements collide on a server connection PgBouncer shares."""
    if size > 0:
        return {"statement_cache_size": size, "prepared_statement_cache_size": size}
    return {
        "statement_cache_size": 0, "prepared_statement_cache_size": 0,
        "prepared_statement_name_func": lambda: f"__headwater_{uuid.uuid4().hex}__",
    }


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One session in one transaction: committed on success, rolled back on any exception."""
    async with sessions() as session:
        async with session.begin():
            yield session


@asynccontextmanager
async def autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One pooled connection with no transaction: each statement commits on its own.

    For work that is one statement (a heartbeat, a state change, a creation) or only reads
    (under READ COMMITTED a transaction gives reads no common snapshot anyway): no BEGIN and
    COMMIT/ROLLBACK round trips around it. The connection's statement timeout still applies.

    With the statement cache off (`DB_STATEMENT_CACHE_SIZE=0`, for PgBouncer's transaction
    pooling) the work runs in a transaction instead: asyncpg prepares and executes a statement in
    two exchanges, and outside a transaction PgBouncer may hand the second one to another server
    connection, which does not know the statement ("prepared statement ... does not exist").
    """
    async with engine.connect() as connection:
        if engine.get_execution_options().get(POOLER_OPTION):
            async with connection.begin():
                yield connection
            return
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        yield connection


async def connection_of(db: AsyncSession | AsyncConnection) -> AsyncConnection:
    """The connection to run a prebuilt statement on: a session's (in its transaction) or the one given."""
    return await db.connection() if isinstance(db, AsyncSession) else db
