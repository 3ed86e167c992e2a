"""The schema: every area's query and mutation types merged into one Strawberry schema.

Field names are snake_case exactly as Prefect Server spells them (`auto_camel_case=False`).
Parsed and validated documents are cached (headwater.server.graphql.validation), under cost limits.
"""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from headwater.server.graphql import (
    agents,
    artifacts,
    cloud_hooks,
    deployments,
    flow_groups,
    flow_runs,
    flows,
    hasura,
    logs,
    projects,
    system,
    task_runs,
    tenants,
)
from headwater.server.graphql.authorization import RoleCheck
from headwater.server.graphql.validation import DocumentValidationCache, LimitedParserCache
from headwater.server.metrics.operations import OperationLabel
from headwater.server.graphql.scalars import SCALAR_MAP


def resolve_field(obj: Any, name: str) -> Any:
    """Rows from the read layer are dicts; payloads are objects. Read either by name."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name)


class HeadwaterSchema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:  # noqa: ANN001
        """Errors are logged where they are formatted (headwater.server.graphql.errors), not here."""


Query = merge_types("Query", (system.Query, task_runs.Query, hasura.Query))
Mutation = merge_types(
    "Mutation",
    (
        tenants.Mutation,
        projects.Mutation,
        flows.Mutation,
        flow_groups.Mutation,
        flow_runs.Mutation,
        task_runs.Mutation,
        logs.Mutation,
        agents.Mutation,
        artifacts.Mutation,
        deployments.Mutation,
        cloud_hooks.Mutation,
    ),
)

schema = HeadwaterSchema(
    query=Query,
    mutation=Mutation,
    config=StrawberryConfig(
        auto_camel_case=False, default_resolver=resolve_field, scalar_map=SCALAR_MAP
    ),
    extensions=[
        LimitedParserCache,
        DocumentValidationCache,
        RoleCheck,
        OperationLabel,  # the `operation` label of /metrics
    ],
)
