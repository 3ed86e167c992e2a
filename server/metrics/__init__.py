"""Prometheus metrics at `GET /metrics` (prometheus-client's text format).

- `families`: every metric headwater records, defined once at import.
- `operations`: the bounded `operation` label of a GraphQL request.
- `pool`: the database pool's connections in use and waiting, sampled off the request path.
- `run_counts`: flow runs by state and the queue depth, read from the database on scrape.
- `workers`: prometheus-client's multiprocess mode, so one scrape sums every `--workers` process.
- `endpoint`: the route, behind the API key's `read` role.

With several workers, `headwater start` sets PROMETHEUS_MULTIPROC_DIR to a fresh folder before
the workers start (prometheus-client picks its storage at import), and removes it on exit.
"""
