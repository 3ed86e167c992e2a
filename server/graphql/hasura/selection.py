"""Reads the client's selection under one root field into a plan: which columns, relationships
and aggregates to load, with which arguments, under which response keys.

It works on the AST (`info.field_nodes`) rather than on Strawberry's converted arguments for
two reasons: the whole tree is needed up front to load it in a few batched queries, and the
order in which the client wrote `order_by` keys is only visible there (graphql-core coerces
input objects in schema order). Argument values are coerced by graphql-core itself, so
variables, defaults and the custom scalars behave exactly as in normal execution.
"""

from __future__ import annotations

import enum
from typing import Any, Sequence

from graphql import (
    VariableNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLIncludeDirective,
    GraphQLResolveInfo,
    GraphQLSkipDirective,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    SelectionSetNode,
    ValueNode,
    get_argument_values,
    get_directive_values,
)

try:  # graphql-core >= 3.3
    from graphql import VariableValues
except ImportError:  # pragma: no cover - graphql-core 3.2 takes the plain dict
    VariableValues = None  # type: ignore[assignment,misc]

from headwater.server.domain.errors import Forbidden, InvalidInput
from headwater.server.graphql.authorization import may_read_column
from headwater.server.graphql.hasura.catalog import (
    CATALOG,
    TableInfo,
    aggregate_fields_type,
    aggregate_type,
    extremum_type,
    row_type,
)
from headwater.server.graphql.hasura.plan import AggregatePlan, ListArgs, ListPlan, Measure, RowShape


def _variable_values(values: Any) -> Any:
    """graphql-core 3.3 helpers want a `VariableValues`; Strawberry hands resolvers the plain dict."""
    if VariableValues is not None and isinstance(values, dict):
        return VariableValues({}, values)
    return values


# Arguments holding enum values, which Strawberry's enum types parse to Python enum members.
ENUM_ARGUMENTS = frozenset({"order_by", "distinct_on", "columns"})


def _tokens(value: Any) -> Any:
    """`value` with enum members replaced by their tokens (`asc`, `name`, ...)."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list):
        return [_tokens(item) for item in value]
    if isinstance(value, dict):
        return {key: _tokens(item) for key, item in value.items()}
    return value


def _in_order_of(value: Any, raw: Any) -> Any:
    """`value` (coerced, keys in schema order) with its keys in the order of the client's `raw` JSON."""
    if isinstance(value, list):
        if isinstance(raw, list) and len(raw) == len(value):
            return [_in_order_of(v, r) for v, r in zip(value, raw)]
        return [_in_order_of(value[0], raw)] if len(value) == 1 and isinstance(raw, dict) else value
    if not (isinstance(value, dict) and isinstance(raw, dict)):
        return value
    ordered = {key: _in_order_of(value[key], raw[key]) for key in raw if key in value}
    return ordered | {k: v for k, v in value.items() if k not in ordered}


