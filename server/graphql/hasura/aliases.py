"""Table aliases for the joins and subqueries of one statement, reused across requests.

Relationship filters, sort keys and joins each need their own alias of the related table.
Creating an alias copies every column of its table, which costs more than building the rest
of a typical query; the k-th alias of a table within one statement is therefore always the same
cached (immutable) object. Past a bound, aliases are made afresh so that a huge request
cannot grow the cache.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import Table
from sqlalchemy.sql.expression import Alias

_CACHED_PER_TABLE = 16
_cache: dict[tuple[str, int], Alias] = {}


class Aliases:
    """Hands out distinct aliases for one statement."""

    def __init__(self) -> None:
        self._used: Counter[str] = Counter()

    def __call__(self, table: Table) -> Alias:
        index = self._used[table.name]
        self._used[table.name] += 1
        if index >= _CACHED_PER_TABLE:
            return table.alias(f"{table.name}_{index + 1}")
        key = (table.name, index)
        alias = _cache.get(key)
        if alias is None:
            alias = _cache[key] = table.alias(f"{table.name}_{index + 1}")
        return alias
