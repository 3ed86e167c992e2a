"""One typed settings object, read from `HEADWATER_*` environment variables and CLI flags.

Every knob the server has lives here, with its default, so that a reader can see in one place
what can be configured. The CLI builds a `Settings` from the environment and then overrides
the fields given as flags (`Settings.from_env().replace(port=...)`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

ENV_PREFIX = "HEADWATER_"


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


def _parse_bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be true or false, got {raw!r}")


def _coerce(name: str, kind: Any, raw: str) -> Any:
    if kind in (bool, "bool"):
        return _parse_bool(name, raw)
    if kind in (int, "int"):
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be an integer, got {raw!r}") from None
    if kind in (float, "float"):
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be a number, got {raw!r}") from None
    if kind in (Path, "Path"):
        return Path(raw).expanduser()
    if raw == "" and "None" in str(kind):
        return None
    return raw


@dataclass(frozen=True)
class Settings:
    """Server, database and service settings. Immutable: use `replace()` to derive a variant."""

    # Postgres URL (postgresql://user:pass@host:port/db). None starts an embedded Postgres.
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 4200
    # Where the embedded Postgres keeps its files.
    data_dir: Path = field(default_factory=lambda: Path("~/.headwater").expanduser())
    migrate_on_start: bool = True
    log_level: str = "INFO"
    # Server processes (uvicorn workers). Each is a full replica: API and services.
    workers: int = 1
    # Web origins (comma-separated, like https://ui.example.com) whose pages may call the API, with
    # CORS answers; pages served by headwater itself always may. `*` is refused (server/http_guard.py).
    cors_origins: str = ""
    # Extra Host names (comma-separated, `name` or `name:port`) answered besides localhost, 127.0.0.1
    # and [::1]. Checked always on a loopback bind (DNS rebinding), elsewhere only when set; `*` = any.
    allowed_hosts: str = ""

    # Requests larger than this are refused with a GraphQL error (the client's log batches reach ~4 MB).
    max_request_bytes: int = 16 * 1024 * 1024
    # Deepest JSON nesting a request may carry (its body, and `variables` sent as a string).
    max_json_depth: int = 64
    # A serialized state or an artifact larger than this is refused (Prefect Server's limit), and so are
    # run parameters, context and run config, and a flow group's default parameters.
    max_payload_bytes: int = 1_000_000
    # The most rows one Hasura-style query may return per list (a `limit` above it is capped).
    max_page_size: int = 10_000
    # Cost limits on one GraphQL document, each refused with an error naming its setting.
    # Nesting of fields (introspection under `__schema`/`__type` has its own bound).
    max_query_depth: int = 12
    # Aliased fields, counted with fragments expanded (each one can be a database query).
    max_query_aliases: int = 100
    # Top-level fields of one operation.
    max_query_root_fields: int = 25
    # Directives (`@include`, `@skip`...), counted with fragments expanded.
    max_query_directives: int = 50
    # Lexical tokens, comments included; enforced while parsing.
    max_query_tokens: int = 10_000
    # Items in one list of a mutation's input: log records per `write_run_logs`, states per
    # `set_task_run_states`... The Prefect client's log batches (at most 3 MB, about 290 bytes
    # of overhead per record) stay under ~10,500 records, and it resends a refused batch forever.
    max_rows_per_write: int = 20_000
    # How long `headwater start` waits for an external database to accept connections.
    db_wait_seconds: float = 15.0
    # Database connections per server process (requests beyond it wait for one).
    db_pool_size: int = 20
    # Set by `headwater start` when it runs the embedded Postgres (workers inherit it): /health
    # then answers 503 while that server is down for longer than `health_grace_seconds`.
    database_embedded: bool = False
    # How long the embedded Postgres may stay unreachable (it is being restarted) before /health
    # answers 503 so that a process supervisor restarts headwater.
    health_grace_seconds: float = 30.0
    # Postgres cancels any one statement of the server (requests and services) running longer than
    # this, so no request holds a connection for minutes; 0 turns the timeout off. Migrations have none.
    statement_timeout_seconds: float = 60.0
    # The most tasks and edges one flow may have; a bigger registration is refused before any row
    # is written (10,000 tasks register in a few seconds).
    max_flow_tasks: int = 50_000
    max_flow_edges: int = 100_000

    # Background services.
    services_enabled: bool = True
    scheduler_enabled: bool = True
    scheduler_interval_seconds: float = 60.0
    scheduler_max_runs_per_flow: int = 10
    zombie_killer_enabled: bool = True
    zombie_killer_interval_seconds: float = 120.0
    lazarus_enabled: bool = True
    lazarus_interval_seconds: float = 600.0
    heartbeat_cutoff_seconds: float = 600.0
    lazarus_resurrection_limit: int = 3
    service_batch_size: int = 500
    # Delete finished runs (with their logs) this many days after they last changed; 0 keeps all.
    retention_days: float = 0
    retention_interval_seconds: float = 3600.0

    # Optional shared secret: when set, requests must carry `Authorization: Bearer <key>`.
    # It acts as an admin key; named keys with roles are managed with `headwater key`.
    api_key: str | None = None
    # How long a process trusts its answer for a key: a revoked key stops working within this.
    api_key_cache_seconds: float = 5.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Build settings from `HEADWATER_<FIELD>` variables; unset variables keep their defaults."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _coerce(f.name, f.type, raw)
        # DATABASE_URL is the conventional name; honour it when ours is not set.
        if "database_url" not in values and environ.get("DATABASE_URL"):
            values["database_url"] = environ["DATABASE_URL"]
        return cls(**values)

    def replace(self, **changes: Any) -> "Settings":
        """A copy with the given fields changed; `None` values are ignored (a flag left unset)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
