"""Compiled plans: a document of a known shape answered without graphql-core's executor.

The hottest requests are the Prefect client's and agent's: the flow runner's `flow_run_by_pk`,
run creation, state changes, task-run lookups, heartbeats, the queue poll, and the UI's polls
of the Hasura-style tables. Executing them through graphql-core and Strawberry (field by
field: resolver wrappers, argument conversion, completion, extension hooks) cost more server
CPU than their SQL.

A plan is made for a document *shape* (headwater.server.graphql.document_shapes: the token
stream with literal values left out) once a document of that shape has been answered by the
general path without an error, for the same caller role. That answer proved what depends on
the shape alone: the document parses, validates, stays within the cost limits, and its role
may run its mutations and read its columns. A later document of the shape is answered by:
- its AST, rebuilt from the template with its own literal values; its variables checked for
  over-long lists (as validation does for mutations) and coerced by graphql-core's own
  `get_variable_values`;
- for a table read, the planning code its resolver runs (`loader.plan_root`: arguments coerced
  by graphql-core, column checks for the caller's role) and the same loader and statements;
  for a root field in DIRECT_RESOLVERS, its own resolver, called with the arguments
  graphql-core coerces, converted as Strawberry converts them;
- a result builder made once from the selection and the schema's types: each leaf through its
  GraphQL type's output coercion, each field read as the schema's resolvers read it.

Only documents the builder answers exactly as the executor would are compiled: one operation,
no fragments, no directives, no repeated response key, every root field a table read, a
direct resolver or `__typename`, and every field below a column, a relationship, a payload
attribute or `__typename` with no resolver, permission or extension of its own.

Errors. Every field's input is checked before any field runs; anything unusual there (an
invalid literal or variable, too many items) falls back to the general path, which words the
error exactly, and nothing has run. What a directly called resolver raises is its answer,
located as the executor locates it (it must not run twice: a mutation would apply twice). A
table read that meets a statement timeout or a lost database answers so (running it again
would wait as long again); any other surprise in a read (a null where the type says non-null)
falls back, which is safe because a read changes nothing.
tests/graphql/test_compiled_plans.py compares both paths.
"""

from __future__ import annotations

import enum
import inspect
import logging
from collections import OrderedDict
from dataclasses import MISSING, dataclass
from typing import Any, Awaitable, Callable

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Undefined,
    located_error,
    parse,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from strawberry.relay.types import GlobalID
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryOptional,
    StrawberryType,
    has_object_definition,
)
from strawberry.types.enum import has_enum_definition
from strawberry.types.field import StrawberryField
from strawberry.types.lazy_type import LazyType

from headwater.server.db.availability import database_unreachable
from headwater.server.graphql.document_shapes import MAX_CACHED_TOKENS, Lexed, Template, lex, template_of
from headwater.server.graphql.errors import statement_timed_out
from headwater.server.graphql.hasura.catalog import ROOT_FIELDS
from headwater.server.graphql.hasura.fields import ResultField, RootField
from headwater.server.graphql.hasura.loader import plan_root, run_root
from headwater.server.graphql.hasura.plan import result_key
from headwater.server.graphql.hasura.selection import SelectionReader
from headwater.server.graphql.schema import resolve_field
from headwater.server.graphql.validation import DocumentLimits, list_variables, longest_list

# Root fields whose resolvers are called directly: the Prefect client's and agent's hot
# requests. Each reads nothing of `info` but its context, and takes no enum argument;
# tests/graphql/test_compiled_plans.py answers each both ways.
DIRECT_RESOLVERS = frozenset({
    "create_flow_run",
    "set_flow_run_states",
    "set_task_run_states",
    "get_or_create_task_run_info",
    "update_flow_run_heartbeat",
    "update_task_run_heartbeat",
    "get_runs_in_queue",
    "get_task_run_info",
})

logger = logging.getLogger("headwater.compiled_plans")

# Shapes kept per process (plans and "not compilable" verdicts); the least recently used goes.
MAX_PLANS = 256
# Longer documents are never compiled: a shape's key grows with its tokens (see
# document_shapes.MAX_CACHED_TOKENS).
MAX_PLAN_TOKENS = MAX_CACHED_TOKENS


class Fallback(Exception):
    """This request's answer is the general path's to give."""


class NotCompilable(Exception):
    """The document uses something the builder does not reproduce."""


Build = Callable[[Any], Any]


@dataclass
class Request:
    """One request's view of a plan: its coerced variables and the reader of its selections."""

    variables: Any
    reader: SelectionReader


# How a root field is answered: prepare(request, node) checks its input and returns what runs it.
Run = Callable[[Any], Awaitable[Any]]
Prepare = Callable[[Request, FieldNode], Run]


