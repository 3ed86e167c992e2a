"""Built statements kept per plan: a document of a known shape reuses its SELECTs.

Building a row set's SELECT (SQLAlchemy constructs, coercions, the cache key SQLAlchemy derives
to find its compiled form) cost more than running it for the flow runner's `flow_run_by_pk`.
A statement is a pure function of its plan: the table, the columns and joins, `where`,
`order_by`, `distinct_on`, `limit`, `offset`, and how many parent keys it is linked to. All
of that, values included (typed, so `1` and `true` differ), is the cache key; only the parent
keys (the `by_pk` id, a level's parent ids) are left out, bound per execution as one
parameter. A hit is therefore the statement a miss would build, with the same SQL and the
same values. Function rows (`utility_downstream_tasks`) are built per request (their source
is a subquery of the request's arguments). Authorization and argument checks run before this,
on every request.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from collections import OrderedDict
from typing import Any, Callable

from sqlalchemy import Select

from headwater.server.db.prebuilt import PrebuiltSelect
from headwater.server.graphql.hasura.catalog import CATALOG, TableInfo

# Distinct plans kept per process; the least recently used goes first. A fleet sends a handful
# of hot shapes; the bound keeps odd clients' one-off plans from growing the heap.
MAX_STATEMENTS = 512

_SCALARS = (str, int, float, bool, type(None), uuid.UUID, dt.datetime, dt.date, dt.time, dt.timedelta, decimal.Decimal)


class Uncacheable(Exception):
    """A plan part with no exact key (an unexpected value type): build the statement per request."""


def freeze(value: Any) -> Any:
    """A hashable key of `value` that tells apart every value the compiler would treat
    differently: types are part of it (`1`, `1.0` and `True` are equal in Python), dicts keep
    their order (the order conditions and sort keys are written in)."""
    if isinstance(value, dict):
        return ("{", tuple((key, freeze(item)) for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        return ("[", tuple(freeze(item) for item in value))
    if isinstance(value, enum.Enum):
        return (type(value), value.value)
    if isinstance(value, _SCALARS):
        return (type(value), value)
    raise Uncacheable(type(value).__name__)


def is_catalog_table(table: TableInfo) -> bool:
    known = CATALOG.get(table.name)
    return known is not None and known.table is table.table


class CachedSelect:
    """A kept statement and its driver form (headwater.server.db.prebuilt), compiled on first
    use: a hit then skips Core's per-execution work too. None when it has no driver form."""

    __slots__ = ("select", "_driver")

    def __init__(self, select: Select):
        self.select = select
        self._driver: PrebuiltSelect | None | bool = False

    @property
    def driver(self) -> PrebuiltSelect | None:
        if self._driver is False:
            try:
                self._driver = PrebuiltSelect(self.select)
            except ValueError:
                self._driver = None
        return self._driver  # type: ignore[return-value]


class StatementCache:
    """Plan key -> built Select; `enabled` False builds every statement (the general path)."""

    def __init__(self, size: int = MAX_STATEMENTS):
        self.size = size
        self.enabled = True
        self.hits = 0
        self.misses = 0
        self._statements: OrderedDict[Any, Select] = OrderedDict()

    def get(self, key: Any, build: Callable[[], Select]) -> Select:
        if not self.enabled:
            return build()
        statement = self._statements.get(key)
        if statement is not None:
            self._statements.move_to_end(key)
            self.hits += 1
            return statement
        statement = build()  # may raise (a bad `where`): nothing is kept then
        self.misses += 1
        self._statements[key] = statement
        if len(self._statements) > self.size:
            self._statements.popitem(last=False)
        return statement

    def clear(self) -> None:
        self._statements.clear()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._statements)


STATEMENTS = StatementCache()
