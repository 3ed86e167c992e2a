"""Parsing once per document shape is equivalent to parsing every document: the same AST, the
same locations, the same token count, the same errors; and a hit really reuses the template.

The documents are the real prefect==1.4.1 client's (tests/wire/prefect1-capture.jsonl), each
also with its literals rewritten to other values of the same and of other lengths."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from graphql import GraphQLSyntaxError, Node, parse

from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.server.graphql.document_shapes import KnownTexts, ShapeParser, _lex, lex
from headwater.server.graphql.validation import DocumentValidationCache, LimitedParserCache

CAPTURE = Path(__file__).resolve().parents[1] / "wire" / "prefect1-capture.jsonl"


def client_documents() -> list[str]:
    documents = []
    for line in CAPTURE.read_text().splitlines():
        body = json.loads(line).get("body")  # other lines describe the recording
        for operation in body if isinstance(body, list) else [body]:
            if isinstance(operation, dict) and operation.get("query") not in documents:
                documents.append(operation["query"])
    return documents


def nodes(value):
    """Every node of an AST, depth first, in a fixed order."""
    if isinstance(value, Node):
        yield value
        for name in value.keys:
            if name != "loc":
                yield from nodes(getattr(value, name))
    elif isinstance(value, tuple | list):
        for item in value:
            yield from nodes(item)


def assert_same_document(got, expected):
    assert got == expected  # graphql-core compares every field but locations
    for a, b in zip(nodes(got), nodes(expected), strict=True):
        assert type(a) is type(b)
        assert (a.loc.start, a.loc.end) == (b.loc.start, b.loc.end), a
        assert (a.loc.start_token.line, a.loc.start_token.column) == (b.loc.start_token.line, b.loc.start_token.column)
    assert got.token_count == expected.token_count


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def variants(document: str) -> list[str]:
    """The document with its ids replaced by other ids, and by other-length strings."""
    found = UUID.findall(document)
    if not found:
        return [document]
    same_length = UUID.sub(lambda _: str(uuid.uuid4()), document)
    other_length = UUID.sub(lambda _: "x" * 7, document)
    return [document, same_length, other_length]


def test_every_client_document_parses_as_graphql_core_parses_it():
    documents = client_documents()
    assert len(documents) > 40
    shapes = ShapeParser()
    hits = 0
    for document in documents:
        for variant in variants(document) * 2:
            got, info = shapes.parse(variant, max_tokens=10_000)
            assert_same_document(got, parse(variant, max_tokens=10_000))
            hits += info is not None
    assert hits > len(documents)


def test_a_hit_reuses_the_template_and_shares_literal_free_subtrees():
    shapes = ShapeParser()
    query = '{ flow_run_by_pk(id: "%s") { id state flow { id name } } }'
    first, _ = shapes.parse(query % uuid.uuid4())
    documents = [shapes.parse(query % uuid.uuid4())[0] for _ in range(100)]
    assert len(shapes._templates) == 1
    field = documents[0].definitions[0].selection_set.selections[0]
    template_field = first.definitions[0].selection_set.selections[0]
    assert field.selection_set is template_field.selection_set, "no literal below: shared"
    assert field is not template_field and field.arguments[0].value.value != template_field.arguments[0].value.value
    assert len({d.definitions[0].selection_set.selections[0].arguments[0].value.value for d in documents}) == 100


@pytest.mark.parametrize("source", [
    "{ a(x: 1) }", "{ a(x: 1.5e3) }", '{ a(x: """block\n  text""") }', '{ a(x: "esc\\u00e9\\n") }',
    "query($v: Int = 3) { a(x: $v, y: 4) }", '{ a(x: "1", y: "1", z: "2") }', "# comment\n{ a }",
    '{ a(x: "1") } # trailing', "{ a(x: [1, 2, {b: \"c\"}]) }",
])
def test_literal_kinds_escapes_blocks_comments_and_defaults(source):
    shapes = ShapeParser()
    shapes.parse(source)
    for literal, other in (("1", "7"), ("3", "9"), ("block", "bluck"), ("esc", "abc"), ('"c"', '"d"')):
        variant = source.replace(literal, other)
        got, _ = shapes.parse(variant)
        assert_same_document(got, parse(variant))


def test_equal_literals_stay_distinguishable_for_validation():
    shapes = ShapeParser()
    _, same = shapes.parse('{ a(x: "1", y: "1") }')
    _, different = shapes.parse('{ a(x: "1", y: "2") }')
    assert same.template is different.template and same.pattern != different.pattern
    _, default_a = shapes.parse("query($v: String = \"a\") { a(x: $v) }")
    _, default_b = shapes.parse("query($v: String = \"b\") { a(x: $v) }")
    assert default_a.defaults != default_b.defaults, "variable defaults are part of the key, verbatim"


@pytest.mark.parametrize("source", ['{ a(x: "unterminated) }', "{ a(x: 01) }", "{ a(x: 1.) }", "{ a }}", "{ a(x: \"\\z\") }"])
def test_syntax_errors_are_graphql_cores_own(source):
    with pytest.raises(GraphQLSyntaxError) as expected:
        parse(source)
    with pytest.raises(GraphQLSyntaxError) as got:
        ShapeParser().parse(source)
    assert (got.value.message, got.value.locations) == (expected.value.message, expected.value.locations)


def test_the_token_limit_counts_comments_exactly_as_the_parser_does():
    source = "{ a(x: 1) " + "# c\n" * 20 + "}"
    tokens = parse(source).token_count
    assert lex(source, None).token_count == tokens
    shapes = ShapeParser()
    shapes.parse(source, max_tokens=tokens)
    with pytest.raises(GraphQLSyntaxError, match=f"more than {tokens - 1} tokens"):
        shapes.parse(source, max_tokens=tokens - 1)


class PlainParser:
    """The general path: graphql-core parses every document, validation keys walk the AST."""

    def parse(self, source, max_tokens=None):
        return parse(source, max_tokens=max_tokens), None


@pytest.mark.parametrize("bad_id", ["z" * 36, "short", ""])
async def test_answers_and_errors_match_the_general_path(gql, monkeypatch, bad_id):
    """A good document, then one of its shape with a malformed id (and a second good one), give
    exactly what they give when every document is parsed and keyed in full."""
    query = '{ flow_run_by_pk(id: "%s") { id } flow_run(where: {id: {_eq: "%s"}}) { id } }'
    documents = [query % (uuid.uuid4(), uuid.uuid4()), query % (bad_id, uuid.uuid4()), query % (uuid.uuid4(), bad_id)]

    # The parsers are compared, so every document goes through them (no compiled read plan).
    monkeypatch.setattr(gql.http._transport.app.state, "compiled_plans", None)

    async def answers(parser):
        monkeypatch.setattr(LimitedParserCache, "shapes", parser)
        LimitedParserCache._by_text.clear()
        DocumentValidationCache._valid.clear()
        return [await gql.raw(document) for document in documents]

    general = await answers(PlainParser())
    shaped = await answers(ShapeParser())
    assert shaped == general
    assert general[0].get("errors") is None and general[1]["errors"] and general[2]["errors"]


def test_shape_keys_are_equal_exactly_when_document_keys_are():
    from headwater.server.graphql.validation import document_key, shape_key

    sources = [
        '{ a(x: "1", y: "1") }', '{ a(x: "2", y: "2") }', '{ a(x: "1", y: "2") }', '{ a(x: "10", y: "10") }',
        '{ a(x: "1", y: """1""") }', "{ a(x: 1, y: 1) }", "{ a(x: 1, y: 2.0) }",
        'query($v: String = "a") { a(x: $v, y: "a") }', 'query($v: String = "b") { a(x: $v, y: "a") }',
        'query($v: String = "a") { a(x: $v, y: "b") }', 'query($v: String = "aa") { a(x: $v, y: "b") }',
        '{ a(x: ["1", "2"]) }', '{ a(x: ["3", "3"]) }', '{ a(x: ["33", "4"]) }',
    ] + [document for base in client_documents()[:30] for document in variants(base)]
    shapes = ShapeParser()
    keyed = []
    for source in sources:
        document, info = shapes.parse(source)
        if info is not None:
            keyed.append((shape_key(info), document_key(parse(source))))
    assert len(keyed) == len(sources)
    for shape_a, general_a in keyed:
        for shape_b, general_b in keyed:
            assert (shape_a == shape_b) == (general_a == general_b)


# -- lexing by comparison with a known text (KnownTexts) --------------------------------------

KNOWN = '{ a(x: "abcdef", n: 12, f: 1.5, b: """xy""", e: -7) { b } } # "c"\n{ d(y: "q\\u0041") }'


def lexed_both_ways(source: str):
    """(the shape lex gives with KNOWN just lexed, the shape of the lexer alone)."""
    texts = KnownTexts()
    assert texts.match(KNOWN) is None
    texts.remember(KNOWN, _lex(KNOWN, None))
    matched = texts.match(source)
    return (matched if matched is not None else _lex(source, None)), _lex(source, None), matched is not None


@pytest.mark.pure
@pytest.mark.parametrize("old,new,matched", [
    ('"abcdef"', '"zyxwvu"', True),
    ('"abcdef"', '"a\\nbcd"', True),  # an escape, not a line break
    ('"abcdef"', '"a", "b"', False),  # two tokens now
    ('"abcdef"', '"abc\\"  ', False),  # unterminated
    ('"abcdef"', '"""ab"""', False),  # another kind
    ('"abcdef"', '"ab\ud800def"', False),  # a character strings may not hold (a lone surrogate)
    ("12", "-1", True), ("12", "1e", False), ("12", "1.", False), ("12", "0x", False), ("12", "01", False),
    ("1.5", "2e3", True), ("1.5", "-15", False), ("1.5", "1_5", False),
    ('"""xy"""', '"""x\n"""', False),  # a line break moves every later token's line
    ('"""xy"""', '"""ab"""', True),
    ('"q\\u0041"', '"q\\u0042"', True), ('"q\\u0041"', '"q\\uD800"', False),
    ("-7", "-8", True), ("-7", "--", False),
    ('# "c"', '# "d"', False),  # a comment is not a literal: its text is part of the shape
])
def test_a_text_differing_only_in_literals_is_lexed_by_comparison(old, new, matched):
    assert len(old) == len(new)
    source = KNOWN.replace(old, new, 1)
    got, expected, by_comparison = lexed_both_ways(source)
    assert got == expected
    assert by_comparison is matched


LITERAL_CHARACTERS = st.sampled_from(list('"\\abu0123456789.eE-+_ \n\r\t{}()#,:$@\u00e9\u0000\ud800'))


@pytest.mark.pure
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_any_same_length_rewrite_of_the_literals_lexes_as_the_lexer_does(data):
    spans = [(part[1], part[2]) for part in _lex(KNOWN, None).key if len(part) == 5]
    source = list(KNOWN)
    for start, end in data.draw(st.lists(st.sampled_from(spans), min_size=1, max_size=len(spans), unique=True)):
        piece = data.draw(st.text(LITERAL_CHARACTERS, min_size=end - start, max_size=end - start))
        source[start:end] = piece
    got, expected, _ = lexed_both_ways("".join(source))
    assert got == expected


@pytest.mark.pure
def test_known_texts_are_bounded_and_the_token_limit_still_applies():
    texts = KnownTexts(size=2)
    for source in ("{ a }", "{ ab }", "{ abc }"):
        texts.remember(source, _lex(source, None))
    assert len(texts._by_length) == 2 and texts.match("{ b }") is None
    big = "{ a(x: %s) }" % ("1" * (KnownTexts.MAX_TEXT + 1))
    texts.remember(big, _lex(big, None))
    assert texts.match(big) is None, "long texts are not kept"
    source = '{ a(x: "1", y: "2") }'
    assert lex(source, None).token_count == 11
    assert lex(source, 11) is not None and lex(source, 10) is None  # also when known
