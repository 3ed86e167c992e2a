"""Document checks: cost limits, and a validation cache keyed by the parsed document's structure.

Cost limits (each a setting, see headwater.server.settings): tokens (enforced while parsing, as
Strawberry's MaxTokensLimiter does), depth, aliases, root fields and directives (counted with
fragments expanded, each fragment once, so fan-out through fragments is counted at its real
size in linear time), and the items of one list in a mutation's input (the rows one request
writes). Strawberry's MaxAliasesLimiter and QueryDepthLimiter are not used: they take a fixed
limit (these come from the request's settings), the depth limiter builds a new rule per
request, and the alias limiter re-walks a fragment at every spread (exponential time).

The validation cache. The Prefect client writes ids into its hottest documents as literals
(heartbeats, task-run lookups, the flow runner's `flow_run_by_pk`), so no two of its requests
share a text and a cache keyed by the text never hits; validating against this large schema
costs milliseconds. The key is therefore the parsed document (never its text: comments and
string contents must not be able to hide anything) with the *values* of string, int and float
literals replaced by their kind and by the first position at which the same value occurs.
Documents sharing a key have the same AST except for those values, so:
- every rule that looks at kinds, names, structure, enums, booleans, nulls, lists, objects,
  variables and directives gives the same answer;
- the overlapping-fields rule, which compares argument values, sees the same equalities;
- what remains, a literal's own validity (a malformed uuid, an Int out of range), is checked
  again when the field's arguments are coerced, which refuses the request with a clear error.
Variable default values are kept verbatim (their coercion is not re-checked). Only documents
that passed every check are cached, and the key includes the limits in force.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterator

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    NameNode,
    Node,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    FloatValueNode,
    IntValueNode,
    VariableDefinitionNode,
    parse,
    type_from_ast,
)
from graphql.validation import MaxIntrospectionDepthRule
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from headwater.server.domain.errors import InvalidInput
from headwater.server.graphql.document_shapes import MAX_CACHED_TOKENS, ShapeInfo, ShapeParser
from headwater.server.settings import Settings

# Fields whose subtree is the schema's own description: bounded by MaxIntrospectionDepthRule
# (graphql-core's rule for `fields`/`interfaces`/... nesting), not by the query depth, so the
# standard introspection query (15 levels of `ofType`) passes. Only introspection types live
# below them, so no data field can hide there.
INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})

# Rules added to the standard ones, defined once (a rule built per request defeats the cache).
EXTRA_RULES = (MaxIntrospectionDepthRule,)


@dataclass(frozen=True)
class DocumentLimits:
    depth: int
    aliases: int
    root_fields: int
    directives: int
    tokens: int
    list_items: int

    @classmethod
    def of(cls, settings: Settings) -> "DocumentLimits":
        return cls(
            depth=settings.max_query_depth,
            aliases=settings.max_query_aliases,
            root_fields=settings.max_query_root_fields,
            directives=settings.max_query_directives,
            tokens=settings.max_query_tokens,
            list_items=settings.max_rows_per_write,
        )


_DEFAULT_SETTINGS = Settings()


def request_settings(context: Any) -> Settings:
    """The settings of the app serving this request (defaults when executed without one)."""
    return getattr(context, "settings", None) or _DEFAULT_SETTINGS


# ---------------------------------------------------------------------------- cache key

_FIELDS: dict[type, tuple[str, ...]] = {}
_ABSTRACTED = frozenset({StringValueNode, IntValueNode, FloatValueNode})


def document_key(document: DocumentNode, *, positional: bool = False) -> tuple:
    """The document's AST as nested tuples, locations dropped, literal values abstracted.

    A string/int/float literal becomes (kind, n), where n numbers the distinct values in order
    of first appearance (a block string and a quoted string of the same text are distinct, as
    they print differently), so equal values stay equal and different ones different.

    `positional` gives the structure alone: every literal, those in variable definitions too,
    becomes (kind, its position), so (structure, which literals are equal, the verbatim values
    in variable definitions) determines the key above (see `shape_key`).
    """
    literals: dict[tuple, int] = {}
    positions = iter(range(1 << 62))

    def walk(value: Any, abstract: bool) -> Any:
        kind = type(value)
        if kind is NameNode:
            return value.value  # its place in the parent's tuple says what it names
        if kind is list or kind is tuple:
            return tuple([walk(item, abstract) for item in value])
        if not isinstance(value, Node):
            return value  # a bool, None, an OperationType, a string of a non-abstracted value
        if positional and kind in _ABSTRACTED:
            return (value.kind, "at", next(positions))
        if abstract and kind in _ABSTRACTED:
            identity = (kind, value.value, getattr(value, "block", None))
            return (value.kind, literals.setdefault(identity, len(literals)))
        names = _FIELDS.get(kind)
        if names is None:
            names = _FIELDS[kind] = tuple(k for k in kind.keys if k != "loc")
        inner = abstract and kind is not VariableDefinitionNode
        return (value.kind, *[walk(getattr(value, name, None), inner) for name in names])

    return walk(document, True)


class _Structure:
    """A positional document key with its hash computed once (it is looked up per request)."""

    __slots__ = ("value", "hash")

    def __init__(self, value: tuple):
        self.value, self.hash = value, hash(value)

    def __hash__(self) -> int:
        return self.hash

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, _Structure) and self.hash == other.hash and self.value == other.value)


def shape_key(shape: ShapeInfo) -> tuple:
    """The validation key of a document of a known shape, equal for two such documents exactly
    when their `document_key`s are equal, without walking the document."""
    template = shape.template
    if template.structure is None:
        template.structure = _Structure(document_key(template.document, positional=True))
    return ("shape", template.structure, shape.pattern, shape.defaults)


# ---------------------------------------------------------------------------- cost limits


@dataclass
class _Cost:
    depth: int = 0
    aliases: int = 0
    directives: int = 0
    fields: int = 0  # field selections at this level: an operation's root fields


class _CostCounter:
    """Measures selection sets with fragments expanded; each fragment is measured once, so a
    fragment spread 2^30 times through nesting counts as 2^30 without being walked 2^30 times."""

    def __init__(self, document: DocumentNode):
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.measured: dict[str, _Cost] = {}
        # Fragments being measured: a cycle is cut here and refused by NoFragmentCyclesRule.
        self.active: set[str] = set()

    def selection_set(self, selection_set: SelectionSetNode | None) -> _Cost:
        cost = _Cost()
        if selection_set is None:
            return cost
        for selection in selection_set.selections:
            cost.directives += len(selection.directives or ())
            if isinstance(selection, FieldNode):
                inner = self.selection_set(selection.selection_set)
                cost.fields += 1
                cost.aliases += inner.aliases + (1 if selection.alias else 0)
                cost.directives += inner.directives
                level = 1 if selection.name.value in INTROSPECTION_ROOTS else 1 + inner.depth
                cost.depth = max(cost.depth, level)
                continue
            if isinstance(selection, InlineFragmentNode):
                inner = self.selection_set(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                inner = self.fragment(selection.name.value)
            else:  # pragma: no cover - the grammar has no other selection
                continue
            cost.fields += inner.fields
            cost.aliases += inner.aliases
            cost.directives += inner.directives
            cost.depth = max(cost.depth, inner.depth)
        return cost

    def fragment(self, name: str) -> _Cost:
        if name in self.measured:
            return self.measured[name]
        definition = self.fragments.get(name)
        if definition is None or name in self.active:
            return _Cost()
        self.active.add(name)
        cost = self.selection_set(definition.selection_set)
        self.active.discard(name)
        self.measured[name] = cost
        return cost


def _limit_error(what: str, count: int, limit: int, setting: str, node: Node | None) -> GraphQLError:
    return GraphQLError(
        f"The query has {count} {what}; the limit is {limit} (HEADWATER_{setting}).", node
    )


def _longest_literal_list(document: DocumentNode) -> ListValueNode | None:
    """The longest list literal in the document (its length is part of the cache key)."""
    longest: ListValueNode | None = None
    stack: list[Any] = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, Node):
            if isinstance(value, ListValueNode) and (longest is None or len(value.values) > len(longest.values)):
                longest = value
            names = _FIELDS.get(type(value))
            if names is None:
                names = _FIELDS[type(value)] = tuple(k for k in value.keys if k != "loc")
            stack.extend(getattr(value, name, None) for name in names)
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
    return longest


def check_limits(document: DocumentNode, limits: DocumentLimits) -> list[GraphQLError]:
    """Errors for each cost limit the document breaks (tokens are limited by the parser)."""
    counter = _CostCounter(document)
    errors: list[GraphQLError] = []
    aliases = directives = 0
    has_mutation = False
    try:
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                has_mutation |= definition.operation == OperationType.MUTATION
                cost = counter.selection_set(definition.selection_set)
                aliases += cost.aliases
                directives += cost.directives + len(definition.directives or ()) + sum(
                    len(v.directives or ()) for v in definition.variable_definitions or ()
                )
                if cost.depth > limits.depth:
                    errors.append(GraphQLError(
                        f"The query is {cost.depth} levels deep; the limit is {limits.depth} "
                        "(HEADWATER_MAX_QUERY_DEPTH).", definition,
                    ))
                if cost.fields > limits.root_fields:
                    errors.append(_limit_error("root fields", cost.fields, limits.root_fields,
                                               "MAX_QUERY_ROOT_FIELDS", definition))
            elif isinstance(definition, FragmentDefinitionNode):
                directives += len(definition.directives or ())
    except RecursionError:
        return [GraphQLError("The query nests selections or fragments too deeply to be checked.")]
    if aliases > limits.aliases:
        errors.append(_limit_error("aliases", aliases, limits.aliases, "MAX_QUERY_ALIASES", None))
    if directives > limits.directives:
        errors.append(_limit_error("directives", directives, limits.directives, "MAX_QUERY_DIRECTIVES", None))
    if has_mutation:
        longest = _longest_literal_list(document)
        if longest is not None and len(longest.values) > limits.list_items:
            errors.append(too_many_rows(len(longest.values), limits.list_items, longest))
    return errors


# ---------------------------------------------------------------------------- rows per write


class TooManyRows(InvalidInput):
    """One list in a mutation's input holds more items than a request may write."""


