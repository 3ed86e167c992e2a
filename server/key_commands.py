"""`headwater key create|list|revoke`: API keys, managed on the database directly (like
`headwater db upgrade`), so they work before any server runs and need no key themselves.

Running servers pick changes up within HEADWATER_API_KEY_CACHE_SECONDS (5 s), no restart.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, Awaitable, Callable

from headwater.server.domain import api_keys
from headwater.server.domain.errors import DomainError
from headwater.server.settings import Settings


def add_key_commands(commands: argparse._SubParsersAction, database_flags: Callable) -> None:
    key = commands.add_parser("key", help="create, list and revoke API keys")
    actions = key.add_subparsers(dest="key_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key and print it (once: it is not stored)")
    create.add_argument("name", help="a unique name for the key (who or what uses it)")
    # argparse refuses any other role with exit code 2 and the list of choices.
    create.add_argument("--role", required=True, choices=api_keys.ROLES,
                        help="read: queries only; run: agents and flow runs; admin: everything")
    create.set_defaults(handler=cmd_key_create)
    listing = actions.add_parser("list", help="list keys (never the keys themselves)")
    listing.set_defaults(handler=cmd_key_list)
    revoke = actions.add_parser("revoke", help="revoke a key; servers refuse it within seconds")
    revoke.add_argument("name", help="the name the key was created with")
    revoke.set_defaults(handler=cmd_key_revoke)
    for parser in (create, listing, revoke):
        database_flags(parser)


def _on_database(settings: Settings, work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `work(session)` in one transaction, on the configured (or embedded) database."""
    from headwater.server.cli import database
    from headwater.server.db import migrate
    from headwater.server.db.engine import create_engine, create_sessionmaker, transaction

    async def run(url: str) -> Any:
        engine = create_engine(url, pool_size=1)
        try:
            if settings.migrate_on_start:
                await migrate.upgrade(engine)
            async with transaction(create_sessionmaker(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    with database(settings) as ready:
        return asyncio.run(run(ready.database_url or ""))


def _fail(exc: DomainError) -> int:
    print(f"headwater: {exc.message}", file=sys.stderr)
    return 1


def cmd_key_create(settings: Settings, args: argparse.Namespace) -> int:
    try:
        info, key = _on_database(settings, lambda s: api_keys.create_key(s, args.name, args.role))
    except DomainError as exc:
        return _fail(exc)
    print(f"Created API key {info.name!r} with role {info.role!r}. It is shown only now; store it safely:")
    print(key)
    return 0


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value is not None else "-"


def cmd_key_list(settings: Settings, args: argparse.Namespace) -> int:
    from headwater.client.commands import format_table

    keys = _on_database(settings, api_keys.list_keys)
    rows = [
        {"name": k.name, "role": k.role, "prefix": k.prefix + "…", "created": _when(k.created),
         "last_used": _when(k.last_used), "revoked": _when(k.revoked)}
        for k in keys
    ]
    columns = [("NAME", "name"), ("ROLE", "role"), ("PREFIX", "prefix"), ("CREATED", "created"),
               ("LAST USED", "last_used"), ("REVOKED", "revoked")]
    if rows:
        print(format_table(rows, columns))
    elif settings.api_key:
        print("No API keys in the database; HEADWATER_API_KEY is set and acts as an admin key.")
    else:
        print("No API keys: the server accepts requests without one.")
    return 0


def cmd_key_revoke(settings: Settings, args: argparse.Namespace) -> int:
    try:
        info = _on_database(settings, lambda s: api_keys.revoke_key(s, args.name))
    except DomainError as exc:
        return _fail(exc)
    print(f"Revoked API key {info.name!r}; servers refuse it within {settings.api_key_cache_seconds:g} s.")
    return 0
