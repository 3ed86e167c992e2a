"""/health (liveness) and /ready (readiness), in process: answered from the probe's last result."""

from __future__ import annotations

import time

from headwater.server.health import DatabaseProbe

UNREACHABLE = "postgresql://nobody@127.0.0.1:9/nothing"


async def test_health_and_ready_with_a_reachable_database(http):
    health = await http.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok" and health.json()["database"] == "ok"
    assert (await http.get("/ready")).status_code == 200


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def probe_of_unreachable(app, *, embedded: bool, clock: Clock) -> DatabaseProbe:
    probe = DatabaseProbe(UNREACHABLE, request_engine=app.state.engine, embedded=embedded, grace_seconds=10,
                          clock=clock)
    from headwater.server.db.engine import create_engine

    probe._engine = create_engine(UNREACHABLE, pool_size=1)  # probed by hand, without the loop
    await probe.probe_once()
    return probe


async def test_embedded_database_down_beyond_the_grace_period_fails_health(app):
    clock = Clock()
    probe = await probe_of_unreachable(app, embedded=True, clock=clock)
    try:
        status, body = probe.health()
        assert status == 200 and body["database"] == "unreachable", "within the grace period: still alive"
        clock.now += 11
        await probe.probe_once()
        status, body = probe.health()
        assert status == 503
        assert body["status"] == "unavailable" and "embedded Postgres has not answered for 11 s" in body["reason"]
        assert body["database_down_seconds"] == 11.0 and body["database_error"]
    finally:
        await probe.stop()


async def test_external_database_down_keeps_health_200_but_says_so(app):
    """Restarting headwater cannot fix an external database: liveness stays up, readiness goes down."""
    clock = Clock()
    probe = await probe_of_unreachable(app, embedded=False, clock=clock)
    try:
        clock.now += 3600
        status, body = probe.health()
        assert status == 200 and body["database"] == "unreachable" and body["database_down_seconds"] == 3600.0
    finally:
        await probe.stop()


async def test_health_never_waits_for_the_database(app, http):
    """Even with the database gone, /health answers from memory."""
    probe = await probe_of_unreachable(app, embedded=True, clock=Clock())
    real = app.state.database_probe
    app.state.database_probe = probe
    try:
        started = time.perf_counter()
        for _ in range(20):
            assert (await http.get("/health")).json()["database"] == "unreachable"
        assert (time.perf_counter() - started) / 20 < 0.1
    finally:
        app.state.database_probe = real
        await probe.stop()


async def test_probe_notices_recovery(app):
    probe = DatabaseProbe(str(app.state.engine.url.render_as_string(hide_password=False)),
                          request_engine=app.state.engine, embedded=True, grace_seconds=0)
    await probe.start()
    try:
        await probe.probe_once()
        assert probe.health()[0] == 200
        probe.down_since = probe.clock() - 100  # as if it had been down
        assert probe.health()[0] == 503
        await probe.probe_once()
        assert probe.health() == (200, {"status": "ok", "database": "ok"})
    finally:
        await probe.stop()


def test_a_server_still_starting_up_is_unavailable_not_an_internal_error():
    """Right after a restart Postgres refuses connections with SQLSTATE 57P03; asyncpg's error
    reaches us as a generic driver error, which used to be answered as an internal error."""
    import asyncpg
    from graphql import GraphQLError

    from headwater.server.graphql.errors import DATABASE_UNAVAILABLE, classify

    class DriverError(Exception):
        """Like SQLAlchemy's adapted asyncpg error: the SQLSTATE is on its cause."""

    starting = asyncpg.exceptions.CannotConnectNowError("the database system is starting up")
    try:
        raise DriverError("the database system is starting up") from starting
    except DriverError as wrapped:
        error = wrapped
    message, code, unexpected = classify(GraphQLError("x", original_error=error))
    assert code == DATABASE_UNAVAILABLE and not unexpected