def too_many_rows(count: int, limit: int, node: Node | None = None, where: str | None = None) -> GraphQLError:
    subject = f"`{where}`" if where else "A list in this mutation's input"
    message = (
        f"{subject} holds {count} items; one request may write at most "
        f"{limit} (HEADWATER_MAX_ROWS_PER_WRITE). Send them in several requests."
    )
    return GraphQLError(message, node, original_error=TooManyRows(message))


_HOLDS_LIST: dict[Any, bool] = {}


def _holds_list(type_: GraphQLInputType) -> bool:
    """Whether a value of this input type can contain a list (JSON scalars do not count)."""
    while isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if isinstance(type_, GraphQLList):
        return True
    if not isinstance(type_, GraphQLInputObjectType):
        return False
    if type_ not in _HOLDS_LIST:
        _HOLDS_LIST[type_] = False  # breaks recursion through self-referencing inputs
        _HOLDS_LIST[type_] = any(_holds_list(f.type) for f in type_.fields.values())
    return _HOLDS_LIST[type_]


def list_variables(schema: GraphQLSchema, document: DocumentNode) -> tuple[tuple[str, Any], ...]:
    """(name, type) of the mutations' variables whose values can contain lists."""
    found = []
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode) and definition.operation == OperationType.MUTATION:
            for variable in definition.variable_definitions or ():
                type_ = type_from_ast(schema, variable.type)
                if type_ is not None and _holds_list(type_):
                    found.append((variable.variable.name.value, type_))
    return tuple(found)


