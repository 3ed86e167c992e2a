"""The GraphQL HTTP endpoint: POST a query, get `{data, errors}` back as HTTP 200 (503 only
when the database is unreachable, so the request can be retried). A POST of a JSON array of
operations (the web UI's Apollo batch link) gets an array of results in the same order.

Written directly on Starlette rather than through Strawberry's view because the Prefect 1.x
client needs things that view refuses: `variables` sent as a JSON-encoded *string*, business
errors as HTTP 200 (a 5xx makes the client resend mutations), and no stack traces.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Mapping

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from headwater.server.domain.api_keys import Principal
from headwater.server.graphql.authentication import Refused, authenticate
from headwater.server.graphql.context import Context
from headwater.server.graphql.errors import DATABASE_UNAVAILABLE, format_error, request_error
from headwater.server.graphql.json_depth import json_depth
from headwater.server.metrics.requests import record_request

logger = logging.getLogger("headwater.http")


# GraphQL-over-HTTP request types. Anything else (text/plain, forms) is what a browser sends
# cross-site without asking first, so it is refused before the body is read.
REQUEST_MEDIA_TYPES = frozenset({"application/json", "application/graphql+json"})
# How much of a refused body is read and dropped so that a client still sending it (the Prefect
# client sends the whole body before reading) gets the answer rather than a connection reset.
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024


class RequestTooLarge(Exception):
    def __init__(self, read: int, finished: bool):
        super().__init__(read, finished)
        self.read = read  # bytes received before giving up
        self.finished = finished  # the body's last chunk was among them


def _declared_length(request: Request) -> int | None:
    declared = request.headers.get("content-length")
    return int(declared) if declared and declared.isdigit() else None


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing to buffer more than `limit` bytes."""
    declared = _declared_length(request)
    if declared is not None and declared > limit:
        raise RequestTooLarge(0, finished=False)
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        more = message.get("more_body", False)
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(size, finished=not more)
        chunks.append(chunk)
    return b"".join(chunks)


async def discard_body(request: Request, read: int = 0) -> bool:
    """Read and drop the rest of a body we will not use (up to DRAIN_LIMIT_BYTES), so the answer
    reaches a client that is still sending. True when the whole body was read."""
    if read == 0 and request.headers.get("expect", "").lower() == "100-continue":
        return False  # the client waits for our answer before sending anything
    declared = _declared_length(request)
    if declared is not None and declared > DRAIN_LIMIT_BYTES:
        return False
    size = read
    while size <= DRAIN_LIMIT_BYTES:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return False
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            return True
    return False


async def refuse(
    request: Request, body: dict, status: int = 200, read: int = 0, finished: bool = False
) -> Response:
    """An answer to a request whose body is not used; the connection closes if it was not all read."""
    if not finished and not await discard_body(request, read):
        return JSONResponse(body, status_code=status, headers={"connection": "close"})
    return JSONResponse(body, status_code=status)


def json_media_type(content_type: str | None) -> bool:
    """Whether a Content-Type is one GraphQL is accepted as (parameters such as charset ignored)."""
    return (content_type or "").partition(";")[0].strip().lower() in REQUEST_MEDIA_TYPES


def too_deep(depth: int, limit: int) -> str:
    return f"The request's JSON is nested {depth} levels deep; the limit is {limit} (HEADWATER_MAX_JSON_DEPTH)."


def decode_body(body: bytes, max_depth: int = 64) -> Any:
    """The request's JSON, its nesting checked before it is decoded; raises ValueError with a reason."""
    depth = json_depth(body, max_depth)
    if depth > max_depth:
        raise ValueError(too_deep(depth, max_depth))
    try:
        return json.loads(body)
    except RecursionError:  # not reachable after the depth check; kept so it can never be a 500
        raise ValueError(too_deep(depth, max_depth)) from None
    except ValueError:
        raise ValueError("The request body is not valid JSON.") from None


def parse_operation(
    payload: Any, max_depth: int = 64, level: int = 1
) -> tuple[str, dict[str, Any] | None, str | None]:
    """(query, variables, operation name) of one operation object found `level` levels deep in
    the body (1 alone, 2 inside a batch); raises ValueError with a reason."""
    if not isinstance(payload, dict):
        raise ValueError("The request body must be a JSON object with a `query` (or an array of them).")
    query = payload.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ValueError("The request has no `query` string.")
    variables = payload.get("variables")
    if isinstance(variables, str):
        # The Prefect 1.x client sends json.dumps(variables), "null" included. It sits `level`
        # levels inside the body, so its own nesting counts that much more.
        depth = json_depth(variables, max_depth - level)
        if depth + level > max_depth:
            raise ValueError(too_deep(depth + level, max_depth))
        try:
            variables = json.loads(variables) if variables.strip() else None
        except RecursionError:
            raise ValueError(too_deep(depth + level, max_depth)) from None
        except ValueError:
            raise ValueError("`variables` is a string but not valid JSON.") from None
    if variables is not None and not isinstance(variables, dict):
        raise ValueError("`variables` must be a JSON object.")
    operation_name = payload.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise ValueError("`operationName` must be a string.")
    return query, variables, operation_name


def parse_payload(body: bytes, max_depth: int = 64) -> tuple[str, dict[str, Any] | None, str | None]:
    """(query, variables, operation name) from a JSON body holding one operation."""
    return parse_operation(decode_body(body, max_depth), max_depth)


# What a batch answers for its operations after the database became unreachable in it: they
# are not run (each would wait for a connection), and say so with the outage's code.
NOT_RUN = "Not run: the database became unavailable earlier in this batch; nothing of this operation was applied."


