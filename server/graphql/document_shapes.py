"""Parse once per document shape: the Prefect client writes ids, slugs and timestamps into its
hottest documents as literals, so a parse cache keyed by the text never hits and every
heartbeat, task-run lookup and `flow_run_by_pk` pays a full parse (a millisecond for the flow
runner's read, six times the cost of lexing it).

The shape of a document is its token stream from graphql-core's own lexer, with the values of
string, block-string, int and float tokens left out. Every token's kind, position, line and
column are part of the shape, so two documents of one shape differ only in those values and
parse to the same AST apart from the literal nodes' values, with every location the same (an
error points at the same line and column). The first document of a shape is parsed by
graphql-core; later ones get a copy of that AST with their own literal values put in, sharing
every subtree that holds no literal. Whatever the lexer refuses, and a document over the token
limit, goes to the real parser, which raises its usual error.

The shape also carries what the validation cache needs (headwater.server.graphql.validation)
to key a document of a known shape without walking its AST: the template, which literals are
equal to which, and the verbatim values of those in variable definitions.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

from graphql import (
    DocumentNode,
    FloatValueNode,
    GraphQLSyntaxError,
    IntValueNode,
    Node,
    Source,
    StringValueNode,
    VariableDefinitionNode,
    parse,
)
from graphql.language import TokenKind
from graphql.language.lexer import Lexer

# The longest document (in tokens) any parse or validation cache keeps. A kept document costs
# memory in proportion to its tokens (its key, its AST); the hot ones have a few dozen, the web
# UI's largest a few hundred, while a client may send up to HEADWATER_MAX_QUERY_TOKENS. Longer
# documents are parsed and validated every time, so distinct large documents cannot fill memory.
MAX_CACHED_TOKENS = 2_000

LITERAL_TOKENS = frozenset({TokenKind.STRING, TokenKind.BLOCK_STRING, TokenKind.INT, TokenKind.FLOAT})
LITERAL_NODES = (StringValueNode, IntValueNode, FloatValueNode)


@dataclass(frozen=True)
class Lexed:
    """A document's shape key and its literal tokens' (kind, value), in source order."""

    key: tuple
    literals: tuple[tuple[TokenKind, str], ...]
    token_count: int  # tokens the parser counts toward max_tokens (comments included)


def lex(source: str, max_tokens: int | None) -> Lexed | None:
    """The shape of `source`, or None when the real parser must see it (a lexer error, or
    more tokens than `max_tokens`; the parser then raises the same error it always does)."""
    lexed = KNOWN_TEXTS.match(source)
    if lexed is None:
        lexed = _lex(source, max_tokens)
        if lexed is None:
            return None
        KNOWN_TEXTS.remember(source, lexed)
    if max_tokens is not None and lexed.token_count > max_tokens:
        return None
    return lexed


class KnownTexts:
    """Recently lexed texts, so that a document differing from one of them only inside its
    literal tokens is lexed by comparing strings instead of running the lexer over it all.

    The match is exact, not a pattern: the text outside the literals must be identical
    character for character (so the lexer reaches each literal at the same position, in the
    same state, having produced the same tokens), and each literal that differs must, lexed on
    its own by graphql-core's lexer, be one token of the same kind spanning exactly the old
    literal's characters. A string or block string ends at its closing quotes and a number at
    the same following character as before (which ended a number there already), so in the whole
    text it is that same token; neither literal may hold a line break, so every later token
    keeps its line and column. The result is therefore the shape `_lex` would compute.
    """

    MAX_TEXT = 16 * 1024  # longer documents are lexed each time (they are not the hot ones)
    PER_LENGTH = 4  # shapes remembered per text length (the same length is needed for a match)

    def __init__(self, size: int = 256):
        self.size = size
        self._by_length: OrderedDict[int, list[tuple[str, tuple[tuple[int, int, TokenKind], ...], Lexed]]] = (
            OrderedDict())

    def remember(self, source: str, lexed: Lexed) -> None:
        if len(source) > self.MAX_TEXT:
            return
        spans = tuple((part[1], part[2], part[0]) for part in lexed.key if len(part) == 5)
        known = self._by_length.setdefault(len(source), [])
        self._by_length.move_to_end(len(source))
        known.insert(0, (source, spans, lexed))
        del known[self.PER_LENGTH:]
        if len(self._by_length) > self.size:
            self._by_length.popitem(last=False)

    def match(self, source: str) -> Lexed | None:
        known = self._by_length.get(len(source))
        if not known:
            return None
        for text, spans, lexed in known:
            literals = _literals_if_same_shape(source, text, spans, lexed.literals)
            if literals is not None:
                return Lexed(lexed.key, literals, lexed.token_count)
        return None


def _literals_if_same_shape(
    source: str, text: str, spans: tuple[tuple[int, int, TokenKind], ...], old: tuple[tuple[TokenKind, str], ...]
) -> tuple[tuple[TokenKind, str], ...] | None:
    """The literal tokens of `source` if it has the shape of `text` (see KnownTexts), else None."""
    previous = 0
    for start, end, _ in spans:
        if source[previous:start] != text[previous:start]:
            return None
        previous = end
    if source[previous:] != text[previous:]:
        return None
    literals = []
    for (start, end, kind), literal in zip(spans, old):
        piece = source[start:end]
        if piece == text[start:end]:
            literals.append(literal)
            continue
        if _has_line_break(piece) or _has_line_break(text[start:end]):
            return None
        try:
            token = Lexer(Source(piece)).advance()
        except GraphQLSyntaxError:
            return None
        if token.kind is not kind or token.start != 0 or token.end != len(piece):
            return None
        literals.append((kind, token.value))
    return tuple(literals)


def _has_line_break(text: str) -> bool:
    return "\n" in text or "\r" in text


KNOWN_TEXTS = KnownTexts()


def _lex(source: str, max_tokens: int | None) -> Lexed | None:
    """The shape of `source` from graphql-core's lexer, or None if the lexer refuses it or it
    has more than `max_tokens` tokens (lexing stops there)."""
    lexer = Lexer(Source(source))
    token = lexer.token
    key: list[Any] = []
    literals: list[tuple[TokenKind, str]] = []
    count = 0
    try:
        while True:
            following = token.next
            if following is None:
                following = lexer.read_next_token(token.end)
                token.next = following
                following.prev = token
            token = following
            kind = token.kind
            if kind is TokenKind.EOF:
                break
            count += 1
            if max_tokens is not None and count > max_tokens:
                return None
            if kind is TokenKind.COMMENT:
                continue  # counted, but no part of the AST
            if kind in LITERAL_TOKENS:
                literals.append((kind, token.value))
                key.append((kind, token.start, token.end, token.line, token.column))
            else:
                key.append((kind, token.start, token.end, token.line, token.column, token.value))
    except GraphQLSyntaxError:
        return None
    return Lexed(tuple(key), tuple(literals), count)


class Template:
    """A parsed document of one shape, and where its literal nodes are."""

    def __init__(self, document: DocumentNode, literal_nodes: list[Node], in_defaults: tuple[int, ...]):
        self.structure: Any = None  # set by the validation cache, once
        self.document = document
        self.index = {id(node): i for i, node in enumerate(literal_nodes)}
        self.in_defaults = in_defaults  # literal indices inside variable definitions
        self.dirty = _nodes_above(document, self.index) | {id(document)}  # each request its own root
        self._build: Callable[[list[str]], DocumentNode] | None = None

    def instantiate(self, literals: tuple[tuple[TokenKind, str], ...], token_count: int) -> DocumentNode:
        if self._build is None:
            self._build = self._compile(self.document)
        document = self._build([value for _, value in literals])
        object.__setattr__(document, "token_count", token_count)  # as graphql-core's parser does
        return document

    def _compile(self, node: Node) -> Callable[[list[str]], Node]:
        """A function that builds a copy of `node` with the given literal values, copying only
        the nodes that hold a literal (nodes are frozen dataclasses: each copy is filled in
        through its __dict__ before anyone sees it)."""
        cls, base = type(node), dict(node.__dict__)
        position = self.index.get(id(node))
        if position is not None:
            def literal(values: list[str]) -> Node:
                clone = object.__new__(cls)
                clone.__dict__.update(base)
                clone.__dict__["value"] = values[position]
                return clone
            return literal
        parts: list[tuple[str, Callable[[list[str]], Any]]] = []
        for name, value in base.items():
            if isinstance(value, Node) and id(value) in self.dirty:
                parts.append((name, self._compile(value)))
            elif isinstance(value, tuple | list) and any(id(item) in self.dirty for item in value):
                parts.append((name, self._compile_items(value)))

        def build(values: list[str]) -> Node:
            clone = object.__new__(cls)
            fields = clone.__dict__
            fields.update(base)
            for name, part in parts:
                fields[name] = part(values)
            return clone
        return build

    def _compile_items(self, items: tuple | list) -> Callable[[list[str]], Any]:
        kind = type(items)
        parts = [(self._compile(item) if id(item) in self.dirty else None, item) for item in items]
        return lambda values: kind([part(values) if part else item for part, item in parts])


def _children(node: Node):
    for name in node.keys:
        if name == "loc":
            continue
        value = getattr(node, name, None)
        if isinstance(value, tuple | list):
            yield from (item for item in value if isinstance(item, Node))
        elif isinstance(value, Node):
            yield value


def _nodes_above(document: DocumentNode, literal_ids: dict[int, int]) -> set[int]:
    """Ids of the literal nodes and of every node that contains one (iteratively: a deep
    document must not exhaust the stack here)."""
    dirty: set[int] = set()
    stack: list[tuple[Node, list[int]]] = [(document, [])]
    while stack:
        node, ancestors = stack.pop()
        if id(node) in literal_ids:
            dirty.add(id(node))
            dirty.update(ancestors)
            continue
        below = [*ancestors, id(node)]
        stack.extend((child, below) for child in _children(node))
    return dirty


def _literal_nodes(document: DocumentNode) -> tuple[list[Node], tuple[int, ...]] | None:
    """The literal value nodes in source order and which of them sit in variable definitions,
    or None if they do not line up one to one with the literal tokens."""
    found: list[tuple[int, Node, bool]] = []
    stack: list[tuple[Node, bool]] = [(document, False)]
    while stack:
        node, in_definition = stack.pop()
        if isinstance(node, LITERAL_NODES):
            if node.loc is None:
                return None
            found.append((node.loc.start, node, in_definition))
            continue
        inside = in_definition or isinstance(node, VariableDefinitionNode)
        stack.extend((child, inside) for child in _children(node))
    found.sort(key=lambda item: item[0])
    if len({start for start, _, _ in found}) != len(found):
        return None
    return [node for _, node, _ in found], tuple(i for i, (_, _, inside) in enumerate(found) if inside)


@dataclass(frozen=True)
class ShapeInfo:
    """What the validation cache keys a document of a known shape by: its template (whose
    structure, literals abstracted, it computes once) and this document's literal values as
    the general key sees them: which are equal (outside variable definitions, by the index of
    their first occurrence) and, verbatim, those inside variable definitions."""

    template: "Template"
    pattern: tuple
    defaults: tuple


def template_of(document: DocumentNode, lexed: Lexed) -> "Template | None":
    """The template that rebuilds `document` (which `lexed` is the shape of) with other
    literal values, or None when its literals cannot be lined up with the tokens."""
    located = _literal_nodes(document)
    if located is None:
        return None
    nodes, in_defaults = located
    if len(nodes) != len(lexed.literals):
        return None
    for node, (kind, value) in zip(nodes, lexed.literals):
        block = kind is TokenKind.BLOCK_STRING
        if node.value != value or getattr(node, "block", False) != block:
            return None
    return Template(document, nodes, in_defaults)


class ShapeParser:
    """An LRU of templates by shape; `parse` returns the document and, for a shape it knows,
    the `ShapeInfo` that lets validation skip walking it."""

    def __init__(self, maxsize: int = 1024):
        self.maxsize = maxsize
        self._templates: OrderedDict[tuple, Template | None] = OrderedDict()

    def parse(self, source: str, max_tokens: int | None = None) -> tuple[DocumentNode, ShapeInfo | None]:
        lexed = lex(source, max_tokens)
        if lexed is None:
            return parse(source, max_tokens=max_tokens), None
        if lexed.token_count > MAX_CACHED_TOKENS:
            return parse(source, max_tokens=max_tokens), None
        template = self._templates.get(lexed.key, False)
        if template is False:
            document = parse(source, max_tokens=max_tokens)
            template = template_of(document, lexed)
            self._templates[lexed.key] = template
            if len(self._templates) > self.maxsize:
                self._templates.popitem(last=False)
            if template is None:
                return document, None
            return document, self._info(template, lexed)
        self._templates.move_to_end(lexed.key)
        if template is None:  # a shape whose literals could not be lined up: always parsed
            return parse(source, max_tokens=max_tokens), None
        return template.instantiate(lexed.literals, lexed.token_count), self._info(template, lexed)

    @staticmethod
    def _info(template: Template, lexed: Lexed) -> ShapeInfo:
        in_defaults = template.in_defaults
        first: dict[tuple[TokenKind, str], int] = {}
        if in_defaults:
            skip = set(in_defaults)
            pattern = tuple(first.setdefault(literal, len(first))
                            for i, literal in enumerate(lexed.literals) if i not in skip)
        else:
            pattern = tuple(first.setdefault(literal, len(first)) for literal in lexed.literals)
        defaults = tuple(lexed.literals[i] for i in in_defaults)
        return ShapeInfo(template, pattern, defaults)
