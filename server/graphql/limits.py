"""A query depth limit, as a validation rule defined once so the validation cache keeps hitting.

(Strawberry's QueryDepthLimiter builds a new rule class per request, which defeats the cache.)
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
)

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