class GraphQLEndpoint:
    """A Starlette request handler (`handle`) bound to one schema."""

    def __init__(self, schema: Any):
        self.schema = schema

    async def handle(self, request: Request) -> Response:
        state = request.app.state
        if request.method != "POST":
            return JSONResponse(request_error(
                "Send GraphQL queries with POST; the interactive API (GraphiQL) is at /api."), status_code=405)
        settings = state.settings
        # The caller is known before anything of the body is read or parsed.
        try:
            principal = await authenticate(request, state)
        except Refused as refused:
            if not await discard_body(request):
                refused.response.headers["connection"] = "close"
            return refused.response
        content_type = request.headers.get("content-type")
        if not json_media_type(content_type):
            sent = repr(content_type) if content_type else "none"
            return await refuse(request, request_error(
                f"GraphQL requests must be sent with Content-Type: application/json (this one had {sent}). "
                "(Other types are what a web page can send to any server without asking, so they are refused.)",
                "UNSUPPORTED_MEDIA_TYPE",
            ), status=415)
        try:
            body = await read_body(request, settings.max_request_bytes)
        except RequestTooLarge as exc:
            return await refuse(request, request_error(
                f"The request exceeds the server's limit of {settings.max_request_bytes} bytes "
                "(HEADWATER_MAX_REQUEST_BYTES).",
                "PAYLOAD_TOO_LARGE",
            ), read=exc.read, finished=exc.finished)
        try:
            payload = decode_body(body, settings.max_json_depth)
        except ValueError as exc:
            return JSONResponse(request_error(str(exc)))
        if isinstance(payload, list):
            return await self.batch(request, principal, payload)
        try:
            operation = parse_operation(payload, settings.max_json_depth)
        except ValueError as exc:
            return JSONResponse(request_error(str(exc)))
        response, status = await execute(self.schema, state, principal, *operation, request.headers)
        return JSONResponse(response, status_code=status)

    async def batch(self, request: Request, principal: Principal | None, payload: list[Any]) -> Response:
        """Apollo's batch link: an array of operations, answered by an array of results in the
        same order. They run one after another, each with its own limits and role check
        (the caller was authenticated once, for the request). One that cannot be parsed gets
        its error in its place; the others still run. After an operation meets a database
        outage the rest are not run; the answer is 503 only when no operation ran at all (the
        outage hit the first), so retrying the whole batch is always safe."""
        settings = request.app.state.settings
        if not payload:
            return JSONResponse(request_error("The batch is empty: send at least one operation."))
        if len(payload) > settings.max_batch_operations:
            return JSONResponse(request_error(
                f"The batch has {len(payload)} operations; the limit is {settings.max_batch_operations} "
                "(HEADWATER_MAX_BATCH_OPERATIONS).", "TOO_MANY_OPERATIONS",
            ))
        results: list[dict[str, Any]] = []
        for item in payload:
            if results and _database_unavailable(results[-1]):
                results.append(request_error(NOT_RUN, DATABASE_UNAVAILABLE))
                continue
            try:
                operation = parse_operation(item, settings.max_json_depth, level=2)
            except ValueError as exc:
                results.append(request_error(str(exc)))
                continue
            response, _ = await execute(self.schema, request.app.state, principal, *operation, request.headers)
            results.append(response)
        nothing_ran = all(_database_unavailable(result) for result in results)
        return JSONResponse(results, status_code=503 if nothing_ran else 200)


async def execute(
    schema: Any,
    state: Any,
    principal: Principal,
    query: str,
    variables: dict[str, Any] | None,
    operation_name: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], int]:
    """Run one document as `principal` and return (the `{data, errors}` body, the HTTP status).

    The one way a document is executed: the HTTP endpoint and the web UI's server-rendered pages
    (headwater.server.ui) both call it, so a page can never do more than its caller's key allows.
    """
    settings = state.settings
    context = Context(
        sessions=state.sessions,
        settings=settings,
        headers={k.lower(): v for k, v in (headers or {}).items()},
        raw_variables=variables or {},
        principal=principal,
    )
    started = time.perf_counter()
    plans = getattr(state, "compiled_plans", None)
    lookup = plans.lookup(context, query, operation_name) if plans is not None and plans.schema is schema else None
    result = await plans.answer(lookup, context, variables) if lookup is not None and lookup.plan else None
    if result is None:
        try:
            result = await schema.execute(
                query, variable_values=variables, context_value=context, operation_name=operation_name
            )
        except RecursionError:
            # The depth checks should make this unreachable; if some input still recurses too deep,
            # the client gets a clear answer and the process a one-line warning, not a 500.
            logger.warning("request refused: recursion limit reached while executing %s", operation_name or "it")
            return request_error("The request is nested too deeply to be processed.", "BAD_REQUEST"), 200
        if lookup is not None and lookup.plan is False and not result.errors and result.data is not None:
            plans.learn(lookup, query, operation_name, context.operation)
    response: dict[str, Any] = {"data": result.data}
    status = 200
    if result.errors:
        response["errors"] = [
            format_error(error, operation_name, settings.statement_timeout_seconds) for error in result.errors
        ]
        if _database_unavailable(response):
            # Not the request's fault and nothing was applied: 503 lets load balancers and
            # the Prefect client (which retries 5xx with backoff) try again.
            status = 503
    if getattr(state, "metrics", None) is not None:
        record_request(context.operation, time.perf_counter() - started, response.get("errors"))
    return response, status


def _database_unavailable(response: dict[str, Any]) -> bool:
    return any(e.get("extensions", {}).get("code") == DATABASE_UNAVAILABLE for e in response.get("errors") or ())
