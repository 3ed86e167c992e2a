"""Builds the SELECT statements for one list of rows and for aggregates over it.

A "row set" is the rows a `where`/`order_by`/`distinct_on`/`limit`/`offset` combination picks,
with the object relationships selected on them LEFT JOINed in. Nested lists are loaded for
many parents at once (`fk = ANY(:keys)`); their `limit`/`offset` then apply per parent, through
`row_number() OVER (PARTITION BY fk ...)`. DISTINCT ON runs in a subquery whose leading sort
keys are the distinct columns, and the outer query sorts by the client's keys, so
`distinct_on: name, order_by: {version: desc}` means "the latest version of each name, newest
first" (Hasura itself requires `order_by` to start with the distinct columns).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from sqlalchemy import ARRAY, Select, Subquery, Table, any_, bindparam, distinct, func, literal, select, tuple_
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

try:  # SQLAlchemy >= 2.1 spells DISTINCT ON as a Postgres extension
    from sqlalchemy.dialects.postgresql import distinct_on as postgres_distinct_on
except ImportError:  # pragma: no cover
    postgres_distinct_on = None

from headwater.server.db.models import Relationship
from headwater.server.graphql.hasura.aliases import Aliases
from headwater.server.graphql.hasura.catalog import TableInfo
from headwater.server.graphql.hasura.filters import where_clause
from headwater.server.graphql.hasura.ordering import SortKey, distinct_keys, sort_keys, sorted_by
from headwater.server.graphql.hasura.plan import ListArgs, Measure

# Labels of the bookkeeping columns; no table column starts with "__".
KEY = "__hw_key"
RANK = "__hw_rank"


# The parameter a statement built with `Link(bound=True)` takes its parent keys from.
LINK_KEYS = "hw_link_keys"


@dataclass(frozen=True)
class Link:
    """Restricts a row set to the children of some parents: rows whose `column` is in `keys`.

    With `bound`, the keys are not written into the statement: it takes them at execution as
    the LINK_KEYS parameter (one key, or a list of several), so it can be kept and reused
    (headwater.server.graphql.hasura.statements); `keys` then only tells one from several."""

    column: str
    keys: Sequence[Any]
    bound: bool = False

    def parameters(self) -> dict[str, Any]:
        """The execution parameters of a `bound` link's statement."""
        return {LINK_KEYS: self.keys[0] if len(self.keys) == 1 else list(self.keys)}


def matches_any(column: ColumnElement[Any], keys: Sequence[Any], bound: bool = False) -> ColumnElement[bool]:
    """`column = :key`, or `column = ANY(:keys)`: one bound array whatever the number of keys."""
    if len(keys) == 1:
        return column == (bindparam(LINK_KEYS, type_=column.type) if bound else keys[0])
    array = ARRAY(column.type)
    return column == any_(bindparam(LINK_KEYS, type_=array) if bound else literal(list(keys), array))


def _distinct_on(statement: Select, expressions: list[ColumnElement[Any]]) -> Select:
    if postgres_distinct_on is None:  # SQLAlchemy 2.0
        return statement.distinct(*expressions)
    return statement.ext(postgres_distinct_on(*expressions))


@dataclass(frozen=True)
class Join:
    """An object relationship loaded in its parent's query: LEFT JOIN target ON target.id = parent.fk.

    Many-to-one joins add no rows, so limits and windows are unaffected, and the common
    `task_run { task { slug } }` costs one query instead of two.
    """

    key: str
    rel: Relationship
    table: TableInfo
    columns: list[str]
    joins: list[Join] = field(default_factory=list)


def _join_objects(
    parent: FromClause, joins: list[Join], aliases: Aliases
) -> tuple[FromClause, list[ColumnElement[Any]]]:
    """`parent` outer-joined to every object in `joins` (depth first), and their labelled columns."""
    joined: FromClause = parent
    selected: list[ColumnElement[Any]] = []

    def visit(source: FromClause, joins: list[Join]) -> None:
        nonlocal joined
        for join in joins:
            alias = aliases(join.table.table)
            joined = joined.outerjoin(alias, alias.c[join.rel.remote_column] == source.c[join.rel.local_column])
            selected.extend(alias.c[name].label(f"__hw_j{len(selected)}") for name in join.columns)
            visit(alias, join.joins)

    visit(parent, joins)
    return joined, selected


