"""Who is calling: the request's `Authorization: Bearer <key>` turned into a `Principal`.

Accepted keys: the `HEADWATER_API_KEY` setting (an admin key, compared in constant time) and
the keys in the `api_key` table (server/domain/api_keys.py, managed with `headwater key`).
A server with neither is open, as before keys existed: every request acts as admin. Once any key
exists (revoked ones included), every request needs a valid one.

Answers are cached per process for `HEADWATER_API_KEY_CACHE_SECONDS` (5 s): a new, revoked or
first key takes effect within that bound in every replica, without a restart.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from headwater.server.domain.api_keys import ADMIN, KEY_PREFIX, KeyCache, Principal
from headwater.server.graphql.errors import DATABASE_UNAVAILABLE, database_unreachable, request_error

logger = logging.getLogger("headwater.auth")

SETTING_KEY = Principal("HEADWATER_API_KEY", ADMIN)
OPEN = Principal(None, ADMIN)
# The web UI keeps the key a user typed in this browser-session cookie (HttpOnly, SameSite=Strict:
# headwater.server.ui.session); requests without an Authorization header are authenticated by it,
# so the UI's scripts post the same documents as any client without ever seeing the key.
SESSION_COOKIE = "headwater_key"
UNAUTHENTICATED_MESSAGE = (
    "Unauthenticated: this server needs a valid API key, and the request carried none, an unknown "
    "one or a revoked one. Send `Authorization: Bearer <key>` (the Prefect client sends "
    "PREFECT__CLOUD__API_KEY; the headwater client and CLI send HEADWATER_API_KEY)."
)


class Refused(Exception):
    """Authentication failed; `response` is the answer to send instead of running the request."""

    def __init__(self, response: Response):
        super().__init__("request refused")
        self.response = response


def bearer_token(header: str | None) -> str | None:
    scheme, _, token = (header or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def key_cache(state: Any) -> KeyCache:
    """The process's cache, made on first use (one per app, so tests never share one)."""
    cache = getattr(state, "api_key_cache", None)
    if cache is None:
        cache = state.api_key_cache = KeyCache(ttl=state.settings.api_key_cache_seconds)
    return cache


async def authenticate(request: Request, state: Any) -> Principal:
    """The caller, from the request headers alone (the body is not needed, nor read).

    Raises `Refused` with an UNAUTHENTICATED answer (HTTP 200, which the Prefect client turns
    into its AuthorizationError), or with a 503 when the database cannot be asked.
    """
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        token = request.cookies.get(SESSION_COOKIE) or None
    return await authenticate_key(token, state)


async def authenticate_key(token: str | None, state: Any) -> Principal:
    """The caller holding `token` (None: no key given); raises `Refused` as `authenticate` does."""
    settings = state.settings
    if settings.api_key and token is not None and hmac.compare_digest(token.encode(), settings.api_key.encode()):
        return SETTING_KEY
    cache = key_cache(state)
    try:
        if not settings.api_key and not await cache.keys_exist(state.sessions):
            return OPEN
        # Only generated keys can be in the table; anything else needs no query.
        principal = await cache.authenticate(state.sessions, token) if token and token.startswith(KEY_PREFIX) else None
    except Exception as exc:
        if not database_unreachable(exc):
            raise
        logger.warning("cannot check the API key, database unavailable: %s", exc)
        raise Refused(JSONResponse(
            request_error("The database is unavailable; nothing was changed. Retry shortly.", DATABASE_UNAVAILABLE),
            status_code=503,
        )) from None
    if principal is None:
        raise Refused(JSONResponse(request_error(UNAUTHENTICATED_MESSAGE, "UNAUTHENTICATED")))
    return principal
