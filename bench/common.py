"""Shared set-up for the benchmarks: a migrated database (embedded unless DATABASE_URL is set)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def database_url() -> Iterator[str]:
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    from headwater.server.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="headwater-bench-")))
    try:
        yield server.url
    finally:
        server.stop()
