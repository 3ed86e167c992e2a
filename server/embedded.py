"""The embedded Postgres: a real Postgres server (pgserver) in the data folder, for zero set-up.

Started once by the CLI (not per worker) when no database URL is configured, and stopped when
the process exits. pgserver listens on a Unix socket inside the data folder only, so nothing is
exposed on the network, and several headwater processes on the same folder share one server.
If the postmaster dies, `restart()` starts it again on the same data folder and socket, so the
URL every worker holds stays valid (server/embedded_supervisor.py decides when).
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

logger = logging.getLogger("headwater.embedded")

# How much longer than pgserver's own 10 s a first start may take (a loaded machine, slow disk).
SLOW_START_SECONDS = 60.0


class EmbeddedPostgres:
    """A handle on the embedded server; `url` is ready to use once constructed."""

    def __init__(self, data_dir: Path):
        # pgserver keeps its lock file in the user runtime dir; without XDG_RUNTIME_DIR
        # (containers, CI) platformdirs warns and falls back to /tmp, which is fine.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver  # imported here: only the embedded mode needs it

        self.pgdata = Path(data_dir).expanduser().resolve() / "postgres"
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if not (self.pgdata / "PG_VERSION").exists():
            logger.info("initialising the embedded Postgres in %s (first start, a few seconds)", self.pgdata)
        else:
            logger.info("starting embedded Postgres in %s", self.pgdata)
        prune_dead_handles(self.pgdata)
        try:
            self._server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
        except subprocess.TimeoutExpired:
            self._server = self._take_over_slow_start()
        # Kept so a restart listens on the very same socket (the URL names its folder).
        self.socket_dir = self._server.get_postmaster_info().socket_dir
        self.url: str = socket_url(self.socket_dir) if self.socket_dir else self._server.get_uri()

    def _take_over_slow_start(self, timeout: float | None = None) -> Any:
        """pgserver gives `pg_ctl -w start` 10 s, then kills pg_ctl; the postmaster it started
        lives on, and on a loaded machine it may be ready just after. Wait for it to be ready,
        then take it over as pgserver does a running server; raise if it never gets there."""
        import atexit

        from pgserver.postgres_server import PostgresServer
        from pgserver.utils import PostmasterInfo

        timeout = SLOW_START_SECONDS if timeout is None else timeout
        logger.warning("the embedded Postgres is not ready after pgserver's 10 s; waiting up to %g s more", timeout)
        failed = PostgresServer._instances.pop(self.pgdata, None)  # pgserver keeps the failed handle
        if failed is not None:
            atexit.unregister(failed._cleanup)
        deadline = time.monotonic() + timeout
        while True:
            info = PostmasterInfo.read_from_pgdata(self.pgdata)
            if info is not None and info.is_running() and info.status == "ready":
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the embedded Postgres did not start within {timeout:g} s more "
                                   f"(log: {_last_line(self.pgdata / 'log')})")
            time.sleep(0.1)
        import pgserver

        return pgserver.get_server(self.pgdata, cleanup_mode="stop")

    def is_running(self) -> bool:
        """The postmaster named in postmaster.pid is alive (a cheap check: no connection).

        A killed postmaster may linger as a zombie when nothing reaps it (containers whose
        init does not), so a zombie counts as dead.
        """
        return _live_postgres(_lock_file_pid(self.pgdata / "postmaster.pid"))

    def restart(self, timeout: float = 30.0) -> None:
        """Start the postmaster again on the same data folder and socket; raise if it does not start."""
        from pgserver._commands import POSTGRES_BIN_PATH
        from pgserver.utils import PostmasterInfo

        # Lock files naming a dead (or zombie) postmaster: Postgres refuses to start while their
        # pid looks alive. Its shared-memory interlock still stops a second server while orphaned
        # backends of the old one remain, so removing these is safe.
        lock_files = [self.pgdata / "postmaster.pid"]
        if self.socket_dir is not None:
            lock_files.append(Path(self.socket_dir) / ".s.PGSQL.5432.lock")
        for lock_file in lock_files:
            pid = _lock_file_pid(lock_file)
            if pid is not None and not _live_postgres(pid):
                lock_file.unlink(missing_ok=True)
        if self._server.system_user is not None:
            # Run as root, the server runs as pgserver's user, who must be able to reach the
            # folder: pgserver opens up its parents at start, and something may have closed
            # them since (pytest does, for its temporary folders).
            from pgserver.utils import ensure_prefix_permissions

            ensure_prefix_permissions(self.pgdata)
        log = self.pgdata / "log"
        args = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), "-w", "-t", str(int(timeout)),
                "-o", '-h ""', "-l", str(log)]
        if self.socket_dir is not None:
            args += ["-o", f"-k {self.socket_dir}"]
        args.append("start")
        # Files, not pipes: the postmaster inherits pg_ctl's output and would hold a pipe open.
        with tempfile.TemporaryFile() as output:
            result = subprocess.run(args, stdout=output, stderr=output, timeout=timeout + 5,
                                    user=self._server.system_user)
            output.seek(0)
            said = output.read().decode(errors="replace").strip().splitlines()
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {said[-1] if said else 'no output'} (log: {_last_line(log)})")
        # pgserver stops the postmaster it knows of at exit: make that the new one.
        self._server._postmaster_info = PostmasterInfo.read_from_pgdata(self.pgdata)

    def stop(self) -> None:
        """Stop the server if this is the last process using it (pgserver counts handles)."""
        others = [pid for pid in _handle_pids(self.pgdata) if pid != os.getpid() and _live_process(pid)]
        self._server.cleanup()
        if others:
            logger.info("embedded Postgres left running: shared with live process(es) %s",
                        ", ".join(map(str, others)))
        elif self.is_running():
            logger.warning("embedded Postgres in %s is still running after the stop", self.pgdata)
        else:
            logger.info("embedded Postgres stopped")


def socket_url(socket_dir: str) -> str:
    """The URL of the server listening in `socket_dir`, the folder quoted: pgserver writes it in
    raw, and a `+`, `%` or `@` in the data dir's path then named another folder (the
    characters that also break pg_ctl's start are refused earlier, server/data_dir.py)."""
    return f"postgresql://postgres:@/postgres?host={quote(str(socket_dir), safe='/')}"


