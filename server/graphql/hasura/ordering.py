"""Compiles `order_by` and `distinct_on` to SQL sort keys.

Keys are applied in the order the client wrote them (see `selection`). A key through an object
relationship (`{flow: {name: asc}}`) or over an array relationship's aggregate
(`{flows_aggregate: {count: desc}}`) becomes a correlated scalar subquery, which works the same
in ORDER BY, DISTINCT ON and window clauses. `asc` sorts nulls last and `desc` nulls first,
Postgres's defaults, as Hasura does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

from headwater.server.graphql.hasura.aliases import Aliases
from headwater.server.graphql.hasura.catalog import CATALOG, TableInfo


@dataclass(frozen=True)
class SortKey:
    expression: ColumnElement[Any]
    direction: str
    # The column this key sorts on directly, if any (to align DISTINCT ON with ORDER BY).
    column: str | None = None


def sort_keys(
    table: TableInfo, source: FromClause, order_by: list[dict[str, Any]], aliases: Aliases
) -> list[SortKey]:
    keys: list[SortKey] = []
    for item in order_by:
        keys.extend(_keys(table, source, item, aliases))
    return keys


def _keys(table: TableInfo, source: FromClause, item: dict[str, Any], aliases: Aliases) -> list[SortKey]:
    keys: list[SortKey] = []
    for name, value in item.items():
        if value is None:
            continue
        kind, target = table.fields[name]
        if kind == "column":
            keys.append(SortKey(source.c[name], value, name))
            continue
        rel = table.relationships[target]
        related = CATALOG[rel.target]
        alias = aliases(related.table)
        link = alias.c[rel.remote_column] == source.c[rel.local_column]
        if kind == "object":
            for key in _keys(related, alias, value, aliases):
                subquery = select(key.expression).select_from(alias).where(link).scalar_subquery()
                keys.append(SortKey(subquery, key.direction))
        else:
            keys.extend(_aggregate_keys(alias, link, value))
    return keys


def _aggregate_keys(alias: FromClause, link: ColumnElement[bool], value: dict[str, Any]) -> list[SortKey]:
    keys: list[SortKey] = []
    for function, spec in value.items():
        if spec is None:
            continue
        if function == "count":
            keys.append(SortKey(select(func.count()).select_from(alias).where(link).scalar_subquery(), spec))
            continue
        for column, direction in spec.items():
            if direction is not None:
                aggregate = getattr(func, function)(alias.c[column])
                keys.append(SortKey(select(aggregate).select_from(alias).where(link).scalar_subquery(), direction))
    return keys


def sorted_by(expression: ColumnElement[Any], direction: str) -> ColumnElement[Any]:
    """`expression` with a Hasura direction token applied."""
    ordered = expression.desc() if direction.startswith("desc") else expression.asc()
    nulls_first = direction.endswith("nulls_first") or direction == "desc"
    return ordered.nulls_first() if nulls_first else ordered.nulls_last()


def distinct_keys(source: FromClause, distinct_on: list[str], keys: list[SortKey]) -> list[SortKey]:
    """The leading sort keys DISTINCT ON needs: its columns, each in the direction the client
    sorts it (ascending when not sorted on), as Postgres requires."""
    directions = {key.column: key.direction for key in reversed(keys) if key.column}
    return [SortKey(source.c[name], directions.get(name, "asc"), name) for name in distinct_on]
