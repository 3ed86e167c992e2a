"""The Hasura-style read API (placeholder until the generic compiler lands)."""

from __future__ import annotations

import strawberry


@strawberry.type
class Query:
    @strawberry.field
    def placeholder(self) -> bool | None:
        return None
