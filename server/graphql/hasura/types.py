"""Generates Hasura's GraphQL types for every table in the catalogue, and the root `Query`.

Per table `t`: the row type `t`, `t_bool_exp`, `t_order_by`, `t_select_column`, `t_aggregate`
(`aggregate { count max min }`, and `sum avg stddev ...` over
numeric columns, `nodes`), and the root fields `t`, `t_by_pk`, `t_aggregate`.
Types are built as classes at import time and decorated with Strawberry. Types that refer to
each other (a bool_exp holds its relationships' bool_exps) are created as empty shells first,
so every annotation can name its class directly, then finished and decorated.
"""

from __future__ import annotations

import enum
from typing import Any, List, Optional

import strawberry
from strawberry import UNSET
from strawberry.types.field import StrawberryField

from headwater.server.graphql.hasura.catalog import CATALOG, FUNCTIONS, STATISTICS, TABLES, TableInfo
from headwater.server.graphql.hasura.fields import ResultField, RootField, make_field, resolved
from headwater.server.graphql.scalars import interval, jsonb, timestamptz, uuid_, uuid_array

SCALAR_TYPES: dict[str, Any] = {
    "uuid": uuid_,
    "timestamptz": timestamptz,
    "jsonb": jsonb,
    "interval": interval,
    "String": str,
    "Int": int,
    "Boolean": bool,
}

DIRECTIONS = ("asc", "asc_nulls_first", "asc_nulls_last", "desc", "desc_nulls_first", "desc_nulls_last")

OrderBy = strawberry.enum(
    enum.Enum("order_by", [(d, d) for d in DIRECTIONS]),
    name="order_by",
    description="Sort direction; `asc` puts nulls last and `desc` puts them first, as in Postgres.",
)


def _shell(name: str) -> type:
    # With a docstring of its own, dataclasses does not compute the class's signature to write
    # one (a tenth of building these types); Strawberry reads descriptions from its arguments.
    return type(name, (), {"__module__": __name__, "__doc__": f"The generated GraphQL type `{name}`."})


def _finish(shell: type, fields: dict[str, Any], *, is_input: bool, description: str | None = None) -> type:
    """Give `shell` its fields (`{name: annotation or StrawberryField}`) and decorate it."""
    annotations: dict[str, Any] = {}
    for name, spec in fields.items():
        if isinstance(spec, StrawberryField):
            setattr(shell, name, spec)
            annotations[name] = spec.type_annotation.annotation
        else:
            annotations[name] = resolved(spec)  # fields.py says why
            if is_input:
                setattr(shell, name, UNSET)
    shell.__annotations__ = annotations
    decorate = strawberry.input if is_input else strawberry.type
    return decorate(shell, name=shell.__name__, description=description)


def _comparison_exp(scalar: str) -> type:
    """`<scalar>_comparison_exp`: the operators Hasura offers on one column type."""
    value = SCALAR_TYPES[scalar]
    ops: dict[str, Any] = {op: value for op in ("_eq", "_gt", "_gte", "_lt", "_lte", "_neq")}
    ops.update(_in=List[value], _nin=List[value], _is_null=bool)
    if scalar == "String":
        ops.update({op: str for op in ("_ilike", "_like", "_nilike", "_nlike", "_nsimilar", "_similar")})
    if scalar == "jsonb":
        ops.update(
            _contained_in=value, _contains=value, _has_key=str, _has_keys_all=List[str], _has_keys_any=List[str]
        )
    name = f"{scalar}_comparison_exp"
    fields = {op: Optional[ops[op]] for op in sorted(ops)}
    return _finish(_shell(name), fields, is_input=True, description=f"Conditions on a `{scalar}` column.")


