"""Every metric headwater records, defined once at import (prometheus-client's default registry).

In multiprocess mode (PROMETHEUS_MULTIPROC_DIR set, see `workers`) each process writes its
values to its own files and a scrape sums them; the pool gauges are `livesum`, so a worker that
has exited stops counting. The database-derived gauges are not here: they are computed by the
scraped process alone (`run_counts`), so no worker can count them twice.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# A hot request takes a few milliseconds; a slow read or a big registration seconds.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PASS_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

GRAPHQL_REQUEST_SECONDS = Histogram(
    "headwater_graphql_request_duration_seconds",
    "GraphQL operations executed (parse, validation and execution), by operation type and name",
    ("type", "operation"),
    buckets=REQUEST_BUCKETS,
)
GRAPHQL_ERRORS = Counter(
    "headwater_graphql_errors",
    "Errors in GraphQL answers, by the error's extensions.code",
    ("type", "operation", "code"),
)
HTTP_REQUESTS = Counter(
    "headwater_http_requests",
    "HTTP requests answered, by route and status",
    ("route", "status"),
)

DB_POOL_SIZE = Gauge(
    "headwater_db_pool_size", "Database connections the pool may hold (HEADWATER_DB_POOL_SIZE per process)",
    multiprocess_mode="livesum",
)
DB_POOL_IN_USE = Gauge(
    "headwater_db_pool_connections_in_use", "Database connections checked out of the pool",
    multiprocess_mode="livesum",
)
DB_POOL_OPEN = Gauge(
    "headwater_db_pool_connections_open", "Database connections open (in use or idle in the pool)",
    multiprocess_mode="livesum",
)
DB_POOL_WAITING = Gauge(
    "headwater_db_pool_waiting",
    "Requests waiting for a database connection (the most at once since the previous sample, every second)",
    multiprocess_mode="livesum",
)

SERVICE_PASS_SECONDS = Histogram(
    "headwater_service_pass_duration_seconds", "Passes of each loop service, by duration",
    ("service",), buckets=PASS_BUCKETS,
)
SERVICE_PASSES = Counter("headwater_service_passes", "Passes of each loop service, failed ones included", ("service",))
SERVICE_ITEMS = Counter(
    "headwater_service_items", "Items the loop service's passes handled (runs scheduled, zombies failed, ...)",
    ("service",),
)
SERVICE_ERRORS = Counter("headwater_service_errors", "Loop service passes that failed", ("service",))
