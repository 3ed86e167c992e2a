"""The `headwater` command: run the server, manage the database.

    headwater start                 API + services; embedded Postgres unless a URL is configured
    headwater services              the background services alone
    headwater config [--json]       the effective settings, secrets masked
    headwater db upgrade | reset    schema migrations
    headwater key create|list|revoke  API keys with roles (on the database directly)
    headwater project|flow|run ...  talk to a running server (client/commands.py)
    headwater deployment ...        deployments from spec files (client/deployment_commands.py)

Settings come from HEADWATER_* environment variables; flags override them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from headwater.server import __version__
from headwater.server.data_dir import DataDirError
from headwater.server.settings import Settings, SettingsError

logger = logging.getLogger("headwater")


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
    )
    # pgserver narrates every initdb/pg_ctl call and alembic every plugin at INFO.
    for noisy in ("pgserver", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def _add_database_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", help="Postgres URL (default: embedded Postgres in --data-dir)")
    parser.add_argument("--data-dir", type=Path, help="folder for the embedded Postgres (default ~/.headwater)")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (default INFO)")


def _add_start_flags(parser: argparse.ArgumentParser) -> None:
    _add_database_flags(parser)
    parser.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 4200)")
    parser.add_argument("--ui-port", type=int, help="second port for the web UI (default 8080; 0 turns it off)")
    parser.add_argument("--workers", type=int, help="server processes sharing the port (default 1)")
    parser.add_argument("--no-services", action="store_true", help="serve the API only; run services elsewhere")
    parser.add_argument("--no-migrate", action="store_true", help="do not apply migrations at start")
    parser.add_argument("--ui-dir", type=Path, help="serve a built Prefect 1 web UI (its dist/ folder) on the API's port")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="headwater",
        description="A self-hosted backend for Prefect Core 1.x flows (the Prefect Server 1.x API).",
    )
    parser.add_argument("--version", action="version", version=f"headwater {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    start = commands.add_parser("start", help="run the API server (and the background services)")
    _add_start_flags(start)
    start.set_defaults(handler=cmd_start)

    config = commands.add_parser(
        "config", help="print the effective settings (environment, defaults and the flags of start), secrets masked",
    )
    _add_start_flags(config)
    config.add_argument("--json", action="store_true", help="print one JSON object instead of NAME = value lines")
    config.set_defaults(handler=cmd_config)

    db = commands.add_parser("db", help="database schema commands")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_commands.add_parser("upgrade", help="apply pending migrations")
    _add_database_flags(upgrade)
    upgrade.set_defaults(handler=cmd_db_upgrade)
    reset = db_commands.add_parser("reset", help="drop every table and recreate the schema (deletes all data)")
    _add_database_flags(reset)
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    reset.set_defaults(handler=cmd_db_reset)

    services = commands.add_parser("services", help="run the background services without the API")
    _add_database_flags(services)
    services.set_defaults(handler=cmd_services)

    from headwater.server.key_commands import add_key_commands

    add_key_commands(commands, _add_database_flags)

    from headwater.client.commands import add_commands

    add_commands(commands)
    return parser


def flag_changes(args: argparse.Namespace) -> dict[str, object]:
    """The settings given as flags (those left out are absent)."""
    changes: dict[str, object] = {
        "database_url": getattr(args, "database_url", None),
        "data_dir": getattr(args, "data_dir", None),
        "log_level": getattr(args, "log_level", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "ui_port": getattr(args, "ui_port", None),
        "workers": getattr(args, "workers", None),
        "ui_dir": getattr(args, "ui_dir", None),
    }
    if getattr(args, "no_services", False):
        changes["services_enabled"] = False
    if getattr(args, "no_migrate", False):
        changes["migrate_on_start"] = False
    return {name: value for name, value in changes.items() if value is not None}


def settings_from_args(args: argparse.Namespace) -> Settings:
    return Settings.from_env().replace(**flag_changes(args))


def cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    """Print what `start` with these flags would use, and where each value comes from."""
    import json

    shown = settings.masked()
    if args.json:
        print(json.dumps(shown, indent=2))
        return 0
    from headwater.server.settings import env_name, format_value, sources

    origin = {**sources(), **{name: "flag" for name in flag_changes(args)}}
    width = max(len(env_name(name)) for name in shown)
    for name, value in shown.items():
        text = "unset" if value is None else '""' if value == "" else format_value(value)
        print(f"{env_name(name):<{width}} = {text}   (source: {origin[name]})")
    return 0


@contextmanager
def database(settings: Settings, supervise: bool = False) -> Iterator[Settings]:
    """Settings with a database URL: the configured one, or an embedded Postgres for the duration.

    `supervise` (long-running commands) restarts the embedded Postgres if it dies.
    """
    if settings.database_url:
        yield settings
        return
    from headwater.server.data_dir import prepare_data_dir
    from headwater.server.embedded import EmbeddedPostgres
    from headwater.server.embedded_supervisor import EmbeddedPostgresSupervisor

    prepare_data_dir(settings.data_dir)
    embedded = EmbeddedPostgres(settings.data_dir)
    logger.info("embedded Postgres ready (data in %s)", embedded.pgdata)
    supervisor = EmbeddedPostgresSupervisor(embedded) if supervise else None
    if supervisor is not None:
        supervisor.start()
    try:
        yield settings.replace(database_url=embedded.url, database_embedded=True)
    finally:
        if supervisor is not None:
            supervisor.stop()  # first, so the server it stops is not started again
        embedded.stop()


async def _wait_for_database(url: str, seconds: float) -> None:
    """Return once the database answers; raise one clear error after `seconds` of trying."""
    import time

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from headwater.server.db.engine import create_engine

    engine = create_engine(url, pool_size=1)
    deadline = time.monotonic() + seconds
    where = make_url(url).render_as_string(hide_password=True)
    waiting_said = False
    try:
        while True:
            try:
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
                return
            except Exception as exc:  # noqa: BLE001 - reported below as one line
                if not waiting_said:
                    # Said once, so a slow or unreachable database is not a silent pause.
                    logger.info("waiting for the database at %s (up to %.0f s)", where, seconds)
                    waiting_said = True
                if time.monotonic() >= deadline:
                    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
                    raise RuntimeError(f"cannot connect to the database at {where}: {reason}") from None
                await asyncio.sleep(1.0)
    finally:
        await engine.dispose()


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGINT before the server runs: unwinds like Ctrl-C, so everything started is stopped."""


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Turn SIGTERM (and SIGINT) into `Stopped` while this command sets things up and tears them down.

    Without it SIGTERM kills the process outright and the embedded Postgres outlives it.
    uvicorn installs its own handlers while serving and puts these back afterwards.
    """
    import signal

    def stop(signum: int, frame: object) -> None:
        raise Stopped(signal.Signals(signum).name)

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class PortInUse(RuntimeError):
    pass


def check_port(host: str, port: int) -> None:
    """Fail before starting anything when host:port cannot be bound (as uvicorn will bind it).

    SO_REUSEADDR as uvicorn sets it: a port in TIME_WAIT passes, a port someone listens on does not.
    """
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise PortInUse(
                f"cannot listen on {host}:{port}: {reason}; "
                "choose another port with --port or HEADWATER_PORT"
            ) from None


def ready_banner(host: str, port: int, ui_port: int | None = None) -> str:
    """The line that says the server takes requests, where the web UI is, and how a Prefect client finds it."""
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    url = f"http://{shown}:{port}"
    ui = f"http://{shown}:{ui_port}/" if ui_port else f"{url}/"
    if port == 4200 and shown in ("127.0.0.1", "localhost"):
        client = "PREFECT__BACKEND=server"  # the stock client's default endpoint is localhost:4200
    else:
        client = f"PREFECT__BACKEND=server PREFECT__SERVER__ENDPOINT={url}"
    return f"headwater {__version__} ready on {url} (web UI: {ui}); Prefect client: {client}"


def _preload_app() -> threading.Thread:
    """Import the app (schema, models, SQLAlchemy) in a thread while the embedded Postgres
    starts: a start then costs the longer of the two, not the sum. An import that fails here
    fails again, and is reported, where the app is imported."""

    def preload() -> None:
        import gc
        import importlib

        # Importing allocates some 160,000 long-lived objects; the collector's passes over them
        # meanwhile found almost nothing and cost ~10% of the import. One pass at the end
        # instead, and what survives it is frozen (as the app's start would, server/app.py
        # settle_heap, which then walks only what came after): turned back on, the collector
        # would otherwise start by walking all of it again as its youngest generation.
        collecting = gc.isenabled()
        gc.disable()
        try:
            # The app, then what uvicorn loads to serve it (uvloop and httptools when installed).
            for name in ("headwater.server.app", "headwater.server.serving", "uvloop", "uvicorn.loops.auto",
                         "uvicorn.protocols.http.auto", "uvicorn.lifespan.on"):
                try:
                    importlib.import_module(name)
                except BaseException:  # noqa: BLE001, S110 - re-raised by the main thread's own import
                    pass
        finally:
            gc.collect()
            gc.freeze()
            if collecting:
                gc.enable()

    thread = threading.Thread(target=preload, name="headwater-preload", daemon=True)
    thread.start()
    return thread


def cmd_start(settings: Settings, args: argparse.Namespace) -> int:
    if settings.ui_dir is not None:
        from headwater.server.prefect_ui import ui_dir_problem

        problem = ui_dir_problem(settings.ui_dir)
        if problem:
            print(f"headwater: {problem}", file=sys.stderr)
            return 2
    check_port(settings.host, settings.port)
    preload = _preload_app() if settings.workers == 1 else None
    with _stop_on_signals(), database(settings, supervise=True) as ready:
        if preload is not None:
            preload.join()  # before the main thread imports SQLAlchemy itself, just below
        asyncio.run(_wait_for_database(ready.database_url or "", ready.db_wait_seconds))
        options = dict(
            host=ready.host,
            port=ready.port,
            log_level=ready.log_level.lower(),
            # Every agent and flow runner polls; a line per request would drown the useful logs.
            access_log=ready.log_level.upper() == "DEBUG",
            loop="auto",  # uvloop when installed
            http="auto",  # httptools when installed
            timeout_keep_alive=30,
        )
        from headwater.server.serving import bind_optional

        ui_socket = None
        if ready.ui_port and ready.ui_port != ready.port:
            ui_socket = bind_optional(ready.host, ready.ui_port, "web UI port")
        extra = (ui_socket,) if ui_socket is not None else ()
        banner = ready_banner(ready.host, ready.port, ready.ui_port if ui_socket is not None else None)
        if ready.workers > 1:
            # Workers build their app from the environment; the embedded Postgres (if any) stays
            # owned by this process. Migrations run here once, not in every worker.
            asyncio.run(_migrate(ready, reset=False, at_start=True))
            os.environ.update(settings_environment(ready.replace(migrate_on_start=False)))
            from contextlib import nullcontext

            from headwater.server.metrics.workers import metrics_folder
            from headwater.server.serving import serve_workers

            # One scrape sums every worker: prometheus-client's multiprocess folder, fresh per start.
            try:
                with metrics_folder() if ready.metrics_enabled else nullcontext():
                    return serve_workers(
                        "headwater.server.app:create_app_from_env", workers=ready.workers, factory=True,
                        banner=banner, extra_sockets=extra, **options,
                    )
            finally:
                for sock in extra:
                    sock.close()
        from headwater.server.app import create_app
        from headwater.server.serving import serve

        try:
            return serve(create_app(ready), banner=banner, extra_sockets=extra, **options)
        finally:
            for sock in extra:
                sock.close()


def settings_environment(settings: Settings) -> dict[str, str]:
    """HEADWATER_* variables that rebuild `settings` in another process (None as empty, bools as true/false)."""
    return settings.environment()


async def _migrate(settings: Settings, reset: bool, at_start: bool = False) -> None:
    """`at_start`: this process goes on serving, so Alembic (if needed) runs in a child (server/db/migrate.py)."""
    from headwater.server.db import migrate
    from headwater.server.db.engine import create_engine

    engine = create_engine(settings.database_url or "")
    try:
        if reset:
            await migrate.downgrade(engine, "base")
        await (migrate.upgrade_at_start(engine) if at_start else migrate.upgrade(engine))
    finally:
        await engine.dispose()


def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    with database(settings) as ready:
        asyncio.run(_migrate(ready, reset=False))
    print("Database schema is up to date.")
    return 0


def cmd_db_reset(settings: Settings, args: argparse.Namespace) -> int:
    if not args.yes:
        if not sys.stdin.isatty():
            print("Refusing to reset without confirmation: pass --yes.", file=sys.stderr)
            return 2
        answer = input("This deletes every project, flow, run and log. Type 'reset' to continue: ")
        if answer.strip() != "reset":
            print("Aborted; nothing was changed.")
            return 1
    with database(settings) as ready:
        asyncio.run(_migrate(ready, reset=True))
    print("Database reset: all data deleted, schema recreated.")
    return 0


async def _run_services(settings: Settings) -> None:
    import signal

    from headwater.server.db.engine import create_engine, create_sessionmaker
    from headwater.services.runner import ServiceRunner, build_services

    engine = create_engine(
        settings.database_url or "",
        pool_size=settings.db_pool_size,
        statement_timeout_seconds=settings.statement_timeout_seconds,
        statement_cache_size=settings.db_statement_cache_size,
    )
    runner = ServiceRunner(build_services(settings, create_sessionmaker(engine)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    for signum in previous:
        loop.add_signal_handler(signum, stop.set)
    try:
        if settings.migrate_on_start:
            from headwater.server.db import migrate

            await migrate.upgrade_at_start(engine)
        await runner.start()
        logger.info("services running: %s", ", ".join(s.name for s in runner.services) or "none enabled")
        await stop.wait()
    finally:
        await runner.stop()
        await engine.dispose()
        for signum, handler in previous.items():
            # asyncio would leave SIGTERM at its default (kill) while the embedded Postgres stops.
            loop.remove_signal_handler(signum)
            signal.signal(signum, handler)


def cmd_services(settings: Settings, args: argparse.Namespace) -> int:
    with _stop_on_signals(), database(settings, supervise=True) as ready:
        asyncio.run(_run_services(ready))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "client_command", False):
        from headwater.client.commands import run_client_command

        return run_client_command(args)
    try:
        settings = settings_from_args(args)
    except SettingsError as exc:
        print(f"headwater: {exc}", file=sys.stderr)
        return 2
    _configure_logging(settings.log_level)
    try:
        return args.handler(settings, args)
    except DataDirError as exc:
        print(f"headwater: {exc}", file=sys.stderr)
        return 2
    except Stopped:
        return 0  # asked to stop (SIGTERM/SIGINT) while starting: everything started has been stopped
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - one clear line instead of a traceback
        logger.debug("command failed", exc_info=True)
        print(f"headwater: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
