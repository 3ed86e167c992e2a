"""The `operation` label of a GraphQL request, bounded whatever clients send.

A named operation is labelled by its name; an anonymous one (every Prefect client document) by
its root field names, joined with `+`. Only names the schema defines become a root-field label,
never literal text, so a client writing ids into its documents (as the Prefect client does)
still makes one label per kind of request. Names chosen by clients (operation names, several
root fields together) share a budget of `MAX_CHOSEN_LABELS` values per process; past it they
are labelled `_other`. A document that could not be parsed is `_invalid`.

The label is computed by the `OperationLabel` extension once the document is parsed and kept
in the request's Context (`operation`), where the HTTP endpoint reads it.
"""

from __future__ import annotations

from typing import Iterator

from graphql import DocumentNode, FieldNode, GraphQLSchema, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from headwater.server.graphql.authorization import root_fields

MAX_CHOSEN_LABELS = 200
MAX_NAME_LENGTH = 100
OTHER = "_other"
INVALID = "_invalid"
META_FIELDS = frozenset({"__typename", "__schema", "__type"})


class OperationLabels:
    """Maps a parsed document to its (type, operation) label pair, within the budget."""

    def __init__(self, schema: GraphQLSchema, budget: int = MAX_CHOSEN_LABELS):
        roots = [t for t in (schema.query_type, schema.mutation_type, schema.subscription_type) if t]
        self.root_names = frozenset(name for t in roots for name in t.fields) | META_FIELDS
        self.budget = budget
        self.chosen: set[str] = set()

    def _within_budget(self, label: str) -> str:
        if label in self.chosen:
            return label
        if len(self.chosen) >= self.budget or len(label) > MAX_NAME_LENGTH:
            return OTHER
        self.chosen.add(label)
        return label

    def of(self, document: DocumentNode | None, operation_name: str | None) -> tuple[str, str]:
        if document is None:
            return "", INVALID
        operation = None
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode) and (
                operation_name is None or (definition.name is not None and definition.name.value == operation_name)
            ):
                operation = definition
                break
        if operation is None:
            return "", INVALID
        kind = operation.operation.value
        if operation.name is not None:
            return kind, self._within_budget(operation.name.value)
        selections = operation.selection_set.selections
        if len(selections) == 1 and isinstance(selections[0], FieldNode):  # the usual document
            name = selections[0].name.value
            return kind, name if name in self.root_names else OTHER
        names = sorted({name for name in root_fields(document, operation) if name in self.root_names})
        if not names:
            return kind, OTHER
        if len(names) == 1:
            return kind, names[0]
        return kind, self._within_budget("+".join(names))


_labels: dict[int, OperationLabels] = {}


def labels_for(schema: GraphQLSchema) -> OperationLabels:
    labels = _labels.get(id(schema))
    if labels is None:
        labels = _labels[id(schema)] = OperationLabels(schema)
    return labels


class OperationLabel(SchemaExtension):
    """Records the request's operation label in its Context once the document is parsed."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        request = context.context
        settings = getattr(request, "settings", None)
        if settings is not None and settings.metrics_enabled:
            request.operation = labels_for(context.schema._schema).of(
                context.graphql_document, context.provided_operation_name
            )
        yield