@dataclass(frozen=True)
class Root:
    key: str  # the response key
    prepare: Prepare
    build: Build
    non_null: bool = False
    # A resolver called directly: whatever it raises is its answer, located as the executor
    # locates it (after it ran, a request must not run again: a mutation would apply twice).
    resolver: bool = False


@dataclass(frozen=True)
class CompiledPlan:
    template: Template
    roots: tuple[Root, ...]
    label: tuple[str, str] | None  # the /metrics operation label of the shape
    list_variables: tuple[tuple[str, Any], ...] = ()  # a mutation's variables that may hold lists

    async def answer(self, plans: "CompiledPlans", context: Any, lexed: Lexed,
                     variables: dict[str, Any] | None) -> ExecutionResult:
        document = self.template.instantiate(lexed.literals, lexed.token_count)
        operation: OperationDefinitionNode = document.definitions[0]  # type: ignore[assignment]
        coerced: Any = {}
        if self.list_variables:  # checked on every request, before coercion, as validation does
            limit = DocumentLimits.of(context.settings).list_items
            for name, type_ in self.list_variables:
                if longest_list((variables or {}).get(name), type_, f"${name}")[0] > limit:
                    raise Fallback  # the general path words the refusal
        if operation.variable_definitions:
            values = get_variable_values(plans.graphql_schema, operation.variable_definitions, variables or {})
            if isinstance(values, list):
                raise Fallback  # the general path words the variables' errors
            coerced = values.coerced
        reader = SelectionReader(plans.graphql_schema, {}, coerced, context.raw_variables, context.principal)
        request = Request(coerced, reader)
        nodes = operation.selection_set.selections
        # Every field's input is checked before any of them runs; then they run one by one.
        runs = [(root, node, root.prepare(request, node)) for root, node in zip(self.roots, nodes)]
        data: dict[str, Any] | None = {}
        errors: list[GraphQLError] = []
        for root, node, run in runs:
            try:
                value = await run(context)
                built = root.build(value)
            except Exception as error:
                if not (root.resolver or _answered_as_is(error)):
                    raise
                # A timeout or an outage would be met again, after as long; a resolver that
                # ran must not run again. Answered here, located as the executor locates a
                # resolver's error (the field's node, its response key).
                errors.append(located_error(error, [node], [root.key]))
                if data is not None:
                    data[root.key] = None
                    if root.non_null:
                        data = None  # a non-null root's null is the whole answer's
                continue
            if data is not None:
                data[root.key] = built
        return ExecutionResult(data, errors or None)


def _answered_as_is(error: BaseException) -> bool:
    """A statement timeout or a lost database: the general path would meet it again, after as long."""
    return statement_timed_out(error) or database_unreachable(error)


def _typename(type_name: str) -> Prepare:
    async def name(context: Any) -> str:
        return type_name
    return lambda request, node: name


def _table_read(query_type: str, field_name: str) -> Prepare:
    def prepare(request: Request, node: FieldNode) -> Run:
        load = plan_root(request.reader, query_type, field_name, [node])
        return lambda context: run_root(context, load)
    return prepare


class DirectInfo:
    """What a directly called resolver gets as `info`: the request's context, all the listed
    resolvers read (anything else they touched would fail their equivalence tests)."""

    __slots__ = ("context",)

    def __init__(self, context: Any):
        self.context = context


def _resolver_call(field: StrawberryField, definition: Any) -> Prepare:
    """Calls a root field's own resolver with its arguments coerced by graphql-core and converted
    to the resolver's Python types as Strawberry converts them (see `_converter`)."""
    call = field.base_resolver.wrapped_func  # type: ignore[union-attr]
    arguments = [(argument.graphql_name or argument.python_name, argument.python_name, _converter(argument.type))
                 for argument in field.arguments]

    def prepare(request: Request, node: FieldNode) -> Run:
        values = get_argument_values(definition, node, VariableValues({}, request.variables))
        kwargs = {python: convert(values[name]) for name, python, convert in arguments if name in values}

        async def run(context: Any) -> Any:
            result = call(None, DirectInfo(context), **kwargs)
            return await result if inspect.isawaitable(result) else result
        return run
    return prepare


