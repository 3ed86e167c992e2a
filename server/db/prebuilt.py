"""Hot statements run on the driver: compiled by SQLAlchemy once, executed on asyncpg per call.

SQLAlchemy Core spends about 120 µs of CPU per execution around a 20 µs driver call (cache key,
execution context, parameter and result metadata, the greenlet hop). For the one-statement fast
paths (create a run, change a state) that was a tenth of the request's CPU. A `Prebuilt`
statement is compiled at import with the asyncpg dialect and keeps what Core would do per call:

* parameters go through the same type processors (JSONB serialised as Core does, UUIDs, ...);
* the statement is prepared through SQLAlchemy's own adapter (its prepared-statement cache, or
  uniquely named statements when `HEADWATER_DB_STATEMENT_CACHE_SIZE=0` for PgBouncer);
* typed result columns go through the same result processors;
* a failure is translated by SQLAlchemy exactly as on its own path (the same `DBAPIError`
  classes, and a lost connection is invalidated so the pool discards it).

Only on an autocommit connection (`engine.autocommit`): there each statement is its own
transaction, so running it beside Core leaves no transaction state behind. Elsewhere (inside a
session's transaction) the statement runs through Core as usual.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NoReturn

from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import TextualSelect

# The engines are created without a custom JSON serializer, so this dialect's processors are theirs.
_DIALECT = asyncpg_dialect.dialect()


class Row(dict):
    """A result row: by column name, as an item or an attribute (like Core's Row)."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Prebuilt:
    """One `text()` statement (optionally `.columns(...)`-typed), compiled for asyncpg."""

    def __init__(self, statement: TextClause | TextualSelect):
        compiled = statement.compile(dialect=_DIALECT)
        self.statement = statement
        self.sql = compiled.string
        binds = compiled.binds
        for name in compiled.positiontup:
            if binds[name].expanding:
                raise ValueError(f"expanding parameter {name!r} cannot be prebuilt")
        self._parameters: list[tuple[str, Callable[[Any], Any] | None]] = [
            (name, binds[name].type._cached_bind_processor(_DIALECT)) for name in compiled.positiontup
        ]
        self._defaults = {name: binds[name].value for name in compiled.positiontup if binds[name].value is not None}
        self._results: dict[str, Callable[[Any], Any]] = {}
        for column in getattr(statement, "selected_columns", ()):
            processor = column.type._cached_result_processor(_DIALECT, None)
            if processor is not None:
                self._results[column.name] = processor

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        """The positional driver arguments, each through its type's bind processor."""
        values = []
        for name, process in self._parameters:
            value = params[name] if name in params else self._defaults.get(name)
            values.append(process(value) if process is not None else value)
        return values

    def row(self, record: Any) -> Row | None:
        if record is None:
            return None
        results = self._results
        return Row(
            (key, results[key](value) if key in results else value) for key, value in record.items()
        )

    async def first(self, connection: AsyncConnection, params: Mapping[str, Any]) -> Row | Any | None:
        """The statement's first row (None when it has none)."""
        adapted = _autocommit_driver(connection)
        if adapted is None:
            return (await connection.execute(self.statement, params)).first()
        return self.row(await _on_driver(connection, adapted, self.sql, lambda: self.arguments(params), "fetchrow"))


class PrebuiltSelect:
    """A built SELECT (the read layer keeps one per plan, see hasura.statements) compiled once for
    asyncpg, whose rows come back as tuples in column order, each value through its column's
    result processor, as Core's rows would hold them. Values written into the statement (a
    `where`'s, a limit) are its bound defaults; a call passes the rest (the parent keys)."""

    def __init__(self, statement: Any):
        compiled = statement.compile(dialect=_DIALECT)
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("parameters rendered at execution cannot be prebuilt")
        binds = compiled.binds
        for name in compiled.positiontup:
            if binds[name].expanding:
                raise ValueError(f"expanding parameter {name!r} cannot be prebuilt")
        self.statement = statement
        self.sql = compiled.string
        self._parameters: list[tuple[str, Callable[[Any], Any] | None]] = [
            (name, binds[name].type._cached_bind_processor(_DIALECT)) for name in compiled.positiontup
        ]
        self._defaults = {name: binds[name].effective_value for name in compiled.positiontup}
        self._results = [column.type._cached_result_processor(_DIALECT, None)
                         for column in compiled._result_columns]

    def arguments(self, params: Mapping[str, Any] | None) -> list[Any]:
        values = []
        for name, process in self._parameters:
            value = params[name] if params and name in params else self._defaults[name]
            values.append(process(value) if process is not None else value)
        return values

    async def all(self, connection: AsyncConnection, params: Mapping[str, Any] | None) -> list[tuple] | Any:
        """The statement's rows as tuples; off an autocommit connection, Core's result."""
        adapted = _autocommit_driver(connection)
        if adapted is None:
            return await connection.execute(self.statement, params)
        records = await _on_driver(connection, adapted, self.sql, lambda: self.arguments(params), "fetch")
        processors = self._results
        if not any(processors):
            return [tuple(record) for record in records]
        return [tuple(value if process is None else process(value) for process, value in zip(processors, record))
                for record in records]


async def _on_driver(
    connection: AsyncConnection, adapted: Any, sql: str, arguments: Callable[[], list[Any]], fetch: str
) -> Any:
    """`fetch` ("fetchrow" or "fetch") of `sql` on the asyncpg adapter `adapted`, prepared through
    its own statement cache; any failure raised as Core raises it."""
    try:
        values = arguments()
    except Exception as error:  # noqa: BLE001 - re-raised as SQLAlchemy raises it
        await connection.run_sync(_raise_as_core, None, error, sql, [])
    try:
        async with adapted._execute_mutex:
            prepared, _ = await adapted._prepare(sql, connection.dialect._invalidate_schema_cache_asof)
            return await getattr(prepared, fetch)(*values)
    except Exception as error:  # noqa: BLE001 - re-raised as SQLAlchemy raises it
        await connection.run_sync(_raise_as_core, adapted, error, sql, values)


def _autocommit_driver(connection: AsyncConnection) -> Any:
    """The asyncpg adapter under `connection` when it is open and in autocommit, else None."""
    sync = connection.sync_connection
    if sync is None or sync.closed or sync.invalidated:
        return None
    adapted = sync.connection.dbapi_connection
    return adapted if getattr(adapted, "autocommit", False) else None


def _raise_as_core(sync_connection: Any, adapted: Any, error: Exception, sql: str, arguments: list[Any]) -> NoReturn:
    """Raise `error` as Core would have: the driver's through the adapter's DBAPI translation,
    then wrapped by the Connection (which invalidates a connection the error shows is lost); a
    bind processor's (`adapted` None) as Core's StatementError."""
    try:
        if adapted is not None:
            adapted._handle_exception(error)
        raise error
    except Exception as dbapi_error:  # noqa: BLE001
        sync_connection._handle_dbapi_exception(dbapi_error, sql, tuple(arguments), None, None)
