"""The two kinds of Strawberry field the read API is made of.

A root field compiles the client's whole selection to SQL and returns nested dicts; every
nested field that takes arguments (relationships, aggregates) then only picks its value out
of the parent dict. Because two aliases of one relationship can carry different arguments,
those values are stored under the *response key* (alias), never the field name. Columns take
no arguments, so they stay plain dict keys read by the schema's default resolver.
"""

from __future__ import annotations

import enum
from typing import Any, Union, get_args, get_origin

from strawberry.annotation import StrawberryAnnotation
from strawberry.types.arguments import StrawberryArgument
from strawberry.types.base import StrawberryList, StrawberryOptional
from strawberry.types.field import StrawberryField
from strawberry.types.info import Info

from headwater.server.graphql.hasura.loader import resolve_root
from headwater.server.graphql.hasura.plan import result_key


class ResultField(StrawberryField):
    """A nested field whose value the root resolver already computed."""

    @property
    def is_basic_field(self) -> bool:
        # Not "basic": Strawberry then hands `get_result` the info object with the alias in it.
        return False

    def get_result(self, source: Any, info: Info | None, args: list[Any], kwargs: Any) -> Any:
        return source[result_key(info.path.key)]


class RootField(StrawberryField):
    """A root table field: `flow`, `flow_by_pk`, `flow_aggregate`, ..."""

    @property
    def is_basic_field(self) -> bool:
        return False

    def get_result(self, source: Any, info: Info | None, args: list[Any], kwargs: Any) -> Any:
        # The raw graphql-core info carries the AST, fragments and variables the compiler reads.
        return resolve_root(info._raw_info)


def resolved(annotation: Any) -> Any:
    """`annotation` (`Optional[...]`, `List[...]`, an enum, a class or scalar) as the Strawberry
    type it stands for, as Strawberry would resolve it.

    Strawberry resolves a field's typing annotation anew for every field, and the generated read
    types have thousands (a fifth of building them): handed the result, it has nothing left to
    resolve. The schema is the same (schema.graphql, tests/graphql/test_schema_file.py).
    """
    origin = get_origin(annotation)
    if origin is Union:
        (inner,) = [arg for arg in get_args(annotation) if arg is not type(None)]
        return StrawberryOptional(resolved(inner))
    if origin is list:
        (item,) = get_args(annotation)
        return StrawberryList(resolved(item))
    if isinstance(annotation, enum.EnumMeta) and hasattr(annotation, "__strawberry_definition__"):
        return annotation.__strawberry_definition__
    return annotation


def make_field(
    kind: type[StrawberryField],
    annotation: Any,
    arguments: dict[str, Any],
    description: str | None = None,
) -> StrawberryField:
    """A field of `kind` returning `annotation`, with optional arguments `{name: annotation}`."""
    result = kind(type_annotation=StrawberryAnnotation(resolved(annotation)), default=None, description=description)
    result.arguments = [
        StrawberryArgument(python_name=name, graphql_name=None, type_annotation=StrawberryAnnotation(resolved(arg)))
        for name, arg in arguments.items()
    ]
    return result
