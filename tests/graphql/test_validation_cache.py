"""The validation cache can never let an invalid document run.

Each case primes the cache with a valid document, then sends a look-alike that must be
refused: one that differs only in what the old text-regex "shape" blanked (comments, string
and number contents), so the old cache skipped its validation. The cache key is now the parsed
document with literal values abstracted (headwater.server.graphql.validation.document_key)."""

from __future__ import annotations

import re
import uuid

import graphql
import pytest

from headwater.server.graphql.schema import schema
from headwater.server.graphql.validation import DocumentLimits, DocumentValidationCache, check_limits, document_key
from headwater.server.settings import Settings

# The shape the cache used to be keyed by (a regex over the text), kept to show that every
# look-alike below fooled it.
_OLD_LITERAL = re.compile(
    r'"""(?:[^"\\]|\\.|"(?!""))*"""|"(?:[^"\\\n]|\\.)*"|(?<![A-Za-z0-9_.])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?'
)


def old_shape(query: str) -> str:
    return _OLD_LITERAL.sub(lambda m: '"?"' if m.group(0).startswith('"') else "0", query)


def deep(levels: int) -> str:
    """flow_run { flow { flow_runs { flow { ... id } } } }: `levels` + 2 levels deep."""
    selection = "id"
    for i in range(levels):
        selection = ("flow { %s }" if i % 2 == 0 else "flow_runs { %s }") % selection
    return "flow_run(limit: 1) { %s }" % selection


def key(query: str) -> tuple:
    return document_key(graphql.parse(query))


def invalid(query: str) -> list[str]:
    """What a full, uncached check reports: the cost limits, then graphql-core's rules."""
    document = graphql.parse(query)
    errors = check_limits(document, DocumentLimits.of(Settings())) or graphql.validate(schema._schema, document)
    return [e.message for e in errors]


NAME = 'flow(where: {name: {_eq: %s}}) { id }'

# (what it tries, valid prime, invalid look-alike). Every pair has the same old shape.
LOOK_ALIKES = [
    ("a block string in a comment hides an unknown field",
     '{ hello # """x"""\n}',
     '{ hello # """\n nope(x: 1) # """\n}'),
    ("a block string in a comment hides a depth-50 query",
     '{ hello # """x"""\n}',
     '{ hello # """\n ' + deep(50) + ' # """\n}'),
    ("a block string in a comment hides a missing required argument",
     '{ hello # """x"""\n}',
     '{ hello # """\n get_task_run_info { id } # """\n}'),
    ("a comment with unicode hides a second operation's field",
     '{ hello # ünïcødé 👋 """é"""\n}',
     '{ hello # ünïcødé 👋 """\n api { nope } # """\n}'),
    ("an escaped quote inside the hidden block string",
     '{ hello # """a\\"""b"""\n}',
     '{ hello # """a\\"""\n nope # """\n}'),
    ("a float where an Int is expected",
     "{ flow(limit: 1) { id } }",
     "{ flow(limit: 1.5) { id } }"),
    ("an Int outside 32 bits",
     "{ flow(limit: 5) { id } }",
     "{ flow(limit: 99999999999) { id } }"),
    ("aliases with conflicting string arguments",
     "{ a: %s a: %s }" % (NAME % '"x"', NAME % '"x"'),
     "{ a: %s a: %s }" % (NAME % '"x"', NAME % '"y"')),
    ("a block string and a string of the same text conflict",
     "{ a: %s a: %s }" % (NAME % '"x"', NAME % '"x"'),
     "{ a: %s a: %s }" % (NAME % '"x"', NAME % '"""x"""')),
    ("aliases with conflicting unicode strings",
     "{ a: %s a: %s }" % (NAME % '"é"', NAME % '"é"'),
     "{ a: %s a: %s }" % (NAME % '"é"', NAME % '"e\\u0301"')),
    ("aliases with conflicting numbers",
     "{ a: flow(limit: 1) { id } a: flow(limit: 1) { id } }",
     "{ a: flow(limit: 1) { id } a: flow(limit: 2) { id } }"),
    ("a variable's default value out of range",
     "query($n: Int = 5) { flow(limit: $n) { id } }",
     "query($n: Int = 99999999999) { flow(limit: $n) { id } }"),
    ("a fragment hidden behind a comment",
     '{ flow_run(limit: 1) { ...F } } fragment F on flow_run { id # """x"""\n}',
     '{ flow_run(limit: 1) { ...F } } fragment F on flow_run { id # """\n ...G } '
     'fragment G on flow { id # """\n}'),
]


@pytest.mark.parametrize("what,prime,attack", LOOK_ALIKES, ids=[case[0] for case in LOOK_ALIKES])
async def test_a_look_alike_of_a_cached_document_is_refused(gql, what, prime, attack):
    assert old_shape(prime) == old_shape(attack), "the old cache took these for one document"
    for _ in range(2):
        assert "errors" not in await gql.raw(prime)
    body = await gql.raw(attack)
    assert body.get("errors"), f"{what}: executed {body}"
    assert not body.get("data"), f"{what}: returned data {body['data']}"
    assert body["errors"][0]["extensions"]["code"] != "INTERNAL_SERVER_ERROR"


