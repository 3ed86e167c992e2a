"""A data dir that cannot be created fails `start`, `services`, `db` and `key` with one line that
says what to do, exit code 2 and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from headwater.server.data_dir import DataDirError, prepare_data_dir

COMMANDS = [["start", "--port", "0"], ["services"], ["db", "upgrade"], ["key", "list"]]


def headwater(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    return subprocess.run([sys.executable, "-m", "headwater.server.cli", *args], env={**environment, **(env or {})},
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "file"
    path.write_text("not a folder")
    return path


@pytest.mark.slow
@pytest.mark.pure
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_parent_is_a_file(command, a_file):
    data_dir = a_file / "data"
    result = headwater(*command, "--data-dir", str(data_dir))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"headwater: cannot create data dir {data_dir}: {a_file} is a file, not a folder; "
        "choose another with --data-dir or HEADWATER_DATA_DIR, or move that file away"
    )
    assert result.stdout == ""


@pytest.mark.slow
@pytest.mark.pure
def test_from_the_environment_and_data_dir_itself_a_file(a_file):
    result = headwater("db", "upgrade", env={"HEADWATER_DATA_DIR": str(a_file)})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"headwater: cannot create data dir {a_file}: {a_file} is a file, not a folder; "
        "choose another with --data-dir or HEADWATER_DATA_DIR, or move that file away"
    )


@pytest.mark.slow
@pytest.mark.pure
def test_name_too_long(tmp_path):
    data_dir = tmp_path / ("x" * 300)
    result = headwater("key", "list", "--data-dir", str(data_dir))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"headwater: cannot create data dir {data_dir}: a part of the path is too long for the file system; "
        "choose another with --data-dir or HEADWATER_DATA_DIR with a shorter path"
    )


@pytest.mark.pure
def test_permission_denied(tmp_path):
    """As root every folder is writable, so drop to an unprivileged effective user for the check."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    if os.geteuid() == 0:
        os.seteuid(65534)
        try:
            with pytest.raises(DataDirError) as refused:
                prepare_data_dir(locked / "data")
        finally:
            os.seteuid(0)
    else:
        locked.chmod(0o500)
        try:
            with pytest.raises(DataDirError) as refused:
                prepare_data_dir(locked / "data")
        finally:
            locked.chmod(0o700)
    assert str(refused.value) == (
        f"cannot create data dir {locked / 'data'}: permission denied; "
        "choose another with --data-dir or HEADWATER_DATA_DIR, or fix its owner"
    )


@pytest.mark.pure
def test_a_good_data_dir_is_created(tmp_path):
    assert prepare_data_dir(tmp_path / "new" / "data") == tmp_path / "new" / "data" / "postgres"
    assert (tmp_path / "new" / "data" / "postgres").is_dir()


@pytest.mark.pure
@pytest.mark.parametrize("name,shown", [("with space", "a blank"), ("tab\there", "a blank"), ("a&b", "'&'"),
                                        ("a;b", "';'"), ("$HOME", "'$'"), ('q"uote', "'\"'")])
def test_a_path_the_embedded_postgres_cannot_start_in_is_refused_clearly(tmp_path, name, shown):
    with pytest.raises(DataDirError) as refused:
        prepare_data_dir(tmp_path / name)
    assert shown in str(refused.value) and "--data-dir or HEADWATER_DATA_DIR" in str(refused.value)
    assert not (tmp_path / name).exists(), "refused before anything is created"


@pytest.mark.slow
@pytest.mark.pure
def test_plus_percent_and_at_in_the_path_reach_the_right_socket(tmp_path):
    """pgserver wrote the socket folder into the URL raw: `+` read as a space, `%` as an escape."""
    import asyncio

    from headwater.server.embedded import EmbeddedPostgres
    from tests.cli.test_embedded_slow_start import answers

    data_dir = prepare_data_dir(tmp_path / "a+b%20c@d").parent
    server = EmbeddedPostgres(data_dir)
    try:
        assert "%2B" in server.url and asyncio.run(answers(server.url)) == 1
    finally:
        server.stop()