def _converter(type_: Any) -> Callable[[Any], Any]:
    """A coerced argument value to the resolver's Python value, as Strawberry's
    `convert_argument` makes it: optionals and leaves as they are, lists copied, input objects
    built with None for the fields that have no default. Enums and custom input hooks are not
    reproduced (NotCompilable). tests/graphql/test_compiled_plans.py compares both."""
    if isinstance(type_, StrawberryMaybe):
        raise NotCompilable("Maybe arguments")
    if isinstance(type_, StrawberryOptional):
        return _converter(type_.of_type)
    if isinstance(type_, StrawberryList):
        item = _converter(type_.of_type)
        if item is _leaf:
            return lambda value: None if value is None else list(value)
        return lambda value: None if value is None else [item(one) for one in value]
    if has_enum_definition(type_) or (isinstance(type_, type) and issubclass(type_, enum.Enum)):
        raise NotCompilable("enum arguments")
    if has_object_definition(type_):
        definition = type_.__strawberry_definition__
        if not definition.is_input or definition.from_input is not None:
            raise NotCompilable(f"input {type_}")
        implicit = {field.python_name: None for field in definition.fields
                    if field.default_value is MISSING and field.default_factory is MISSING}
        fields = [(field.graphql_name or field.python_name, field.python_name,
                   _converter(field.resolve_type(type_definition=definition))) for field in definition.fields]

        def build(value: Any) -> Any:
            if value is None:
                return None
            kwargs = dict(implicit)
            for name, python, convert in fields:
                if name in value:
                    kwargs[python] = convert(value[name])
            return type_(**kwargs)
        return build
    if isinstance(type_, (StrawberryType, LazyType)) or type_ is GlobalID:
        raise NotCompilable(f"argument type {type_}")
    return _leaf


