"""What the Hasura-style API exposes, read once from the SQLAlchemy metadata and `RELATIONSHIPS`.

Both halves of the package work from this catalogue: `types` turns it into GraphQL types and
`selection`/`loader` into SQL. Columns and relationships are listed alphabetically, as Hasura
lists them, so the printed schema does not depend on model declaration order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Boolean, Column as SqlColumn, Integer, Interval, MetaData, String, Table
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.types import DateTime, TypeEngine

from headwater.server.db.models import RELATIONSHIPS, Base, Relationship

# Hasura's scalar name for each column type, most specific first.
_SCALARS: tuple[tuple[type[TypeEngine], str], ...] = (
    (UUID, "uuid"),
    (DateTime, "timestamptz"),
    (JSONB, "jsonb"),
    (Interval, "interval"),
    (Boolean, "Boolean"),
    (Integer, "Int"),
    (String, "String"),
)

# Scalars with a Postgres max()/min() (no uuid, boolean or jsonb aggregates exist).
ORDERED_SCALARS = frozenset({"Int", "String", "timestamptz", "interval"})
# Scalars Hasura sums and averages: `sum` keeps the column's type, the statistics are Float.
NUMERIC_SCALARS = frozenset({"Int"})
STATISTICS = ("avg", "stddev", "stddev_pop", "stddev_samp", "var_pop", "var_samp", "variance")


def scalar_name(column_type: TypeEngine) -> str:
    for sql_type, name in _SCALARS:
        if isinstance(column_type, sql_type):
            return name
    raise TypeError(f"No Hasura scalar for column type {column_type!r}")


@dataclass(frozen=True)
class Column:
    name: str
    scalar: str
    nullable: bool

    @property
    def ordered(self) -> bool:
        return self.scalar in ORDERED_SCALARS

    @property
    def numeric(self) -> bool:
        return self.scalar in NUMERIC_SCALARS


@dataclass(frozen=True)
class TableInfo:
    name: str
    table: Table
    columns: dict[str, Column]
    relationships: dict[str, Relationship]
    # GraphQL field name on the row type -> ("column" | "object" | "array" | "aggregate", name).
    fields: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def key_column(self) -> str:
        """A column to select when the client selects none: `id`, or a function row's first."""
        return "id" if "id" in self.columns else next(iter(self.columns))

    @property
    def ordered_columns(self) -> list[Column]:
        return [column for column in self.columns.values() if column.ordered]

    @property
    def numeric_columns(self) -> list[Column]:
        return [column for column in self.columns.values() if column.numeric]


# Hasura's `utility.traversal`: the row type of the graph-walking functions (no table holds it;
# each call computes its rows, see `functions`). Its own metadata, so no migration creates it.
TRAVERSAL = Table(
    "utility_traversal",
    MetaData(),
    SqlColumn("task_id", UUID(as_uuid=True), nullable=False),
    SqlColumn("depth", Integer, nullable=False),
)
FUNCTION_RELATIONSHIPS = (Relationship("utility_traversal", "task", "task", "task_id", "id", many=False),)

# Root field -> the row type it returns: Hasura's tracked set-returning functions.
FUNCTIONS: dict[str, str] = {"utility_downstream_tasks": TRAVERSAL.name}


def _table_info(table: Table) -> TableInfo:
    columns = {
        c.name: Column(c.name, scalar_name(c.type), bool(c.nullable))
        for c in sorted(table.columns, key=lambda c: c.name)
    }
    relationships = {
        r.name: r
        for r in sorted((r for r in RELATIONSHIPS + FUNCTION_RELATIONSHIPS if r.source == table.name),
                        key=lambda r: r.name)
    }
    fields: dict[str, tuple[str, str]] = {name: ("column", name) for name in columns}
    for rel in relationships.values():
        names = [(rel.name, "array" if rel.many else "object")]
        if rel.many:
            names.append((f"{rel.name}_aggregate", "aggregate"))
        for name, kind in names:
            if name in fields:
                raise ValueError(f"{table.name}.{name} is both a column and a relationship")
            fields[name] = (kind, rel.name)
    return TableInfo(table.name, table, columns, relationships, dict(sorted(fields.items())))


TABLES: dict[str, TableInfo] = {
    name: _table_info(Base.metadata.tables[name]) for name in sorted(Base.metadata.tables)
}
# Every row type: the tables, then the functions' row types (which have no root fields of their own).
CATALOG: dict[str, TableInfo] = {**TABLES, TRAVERSAL.name: _table_info(TRAVERSAL)}


# GraphQL type names, as Hasura spells them; `selection` looks fields up by these names.
def row_type(table: str) -> str:
    return table


def aggregate_type(table: str) -> str:
    return f"{table}_aggregate"


def aggregate_fields_type(table: str) -> str:
    return f"{table}_aggregate_fields"


def extremum_type(table: str, function: str) -> str:
    """`<table>_max_fields`, `<table>_min_fields`, `<table>_sum_fields`, `<table>_avg_fields`, ..."""
    return f"{table}_{function}_fields"


# Root field name -> (kind, row type): `flow`, `flow_aggregate`, `flow_by_pk`, ...,
# `utility_downstream_tasks`, `utility_downstream_tasks_aggregate`.
ROOT_FIELDS: dict[str, tuple[str, str]] = {}
for _name in TABLES:
    ROOT_FIELDS[_name] = ("list", _name)
    ROOT_FIELDS[f"{_name}_aggregate"] = ("aggregate", _name)
    ROOT_FIELDS[f"{_name}_by_pk"] = ("by_pk", _name)
for _name, _row in FUNCTIONS.items():
    ROOT_FIELDS[_name] = ("list", _row)
    ROOT_FIELDS[f"{_name}_aggregate"] = ("aggregate", _row)
