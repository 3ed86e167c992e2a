"""Scalars of the Prefect Server API (`UUID`, `JSON`, `DateTime`) and of its Hasura half
(`uuid`, `jsonb`, `timestamptz`, `interval`).

Inputs are lenient the way the real client needs: naive timestamps are UTC, UUIDs in any case
or form are canonicalised, and a `JSON` given as an inline string literal is decoded (Prefect
Server's rule). Outputs are JSON values (never JSON-encoded strings) and ISO 8601 timestamps
with offset and microseconds, so no log is skipped by a client paging on timestamps.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any, NewType

import strawberry
from graphql import StringValueNode, ValueNode, value_from_ast_untyped

from headwater.server.domain.time_ranges import duration_from_seconds, utc_timestamp


def parse_uuid(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        raise ValueError(f"Could not parse UUID: {value}") from None


def parse_uuid_array(value: Any) -> list[uuid.UUID]:
    """Hasura's `_uuid`: a Postgres array literal (`"{uuid1,uuid2}"`, elements optionally quoted),
    or, more leniently, a JSON list of UUIDs."""
    if isinstance(value, str):
        text = value.strip()
        if not (text.startswith("{") and text.endswith("}")):
            raise ValueError(f'Could not parse _uuid: {value!r} (expected an array literal like "{{uuid1,uuid2}}")')
        items = [item.strip().strip('"').strip() for item in text[1:-1].split(",")]
        items = [] if items == [""] else items
    elif isinstance(value, list):
        items = value
    else:
        raise ValueError(f"Could not parse _uuid: {value!r}")
    return [parse_uuid(item) for item in items]


def serialize_uuid_array(value: Any) -> str:
    return "{" + ",".join(str(item) for item in value) + "}"


def parse_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        if not isinstance(value, str):
            raise ValueError(f"Could not parse DateTime: {value!r}")
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"Could not parse DateTime: {value!r}") from None
    try:
        return utc_timestamp(parsed)
    except ValueError as error:
        raise ValueError(f"Invalid DateTime: {error}") from None


def serialize_datetime(value: dt.datetime | str) -> str:
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.isoformat(timespec="microseconds")


def serialize_interval(value: dt.timedelta | str | None) -> Any:
    """Postgres-style text (`01:02:03`, `2 days 00:00:05`), as Hasura returned intervals."""
    if not isinstance(value, dt.timedelta):
        return value
    seconds = value.total_seconds()
    days, rest = divmod(abs(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{int(hours):02d}:{int(minutes):02d}:{secs:09.6f}".rstrip("0").rstrip(".")
    sign = "-" if seconds < 0 else ""
    return f"{sign}{int(days)} days {clock}" if days else f"{sign}{clock}"


def parse_interval(value: Any) -> dt.timedelta:
    try:
        return duration_from_seconds(value)
    except ValueError as error:
        raise ValueError(f"Could not parse interval: {error}") from None


def _json_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> Any:
    if isinstance(node, StringValueNode):
        try:
            return json.loads(node.value)
        except ValueError:
            return node.value
    return value_from_ast_untyped(node, variables)


def _untyped_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> Any:
    return value_from_ast_untyped(node, variables)


def _uuid_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> uuid.UUID:
    return parse_uuid(value_from_ast_untyped(node, variables))


def _uuid_array_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> list[uuid.UUID]:
    return parse_uuid_array(value_from_ast_untyped(node, variables))


def _datetime_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> dt.datetime:
    return parse_datetime(value_from_ast_untyped(node, variables))


def _identity(value: Any) -> Any:
    return value


UUID = NewType("UUID", uuid.UUID)
uuid_ = NewType("uuid", uuid.UUID)
uuid_array = NewType("_uuid", list)
DateTime = NewType("DateTime", dt.datetime)
timestamptz = NewType("timestamptz", dt.datetime)
JSON = NewType("JSON", object)
jsonb = NewType("jsonb", object)
interval = NewType("interval", dt.timedelta)


def _uuid_scalar(name: str, description: str) -> Any:
    return strawberry.scalar(
        name=name,
        description=description,
        serialize=str,
        parse_value=parse_uuid,
        parse_literal=_uuid_literal,
    )


def _datetime_scalar(name: str, description: str) -> Any:
    return strawberry.scalar(
        name=name,
        description=description,
        serialize=serialize_datetime,
        parse_value=parse_datetime,
        parse_literal=_datetime_literal,
    )


# Handed to StrawberryConfig(scalar_map=...): how each NewType above is parsed and printed.
SCALAR_MAP = {
    UUID: _uuid_scalar("UUID", "A UUID, canonical lowercase with hyphens."),
    uuid_: _uuid_scalar("uuid", "A UUID (Hasura spelling)."),
    uuid_array: strawberry.scalar(
        name="_uuid",
        description='An array of UUIDs as a Postgres array literal, `"{uuid1,uuid2}"` (Hasura spelling).',
        serialize=serialize_uuid_array,
        parse_value=parse_uuid_array,
        parse_literal=_uuid_array_literal,
    ),
    DateTime: _datetime_scalar("DateTime", "An ISO 8601 timestamp; naive values are UTC."),
    timestamptz: _datetime_scalar("timestamptz", "An ISO 8601 timestamp; naive values are UTC."),
    JSON: strawberry.scalar(
        name="JSON",
        description="Any JSON value. An inline string literal is decoded as JSON text.",
        serialize=_identity,
        parse_value=_identity,
        parse_literal=_json_literal,
    ),
    jsonb: strawberry.scalar(
        name="jsonb",
        description="Any JSON value (Hasura spelling).",
        serialize=_identity,
        parse_value=_identity,
        parse_literal=_untyped_literal,
    ),
    interval: strawberry.scalar(
        name="interval",
        description="A duration: Postgres text on output, seconds on input.",
        serialize=serialize_interval,
        parse_value=parse_interval,
        parse_literal=lambda node, variables=None: parse_interval(value_from_ast_untyped(node, variables)),
    ),
}
