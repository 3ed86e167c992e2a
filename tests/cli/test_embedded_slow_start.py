"""A first start of the embedded Postgres slower than pgserver's 10 s for `pg_ctl -w start`
(a loaded machine): pgserver kills pg_ctl and raises, but the postmaster it started lives on;
headwater waits for it to be ready and takes it over instead of failing the start."""

from __future__ import annotations

import asyncio
import subprocess

import pytest
from sqlalchemy import text

from headwater.server.db.engine import create_engine
from headwater.server.embedded import EmbeddedPostgres


async def answers(url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return (await connection.execute(text("SELECT 1"))).scalar()
    finally:
        await engine.dispose()


@pytest.mark.slow
@pytest.mark.pure
def test_a_start_slower_than_pgservers_limit_is_taken_over(tmp_path, monkeypatch):
    import pgserver.postgres_server as pgserver_server

    real = pgserver_server.pg_ctl
    timed_out = []

    def pg_ctl_out_of_time(args, **kwargs):
        result = real(args, **kwargs)
        if "start" in args and not timed_out:
            timed_out.append(args)  # as if the wait had run past pgserver's timeout
            raise subprocess.TimeoutExpired(cmd="pg_ctl", timeout=kwargs.get("timeout", 10))
        return result

    monkeypatch.setattr(pgserver_server, "pg_ctl", pg_ctl_out_of_time)
    server = EmbeddedPostgres(tmp_path)
    try:
        assert timed_out, "the start went through the slow path"
        assert asyncio.run(answers(server.url)) == 1
    finally:
        server.stop()
    assert not server.is_running(), "stopped with the process, as a normal start is"


@pytest.mark.slow
@pytest.mark.pure
def test_a_postmaster_that_never_gets_ready_is_a_clear_error(tmp_path, monkeypatch):
    import pgserver.postgres_server as pgserver_server

    def pg_ctl_that_starts_nothing(args, **kwargs):
        if "start" in args:
            (tmp_path / "postgres" / "log").write_text("")  # pg_ctl had opened its log
            raise subprocess.TimeoutExpired(cmd="pg_ctl", timeout=10)
        return pgserver_server.__dict__["_real_pg_ctl"](args, **kwargs)

    monkeypatch.setitem(pgserver_server.__dict__, "_real_pg_ctl", pgserver_server.pg_ctl)
    monkeypatch.setattr(pgserver_server, "pg_ctl", pg_ctl_that_starts_nothing)
    monkeypatch.setattr("headwater.server.embedded.SLOW_START_SECONDS", 1.0)
    with pytest.raises(RuntimeError, match="did not start within 1 s more"):
        EmbeddedPostgres(tmp_path)
