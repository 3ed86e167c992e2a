"""The embedded Postgres's data dir, created up front so a bad path fails with one line that
says what to do (`start`, `services`, `db` and `key` all pass through here), not an errno."""

from __future__ import annotations

import errno
import os
from pathlib import Path

CHOOSE_ANOTHER = "choose another with --data-dir or HEADWATER_DATA_DIR"
# Characters the shell gives a meaning to: pg_ctl's command line would break on them.
SHELL_SPECIAL = frozenset("&;|<>()$`\\\"'*?[]{}!#^")


class DataDirError(RuntimeError):
    """The data dir cannot be created or written; the message names the path and the way out."""


def prepare_data_dir(data_dir: Path) -> Path:
    """`data_dir/postgres` created and writable; returns it, or raises DataDirError."""
    data_dir = Path(data_dir).expanduser().absolute()
    pgdata = data_dir / "postgres"
    awkward = sorted({c for c in str(pgdata) if c.isspace() or c in SHELL_SPECIAL})
    if awkward:
        # pg_ctl starts Postgres through the shell with this folder (its socket folder) in an
        # option string, unquoted: a blank splits it, `&`, `;`, `$`... make it another command.
        shown = " ".join(dict.fromkeys("a blank" if c.isspace() else repr(c) for c in awkward))
        raise DataDirError(f"data dir {str(data_dir)!r}: the embedded Postgres cannot start in a path with "
                           f"{shown} in it; {CHOOSE_ANOTHER}")
    try:
        pgdata.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(_explain(data_dir, exc)) from None
    if not os.access(pgdata, os.W_OK | os.X_OK):
        raise DataDirError(f"cannot write to data dir {data_dir}: permission denied; {CHOOSE_ANOTHER}, or fix its owner")
    return pgdata


def _explain(data_dir: Path, exc: OSError) -> str:
    where = f"cannot create data dir {data_dir}"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{where}: permission denied; {CHOOSE_ANOTHER}, or fix its owner"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        blocker = _first_file(data_dir / "postgres")
        if blocker is not None:
            return f"{where}: {blocker} is a file, not a folder; {CHOOSE_ANOTHER}, or move that file away"
    if exc.errno == errno.EROFS:
        return f"{where}: the file system is read-only; {CHOOSE_ANOTHER} on a writable disk"
    if exc.errno == errno.ENOSPC:
        return f"{where}: no space left on the device; free some space or {CHOOSE_ANOTHER}"
    if exc.errno == errno.ENAMETOOLONG:
        return f"{where}: a part of the path is too long for the file system; {CHOOSE_ANOTHER} with a shorter path"
    reason = (exc.strerror or str(exc)).lower()
    return f"{where}: {reason}; {CHOOSE_ANOTHER}"


def _first_file(path: Path) -> Path | None:
    """The nearest part of `path` (itself or a parent) that exists and is not a folder."""
    for candidate in [path, *path.parents]:
        if candidate.exists() or candidate.is_symlink():
            return None if candidate.is_dir() else candidate
    return None
