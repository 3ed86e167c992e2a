"""The GraphQL HTTP endpoint: POST a query, get `{data, errors}` back as HTTP 200 (503 only
when the database is unreachable, so the request can be retried).

Written directly on Starlette rather than through Strawberry's view because the Prefect 1.x
client needs things that view refuses: `variables` sent as a JSON-encoded *string*, business
errors as HTTP 200 (a 5xx makes the client resend mutations), and no stack traces.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from server.graphql.context import Context
from server.graphql.errors import DATABASE_UNAVAILABLE, format_error, request_error

logger = logging.getLogger("headwater.http")


class RequestTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing to buffer more than `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def authorized(header: str | None, api_key: str) -> bool:
    """`Authorization: Bearer <key>`, compared in constant time."""
    scheme, _, token = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), api_key.encode())


def parse_payload(body: bytes) -> tuple[str, dict[str, Any] | None, str | None]:
    """(query, variables, operation name) from a JSON body; raises ValueError with a reason."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise ValueError("The request body is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise ValueError("The request body must be a JSON object with a `query`.")
    query = payload.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ValueError("The request has no `query` string.")
    variables = payload.get("variables")
    if isinstance(variables, str):
        # The Prefect 1.x client sends json.dumps(variables), "null" included.
        try:
            variables = json.loads(variables) if variables.strip() else None
        except ValueError:
            raise ValueError("`variables` is a string but not valid JSON.") from None
    if variables is not None and not isinstance(variables, dict):
        raise ValueError("`variables` must be a JSON object.")
    operation_name = payload.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise ValueError("`operationName` must be a string.")
    return query, variables, operation_name


class GraphQLEndpoint:
    """A Starlette request handler (`handle`) bound to one schema."""

    def __init__(self, schema: Any, graphiql_html: str | None = None):
        self.schema = schema
        self.graphiql_html = graphiql_html

    async def handle(self, request: Request) -> Response:
        state = request.app.state
        if request.method == "GET":
            if self.graphiql_html is None:
                return JSONResponse(request_error("Send GraphQL queries with POST."), status_code=405)
            return HTMLResponse(self.graphiql_html)
        settings = state.settings
        try:
            body = await read_body(request, settings.max_request_bytes)
        except RequestTooLarge:
            return JSONResponse(
                request_error(
                    f"The request exceeds the server's limit of {settings.max_request_bytes} bytes "
                    "(HEADWATER_MAX_REQUEST_BYTES).",
                    "PAYLOAD_TOO_LARGE",
                )
            )
        try:
            query, variables, operation_name = parse_payload(body)
        except ValueError as exc:
            return JSONResponse(request_error(str(exc)))
        if settings.api_key and not authorized(request.headers.get("authorization"), settings.api_key):
            # The Prefect client recognises UNAUTHENTICATED and raises its AuthorizationError.
            return JSONResponse(request_error("Unauthenticated: a valid API key is required.", "UNAUTHENTICATED"))

        context = Context(
            sessions=state.sessions,
            settings=settings,
            headers={k.lower(): v for k, v in request.headers.items()},
            raw_variables=variables or {},
        )
        result = await self.schema.execute(
            query, variable_values=variables, context_value=context, operation_name=operation_name
        )
        response: dict[str, Any] = {"data": result.data}
        status = 200
        if result.errors:
            response["errors"] = [
                format_error(error, operation_name, settings.statement_timeout_seconds) for error in result.errors
            ]
            if any(e["extensions"]["code"] == DATABASE_UNAVAILABLE for e in response["errors"]):
                # Not the request's fault and nothing was applied: 503 lets load balancers and
                # the Prefect client (which retries 5xx with backoff) try again.
                status = 503
        return JSONResponse(response, status_code=status)
