"""The ASGI application: routes, and a lifespan that owns the database and the services.

    route (POST / or /graphql) -> resolver (headwater.server.graphql) -> domain function (headwater.server.domain) -> db

`create_app(settings)` is the factory; `uvicorn --factory headwater.server.app:create_app_from_env`
builds one from the environment (that is what `headwater start` runs in each worker).
"""

from __future__ import annotations

import gc
import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from headwater.server import __version__
from headwater.server.db import migrate
from headwater.server.db.engine import create_engine, create_sessionmaker, transaction
from headwater.server.domain.tenants import ensure_default_tenant
from headwater.server.health import DatabaseProbe
from headwater.server.graphql.compiled import CompiledPlans
from headwater.server.graphql.http import GraphQLEndpoint
from headwater.server.graphql.schema import schema
from headwater.server.http_guard import HttpGuard, parse_cors_origins
from headwater.server.prefect_ui import PrefectUI
from headwater.server.settings import Settings
from headwater.server.ui.routes import ui_routes

logger = logging.getLogger("headwater")

# Allocations between gen-0 collections once the app has started (Python's default is 700).
GC_GEN0_THRESHOLD = 20_000


_heap_settled = False


def settle_heap() -> None:
    """Once per process, at the end of the app's start: collect, then freeze what survives.

    The schema, mappers and modules built at start live as long as the process: moved out of
    the collector's full passes, which otherwise walk them all and, after one big request,
    paused the event loop for ~200 ms. A heap already frozen by `headwater start`'s import
    (server/cli.py) is left frozen; this then walks only what the start added to it.
    """
    global _heap_settled
    if _heap_settled:
        return
    _heap_settled = True
    gc.collect()
    gc.freeze()
    # A request allocates a few thousand objects, so the default gen-0 threshold (700)
    # ran a collection every request or two; most of it is freed by reference counting.
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])


def create_app(settings: Settings) -> Starlette:
    if not settings.database_url:
        raise ValueError("create_app needs settings.database_url (the CLI starts the embedded Postgres).")
    parse_cors_origins(settings.cors_origins)  # a bad HEADWATER_CORS_ORIGINS stops the start, clearly

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = create_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            statement_timeout_seconds=settings.statement_timeout_seconds,
            statement_cache_size=settings.db_statement_cache_size,
        )
        app.state.engine = engine
        app.state.sessions = create_sessionmaker(engine)
        app.state.settings = settings
        app.state.compiled_plans = (
            CompiledPlans(schema, settings.max_query_tokens) if settings.compiled_plans else None
        )
        if settings.migrate_on_start:
            await migrate.upgrade_at_start(engine)  # Alembic, when needed, in a child process
        async with transaction(app.state.sessions) as session:
            await ensure_default_tenant(session)
        app.state.database_probe = DatabaseProbe(
            settings.database_url, request_engine=engine, embedded=settings.database_embedded,
            grace_seconds=settings.health_grace_seconds,
        )
        await app.state.database_probe.start()
        app.state.metrics = None
        if settings.metrics_enabled:
            from headwater.server.metrics.endpoint import Metrics

            app.state.metrics = Metrics(settings, engine)
            app.state.metrics.start()
        runner = None
        if settings.services_enabled:
            from headwater.services.runner import ServiceRunner, build_services

            runner = ServiceRunner(build_services(settings, app.state.sessions))
            await runner.start()
        settle_heap()
        # "ready" is logged by the CLI once the socket is bound (server/serving.py), not here.
        logger.debug("headwater %s application started", __version__)
        try:
            yield
        finally:
            if runner is not None:
                await runner.stop()
            await app.state.database_probe.stop()
            if app.state.metrics is not None:
                await app.state.metrics.stop()
            await engine.dispose()

    endpoint = GraphQLEndpoint(schema)
    prefect_ui = PrefectUI(settings.ui_dir) if settings.ui_dir is not None else None
    routes = [
        Route("/", endpoint.handle if prefect_ui is None else ui_or_graphql(prefect_ui, endpoint),
              methods=["POST"] if prefect_ui is None else ["GET", "POST"]),
        Route("/graphql", endpoint.handle, methods=["POST"]),
        Route("/graphql/", endpoint.handle, methods=["GET", "POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
    ]
    middleware = []
    if settings.metrics_enabled:
        from headwater.server.metrics.endpoint import metrics_endpoint
        from headwater.server.metrics.responses import ResponseCounter

        routes.append(Route("/metrics", metrics_endpoint, methods=["GET"]))
        middleware.append(Middleware(ResponseCounter))
    if prefect_ui is None:
        # headwater's web UI (GET / for browsers, /api, /<tenant>/...): headwater.server.ui.
        routes += ui_routes()
    else:
        # A built Prefect 1 UI owns the pages (server/prefect_ui.py): after the API's routes and
        # headwater's GraphiQL at /api, every other GET is the Prefect UI's.
        routes += [*ui_routes(with_pages=False),
                   Route("/settings.json", prefect_ui.settings_json, methods=["GET"]),
                   Route("/{path:path}", prefect_ui.page, methods=["GET"])]
    # Foreign Host and Origin headers are refused before routing (DNS rebinding, cross-site posts).
    guard = Middleware(HttpGuard, settings=settings)
    return Starlette(routes=routes, lifespan=lifespan, middleware=[*middleware, guard])


def ui_or_graphql(ui: PrefectUI, endpoint: GraphQLEndpoint):  # noqa: ANN201
    """`/` with `--ui-dir`: a browser asking for a page gets the UI; GraphQL (and the console) the rest."""

    async def handle(request: Request) -> Response:
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            return await ui.page(request)
        return await endpoint.handle(request)

    return handle


async def health(request: Request) -> JSONResponse:
    """The process can do its job (liveness), from the background probe's last answer: see server/health.py."""
    status, body = request.app.state.database_probe.health()
    return JSONResponse({**body, "version": __version__}, status_code=status)


async def ready(request: Request) -> JSONResponse:
    """The database answers (readiness): 503 while it does not, so a load balancer skips us."""
    try:
        async with request.app.state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        logger.warning("readiness check failed: %s", exc)
        return JSONResponse({"status": "unavailable", "reason": "database unreachable"}, status_code=503)
    return JSONResponse({"status": "ready", "version": __version__})


def create_app_from_env() -> Starlette:
    """Factory for uvicorn workers: settings come from HEADWATER_* (the CLI exports them)."""
    return create_app(Settings.from_env())
