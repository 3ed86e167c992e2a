"""Non-table queries: `hello` (the client's liveness probe), `api` (what this server is) and
`reference_data` (the state families and colours the web UI draws with)."""

from __future__ import annotations

from typing import Optional

import strawberry

from headwater.server import __version__
from headwater.server.domain import reference_data
from headwater.server.graphql.scalars import JSON


@strawberry.type(name="api_info")
class ApiInfo:
    backend: Optional[str] = "SERVER"
    mode: Optional[str] = "normal"
    version: Optional[str] = __version__
    core_version: Optional[str] = "1.4.1"
    release_timestamp: Optional[str] = None


@strawberry.type(name="reference_data")
class ReferenceData:
    state_hierarchy: JSON = strawberry.field(description="Each state -> itself and the states below it.")
    state_info: JSON = strawberry.field(description="Each state -> `{color}`, as Prefect Core 1.4.1 draws it.")


@strawberry.type
class Query:
    @strawberry.field(description="Liveness probe used by the Prefect client and agents.")
    def hello(self) -> Optional[str]:
        return "👋"

    @strawberry.field(description="What this backend is.")
    def api(self) -> Optional[ApiInfo]:
        return ApiInfo()

    @strawberry.field(description="Prefect's state families and colours (for the web UI).")
    def reference_data(self) -> Optional[ReferenceData]:
        return ReferenceData(state_hierarchy=reference_data.STATE_HIERARCHY, state_info=reference_data.STATE_INFO)
