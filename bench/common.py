"""Shared set-up for the benchmarks: a database (embedded unless HEADWATER_BENCH_DATABASE_URL is set;
never the server's DATABASE_URL, since a benchmark writes many rows)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def database_url() -> Iterator[str]:
    url = os.environ.get("HEADWATER_BENCH_DATABASE_URL")
    if url:
        yield url
        return
    from headwater.server.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="headwater-bench-")))
    try:
        yield server.url
    finally:
        server.stop()