def row_set(
    table: TableInfo,
    columns: list[str],
    args: ListArgs,
    limit: int | None,
    link: Link | None = None,
    joins: list[Join] | None = None,
) -> Select:
    """SELECT `columns`, then the joined objects' columns, then KEY (the parent key) when linked,
    of the rows `args` pick."""
    source, aliases = table.table, Aliases()
    conditions = [matches_any(source.c[link.column], link.keys, link.bound)] if link else []
    condition = where_clause(table, source, args.where, aliases)
    if condition is not None:
        conditions.append(condition)
    keys = sort_keys(table, source, args.order_by, aliases)

    if args.distinct_on:
        parent, order = _distinct(source, columns, args.distinct_on, keys, conditions, link)
        partition, conditions = (parent.c[KEY] if link else None), []
    else:
        parent = source
        order = [sorted_by(key.expression, key.direction) for key in keys]
        partition = source.c[link.column] if link else None
    joined, joined_columns = _join_objects(parent, joins or [], aliases)
    key = [partition.label(KEY)] if partition is not None else []
    base = select(*(parent.c[name] for name in columns), *joined_columns, *key)
    base = base.select_from(joined).where(*conditions)

    per_parent = link is not None and len(link.keys) > 1 and (limit is not None or args.offset > 0)
    if not per_parent:
        statement = base.order_by(*order)
        if limit is not None:
            statement = statement.limit(limit)
        return statement.offset(args.offset) if args.offset else statement

    rank = func.row_number().over(partition_by=partition, order_by=order).label(RANK)
    ranked = base.add_columns(rank).subquery()
    outputs = [*columns, *(column.name for column in joined_columns), KEY]
    statement = select(*(ranked.c[name] for name in outputs)).where(ranked.c[RANK] > args.offset)
    if limit is not None:
        statement = statement.where(ranked.c[RANK] <= args.offset + limit)
    return statement.order_by(ranked.c[KEY], ranked.c[RANK])


def _distinct(
    source: Table,
    columns: list[str],
    distinct_on: list[str],
    keys: list[SortKey],
    conditions: list[ColumnElement[bool]],
    link: Link | None,
) -> tuple[Subquery, list[ColumnElement[Any]]]:
    """The DISTINCT ON subquery (per parent when linked), and the client's order over it."""
    selected = [source.c[name] for name in columns]
    if link:
        selected.append(source.c[link.column].label(KEY))
    lead = [SortKey(source.c[link.column], "asc")] if link else []
    leading = lead + distinct_keys(source, distinct_on, keys)
    labels = [f"__hw_o{i}" for i in range(len(keys))]
    inner = select(*selected, *(key.expression.label(label) for key, label in zip(keys, labels)))
    inner = _distinct_on(inner.where(*conditions), [key.expression for key in leading])
    subquery = inner.order_by(*(sorted_by(key.expression, key.direction) for key in leading + keys)).subquery()
    return subquery, [sorted_by(subquery.c[label], key.direction) for key, label in zip(keys, labels)]


def aggregate_query(
    table: TableInfo, measures: list[Measure], args: ListArgs, limit: int | None, link: Link | None = None
) -> Select:
    """One row of `measures` over the row set (one per parent, KEY first, when linked)."""
    columns = sorted({name for measure in measures for name in measure.columns}) or [table.key_column]
    if limit is None and not args.offset and not args.distinct_on:
        args = replace(args, order_by=[])  # every matching row counts: the order is irrelevant
    rows = row_set(table, columns, args, limit, link).subquery()
    values = [_measure(rows, measure).label(f"__hw_m{i}") for i, measure in enumerate(measures)]
    if link is None:
        return select(*values).select_from(rows)
    return select(rows.c[KEY], *values).group_by(rows.c[KEY])


def _measure(rows: Any, measure: Measure) -> ColumnElement[Any]:
    columns = [rows.c[name] for name in measure.columns]
    if measure.function != "count":
        return getattr(func, measure.function)(columns[0])
    if not columns:
        return func.count()
    operand = columns[0] if len(columns) == 1 else tuple_(*columns)
    return func.count(distinct(operand) if measure.distinct else operand)