def _leaf(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Lookup:
    key: tuple  # (shape, operation name, caller role)
    lexed: Lexed
    plan: CompiledPlan | None | bool  # False: not seen yet; None: not compilable


class CompiledPlans:
    """Per app: shape -> plan. `lookup` finds a document's plan, `answer` answers from it (or
    says to use the general path), `learn` makes one after the general path answered a
    document of a new shape without an error."""

    def __init__(self, schema: Any, max_tokens: int | None, size: int = MAX_PLANS):
        self.schema = schema  # the Strawberry schema
        self.graphql_schema = schema._schema
        self.max_tokens = max_tokens
        self.size = size
        self.hits = 0
        self.fallbacks = 0
        self._plans: OrderedDict[tuple, CompiledPlan | None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._plans)


    def lookup(self, context: Any, query: str, operation_name: str | None) -> Lookup | None:
        """What is known of the shape of `query` for this caller; None for a document the lexer
        refuses (the general path words why)."""
        lexed = lex(query, self.max_tokens)
        if lexed is None or lexed.token_count > MAX_PLAN_TOKENS:
            return None
        principal = context.principal
        key = (lexed.key, operation_name, None if principal is None else principal.role)
        plan = self._plans.get(key, False)
        if plan is not False:
            self._plans.move_to_end(key)
        return Lookup(key, lexed, plan)

    async def answer(self, lookup: Lookup, context: Any, variables: dict[str, Any] | None) -> ExecutionResult | None:
        """The result from the shape's plan, or None when the general path must answer."""
        plan = lookup.plan
        if not plan:
            return None
        try:
            result = await plan.answer(self, context, lookup.lexed, variables)
        except Exception as error:  # noqa: BLE001 - any doubt: the general path answers, exactly
            self.fallbacks += 1
            logger.debug("compiled plan gave way to the executor: %r", error)
            return None
        self.hits += 1
        context.operation = plan.label
        return result

    def learn(self, lookup: Lookup, query: str, operation_name: str | None, label: tuple[str, str] | None) -> None:
        """Compiles the shape of `query`, just answered by the general path without an error."""
        if lookup.plan is not False:
            return  # known already
        try:
            plan: CompiledPlan | None = self._compile(parse(query), lookup.lexed, operation_name, label)
        except NotCompilable:
            plan = None
        except Exception:  # noqa: BLE001 - learning must never cost the answer already given
            logger.warning("could not compile a document's shape; it stays on the executor", exc_info=True)
            plan = None
        self._plans[lookup.key] = plan
        if len(self._plans) > self.size:
            self._plans.popitem(last=False)

    def _compile(self, document: DocumentNode, lexed: Lexed, operation_name: str | None,
                 label: tuple[str, str] | None) -> CompiledPlan:
        definitions = document.definitions
        if len(definitions) != 1 or not isinstance(definitions[0], OperationDefinitionNode):
            raise NotCompilable("one operation and no fragments")
        operation = definitions[0]
        if operation.directives or operation.operation is OperationType.SUBSCRIPTION:
            raise NotCompilable("a query or mutation without directives")
        if operation_name is not None and (operation.name is None or operation.name.value != operation_name):
            raise NotCompilable("the operation named")
        for definition in operation.variable_definitions or ():
            if definition.default_value is not None or definition.directives:
                raise NotCompilable("variables without defaults or directives")
        template = template_of(document, lexed)
        if template is None:
            raise NotCompilable("literals that line up with the tokens")
        reads = operation.operation is OperationType.QUERY
        root_type = self.graphql_schema.query_type if reads else self.graphql_schema.mutation_type
        roots: list[Root] = []
        for node in _fields(operation.selection_set, set()):
            name = node.name.value
            key = node.alias.value if node.alias else name
            if name == "__typename":
                roots.append(Root(key, _typename(root_type.name), _no_build))
                continue
            if reads and name in ROOT_FIELDS and isinstance(self._field(root_type.name, name), RootField):
                prepare = _table_read(root_type.name, name)
                resolver = False
            elif name in DIRECT_RESOLVERS:
                field = self._field(root_type.name, name)
                if field is None or field.base_resolver is None or field.permission_classes or field.extensions:
                    raise NotCompilable(f"`{name}` as declared")
                prepare, resolver = _resolver_call(field, root_type.fields[name]), True
            else:
                raise NotCompilable(f"`{name}` is neither a table read nor a resolver called directly")
            type_ = root_type.fields[name].type
            roots.append(Root(key, prepare, self._completer(type_, node), isinstance(type_, GraphQLNonNull), resolver))
        listed = list_variables(self.graphql_schema, document)
        return CompiledPlan(template, tuple(roots), label, listed)

    def _field(self, type_name: str, name: str) -> StrawberryField | None:
        definition = self.schema.get_type_by_name(type_name)
        for field in getattr(definition, "fields", ()):
            if (field.graphql_name or field.python_name) == name:
                return field
        return None

    def _completer(self, type_: Any, node: FieldNode) -> Build:
        """Completes one field's resolved value as graphql-core would, or raises Fallback."""
        if isinstance(type_, GraphQLNonNull):
            inner = self._completer(type_.of_type, node)

            def non_null(value: Any) -> Any:
                completed = inner(value)
                if completed is None:
                    raise Fallback  # the executor answers this with an error
                return completed
            return non_null
        if isinstance(type_, GraphQLList):
            item = self._completer(type_.of_type, node)

            def items(value: Any) -> Any:
                if value is None:
                    return None
                if not isinstance(value, list):
                    raise Fallback
                return [item(one) for one in value]
            return items
        if isinstance(type_, (GraphQLScalarType, GraphQLEnumType)):
            if node.selection_set is not None:
                raise NotCompilable("a leaf without a selection")
            coerce = type_.coerce_output_value

            def leaf(value: Any) -> Any:
                if value is None:
                    return None
                coerced = coerce(value)
                if coerced is None or coerced is Undefined:
                    raise Fallback
                return coerced
            return leaf
        if isinstance(type_, GraphQLObjectType) and node.selection_set is not None:
            build = self._object(type_, node.selection_set)

            def nullable_object(value: Any) -> Any:
                return None if value is None else build(value)
            return nullable_object
        raise NotCompilable(f"a field of type {type_}")

    def _object(self, type_: GraphQLObjectType, selection_set: SelectionSetNode) -> Build:
        if type_.is_type_of is not None:
            raise NotCompilable("an object type with its own type check")
        entries: list[tuple[str, Callable[[Any], Any], Build]] = []
        for node in _fields(selection_set, set()):
            name = node.name.value
            key = node.alias.value if node.alias else name
            if name == "__typename":
                entries.append((key, lambda row, name=type_.name: name, _no_build))
                continue
            field = self._field(type_.name, name)
            if field is None or name not in type_.fields or field.permission_classes or field.extensions:
                raise NotCompilable(f"`{type_.name}.{name}`")
            if isinstance(field, ResultField):
                get = _result_getter(result_key(key))
            elif type(field) is StrawberryField and field.base_resolver is None:
                get = _attribute_getter(field.python_name)
            else:
                raise NotCompilable(f"`{type_.name}.{name}` has a resolver")
            entries.append((key, get, self._completer(type_.fields[name].type, node)))

        def build(row: Any) -> dict[str, Any]:
            return {key: complete(get(row)) for key, get, complete in entries}
        return build


def _no_build(value: Any) -> Any:
    return value


def _result_getter(key: str) -> Callable[[dict], Any]:
    return lambda row: row[key]  # a KeyError falls back, as the resolver's would be an error


def _attribute_getter(name: str) -> Callable[[Any], Any]:
    return lambda row: resolve_field(row, name)  # the schema's default resolver


def _fields(selection_set: SelectionSetNode, seen: set[str]) -> list[FieldNode]:
    """The fields of a selection set with neither fragments, directives nor repeated keys."""
    fields = []
    for selection in selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.directives:
            raise NotCompilable("fields without fragments or directives")
        key = selection.alias.value if selection.alias else selection.name.value
        if key in seen:
            raise NotCompilable("one field per response key")
        if selection.name.value.startswith("__") and selection.name.value != "__typename":
            raise NotCompilable("no introspection")
        seen.add(key)
        fields.append(selection)
    return fields