HANDLE_FILE = ".handle_pids.json"  # pgserver's list of the processes holding the server


def prune_dead_handles(pgdata: Path) -> list[int]:
    """Drop the pids of processes that are gone from pgserver's handle list; return them.

    pgserver stops the server when the last process in that list lets go. A process killed
    before it could (SIGKILL, a crash) stays in the list for good, and from then on no clean exit
    ever stops the server. Done under pgserver's own lock, as it edits the list.
    """
    import json

    from pgserver.postgres_server import PostgresServer

    path = Path(pgdata) / HANDLE_FILE
    with PostgresServer._lock:
        pids = _handle_pids(pgdata)
        dead = [pid for pid in pids if pid != os.getpid() and not _live_process(pid)]
        if dead:
            path.write_text(json.dumps([pid for pid in pids if pid not in dead]))
    if dead:
        logger.info("dropped %d stale handle(s) on the embedded Postgres (processes %s are gone)",
                    len(dead), ", ".join(map(str, dead)))
    return dead


def _handle_pids(pgdata: Path) -> list[int]:
    import json

    try:
        pids = json.loads((Path(pgdata) / HANDLE_FILE).read_text())
    except (OSError, ValueError):
        return []
    return [pid for pid in pids if isinstance(pid, int)] if isinstance(pids, list) else []


def _live_process(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _lock_file_pid(path: Path) -> int | None:
    """The pid on the first line of a Postgres lock file, or None when there is none."""
    try:
        first = path.read_text().splitlines()[0].strip()
    except (OSError, IndexError):
        return None
    return int(first) if first.lstrip("-").isdigit() else None


def _live_postgres(pid: int | None) -> bool:
    import psutil

    if pid is None or pid <= 0:
        return False
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and process.name().startswith("postgres")
    except psutil.Error:
        return False


def _last_line(log: Path) -> str:
    """The postmaster's last log line: why it did not start."""
    try:
        with open(log, "rb") as file:
            file.seek(max(0, os.path.getsize(log) - 4096))
            lines = file.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else "no log output"
    except OSError:
        return "no log output"