class SelectionReader:
    """Turns the AST under a root field into plans, resolving fragments, directives and variables."""

    def __init__(
        self,
        schema: Any,
        fragments: dict[str, Any],
        variables: Any,
        raw_variables: Any = None,
        principal: Any = None,
    ):
        self.schema = schema
        self.fragments = fragments
        self.variables = _variable_values(variables)
        # The request's variables as the client sent them (JSON key order kept), when known.
        self.raw_variables = raw_variables or {}
        self.principal = principal

    @classmethod
    def of(cls, info: GraphQLResolveInfo) -> "SelectionReader":
        """The reader for a resolver's `info` (its schema, fragments, variables and caller)."""
        context = info.context
        return cls(info.schema, info.fragments, info.variable_values,
                   getattr(context, "raw_variables", None), getattr(context, "principal", None))

    # -- admin-only columns ------------------------------------------------------------------

    def check_column(self, table: TableInfo, column: str) -> None:
        if not may_read_column(self.principal, table.name, column):
            raise Forbidden(
                f"`{table.name}.{column}` holds secrets: reading, filtering or ordering by it "
                f"needs an admin key (this key has the role '{self.principal.role}')."
            )

    def check_args(self, table: TableInfo, args: ListArgs) -> None:
        """Refuses `where`, `order_by` and `distinct_on` that touch an admin-only column, on this
        table or through relationships (a filter can reveal a value as surely as a select)."""
        if self.principal is None or self.principal.role == "admin":
            return
        for column in args.distinct_on:
            self.check_column(table, column)
        self._check_expression(table, args.where)
        for item in args.order_by:
            self._check_expression(table, item)

    def _check_expression(self, table: TableInfo, expression: Any) -> None:
        if isinstance(expression, list):
            for item in expression:
                self._check_expression(table, item)
            return
        if not isinstance(expression, dict):
            return
        for key, value in expression.items():
            if key in ("_and", "_or", "_not"):
                self._check_expression(table, value)
                continue
            kind, target = table.fields.get(key, (None, None))
            if kind == "column":
                self.check_column(table, key)
            elif kind in ("object", "array", "aggregate") and target in table.relationships:
                self._check_expression(CATALOG[table.relationships[target].target], value)

    # -- AST walking -------------------------------------------------------------------------

    def subfields(self, nodes: Sequence[FieldNode], type_name: str) -> dict[str, list[FieldNode]]:
        """The fields selected under `nodes`, merged by response key, in document order."""
        grouped: dict[str, list[FieldNode]] = {}
        for node in nodes:
            if node.selection_set:
                self._collect(node.selection_set, type_name, grouped, set())
        return grouped

    def _collect(
        self, selection_set: SelectionSetNode, type_name: str, grouped: dict[str, list[FieldNode]], seen: set[str]
    ) -> None:
        for selection in selection_set.selections:
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                if selection.name.value.startswith("__"):
                    continue  # __typename is answered by the executor
                key = selection.alias.value if selection.alias else selection.name.value
                grouped.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                if self._applies(selection.type_condition, type_name):
                    self._collect(selection.selection_set, type_name, grouped, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if name in seen or fragment is None or not self._applies(fragment.type_condition, type_name):
                    continue
                seen.add(name)
                self._collect(fragment.selection_set, type_name, grouped, seen)

    def _included(self, node: Any) -> bool:
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        if skip and skip.get("if"):
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return not (include is not None and not include.get("if"))

    @staticmethod
    def _applies(condition: Any, type_name: str) -> bool:
        # Every type here is a concrete object type: a condition matches by name or not at all.
        return condition is None or condition.name.value == type_name

    def arguments(self, type_name: str, node: FieldNode) -> dict[str, Any]:
        """Coerced arguments of `node` (a field of `type_name`), `order_by` in written order."""
        definition = self.schema.type_map[type_name].fields[node.name.value]  # type: ignore[union-attr]
        values = get_argument_values(definition, node, self.variables)
        for name in ENUM_ARGUMENTS.intersection(values):
            values[name] = _tokens(values[name])
        if values.get("order_by") is not None:
            written = next(a.value for a in node.arguments if a.name.value == "order_by")
            if isinstance(written, VariableNode):
                values["order_by"] = _in_order_of(values["order_by"], self.raw_variables.get(written.name.value))
            else:
                values["order_by"] = self._written_order(values["order_by"], written)
        return values

    def _written_order(self, value: Any, node: ValueNode) -> Any:
        """`value` with every object's keys in the order they appear in the literal `node`.

        (An object passed as a variable takes its order from the request's raw JSON instead,
        see `_in_order_of`: the executor itself returns it in schema order.)
        """
        if isinstance(value, list):
            if isinstance(node, ListValueNode) and len(node.values) == len(value):
                return [self._written_order(v, n) for v, n in zip(value, node.values)]
            # A single object given where a list is expected (list input coercion).
            return [self._written_order(value[0], node)] if len(value) == 1 else value
        if not (isinstance(value, dict) and isinstance(node, ObjectValueNode)):
            return value
        written = [(f.name.value, f.value) for f in node.fields if f.name.value in value]
        ordered = {name: self._written_order(value[name], sub) for name, sub in written}
        return ordered | {k: v for k, v in value.items() if k not in ordered}

    # -- plans -------------------------------------------------------------------------------

    def list_args(self, values: dict[str, Any]) -> ListArgs:
        limit, offset = values.get("limit"), values.get("offset")
        for name, number in (("limit", limit), ("offset", offset)):
            if number is not None and number < 0:
                raise InvalidInput(f"`{name}` must not be negative, got {number}.")
        return ListArgs(
            where=values.get("where"),
            order_by=[item for item in values.get("order_by") or [] if item],
            distinct_on=list(dict.fromkeys(values.get("distinct_on") or [])),
            limit=limit,
            offset=offset or 0,
        )

    def row_shape(self, table: TableInfo, nodes: Sequence[FieldNode]) -> RowShape:
        shape = RowShape(table)
        type_name = row_type(table.name)
        for key, fields in self.subfields(nodes, type_name).items():
            name = fields[0].name.value
            kind, target = table.fields[name]
            if kind == "column":
                self.check_column(table, name)
                shape.add_column(name)
                continue
            rel = table.relationships[target]
            child = CATALOG[rel.target]
            if kind == "object":
                shape.objects.append((key, rel, self.row_shape(child, fields)))
            elif kind == "array":
                args = self.list_args(self.arguments(type_name, fields[0]))
                self.check_args(child, args)
                shape.arrays.append((key, rel, ListPlan(args, self.row_shape(child, fields))))
            else:
                args = self.list_args(self.arguments(type_name, fields[0]))
                self.check_args(child, args)
                shape.aggregates.append((key, rel, self.aggregate_plan(child, args, fields)))
        return shape

    def aggregate_plan(self, table: TableInfo, args: ListArgs, nodes: Sequence[FieldNode]) -> AggregatePlan:
        plan = AggregatePlan(table, args)
        for key, fields in self.subfields(nodes, aggregate_type(table.name)).items():
            if fields[0].name.value == "nodes":
                plan.nodes.append((key, self.row_shape(table, fields)))
            else:
                plan.aggregates.append((key, self._aggregate_fields(table, fields)))
        return plan

    def _aggregate_fields(self, table: TableInfo, nodes: Sequence[FieldNode]) -> dict[str, Any]:
        type_name = aggregate_fields_type(table.name)
        parts: dict[str, Any] = {}
        for key, fields in self.subfields(nodes, type_name).items():
            function = fields[0].name.value
            if function == "count":
                values = self.arguments(type_name, fields[0])
                columns = tuple(dict.fromkeys(values.get("columns") or []))
                for column in columns:
                    self.check_column(table, column)
                parts[key] = Measure("count", columns, bool(values.get("distinct")) and bool(columns))
            else:
                selected = self.subfields(fields, extremum_type(table.name, function))
                for column in dict.fromkeys(f[0].name.value for f in selected.values()):
                    self.check_column(table, column)
                parts[key] = {
                    column: Measure(function, (column,))
                    for column in dict.fromkeys(f[0].name.value for f in selected.values())
                }
        return parts
