"""The web UI's reads (tests/graphql/ui_read_documents.py) against the UI seed answer the same
from compiled read plans as from the executor (see test_compiled_plans); those with fragments
or directives stay on the executor. They only read, so they share one seed."""

from __future__ import annotations

import pytest
from graphql import parse

from headwater.server.graphql.hasura.catalog import ROOT_FIELDS

from tests.conftest import GraphQL, empty_database
from tests.graphql.test_compiled_plans import assert_compiled_like_general, client
from tests.graphql.ui_read_documents import READS, Read
from tests.ui_seed import Seed, seed


@pytest.fixture
def clean_database() -> None:
    """Overrides the suite's per-test emptying: the seed below is emptied and written once."""


@pytest.fixture(scope="module")
async def seeded(engine, settings) -> tuple[Seed, GraphQL]:
    await empty_database(engine)
    async with client(settings) as gql:
        yield await seed(gql, engine), gql


@pytest.mark.parametrize("read", READS, ids=[read.id for read in READS])
async def test_the_ui_corpus_answers_the_same_from_plans(read: Read, seeded) -> None:
    data, gql = seeded
    variables = read.variables(data)
    roots = {selection.name.value for operation in parse(read.document).definitions
             for selection in getattr(operation, "selection_set", None).selections}
    compilable = ("fragment " not in read.document and "@" not in read.document
                  and roots <= {*ROOT_FIELDS, "__typename"})
    answer = await assert_compiled_like_general(gql, read.document, variables, compiled=compilable)
    assert not answer.get("errors") and read.expect(answer["data"], data)
