"""The per-request context every resolver receives as `info.context`."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Mapping

import strawberry
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from headwater.server.db.engine import autocommit, transaction
from headwater.server.domain.api_keys import Principal
from headwater.server.settings import Settings


@dataclass
class Context:
    sessions: async_sessionmaker[AsyncSession]
    settings: Settings
    # Request headers, lower-cased names (the Prefect client sends X-PREFECT-* headers).
    headers: Mapping[str, str] = field(default_factory=dict)
    # The variables as sent: JSON key order kept (the read layer honours it in `order_by`).
    raw_variables: Mapping[str, Any] = field(default_factory=dict)
    # Who is calling (server/graphql/authentication.py); its role limits the mutations it may
    # run (server/graphql/authorization.py). None: an in-process caller, not limited.
    principal: Principal | None = None
    # (type, operation) labels for /metrics, set once the document is parsed (server/metrics/operations.py).
    operation: tuple[str, str] | None = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """Each mutation is one transaction: a failure leaves no partial rows."""
        async with transaction(self.sessions) as session:
            yield session

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection outside any transaction, for a mutation that is one statement or a read."""
        async with autocommit(self.sessions.kw["bind"]) as connection:
            yield connection

    @property
    def agent_id(self) -> str | None:
        return self.headers.get("x-prefect-agent-id") or None

    @property
    def core_version(self) -> str | None:
        return self.headers.get("x-prefect-core-version") or None


Info = strawberry.Info[Context, None]
