"""Read documents rendered from headwater's own schema, for the UI read corpus
(tests/graphql/ui_read_documents.py).

A `Part` names a root field, the relationships to follow from it (dotted paths) and the
arguments at each level; `render` selects EVERY scalar field of each object type on the way
(and, for an `_aggregate` type, every aggregate it offers), so whatever subset of those types a
client asks for is covered by a superset rather than mirrored. Argument values (or fields of an
input object) that are callables of the seed go as GraphQL variables, typed from the schema; the
others are written into the document as literals (enum values bare), so both ways are used.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    get_named_type,
    is_leaf_type,
    is_required_argument,
    parse,
    print_ast,
)
from headwater.server.graphql.schema import schema

from tests.ui_seed import Seed

SCHEMA = schema._schema


@dataclass(frozen=True)
class Part:
    """One root field of a read. `args` is keyed by `arg` (root) or `path.arg` (a followed
    relationship, `path` as in `follow`); `follow` segments may carry an alias (`before:logs`)."""

    root: str
    follow: tuple[str, ...] = ()
    args: Mapping[str, Any] = field(default_factory=dict)
    alias: str | None = None

    @property
    def key(self) -> str:
        return self.alias or self.root


def _field(type_: GraphQLObjectType, segment: str) -> tuple[str | None, str]:
    alias, _, name = segment.rpartition(":")
    if name not in type_.fields:
        raise KeyError(f"{type_.name} has no field {name!r}")
    return alias or None, name


def _leaves(type_: GraphQLObjectType) -> list[str]:
    return [name for name, f in type_.fields.items()
            if is_leaf_type(get_named_type(f.type)) and not any(is_required_argument(a) for a in f.args.values())]


def _everything(type_: GraphQLObjectType) -> str:
    """An aggregate's fields: every leaf and every nested object (max, min, sum...) in full."""
    parts = _leaves(type_)
    for name, f in type_.fields.items():
        inner = get_named_type(f.type)
        if isinstance(inner, GraphQLObjectType):
            parts.append(f"{name} {{ {_everything(inner)} }}")
    return " ".join(parts)


def literal(value: Any, type_: GraphQLInputType, variable: Callable[[str, Any, GraphQLInputType], str] | None = None,
            name: str = "") -> str:
    """`value` as a GraphQL literal of `type_`: enum values bare, input objects field by field; a
    callable inside an input object becomes a variable of that field's type (via `variable`)."""
    if callable(value) and variable is not None:
        return variable(name, value, type_)
    if isinstance(type_, GraphQLNonNull):
        return literal(value, type_.of_type, variable, name)
    if value is None:
        return "null"
    if isinstance(type_, GraphQLList):
        if not isinstance(value, list):  # a single value stands for a list of one
            return literal(value, type_.of_type, variable, name)
        return "[" + ", ".join(literal(item, type_.of_type, variable, name) for item in value) + "]"
    if isinstance(type_, GraphQLEnumType):
        return str(value)
    if isinstance(type_, GraphQLInputObjectType):
        return "{" + ", ".join(f"{k}: {literal(v, type_.fields[k].type, variable, f'{name}_{k}')}"
                               for k, v in value.items()) + "}"
    if isinstance(value, dict):
        raise TypeError("jsonb values go as variables")
    return json.dumps(value)


class _Renderer:
    def __init__(self) -> None:
        self.declared: dict[str, str] = {}      # variable name -> GraphQL type
        self.values: dict[str, Callable[[Seed], Any]] = {}

    def variable(self, name: str, value: Callable[[Seed], Any], type_: GraphQLInputType) -> str:
        variable = re.sub(r"\W", "_", name.strip("_"))
        self.declared[variable] = str(type_)
        self.values[variable] = value
        return f"${variable}"

    def arguments(self, prefix: str, field_args: Mapping[str, Any], given: Mapping[str, Any]) -> str:
        written = []
        for name, value in given.items():
            if name not in field_args:
                raise KeyError(f"no argument {name!r} at {prefix or 'root'}")
            written.append(f"{name}: {literal(value, field_args[name].type, self.variable, f'{prefix}_{name}')}")
        return f"({', '.join(written)})" if written else ""

    def selection(self, type_: GraphQLObjectType, tree: dict[str, dict], args: Mapping[str, Mapping[str, Any]],
                  path: str, prefix: str) -> str:
        parts = _leaves(type_)
        if type_.name.endswith("_aggregate") and "aggregate" in type_.fields:
            parts.append(f"aggregate {{ {_everything(get_named_type(type_.fields['aggregate'].type))} }}")
        for segment, subtree in tree.items():
            alias, name = _field(type_, segment)
            here = f"{path}.{alias or name}".strip(".")
            f = type_.fields[name]
            head = (f"{alias}: " if alias else "") + name + self.arguments(f"{prefix}_{here}", f.args, args.pop(here, {}))
            parts.append(f"{head} {{ {self.selection(get_named_type(f.type), subtree, args, here, prefix)} }}")
        return " ".join(parts)

    def part(self, part: Part) -> str:
        root = SCHEMA.query_type.fields[part.root]
        tree: dict[str, dict] = {}
        for dotted in part.follow:
            node = tree
            for segment in dotted.split("."):
                node = node.setdefault(segment, {})
        by_path: dict[str, dict[str, Any]] = {}
        for key, value in part.args.items():
            where, _, name = key.rpartition(".")
            by_path.setdefault(where, {})[name] = value
        prefix = part.key
        head = (f"{part.alias}: " if part.alias else "") + part.root + self.arguments(prefix, root.args, by_path.pop("", {}))
        text = f"{head} {{ {self.selection(get_named_type(root.type), tree, by_path, '', prefix)} }}"
        if by_path:
            raise KeyError(f"arguments for paths not followed: {sorted(by_path)}")
        return text


def render(name: str, parts: Iterable[Part]) -> tuple[str, Callable[[Seed], dict[str, Any]]]:
    """The document of a read named `name` and the function giving its variables from the seed."""
    renderer = _Renderer()
    body = " ".join(renderer.part(part) for part in parts)
    declared = ", ".join(f"${v}: {t}" for v, t in renderer.declared.items())
    operation = "".join(word.capitalize() for word in re.split(r"\W+", name))
    text = print_ast(parse(f"query {operation}{f'({declared})' if declared else ''} {{ {body} }}"))
    values = dict(renderer.values)
    return text, lambda seed: {variable: value(seed) for variable, value in values.items()}
