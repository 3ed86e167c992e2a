"""Python client for a headwater server: `Client` (sync) and `AsyncClient`.

    from headwater.client import Client
    with Client("http://127.0.0.1:4200") as hw:
        run_id = hw.create_flow_run(flow_id, parameters={"n": 3})
        hw.wait_for_flow_run(run_id, timeout=600)
"""

from headwater.client.client import AsyncClient, Client, compress
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