class _Builder:
    """Builds every generated type once, keyed by its GraphQL name."""

    def __init__(self, tables: dict[str, TableInfo]):
        self.tables = tables
        self.comparisons: dict[str, type] = {}
        self.shells = {
            f"{t}{suffix}": _shell(f"{t}{suffix}")
            for t in tables
            for suffix in ("", "_bool_exp", "_order_by", "_aggregate_order_by", "_aggregate")
        }
        self.select_columns = {
            t: strawberry.enum(
                enum.Enum(f"{t}_select_column", [(c, c) for c in info.columns]),
                name=f"{t}_select_column",
                description=f"The columns of `{t}`, for `distinct_on` and `count(columns:)`.",
            )
            for t, info in tables.items()
        }

    def comparison(self, scalar: str) -> type:
        if scalar not in self.comparisons:
            self.comparisons[scalar] = _comparison_exp(scalar)
        return self.comparisons[scalar]

    def list_arguments(self, table: str) -> dict[str, Any]:
        return {
            "distinct_on": Optional[List[self.select_columns[table]]],
            "limit": Optional[int],
            "offset": Optional[int],
            "order_by": Optional[List[self.shells[f"{table}_order_by"]]],
            "where": Optional[self.shells[f"{table}_bool_exp"]],
        }

    def build(self) -> type:
        for info in self.tables.values():
            self.bool_exp(info)
            self.order_by(info)
            self.aggregate_order_by(info)
            self.row(info)
            self.aggregate(info)
        return self.query()

    def related(self, info: TableInfo, relationship: str, suffix: str = "") -> type:
        """The shell of the related table's type `<target><suffix>`."""
        return self.shells[info.relationships[relationship].target + suffix]

    def bool_exp(self, info: TableInfo) -> None:
        shell = self.shells[f"{info.name}_bool_exp"]
        fields: dict[str, Any] = {"_and": Optional[List[shell]], "_not": Optional[shell]}
        fields["_or"] = Optional[List[shell]]
        for name, (kind, target) in info.fields.items():
            if kind == "column":
                fields[name] = Optional[self.comparison(info.columns[name].scalar)]
            elif kind in ("object", "array"):
                fields[name] = Optional[self.related(info, target, "_bool_exp")]
        description = f"A filter on `{info.name}` rows. A null operand means no condition (Hasura v1)."
        _finish(shell, fields, is_input=True, description=description)

    def order_by(self, info: TableInfo) -> None:
        fields: dict[str, Any] = {}
        for name, (kind, target) in info.fields.items():
            if kind == "column":
                fields[name] = Optional[OrderBy]
            elif kind == "object":
                fields[name] = Optional[self.related(info, target, "_order_by")]
            elif kind == "aggregate":
                fields[name] = Optional[self.related(info, target, "_aggregate_order_by")]
        description = f"Sort keys for `{info.name}`, applied in the order written."
        _finish(self.shells[f"{info.name}_order_by"], fields, is_input=True, description=description)

    def aggregate_order_by(self, info: TableInfo) -> None:
        """Ordering parents by an aggregate of their children (`flows_aggregate: {count: desc}`)."""
        extremum = {c.name: Optional[OrderBy] for c in info.ordered_columns}
        numeric = {c.name: Optional[OrderBy] for c in info.numeric_columns}
        fields: dict[str, Any] = {"count": Optional[OrderBy]}
        for function, columns in self.aggregate_functions(info, extremum, numeric, numeric):
            order = _finish(_shell(f"{info.name}_{function}_order_by"), columns, is_input=True)
            fields[function] = Optional[order]
        _finish(self.shells[f"{info.name}_aggregate_order_by"], dict(sorted(fields.items())), is_input=True)

    @staticmethod
    def aggregate_functions(info: TableInfo, extremum: dict, sums: dict, statistics: dict) -> list[tuple[str, dict]]:
        """Hasura's aggregate functions of a table with their columns: max and min over the
        ordered columns; sum and the statistics only when it has numeric ones."""
        functions = [("max", extremum), ("min", extremum)]
        if info.numeric_columns:
            functions += [("sum", sums), *((name, statistics) for name in STATISTICS)]
        return functions

    def row(self, info: TableInfo) -> None:
        fields: dict[str, Any] = {}
        for name, (kind, target) in info.fields.items():
            if kind == "column":
                column = info.columns[name]
                value = SCALAR_TYPES[column.scalar]
                fields[name] = Optional[value] if column.nullable else value
            elif kind == "object":
                description = f"The `{info.relationships[target].target}` row this one refers to."
                fields[name] = make_field(ResultField, Optional[self.related(info, target)], {}, description)
            else:
                rel = info.relationships[target]
                children = f"`{rel.target}` rows whose `{rel.remote_column}` is this row's id"
                if kind == "array":
                    returns, description = List[self.related(info, target)], f"The {children}."
                else:
                    returns, description = self.related(info, target, "_aggregate"), f"Aggregates over the {children}."
                fields[name] = make_field(ResultField, returns, self.list_arguments(rel.target), description)
        _finish(self.shells[info.name], fields, is_input=False, description=f"A row of `{info.name}`.")

    def aggregate(self, info: TableInfo) -> None:
        table = info.name
        extremum = {c.name: Optional[SCALAR_TYPES[c.scalar]] for c in info.ordered_columns}
        count_arguments = {"columns": Optional[List[self.select_columns[table]]], "distinct": Optional[bool]}
        sums = {c.name: Optional[SCALAR_TYPES[c.scalar]] for c in info.numeric_columns}
        statistics = {c.name: Optional[float] for c in info.numeric_columns}
        fields: dict[str, Any] = {"count": make_field(ResultField, int, count_arguments)}
        for function, columns in self.aggregate_functions(info, extremum, sums, statistics):
            values = _finish(_shell(f"{table}_{function}_fields"), columns, is_input=False)
            fields[function] = make_field(ResultField, Optional[values], {})
        aggregate_fields = _finish(_shell(f"{table}_aggregate_fields"), dict(sorted(fields.items())), is_input=False)
        fields = {
            "aggregate": make_field(ResultField, Optional[aggregate_fields], {}),
            "nodes": make_field(ResultField, List[self.shells[table]], {}),
        }
        _finish(self.shells[f"{table}_aggregate"], fields, is_input=False)

    def function_arguments(self, name: str) -> type:
        """`<function>_args`: the SQL function's parameters (both walks take the same ones)."""
        fields = {"depth_limit": Optional[int], "start_task_ids": Optional[uuid_array]}
        return _finish(_shell(f"{name}_args"), fields, is_input=True,
                       description=f"Arguments of `{name}`: the tasks to start from, and how deep to walk (at most 50).")

    def query(self) -> type:
        fields: dict[str, Any] = {}
        for name, table in FUNCTIONS.items():
            arguments = {"args": self.function_arguments(name), **self.list_arguments(table)}
            rows, aggregate = List[self.shells[table]], self.shells[f"{table}_aggregate"]
            description = f"The `{table}` rows of the tasks downstream of `args.start_task_ids`, with their depth."
            fields[name] = make_field(RootField, rows, arguments, description)
            fields[f"{name}_aggregate"] = make_field(RootField, aggregate, arguments, f"Aggregates over `{name}`.")
        for table in TABLES:
            arguments = self.list_arguments(table)
            rows, aggregate = List[self.shells[table]], self.shells[f"{table}_aggregate"]
            fields[table] = make_field(RootField, rows, arguments, f"Rows of `{table}`.")
            description = f"Aggregates over `{table}`."
            fields[f"{table}_aggregate"] = make_field(RootField, aggregate, arguments, description)
            row = Optional[self.shells[table]]
            fields[f"{table}_by_pk"] = make_field(RootField, row, {"id": uuid_}, f"One `{table}` row by id.")
        return _finish(_shell("Query"), fields, is_input=False)


Query = _Builder(CATALOG).build()
