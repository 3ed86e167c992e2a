"""`GET /metrics`: Prometheus' text format, for any valid API key (the `read` role is enough).

Without keys configured the server is open and so is this route, like the API. The answer sums
every worker's values in multiprocess mode (`workers`), plus the database-derived gauges, which
only the answering process reports (`run_gauges`).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response

from headwater.server.graphql.authentication import Refused, authenticate, key_cache
from headwater.server.metrics.pool import PoolWatch
from headwater.server.metrics.run_gauges import RunGauges
from headwater.server.metrics.workers import folder, forget_dead_workers, forget_this_worker
from headwater.server.settings import Settings


class Metrics:
    """A process's metrics state: the pool sampler and the run-count cache (made by the lifespan)."""

    def __init__(self, settings: Settings, engine: AsyncEngine):
        self.pool = PoolWatch(engine)
        self.run_gauges = RunGauges(settings.database_url or "", statement_cache_size=settings.db_statement_cache_size)
        self.run_gauges_registry = CollectorRegistry(auto_describe=False)
        self.run_gauges_registry.register(self.run_gauges)

    def start(self) -> None:
        self.pool.start()

    async def stop(self) -> None:
        await self.pool.stop()
        await self.run_gauges.close()
        forget_this_worker()

    async def exposition(self) -> bytes:
        self.pool.sample()
        await self.run_gauges.refresh()
        path = folder()
        if path is None:
            registry: Any = REGISTRY
        else:
            forget_dead_workers(path)
            registry = CollectorRegistry(auto_describe=False)
            MultiProcessCollector(registry, path)
        return generate_latest(registry) + generate_latest(self.run_gauges_registry)


async def metrics_endpoint(request: Request) -> Response:
    state = request.app.state
    # The key check shares the API's cache but asks the database on the metrics' own connection,
    # so a scrape is answered while the request pool is exhausted.
    checker = SimpleNamespace(settings=state.settings, sessions=state.metrics.run_gauges.sessions(),
                              api_key_cache=key_cache(state))
    try:
        await authenticate(request, checker)
    except Refused as refused:
        response = refused.response
        if response.status_code == 200:  # an UNAUTHENTICATED GraphQL answer: a scraper needs a 401
            response.status_code = 401
            response.headers["www-authenticate"] = "Bearer"
        return response
    return Response(await state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
