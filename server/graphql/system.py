"""Non-table queries: `hello` (the client's liveness probe) and `api` (what this server is)."""

from __future__ import annotations

from typing import Optional

import strawberry

from headwater.server import __version__


@strawberry.type(name="api_info")
class ApiInfo:
    backend: Optional[str] = "SERVER"
    mode: Optional[str] = "normal"
    version: Optional[str] = __version__
    core_version: Optional[str] = "1.4.1"
    release_timestamp: Optional[str] = None


@strawberry.type
class Query:
    @strawberry.field(description="Liveness probe used by the Prefect client and agents.")
    def hello(self) -> Optional[str]:
        return "👋"

    @strawberry.field(description="What this backend is.")
    def api(self) -> Optional[ApiInfo]:
        return ApiInfo()
