"""Pages run GraphQL documents in-process, as the browser's key, through the same function the
HTTP endpoint uses (headwater.server.graphql.http.execute): no side door to the database."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from headwater.server.domain.api_keys import Principal
from headwater.server.graphql.authentication import Refused, authenticate
from headwater.server.graphql.http import execute
from headwater.server.graphql.schema import schema


class LoginRequired(Exception):
    """The server has API keys and this browser holds none (or a revoked one)."""


class ApiError(Exception):
    """The API answered with errors; `messages` are shown on the page as they are."""

    def __init__(self, messages: list[str], status: int = 200):
        super().__init__("; ".join(messages))
        self.messages = messages
        self.status = status


async def principal(request: Request) -> Principal:
    """Who the browser is, from its session cookie (once per request)."""
    known = getattr(request.state, "principal", None)
    if known is not None:
        return known
    try:
        found = await authenticate(request, request.app.state)
    except Refused as refused:
        if refused.response.status_code == 200:
            raise LoginRequired from None
        raise ApiError(["The database is unavailable; retry shortly."], status=503) from None
    request.state.principal = found
    return found


async def query(request: Request, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `data` of `document`, executed as the browser's key; raises ApiError on any error."""
    caller = await principal(request)
    body, status = await execute(schema, request.app.state, caller, document, variables, headers=request.headers)
    if body.get("errors"):
        raise ApiError([error["message"] for error in body["errors"]], status=status)
    return body["data"]
