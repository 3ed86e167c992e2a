"""Validation: a query depth limit, and a validation cache keyed by the document's shape.

The Prefect client writes ids into its hottest documents as literals (heartbeats, task-run
lookups, the flow runner's `flow_run_by_pk`), so no two of its requests share a text and a
cache keyed by the text never hits; validating against this large schema costs milliseconds.
The shape is the text with string and number literals blanked: documents that differ only in
such values validate alike, except that a literal's own validity (a malformed uuid) is then
checked when the field's arguments are coerced, which reports the same clear error. Only
documents that validated cleanly are cached.

(Strawberry's QueryDepthLimiter builds a new rule class per request, which defeats any cache,
hence MaxDepthRule, defined once.)
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any, Iterator

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

MAX_DEPTH = 12


class MaxDepthRule(ValidationRule):
    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        fragments = {f.name.value: f for f in self.context.document.definitions if hasattr(f, "type_condition")}
        depth = self._depth(node.selection_set, fragments, set())
        if depth > MAX_DEPTH:
            self.report_error(
                GraphQLError(f"The query is {depth} levels deep; the limit is {MAX_DEPTH}.", node)
            )

    def _depth(self, selection_set: SelectionSetNode | None, fragments: dict, seen: set[str]) -> int:
        if selection_set is None:
            return 0
        deepest = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                deepest = max(deepest, 1 + self._depth(selection.selection_set, fragments, seen))
            elif isinstance(selection, InlineFragmentNode):
                deepest = max(deepest, self._depth(selection.selection_set, fragments, seen))
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
                fragment = fragments.get(selection.name.value)
                if fragment is not None:
                    deepest = max(deepest, self._depth(fragment.selection_set, fragments, seen | {selection.name.value}))
        return deepest


# A string (block strings included) or a number that is not part of a name.
_LITERAL = re.compile(r'"""(?:[^"\\]|\\.|"(?!""))*"""|"(?:[^"\\\n]|\\.)*"|(?<![A-Za-z0-9_.])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?')


def document_shape(query: str) -> str:
    """The query text with every string and number literal replaced by a placeholder."""
    return _LITERAL.sub(lambda m: '"?"' if m.group(0).startswith('"') else "0", query)


class ShapeValidationCache(SchemaExtension):
    """Validates each document shape once; later requests of that shape skip validation."""

    MAX_ENTRIES = 1024
    _valid: "OrderedDict[str, bool]" = OrderedDict()

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        key = document_shape(context.query or "")
        if key in self._valid:
            self._valid.move_to_end(key)
            context.pre_execution_errors = []
        else:
            document: DocumentNode = context.graphql_document  # type: ignore[assignment]
            errors = validate_document(context.schema._schema, document, context.validation_rules)
            context.pre_execution_errors = errors
            if not errors:
                self._valid[key] = True
                if len(self._valid) > self.MAX_ENTRIES:
                    self._valid.popitem(last=False)
        yield
