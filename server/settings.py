"""One typed settings object, read from `HEADWATER_*` environment variables and CLI flags.

Every knob the server has lives here, with its default and its meaning, so that a reader can see
in one place what can be configured; the README's settings table is generated from these fields
(`python -m headwater.server.settings_doc`) and `headwater config` prints their effective values.
The CLI builds a `Settings` from the environment and then overrides the fields given as flags
(`Settings.from_env().replace(port=...)`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Mapping
from urllib.parse import urlsplit, urlunsplit

ENV_PREFIX = "HEADWATER_"

# How `headwater config` shows a secret: "value" hides all of it, "url-password" only a URL's password.
Secret = Literal["value", "url-password"]
MASK = "***"


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


def setting(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    flag: str | None = None,
    default_factory: Any = dataclasses.MISSING,
    secret: Secret | None = None,
) -> Any:
    """A `Settings` field with its meaning (`help`, the README's text), the CLI flag that sets it
    and whether it is a secret, so that docs, `headwater config` and the loader share one source."""
    metadata = {"help": help, "flag": flag, "secret": secret}
    return field(default=default, default_factory=default_factory, metadata=metadata)


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


@dataclasses.dataclass(frozen=True)
class Kind:
    """What a field's annotation means to the loader: a base type, and whether None is allowed."""

    base: type
    optional: bool


SUPPORTED = (bool, int, float, str, Path)


def field_kind(name: str, annotation: Any) -> Kind:
    """Resolve `int | None`, `Optional[Path]`... to (base type, optional); refuse anything else."""
    origin = typing.get_origin(annotation)
    optional = False
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        if len(members) != 1:
            raise TypeError(f"setting {name}: unsupported type {annotation!r} (one type, optionally | None)")
        annotation = members[0]
    if annotation not in SUPPORTED:
        names = ", ".join(t.__name__ for t in SUPPORTED)
        raise TypeError(f"setting {name}: unsupported type {annotation!r} (supported: {names}, each | None)")
    return Kind(annotation, optional)


def parse_bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{env_name(name)} must be true or false, got {raw!r}")


def parse_value(name: str, kind: Kind, raw: str) -> Any:
    """The value of one variable; an empty one means None for an optional setting."""
    if kind.optional and raw.strip() == "":
        return None
    if kind.base is bool:
        return parse_bool(name, raw)
    if kind.base is int:
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{env_name(name)} must be an integer, got {raw!r}") from None
    if kind.base is float:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise SettingsError(f"{env_name(name)} must be a number, got {raw!r}")
        return value
    if kind.base is Path:
        if raw.strip() == "":
            raise SettingsError(f"{env_name(name)} must be a path, got ''")
        return Path(raw).expanduser()
    return raw


def format_value(value: Any) -> str:
    """The variable's text for `value`, read back to the same value by `parse_value`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def mask(value: Any, secret: Secret | None) -> Any:
    """`value` as `headwater config` shows it: secrets hidden, a URL's password replaced by ***."""
    if value is None or secret is None:
        return value
    if secret == "value":
        return MASK
    text = str(value)
    if "://" not in text:
        return MASK  # not a URL: no telling where a password would be
    parts = urlsplit(text)
    if parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{parts.username or ''}:{MASK}@{host}")
    if parts.query:  # libpq also takes ?password=...
        pairs = [p.partition("=") for p in parts.query.split("&")]
        parts = parts._replace(query="&".join(
            f"{k}={MASK}" if k.lower() == "password" else k + sep + v for k, sep, v in pairs))
    return urlunsplit(parts)


@dataclass(frozen=True)
class Settings:
    """Server, database and service settings. Immutable: use `replace()` to derive a variant.

    Declare each field with `setting(default, help=...)`: its `help` is the README's meaning text.
    """

    database_url: str | None = setting(
        None, flag="--database-url", secret="url-password",
        help="a Postgres URL (`postgresql://user:pass@host:port/db`); with one, nothing is started locally; "
        "unset starts an embedded Postgres in `DATA_DIR`. The conventional `DATABASE_URL` is used when this "
        "one is unset or empty",
    )
    host: str = setting("127.0.0.1", flag="--host", help="the interface the API listens on")
    port: int = setting(4200, flag="--port", help="the port the API listens on")
    # The Prefect client prints http://localhost:8080/... links (its default UI endpoint).
    ui_port: int = setting(
        8080, flag="--ui-port", help="a second port serving the same app, for the web UI links the Prefect client "
        "prints; 0 turns it off; when busy, `start` logs a warning and goes on (the UI is on `PORT` too)",
    )
    data_dir: Path = setting(
        default_factory=lambda: Path("~/.headwater").expanduser(), flag="--data-dir",
        help="where the embedded Postgres keeps its files",
    )
    migrate_on_start: bool = setting(True, flag="--no-migrate", help="apply migrations at start")
    log_level: str = setting("INFO", flag="--log-level", help="`DEBUG`, `INFO`, `WARNING` or `ERROR`")
    workers: int = setting(
        1, flag="--workers", help="server processes (uvicorn workers) on the port; each is a full replica: API and services",
    )
    # CORS answers go to these origins; pages served by headwater itself always may. `*` is refused
    # (server/http_guard.py). The default is where Prefect Server served its UI (the `prefecthq/ui` image).
    cors_origins: str = setting(
        "http://localhost:8080,http://127.0.0.1:8080",
        help="comma-separated web origins (like `https://ui.example.com`) whose pages may call the API (see Security "
        "and The Prefect web UI); the default is the Prefect UI's port 8080 on this machine; empty allows none; `*` is refused",
    )
    # Checked always on a loopback bind (DNS rebinding), elsewhere only when set.
    allowed_hosts: str = setting(
        "", help="comma-separated extra `Host` names (`name` or `name:port`) answered besides localhost, 127.0.0.1 "
        "and [::1] (see Security); `*` = any",
    )

    # Served from the API's own port (server/prefect_ui.py): one origin, so the UI needs no CORS.
    ui_dir: Path | None = setting(
        None, flag="--ui-dir",
        help="a built Prefect 1 web UI (its `dist/` folder) to serve from the API's port: pages at `/`, "
        "`/settings.json` pointing at this server's `/graphql` (see The Prefect web UI)",
    )

    max_request_bytes: int = setting(
        16 * 1024 * 1024, help="larger requests get a GraphQL error (the client's log batches reach ~4 MB)",
    )
    # The web UI's Apollo batch link sends at most 25 operations per POST; each is limited on its own.
    max_batch_operations: int = setting(
        25, help="operations in one batched request (a JSON array, as the web UI sends); more are refused",
    )
    max_json_depth: int = setting(64, help="deepest JSON nesting a request may carry (body and `variables`)")
    max_payload_bytes: int = setting(
        1_000_000, help="largest serialized state or artifact, and largest run (or group default) parameters, "
        "context or run config (Prefect Server's limit)",
    )
    compiled_plans: bool = setting(
        True, help="answer read documents of a shape already answered once from a compiled plan, without "
        "the GraphQL executor (same answers; off: every document through the executor)",
    )
    max_page_size: int = setting(
        10_000, help="most rows one read query returns per list (a larger `limit` is capped)",
    )
    # Cost limits on one GraphQL document, each refused with an error naming its setting.
    max_query_depth: int = setting(
        12, help="deepest field nesting in one document (the introspection query, under `__schema`, has "
        "graphql-core's own bound)",
    )
    max_query_aliases: int = setting(
        100, help="aliased fields in one document, fragments expanded (each one can be a database query)",
    )
    max_query_root_fields: int = setting(25, help="top-level fields of one operation")
    max_query_directives: int = setting(
        50, help="directives (`@include`, `@skip`...) in one document, fragments expanded",
    )
    max_query_tokens: int = setting(
        10_000, help="lexical tokens of one document, comments included; enforced while parsing",
    )
    # The Prefect client's log batches (at most 3 MB, about 290 bytes of overhead per record) stay
    # under ~10,500 records, and it resends a refused batch forever.
    max_rows_per_write: int = setting(
        20_000, help="items in one list of a mutation's input (logs per `write_run_logs`, states per "
        "`set_*_states`); keep it above the Prefect client's log batch (~10,500 records at most), which it "
        "resends forever when refused",
    )
    db_wait_seconds: float = setting(
        15.0, help="how long `start` waits for an external database to accept connections before giving up",
    )
    db_pool_size: int = setting(20, help="database connections per server process (requests beyond it wait for one)")
    # PgBouncer in transaction pooling mode hands each transaction any server connection, so a
    # statement prepared on one is unknown on the next: 0 turns asyncpg's prepared-statement caches off.
    db_statement_cache_size: int = setting(
        100, help="prepared statements cached per database connection; 0 behind PgBouncer in transaction "
        "pooling mode (see the README's PgBouncer section)",
    )
    database_embedded: bool = setting(
        False, help="set by `start` when it runs the embedded Postgres (its workers inherit it); not meant to "
        "be set by hand",
    )
    health_grace_seconds: float = setting(
        30.0, help="how long the embedded Postgres may be down (being restarted) before `/health` answers 503, "
        "so that a process supervisor restarts headwater",
    )
    statement_timeout_seconds: float = setting(
        60.0, help="Postgres cancels a statement of a request or service running longer (error code "
        "`TIMEOUT`); 0 turns it off; migrations have none",
    )
    # 10,000 tasks register in a few seconds.
    max_flow_tasks: int = setting(
        50_000, help="most tasks one flow may have; a bigger registration is refused before anything is written",
    )
    max_flow_edges: int = setting(
        100_000, help="most edges one flow may have; a bigger registration is refused before anything is written",
    )

    # Background services.
    services_enabled: bool = setting(
        True, flag="--no-services", help="run the services (scheduler, zombie killer, Lazarus, retention, hook delivery) in this process",
    )
    scheduler_enabled: bool = setting(True, help="run the scheduler, which keeps the next runs of every active schedule created")
    scheduler_interval_seconds: float = setting(60.0, help="seconds between scheduler passes")
    scheduler_max_runs_per_flow: int = setting(10, help="scheduled runs kept ahead per flow (its schedule's next events)")
    zombie_killer_enabled: bool = setting(True, help="run the zombie killer, which fails task runs (and finishes cancellations) whose flow-run process stopped heartbeating")
    zombie_killer_interval_seconds: float = setting(120.0, help="seconds between zombie killer passes")
    lazarus_enabled: bool = setting(True, help="run Lazarus, which reschedules flow runs stuck without a live process, up to a limit")
    lazarus_interval_seconds: float = setting(600.0, help="seconds between Lazarus passes")
    heartbeat_cutoff_seconds: float = setting(600.0, help="a run silent this long has lost its process")
    lazarus_resurrection_limit: int = setting(3, help="reschedules before a stuck run is failed")
    service_batch_size: int = setting(
        500, help="rows a service handles per transaction; a pass goes on until a batch is not full",
    )
    retention_days: float = setting(
        0.0, help="delete finished runs, with their logs, this many days after they last changed; 0 keeps all",
    )
    retention_interval_seconds: float = setting(3600.0, help="seconds between retention passes")
    # Cloud hooks (services/hook_delivery.py): the outbox is drained every interval, and at once
    # when this process has just queued a delivery.
    hook_delivery_enabled: bool = setting(True, help="run the hook delivery service, which sends the cloud-hook notifications queued by flow-run state changes (see Notifications)")
    hook_delivery_interval_seconds: float = setting(2.0, help="seconds between passes of the hook delivery service")
    hook_connect_timeout_seconds: float = setting(10.0, help="how long a hook delivery waits to connect to its receiver")
    hook_read_timeout_seconds: float = setting(10.0, help="how long a hook delivery waits for its receiver's answer; connect plus read bounds a whole delivery")
    hook_max_attempts: int = setting(8, help="attempts per hook delivery before it is marked `failed`")
    hook_retry_base_seconds: float = setting(5.0, help="wait after a delivery's first failed attempt; it doubles with each further failure")
    hook_retry_max_seconds: float = setting(3600.0, help="longest wait between two attempts of a delivery")
    hook_link_url: str = setting("http://localhost:4200", help="base of the flow-run links in Slack, Twilio and PagerDuty notifications (`<url>/<tenant slug>/flow-run/<id>`, Prefect Server's `api.url`)")

    # Prometheus text at GET /metrics (server/metrics): requests, the pool, services, runs.
    metrics_enabled: bool = setting(
        True, help="serve Prometheus metrics at `/metrics` (needs a key with at least the `read` role when keys "
        "are configured) and record them; false turns both off (see Metrics)",
    )

    api_key: str | None = setting(
        None, secret="value",
        help="an admin key: when set, requests need `Authorization: Bearer <key>`; named keys with roles are "
        "managed with `headwater key` (see API keys)",
    )
    api_key_cache_seconds: float = setting(
        5.0, help="how long a process trusts its answer for a key: a new, revoked or first key takes effect within this",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Build settings from `HEADWATER_<FIELD>` variables; unset variables keep their defaults."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, kind in field_kinds(cls).items():
            raw = environ.get(env_name(name))
            if raw is not None:
                values[name] = parse_value(name, kind, raw)
        # DATABASE_URL is the conventional name; honour it when ours is unset or empty.
        if values.get("database_url") is None and environ.get("DATABASE_URL"):
            values["database_url"] = environ["DATABASE_URL"]
        return cls(**values)

    def replace(self, **changes: Any) -> "Settings":
        """A copy with the given fields changed; `None` values are ignored (a flag left unset)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def environment(self) -> dict[str, str]:
        """Every `HEADWATER_*` variable, so that `from_env` rebuilds these settings in another process."""
        return {env_name(f.name): format_value(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def masked(self) -> dict[str, Any]:
        """Every setting by field name, secrets masked and paths as text (what `headwater config` shows)."""
        shown = {f.name: mask(getattr(self, f.name), f.metadata.get("secret")) for f in dataclasses.fields(self)}
        return {name: str(value) if isinstance(value, Path) else value for name, value in shown.items()}


@lru_cache(maxsize=None)
def field_kinds(cls: type) -> dict[str, Kind]:
    """Each field's resolved type (annotations are strings under `from __future__ import annotations`)."""
    hints = typing.get_type_hints(cls)
    return {f.name: field_kind(f.name, hints[f.name]) for f in dataclasses.fields(cls)}


def sources(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Where each setting's value comes from: `env` (its variable is set) or `default`."""
    environ = os.environ if environ is None else environ
    found = {f.name: "env" if env_name(f.name) in environ else "default" for f in dataclasses.fields(Settings)}
    if not environ.get(env_name("database_url")) and environ.get("DATABASE_URL"):
        found["database_url"] = "env DATABASE_URL"
    return found
