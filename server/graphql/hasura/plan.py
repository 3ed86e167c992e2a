"""The plan of one root field: what to load for each level of the selection, under which
response keys, and how loaded values are keyed in the result dicts.

`selection` builds it from the AST; `compiler` and `loader` turn it into SQL and rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from headwater.server.db.models import Relationship
from headwater.server.graphql.hasura.catalog import TableInfo

# Prefix of the result-dict keys holding relationships and aggregates. "@" cannot start a
# GraphQL name, so these keys never collide with column names.
RESULT_PREFIX = "@"


def result_key(response_key: str) -> str:
    """Where a row dict holds the value of the field selected under `response_key` (its alias).

    Keyed by alias, not field name: two aliases of one relationship may carry different arguments.
    """
    return RESULT_PREFIX + response_key


@dataclass
class ListArgs:
    """`where`, `order_by` (keys in written order), `distinct_on`, `limit`, `offset`."""

    where: dict[str, Any] | None = None
    order_by: list[dict[str, Any]] = field(default_factory=list)
    distinct_on: list[str] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0


@dataclass
class RowShape:
    """What to load for each row of `table`. Children are keyed by response key."""

    table: TableInfo
    columns: list[str] = field(default_factory=list)
    objects: list[tuple[str, Relationship, RowShape]] = field(default_factory=list)
    arrays: list[tuple[str, Relationship, ListPlan]] = field(default_factory=list)
    aggregates: list[tuple[str, Relationship, AggregatePlan]] = field(default_factory=list)

    def add_column(self, name: str) -> None:
        if name not in self.columns:
            self.columns.append(name)


@dataclass
class ListPlan:
    args: ListArgs
    shape: RowShape


@dataclass(frozen=True)
class Measure:
    """One aggregate value: `count` (over `columns`, maybe distinct) or `max`/`min` of a column."""

    function: str
    columns: tuple[str, ...] = ()
    distinct: bool = False


@dataclass
class AggregatePlan:
    """`<table>_aggregate(args) { aggregate { ... } nodes { ... } }`.

    `aggregates` maps each response key of `aggregate` to its contents: response key ->
    Measure (count) or response key -> {column: Measure} (max / min).
    """

    table: TableInfo
    args: ListArgs
    aggregates: list[tuple[str, dict[str, Measure | dict[str, Measure]]]] = field(default_factory=list)
    nodes: list[tuple[str, RowShape]] = field(default_factory=list)

    def measures(self) -> list[Measure]:
        found: dict[Measure, None] = {}
        for _, parts in self.aggregates:
            for part in parts.values():
                for measure in part.values() if isinstance(part, dict) else [part]:
                    found[measure] = None
        return list(found)
