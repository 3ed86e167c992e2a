"""Every page's reads of the Prefect 1 web UI (tests/graphql/ui_read_documents.py, supersets
rendered from our schema) answer against data of every kind the UI shows (tests/ui_seed.py): no
GraphQL error, and the rows the seed guarantees are there. The corpus reaches every root field
the UI reads and uses every kind of argument it sends.

The documents only read, so they share one seed: this module replaces the per-test emptying
with one emptying and one seed for the module.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from graphql import (
    ArgumentNode,
    FieldNode,
    OperationType,
    Visitor,
    parse,
    value_from_ast_untyped,
    visit,
)
from headwater.server.app import create_app

from tests.conftest import GraphQL, empty_database
from tests.graphql.ui_read_documents import READS, UI_ROOT_FIELDS, Read
from tests.ui_seed import Seed, seed


@pytest.fixture
def clean_database() -> None:
    """Overrides the suite's per-test emptying: the seed below is emptied and written once."""


@pytest.fixture(scope="module")
async def seeded(engine, settings) -> tuple[Seed, GraphQL]:
    await empty_database(engine)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://headwater.test") as http:
            gql = GraphQL(http)
            yield await seed(gql, engine), gql


@pytest.mark.parametrize("read", READS, ids=[read.id for read in READS])
async def test_ui_read_document_answers_with_the_seeded_rows(read: Read, seeded) -> None:
    data, gql = seeded
    body = await gql.raw(read.document, read.variables(data))
    assert not body.get("errors"), body["errors"]
    assert read.expect(body["data"], data), body["data"]


def root_fields(document: str) -> set[str]:
    operations = [d for d in parse(document).definitions if getattr(d, "operation", None) == OperationType.QUERY]
    return {selection.name.value for op in operations for selection in op.selection_set.selections}


@pytest.mark.pure
def test_the_corpus_reaches_every_root_field_the_ui_reads() -> None:
    used = set().union(*(root_fields(read.document) for read in READS))
    assert UI_ROOT_FIELDS - used == set()
    assert len({read.id for read in READS}) == len(READS)
    assert len(READS) >= 30  # one or more per UI page


# The kinds of argument the UI sends: operators, the arguments themselves, and shapes (marked
# with a leading `:`) that need more than a name to spot.
ARGUMENT_KINDS = frozenset({
    "where", "order_by", "distinct_on", "limit", "offset", "args", "id", "task_run_id",
    "_and", "_or", "_not", "_eq", "_neq", "_in", "_nin", "_gt", "_gte", "_lt", "_lte", "_ilike", "_like",
    "_is_null", "_contains", "_has_key",
    ":relationship filter", ":nested order_by", ":nulls ordering", ":timestamp range", ":nested aggregate",
    ":relationship arguments", ":variable", ":literal",
})


class Arguments(Visitor):
    """(argument name, value with the variables put in) for every argument of a document."""

    def __init__(self, variables: dict[str, Any]) -> None:
        super().__init__()
        self.variables, self.found, self.depth = variables, [], 0
        self.kinds: set[str] = set()

    def enter_field(self, node: FieldNode, *_) -> None:
        if self.depth > 0 and node.name.value.endswith("_aggregate"):
            self.kinds.add(":nested aggregate")
        if self.depth > 0 and node.arguments:
            self.kinds.add(":relationship arguments")
        self.depth += 1

    def leave_field(self, *_) -> None:
        self.depth -= 1

    def enter_argument(self, node: ArgumentNode, *_) -> None:
        self.kinds.add(":variable" if node.value.kind == "variable" else ":literal")
        self.found.append((node.name.value, value_from_ast_untyped(node.value, self.variables)))


def argument_kinds(document: str, variables: dict[str, Any]) -> set[str]:
    arguments = Arguments(variables)
    visit(parse(document), arguments)
    kinds = set(arguments.kinds)

    def walk(value: Any, argument: str) -> None:
        if isinstance(value, list):
            for item in value:
                walk(item, argument)
        elif isinstance(value, dict):
            for key, inner in value.items():
                kinds.add(key) if key.startswith("_") else None
                if argument == "where" and not key.startswith("_") and isinstance(inner, dict) \
                        and any(not k.startswith("_") for k in inner):
                    kinds.add(":relationship filter")
                if argument == "order_by" and isinstance(inner, dict):
                    kinds.add(":nested order_by")
                if isinstance(inner, dict) and {"_gte", "_lte"} <= inner.keys() or \
                        isinstance(inner, dict) and key.endswith("time") and {"_gt", "_lt"} & inner.keys():
                    kinds.add(":timestamp range")
                walk(inner, argument)
        elif isinstance(value, str) and "_nulls_" in value:
            kinds.add(":nulls ordering")

    for name, value in arguments.found:
        kinds.add(name)
        walk(value, name)
    return kinds


async def test_the_corpus_uses_every_kind_of_argument_the_ui_sends(seeded) -> None:
    data, _ = seeded
    used = set().union(*(argument_kinds(read.document, read.variables(data)) for read in READS))
    assert ARGUMENT_KINDS - used == set()