async def test_the_reported_attack_depth_50_after_a_comment_primed_the_cache(gql):
    """The issue's reproduction: `{ hello # \"\"\"x\"\"\"}` (a syntax error: the comment eats
    the brace) and its newline variant, then a depth-50 query behind the same comment."""
    assert "Syntax Error" in await gql.error('{ hello # """x"""}')
    assert await gql('{ hello # """x"""\n}') == {"hello": "👋"}
    attack = '{ hello # """\n ' + deep(50) + ' # """\n}'
    body = await gql.raw(attack)
    assert body["data"] is None
    assert "52 levels deep; the limit is 12" in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


@pytest.mark.parametrize("what,prime,attack", LOOK_ALIKES, ids=[case[0] for case in LOOK_ALIKES])
def test_look_alikes_get_different_keys_unless_validation_agrees(what, prime, attack):
    """Where graphql-core itself would refuse the look-alike, the keys differ (so it is
    validated); the only shared keys are literal values that coercion checks again."""
    assert not invalid(prime) and invalid(attack)
    if key(prime) == key(attack):
        assert what == "an Int outside 32 bits", f"{what}: shares a key with its prime"


def test_documents_that_differ_only_in_literal_values_or_comments_share_a_key():
    heartbeat = 'mutation { update_flow_run_heartbeat(input: { flow_run_id: "%s" }) { success } }'
    assert key(heartbeat % uuid.uuid4()) == key(heartbeat % uuid.uuid4())
    assert key('{ flow(limit: 1, offset: 2) { id } }') == key('{ flow(limit: 7, offset: 3) { id } }')
    assert key('{ hello }') == key('{ hello # a comment """\n}') == key('{\n  hello,\n}')
    assert key("{ %s }" % (NAME % '"a\\"b"')) == key("{ %s }" % (NAME % '"ü"'))


@pytest.mark.parametrize("left,right", [
    ("1", '"1"'), ("1", "1.0"), ("1", "true"), ("true", "false"), ("1", "null"), ("asc", "desc"),
    ("[1]", "[1, 2]"), ("[1]", "1"), ('{a: 1}', '{b: 1}'), ('{a: 1}', '{a: "1"}'), ("$v", '"x"'),
])
def test_the_key_keeps_the_kind_and_structure_of_every_literal(left, right):
    template = "query($v: String) { f(x: %s) }"
    assert key(template % left) != key(template % right)


def test_equal_literals_stay_equal_in_the_key():
    assert key('{ a(x: "p", y: "p") }') != key('{ a(x: "p", y: "q") }')
    assert key('{ a(x: "p", y: "q") }') == key('{ a(x: "r", y: "s") }')
    assert key('{ a(x: "é", y: "\\u00e9") }') == key('{ a(x: "p", y: "p") }'), "equal once decoded"


def test_variable_defaults_are_kept_verbatim():
    assert key("query($n: Int = 1) { f(n: $n) }") != key("query($n: Int = 2) { f(n: $n) }")


async def test_hot_documents_with_literal_ids_hit_the_cache(gql):
    heartbeat = 'mutation { update_flow_run_heartbeat(input: { flow_run_id: "%s" }) { success } }'
    await gql(heartbeat % uuid.uuid4())
    entries = len(DocumentValidationCache._valid)
    for _ in range(20):
        assert (await gql(heartbeat % uuid.uuid4()))["update_flow_run_heartbeat"]["success"] is False
    assert len(DocumentValidationCache._valid) == entries
    assert "Could not parse UUID: nope" in await gql.error(heartbeat % "nope")


async def test_an_int_out_of_range_sharing_a_key_is_refused_when_coerced(gql):
    assert (await gql("{ flow(limit: 5) { id } }"))["flow"] == []
    body = await gql.raw("{ flow(limit: 99999999999) { id } }")
    assert "99999999999" in body["errors"][0]["message"] and not body["data"]


async def test_invalid_documents_are_not_cached(gql):
    for _ in range(2):
        assert "Cannot query field 'nope'" in await gql.error("{ hello nope }")


async def test_long_documents_are_answered_but_never_kept(gql):
    """Distinct long documents cannot fill memory: past MAX_CACHED_TOKENS a document is parsed
    and validated every time, and no parse, validation or plan cache keeps it."""
    from headwater.server.graphql.document_shapes import MAX_CACHED_TOKENS
    from headwater.server.graphql.validation import LimitedParserCache

    caches = (LimitedParserCache._by_text, LimitedParserCache.shapes._templates, DocumentValidationCache._valid)
    plans = gql.http._transport.app.state.compiled_plans
    sizes = [len(cache) for cache in caches], len(plans)
    names = " ".join(f'"n{i}"' for i in range(MAX_CACHED_TOKENS))
    for field in ("id", "name"):
        document = "{ flow(where: {name: {_in: [%s]}}) { %s } }" % (names, field)
        assert graphql.parse(document).token_count > MAX_CACHED_TOKENS
        for _ in range(2):
            assert await gql(document) == {"flow": []}
    assert ([len(cache) for cache in caches], len(plans)) == sizes
    refused = "{ flow(where: {name: {_in: [%s]}}) { nope } }" % names
    assert "nope" in await gql.error(refused), "still validated"
