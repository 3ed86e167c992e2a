"""Runs a plan and stitches the results into nested dicts.

One query loads the root rows together with their object relationships (LEFT JOINs); then
each array relationship and aggregate costs one more query per selection, batched over all
parents of its level (`fk = ANY(:keys)`), its own object relationships joined in again. A
request therefore costs 1 + (number of array/aggregate selections) queries, however many rows
it returns. Rows are dicts of column values; related rows, lists and aggregates are stored
under `result_key(alias)` for `fields.ResultField` to pick up.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any, Awaitable, Callable, Iterator, Sequence

from graphql import FieldNode, GraphQLResolveInfo
from sqlalchemy.ext.asyncio import AsyncConnection

from headwater.server.db.models import Relationship
from headwater.server.graphql.hasura.catalog import CATALOG, ROOT_FIELDS, TableInfo
from headwater.server.graphql.hasura.compiler import Join, Link, aggregate_query, row_set
from headwater.server.graphql.hasura.functions import SOURCES
from headwater.server.graphql.hasura.plan import AggregatePlan, ListArgs, ListPlan, Measure, RowShape, result_key
from headwater.server.graphql.hasura.selection import SelectionReader
from headwater.server.graphql.hasura.statements import STATEMENTS, CachedSelect, Uncacheable, freeze, is_catalog_table

Row = dict[str, Any]


async def resolve_root(info: GraphQLResolveInfo) -> Any:
    """Resolves `t`, `t_by_pk` or `t_aggregate`: reads the whole selection (so that bad input
    fails before a connection is taken), then loads it through one connection."""
    load = plan_root(SelectionReader.of(info), info.parent_type.name, info.field_name, info.field_nodes)
    return await run_root(info.context, load)


Load = Callable[["Loader"], Awaitable[Any]]


def plan_root(reader: SelectionReader, parent_type: str, field_name: str, nodes: Sequence[FieldNode]) -> Load:
    """What a root read field loads, its arguments and selection read and checked (an error
    here is the client's: nothing has touched the database yet)."""
    kind, table_name = ROOT_FIELDS[field_name]
    table = CATALOG[table_name]
    arguments = reader.arguments(parent_type, nodes[0])
    function = SOURCES.get(field_name.removesuffix("_aggregate"))
    if function is not None:
        # A function's rows are a subquery computed from its `args`, read like a table.
        source, default_order = function
        table = replace(table, table=source(arguments.get("args")))
        if not arguments.get("order_by"):
            arguments["order_by"] = default_order
    if kind == "by_pk":
        shape = reader.row_shape(table, nodes)
        return lambda loader: loader.by_pk(shape, arguments["id"])
    args = reader.list_args(arguments)
    reader.check_args(table, args)
    if kind == "list":
        plan = ListPlan(args, reader.row_shape(table, nodes))
        return lambda loader: loader.rows(plan)
    aggregate = reader.aggregate_plan(table, args, nodes)
    return lambda loader: loader.aggregate(aggregate)


async def run_root(context: Any, load: Load) -> Any:
    """Runs a planned root read on a connection of the request's `context`."""
    # Reads only: outside a transaction (no BEGIN/ROLLBACK round trips; under READ COMMITTED a
    # transaction gave the statements no common snapshot anyway).
    async with context.autocommit() as connection:
        return await load(Loader(connection, context.settings.max_page_size))


def _columns(shape: RowShape) -> list[str]:
    """The selected columns plus those the children are joined on."""
    columns = list(shape.columns)
    for _, rel, _ in [*shape.objects, *shape.arrays, *shape.aggregates]:
        if rel.local_column not in columns:
            columns.append(rel.local_column)
    return columns or [shape.table.key_column]


def _joins(shape: RowShape) -> list[Join]:
    """The object relationships of `shape`, nested ones included, to load in the same query."""
    joins = []
    for key, rel, child in shape.objects:
        columns = _columns(child)
        if rel.remote_column not in columns:
            columns.append(rel.remote_column)
        joins.append(Join(key, rel, child.table, columns, _joins(child)))
    return joins


def _nest(values: Iterator[Any], columns: list[str], joins: list[Join]) -> Row:
    """One flat result row as a dict, with each joined object under its response key."""
    row = {name: next(values) for name in columns}
    _fill(row, joins, values)
    return row


def _fill(row: Row | None, joins: list[Join], values: Iterator[Any]) -> None:
    for join in joins:
        related: Row | None = {name: next(values) for name in join.columns}
        if related[join.rel.remote_column] is None:
            related = None  # the outer join found no row
        if row is not None:
            row[result_key(join.key)] = related
        _fill(related, join.joins, values)


def _parent_keys(rows: list[Row], rel: Relationship) -> list[Any]:
    return list(dict.fromkeys(row[rel.local_column] for row in rows if row[rel.local_column] is not None))


def _aggregate_result(plan: AggregatePlan, values: dict[Measure, Any]) -> Row:
    """The `aggregate` objects of `plan` from the measured values (none when there are no rows)."""
    result: Row = {}
    for key, parts in plan.aggregates:
        fields: Row = {}
        for name, part in parts.items():
            if isinstance(part, Measure):
                fields[result_key(name)] = values.get(part, 0)  # a count
            else:
                fields[result_key(name)] = {column: _number(values.get(measure)) for column, measure in part.items()}
        result[result_key(key)] = fields
    return result


def _number(value: Any) -> Any:
    """Postgres answers avg, stddev and variance of integers as numeric (a Decimal); GraphQL's
    Float wants a float."""
    return float(value) if isinstance(value, Decimal) else value


def _join_key(joins: list[Join]) -> tuple:
    return tuple((j.key, j.rel, j.table.name, tuple(j.columns), _join_key(j.joins)) for j in joins)


def _linked_statement(
    table: TableInfo, columns: list[str], args: ListArgs, limit: int | None, link: Link, joins: list[Join]
) -> tuple[Any, dict[str, Any]]:
    """The row set's statement, kept per plan (see `statements`), and its parent keys' parameters."""
    bound = Link(link.column, link.keys, bound=True)
    try:
        key = (
            table.name, tuple(columns), _join_key(joins), freeze(args.where), freeze(args.order_by),
            tuple(args.distinct_on), limit, args.offset, link.column, len(link.keys) == 1,
        )
    except Uncacheable:
        return row_set(table, columns, args, limit, link, joins), None
    if not STATEMENTS.enabled:  # the general path: built for this request, run through Core
        return row_set(table, columns, args, limit, bound, joins), bound.parameters()
    statement = STATEMENTS.get(key, lambda: CachedSelect(row_set(table, columns, args, limit, bound, joins)))
    return statement, bound.parameters()


class Loader:
    """Loads plans through one connection; `max_page_size` caps every list."""

    def __init__(self, session: AsyncConnection, max_page_size: int):
        self.session = session
        self.max_page_size = max_page_size

    def page_limit(self, requested: int | None) -> int:
        return self.max_page_size if requested is None else min(requested, self.max_page_size)

    def aggregate_limit(self, requested: int | None) -> int | None:
        """Aggregates cover every matching row unless the client limits them."""
        return None if requested is None else min(requested, self.max_page_size)

    async def _execute(self, statement: Any, parameters: dict[str, Any] | None = None) -> Any:
        # A value Postgres refuses (class 22: a bad SIMILAR TO pattern, ...) propagates to
        # headwater.server.graphql.errors, which answers it as the client's fault and names the field.
        if isinstance(statement, CachedSelect):
            driver = statement.driver
            if driver is not None:
                return await driver.all(self.session, parameters)  # rows as tuples, as Core's
            statement = statement.select
        return await self.session.execute(statement, parameters)

    async def _load(
        self, shape: RowShape, args: ListArgs, limit: int | None, link: Link | None = None
    ) -> list[tuple[Row, Any]]:
        """(row, parent key) pairs for the rows `args` pick, with their children attached."""
        columns, joins = _columns(shape), _joins(shape)
        if link is not None and is_catalog_table(shape.table):
            records = await self._execute(*_linked_statement(shape.table, columns, args, limit, link, joins))
        else:
            records = await self._execute(row_set(shape.table, columns, args, limit, link, joins))
        loaded = [(_nest(iter(record), columns, joins), record[-1] if link else None) for record in records]
        await self.attach(shape, [row for row, _ in loaded])
        return loaded

    async def rows(self, plan: ListPlan) -> list[Row]:
        return [row for row, _ in await self._load(plan.shape, plan.args, self.page_limit(plan.args.limit))]

    async def by_pk(self, shape: RowShape, id: Any) -> Row | None:
        loaded = await self._load(shape, ListArgs(), None, Link("id", [id]))
        return loaded[0][0] if loaded else None

    async def aggregate(self, plan: AggregatePlan) -> Row:
        values: dict[Measure, Any] = {}
        measures = plan.measures()
        if measures:
            statement = aggregate_query(plan.table, measures, plan.args, self.aggregate_limit(plan.args.limit))
            values = dict(zip(measures, (await self._execute(statement)).one()))
        result = _aggregate_result(plan, values)
        for key, shape in plan.nodes:
            result[result_key(key)] = await self.rows(ListPlan(plan.args, shape))
        return result

    async def attach(self, shape: RowShape, rows: list[Row]) -> None:
        """Loads the array relationships and aggregates selected on `rows` (and on the objects
        joined to them), one batched query each."""
        if not rows:
            return
        for key, _, child in shape.objects:
            await self.attach(child, [row[result_key(key)] for row in rows if row[result_key(key)] is not None])
        for key, rel, plan in shape.arrays:
            groups = await self._children(rel, plan.args, plan.shape, rows)
            for row in rows:
                row[result_key(key)] = groups.get(row[rel.local_column], [])
        for key, rel, aggregate in shape.aggregates:
            await self._attach_aggregate(key, rel, aggregate, rows)

    async def _children(
        self, rel: Relationship, args: ListArgs, shape: RowShape, rows: list[Row]
    ) -> dict[Any, list[Row]]:
        """The related rows of every parent in `rows`, grouped by parent key."""
        keys = _parent_keys(rows, rel)
        if not keys:
            return {}
        groups: dict[Any, list[Row]] = {}
        link = Link(rel.remote_column, keys)
        for child, parent in await self._load(shape, args, self.page_limit(args.limit), link):
            groups.setdefault(parent, []).append(child)
        return groups

    async def _attach_aggregate(self, key: str, rel: Relationship, plan: AggregatePlan, rows: list[Row]) -> None:
        keys = _parent_keys(rows, rel)
        measures = plan.measures()
        per_parent: dict[Any, dict[Measure, Any]] = {}
        if keys and measures:
            link = Link(rel.remote_column, keys)
            limit = self.aggregate_limit(plan.args.limit)
            statement = aggregate_query(plan.table, measures, plan.args, limit, link)
            for record in await self._execute(statement):
                per_parent[record[0]] = dict(zip(measures, record[1:]))
        nodes = [(node_key, await self._children(rel, plan.args, shape, rows)) for node_key, shape in plan.nodes]
        for row in rows:
            parent = row[rel.local_column]
            result = _aggregate_result(plan, per_parent.get(parent, {}))
            for node_key, groups in nodes:
                result[result_key(node_key)] = groups.get(parent, [])
            row[result_key(key)] = result
