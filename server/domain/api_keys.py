"""API keys: named keys with a role, stored as a SHA-256 of the key, never the key itself.

A key is `hw_` followed by 43 random url-safe characters (`secrets.token_urlsafe(32)`, 256
bits). Keys that random need no slow password hash: SHA-256 cannot be reversed and guessing is
hopeless, so a lookup by hash is both safe and one index probe. The plaintext is returned once,
by `create_key`; afterwards only its `prefix` (the first characters) identifies it in listings.

Authentication runs on every request (heartbeats arrive by the hundred per second), so
`KeyCache` remembers each hash's answer for a few seconds: a revoked key stops working, in every
replica, at most `ttl` seconds after `revoke_key`, without a restart.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from headwater.server.db.engine import transaction
from headwater.server.db.models import API_KEY_ROLES, ApiKey
from headwater.server.domain.errors import Conflict, InvalidInput, NotFound

ROLES = API_KEY_ROLES
ADMIN = "admin"
KEY_PREFIX = "hw_"
# How much of a key listings show: `hw_` and 8 random characters (48 of its 256 bits).
DISPLAY_PREFIX_LENGTH = len(KEY_PREFIX) + 8
# `last_used` is written at most this often per key and process: a write per heartbeat would
# turn every request into an UPDATE of the same row.
LAST_USED_PRECISION = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key's name (None for the HEADWATER_API_KEY setting or an open server)."""

    name: str | None
    role: str


@dataclass(frozen=True)
class KeyInfo:
    """A key as listed: everything but the secret."""

    name: str
    role: str
    prefix: str
    created: dt.datetime
    last_used: dt.datetime | None
    revoked: dt.datetime | None


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.name, row.role, row.prefix, row.created, row.last_used, row.revoked)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"Unknown role {role!r}; a key's role is one of: {', '.join(ROLES)}.")
    return role


async def create_key(session: AsyncSession, name: str, role: str) -> tuple[KeyInfo, str]:
    """A new key: its listing and its plaintext, which is not stored and cannot be shown again."""
    name = name.strip()
    if not name:
        raise InvalidInput("An API key needs a name.")
    check_role(role)
    if await session.scalar(select(exists().where(ApiKey.name == name))):
        raise Conflict(f"An API key named {name!r} already exists.")
    key = generate_key()
    row = ApiKey(name=name, role=role, key_hash=hash_key(key), prefix=key[:DISPLAY_PREFIX_LENGTH])
    session.add(row)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        # A concurrent `key create` with the same name won the race.
        raise Conflict(f"An API key named {name!r} already exists.") from None
    await session.refresh(row)
    return _info(row), key


async def list_keys(session: AsyncSession) -> list[KeyInfo]:
    rows = await session.scalars(select(ApiKey).order_by(ApiKey.created, ApiKey.name))
    return [_info(row) for row in rows]


async def revoke_key(session: AsyncSession, name: str) -> KeyInfo:
    """Revoke a key for good. The row stays (for the listing), so revoking the last key does not
    open the server again: a server with keys, revoked or not, always asks for one."""
    row = await session.scalar(select(ApiKey).where(ApiKey.name == name).with_for_update())
    if row is None:
        raise NotFound(f"No API key named {name!r}.")
    if row.revoked is None:
        row.revoked = dt.datetime.now(dt.timezone.utc)
        await session.flush()
    return _info(row)


async def keys_exist(session: AsyncSession) -> bool:
    """Whether any key was ever created (revoked ones count): until then the server is open."""
    return bool(await session.scalar(select(exists().where(ApiKey.id.is_not(None)))))


async def authenticate(session: AsyncSession, token: str) -> Principal | None:
    """The caller behind `token`, or None for an unknown or revoked key. Uncached: see KeyCache."""
    digest = hash_key(token)
    row = (
        await session.execute(
            select(ApiKey.id, ApiKey.name, ApiKey.role, ApiKey.key_hash, ApiKey.revoked, ApiKey.last_used)
            .where(ApiKey.key_hash == digest)
        )
    ).first()
    # The index finds the row by hash; comparing the hashes again in constant time keeps any
    # timing difference away from the secret side.
    if row is None or not hmac.compare_digest(row.key_hash, digest) or row.revoked is not None:
        return None
    now = dt.datetime.now(dt.timezone.utc)
    if row.last_used is None or now - row.last_used >= LAST_USED_PRECISION:
        await session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used=now))
    return Principal(row.name, row.role)


class KeyCache:
    """Answers `authenticate` from memory for `ttl` seconds per key (and caches whether any key
    exists): a revocation or a first key takes effect within `ttl` seconds in every process.

    Unknown keys are cached too, so a flood of wrong keys does not become a flood of queries;
    the cache is cleared when it reaches `max_entries`, which bounds its memory. When an entry
    expires under load, the requests that find it expired share one lookup.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._answers: dict[str, tuple[float, Any]] = {}
        self._pending: dict[str, asyncio.Future[Any]] = {}

    async def _cached(self, key: str, load: Callable[[], Awaitable[tuple[Any, float]]]) -> Any:
        cached = self._answers.get(key)
        if cached is not None and cached[0] > self.clock():
            return cached[1]
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._load(key, load))
            self._pending[key] = pending
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        # Shielded: one caller going away must not cancel the lookup the others wait for.
        return await asyncio.shield(pending)

    async def _load(self, key: str, load: Callable[[], Awaitable[tuple[Any, float]]]) -> Any:
        answer, ttl = await load()
        if len(self._answers) >= self.max_entries:
            self._answers.clear()
        self._answers[key] = (self.clock() + ttl, answer)
        return answer

    async def keys_exist(self, sessions: async_sessionmaker[AsyncSession]) -> bool:
        async def load() -> tuple[bool, float]:
            async with transaction(sessions) as session:
                answer = await keys_exist(session)
            # No key yet: look again sooner, so a first key closes the server quickly.
            return answer, self.ttl if answer else min(self.ttl, 1.0)

        return await self._cached("exist", load)

    async def authenticate(self, sessions: async_sessionmaker[AsyncSession], token: str) -> Principal | None:
        async def load() -> tuple[Principal | None, float]:
            async with transaction(sessions) as session:
                return await authenticate(session, token), self.ttl

        # Hex digests never equal "exist", the other key of the same map.
        return await self._cached(hash_key(token), load)