def longest_list(value: Any, type_: GraphQLInputType, path: str = "") -> tuple[int, str]:
    """The length of the longest list in a raw variable value, following its input type, and
    where it is (`input.logs`), so that the error can name it."""
    longest, where = 0, path
    stack = [(value, type_, path)]
    while stack:
        value, type_, at = stack.pop()
        while isinstance(type_, GraphQLNonNull):
            type_ = type_.of_type
        if isinstance(type_, GraphQLList):
            item_type = type_.of_type
            if isinstance(value, list):
                if len(value) > longest:
                    longest, where = len(value), at
                if _holds_list(item_type):
                    stack.extend((item, item_type, f"{at}[{i}]") for i, item in enumerate(value))
            elif value is not None:
                stack.append((value, item_type, at))  # a single value stands for a list of one
        elif isinstance(type_, GraphQLInputObjectType) and isinstance(value, dict):
            for name, field in type_.fields.items():
                if name in value and _holds_list(field.type):
                    stack.append((value[name], field.type, f"{at}.{name}" if at else name))
    return longest, where


# ---------------------------------------------------------------------------- extensions


class LimitedParserCache(SchemaExtension):
    """Parses each document shape once (headwater.server.graphql.document_shapes), with the
    token limit of the request's settings (what MaxTokensLimiter does) and an error that
    names the setting. Identical texts skip even the lexer."""

    TEXT_ENTRIES = 512
    _by_text: "OrderedDict[tuple[str, int | None], tuple[DocumentNode, ShapeInfo | None]]" = OrderedDict()
    shapes = ShapeParser(maxsize=1024)

    def on_operation(self) -> Iterator[None]:
        limit = request_settings(self.execution_context.context).max_query_tokens
        self.execution_context.parse_options["max_tokens"] = limit
        yield

    def parse(self, query: str, max_tokens: int | None) -> tuple[DocumentNode, "ShapeInfo | None"]:
        key = (query, max_tokens)
        cached = self._by_text.get(key)
        if cached is not None:
            self._by_text.move_to_end(key)
            return cached
        parsed = self.shapes.parse(query, max_tokens)
        if getattr(parsed[0], "token_count", 0) > MAX_CACHED_TOKENS:
            return parsed  # not kept (see MAX_CACHED_TOKENS)
        self._by_text[key] = parsed
        if len(self._by_text) > self.TEXT_ENTRIES:
            self._by_text.popitem(last=False)
        return parsed

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        options = dict(context.parse_options)
        max_tokens = options.pop("max_tokens", None)
        try:
            if options:  # options this cache does not model: graphql-core's parser alone
                context.graphql_document = parse(context.query, max_tokens=max_tokens, **options)
            else:
                context.graphql_document, context.headwater_shape = self.parse(context.query, max_tokens)
        except GraphQLError as error:
            limit = context.parse_options.get("max_tokens")
            if limit is not None and f"more than {limit} tokens" in error.message:
                raise GraphQLError(
                    f"The query has more than {limit} tokens; the limit is {limit} "
                    "(HEADWATER_MAX_QUERY_TOKENS)."
                ) from None
            raise
        yield


