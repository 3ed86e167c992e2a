"""The embedded Postgres: a real Postgres server (pgserver) in the data folder, for zero set-up.

Started once by the CLI (not per worker) when no database URL is configured, and stopped when
the process exits. pgserver listens on a Unix socket inside the data folder only, so nothing is
exposed on the network, and several headwater processes on the same folder share one server.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

logger = logging.getLogger("headwater.embedded")


class EmbeddedPostgres:
    """A handle on the embedded server; `url` is ready to use once constructed."""

    def __init__(self, data_dir: Path):
        # pgserver keeps its lock file in the user runtime dir; without XDG_RUNTIME_DIR
        # (containers, CI) platformdirs warns and falls back to /tmp, which is fine.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver  # imported here: only the embedded mode needs it

        self.pgdata = Path(data_dir).expanduser().resolve() / "postgres"
        self.pgdata.mkdir(parents=True, exist_ok=True)
        logger.info("starting embedded Postgres in %s", self.pgdata)
        self._server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
        self.url: str = self._server.get_uri()

    def stop(self) -> None:
        """Stop the server if this is the last process using it (pgserver counts handles)."""
        self._server.cleanup()
