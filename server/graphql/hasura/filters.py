"""Compiles a Hasura boolean expression (`<table>_bool_exp`) to a SQLAlchemy condition.

Hasura v1 semantics, which the Prefect client relies on: an operand given as null means no
condition (`{name: {_eq: null}}` matches every row), `{}` is true (also inside `_and`),
`_in: []` matches nothing and `_nin: []` everything. Relationship conditions are EXISTS
subqueries, so an array relationship matches when any related row does. Every value is a
bound parameter typed as its column, so `_gt: true` on a Boolean column orders false before true
and `_contains: "x"` on a jsonb column is `@> '"x"'::jsonb` (an array containing "x"), both as in
Hasura and Postgres.
"""

from __future__ import annotations

from typing import Any, Callable

from sqlalchemy import ARRAY, JSON, Text, and_, any_, exists, false, literal, not_, or_, select, true
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

from headwater.server.db.models import Relationship
from headwater.server.domain.errors import InvalidInput
from headwater.server.graphql.hasura.aliases import Aliases
from headwater.server.graphql.hasura.catalog import CATALOG, TableInfo

# Deeper expressions are refused: nothing legitimate needs them, and each level is a subquery
# or a nested condition for Postgres to plan.
MAX_DEPTH = 32

Condition = ColumnElement[bool]


def where_clause(
    table: TableInfo, source: FromClause, expression: dict[str, Any] | None, aliases: Aliases
) -> Condition | None:
    """The condition for `expression` on `source` (the table or an alias of it); None if none."""
    return _Conditions(aliases).bool_exp(table, source, expression, 1)


class _Conditions:
    """Compiles one statement's conditions; relationship conditions draw aliases from `aliases`."""

    def __init__(self, aliases: Aliases):
        self.aliases = aliases

    def bool_exp(
        self, table: TableInfo, source: FromClause, expression: dict[str, Any] | None, depth: int
    ) -> Condition | None:
        if depth > MAX_DEPTH:
            raise InvalidInput(f"The `where` expression is nested more than {MAX_DEPTH} levels deep.")
        if not expression:
            return None
        conditions: list[Condition] = []
        for key, value in expression.items():
            if value is None:
                continue
            if key == "_and":
                condition = _all([self.bool_exp(table, source, item, depth + 1) for item in value])
            elif key == "_or":
                condition = _any([self.bool_exp(table, source, item, depth + 1) for item in value])
            elif key == "_not":
                inner = self.bool_exp(table, source, value, depth + 1)
                condition = false() if inner is None else not_(inner)
            elif key in table.columns:
                column = source.c[key]
                condition = _all([_compare(column, key, op, operand) for op, operand in value.items()])
            else:
                condition = self.related(table.relationships[key], source, value, depth + 1)
            if condition is not None:
                conditions.append(condition)
        return _all(conditions)

    def related(self, rel: Relationship, source: FromClause, expression: dict[str, Any], depth: int) -> Condition:
        target = CATALOG[rel.target]
        alias = self.aliases(target.table)
        condition = alias.c[rel.remote_column] == source.c[rel.local_column]
        inner = self.bool_exp(target, alias, expression, depth)
        query = select(literal(1)).select_from(alias).where(condition)
        return exists(query if inner is None else query.where(inner))


def _all(conditions: list[Condition | None]) -> Condition | None:
    present = [c for c in conditions if c is not None]
    if not present:
        return None
    return present[0] if len(present) == 1 else and_(*present)


def _any(conditions: list[Condition | None]) -> Condition | None:
    if not conditions:
        return false()  # `_or: []`: no alternative holds
    if any(c is None for c in conditions):
        return None  # one alternative is `{}`, which is true
    return conditions[0] if len(conditions) == 1 else or_(*conditions)


def _array(column: Any, values: list[Any]) -> Any:
    return literal(list(values), ARRAY(column.type))


def _in(column: Any, values: list[Any]) -> Condition:
    """`column = ANY(array)` for one bound array; jsonb values are bound one by one instead,
    because an array of jsonb whose items are themselves lists reads as a 2-D array."""
    if not values:
        return false()
    if isinstance(column.type, JSON):
        return column.in_([_value(column, value) for value in values])
    return column == any_(_array(column, values))


def _keys(values: list[str]) -> Any:
    return literal(list(values), ARRAY(Text))


def _value(column: Any, value: Any) -> Any:
    """`value` bound as the column's type. Left to itself SQLAlchemy binds a str as VARCHAR
    (`jsonb @> varchar` does not exist) and refuses `column > true`."""
    return literal(value, column.type)


_OPERATORS: dict[str, Callable[[Any, Any], Condition]] = {
    "_eq": lambda c, v: c == _value(c, v),
    "_neq": lambda c, v: c != _value(c, v),
    "_gt": lambda c, v: c > _value(c, v),
    "_gte": lambda c, v: c >= _value(c, v),
    "_lt": lambda c, v: c < _value(c, v),
    "_lte": lambda c, v: c <= _value(c, v),
    "_in": _in,
    "_nin": lambda c, v: not_(_in(c, v)) if v else true(),
    "_is_null": lambda c, v: c.is_(None) if v else c.is_not(None),
    "_like": lambda c, v: c.like(v),
    "_nlike": lambda c, v: c.not_like(v),
    "_ilike": lambda c, v: c.ilike(v),
    "_nilike": lambda c, v: c.not_ilike(v),
    "_similar": lambda c, v: c.op("SIMILAR TO", is_comparison=True)(v),
    "_nsimilar": lambda c, v: c.op("NOT SIMILAR TO", is_comparison=True)(v),
    "_contains": lambda c, v: c.contains(_value(c, v)),
    "_contained_in": lambda c, v: c.contained_by(_value(c, v)),
    "_has_key": lambda c, v: c.has_key(v),
    "_has_keys_any": lambda c, v: c.has_any(_keys(v)),
    "_has_keys_all": lambda c, v: c.has_all(_keys(v)),
}


def _compare(column: Any, name: str, operator: str, operand: Any) -> Condition | None:
    if operand is None:
        return None
    if _has_nul(operand):
        raise InvalidInput(
            f"Invalid value in `where`: `{name}.{operator}` contains a NUL character (\\u0000), "
            "which Postgres text cannot hold."
        )
    return _OPERATORS[operator](column, operand)


def _has_nul(operand: Any) -> bool:
    """Whether a string operand (or one in an `_in` list) holds U+0000, which no text column can."""
    if isinstance(operand, str):
        return "\x00" in operand
    return isinstance(operand, list) and any(isinstance(item, str) and "\x00" in item for item in operand)