class DocumentValidationCache(SchemaExtension):
    """Checks the cost limits and validates each document structure once; later documents of
    that structure skip both. Also refuses over-long lists in a mutation's variables, on every
    request, before the variables are coerced (coercing 50,000 log records takes seconds)."""

    MAX_ENTRIES = 1024
    # key -> the mutations' list-bearing variables, to check on every request.
    _valid: "OrderedDict[tuple, tuple[tuple[str, Any], ...]]" = OrderedDict()

    def on_operation(self) -> Iterator[None]:
        self.execution_context.validation_rules = self.execution_context.validation_rules + EXTRA_RULES
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document: DocumentNode = context.graphql_document  # type: ignore[assignment]
        limits = DocumentLimits.of(request_settings(context.context))
        shape: ShapeInfo | None = getattr(context, "headwater_shape", None)
        try:
            if shape is not None:
                key: tuple | None = (limits, context.validation_rules, shape_key(shape))
            elif getattr(document, "token_count", 0) > MAX_CACHED_TOKENS:
                key = None  # too long to keep: validated every time (see MAX_CACHED_TOKENS)
            else:
                key = (limits, context.validation_rules, document_key(document))
        except RecursionError:
            key = None  # too deep to key: validated every time, never cached
        variables = self._valid.get(key) if key is not None else None
        if variables is not None:
            self._valid.move_to_end(key)
            errors: list[GraphQLError] = []
        else:
            schema = context.schema._schema
            errors = check_limits(document, limits) or validate_document(
                schema, document, context.validation_rules
            )
            variables = list_variables(schema, document) if not errors else ()
            if not errors and key is not None:
                self._valid[key] = variables
                if len(self._valid) > self.MAX_ENTRIES:
                    self._valid.popitem(last=False)
        if not errors:
            values = context.variables or {}
            for name, type_ in variables:
                count, where = longest_list(values.get(name), type_, f"${name}")
                if count > limits.list_items:
                    errors = [too_many_rows(count, limits.list_items, where=where)]
                    break
        context.pre_execution_errors = errors
        yield
