"""Python client for a headwater server: `Client` (sync) and `AsyncClient`.

    from headwater.client import Client
    with Client("http://127.0.0.1:4200") as hw:
        run_id = hw.create_flow_run(flow_id, parameters={"n": 3})
        hw.wait_for_flow_run(run_id, timeout=600)
"""

from typing import TYPE_CHECKING, Any

from headwater.client.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    HeadwaterError,
    NotFound,
    RunTimeout,
    ServerError,
    ServerUnavailable,
    Unauthenticated,
    VersionLockError,
)

if TYPE_CHECKING:
    from headwater.client.client import AsyncClient, Client, compress

_CLIENT_NAMES = frozenset({"AsyncClient", "Client", "compress"})


def __getattr__(name: str) -> Any:
    """The client classes load httpx on first use: `headwater start` builds its parser from
    this package's commands and never needs them (4-5 MiB and ~40 ms less at every start)."""
    if name in _CLIENT_NAMES:
        from headwater.client import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_CLIENT_NAMES})


__all__ = [
    "AsyncClient",
    "BadRequest",
    "Client",
    "Conflict",
    "Forbidden",
    "HeadwaterError",
    "NotFound",
    "RunTimeout",
    "ServerError",
    "ServerUnavailable",
    "Unauthenticated",
    "VersionLockError",
    "compress",
]
