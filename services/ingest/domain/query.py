"""The tracker query language: parse a brand's saved search into an immutable AST.

Syntax
------
- ``kaffee``: a bare keyword. ``kaffee*``: every word starting with "kaffee" (the ``*`` is only
  allowed at the end and needs at least 2 letters or digits before it).
- ``"velora cargo"``: a phrase. Inside quotes everything but letters and digits separates words,
  so ``AND``, ``*``, ``#`` and ``@`` have no special meaning there.
- ``#velora``: only the hashtag. ``@velorabikes``: only the mention of that account. Both take
  a trailing ``*`` too (``#kaffee*`` matches "#Kaffeeliebe").
- A term needs a letter or digit; a leading ``-`` (``-spam``) is rejected with a hint to write
  ``NOT spam``, since here it would otherwise just be a separator and match "spam".
- ``AND``, ``OR``, ``NOT`` (uppercase only: lowercase ``and``/``or``/``not`` are ordinary
  words) and parentheses. Adjacent terms are ANDed (``röstwerk espresso``), and precedence is
  NOT > AND > OR, so ``a b OR c NOT d`` means ``(a AND b) OR (c AND (NOT d))``.

A query must need at least one term to be present: one that matches when none of its terms
occur (``NOT spam``, ``NOT a OR NOT b``, ``brand OR NOT spam``) is rejected, as it would match
almost every post on the internet. Queries are limited to 2,000 characters, 200 terms and
32 levels of nesting (parentheses and chained NOTs), so a stored query can never make
compiling or matching expensive.

Matching semantics (the matcher implements them; the regex reference in the tests restates
them independently)
------------------------------------------------------------------------------------------
- Both the query terms and the mention text go through `fold`: case-insensitive and
  accent-insensitive the German way (ä→ae, ö→oe, ü→ue, ß/ẞ→ss, then other accents dropped:
  é→e, ñ→n), so "Röstwerk", "ROESTWERK" and a decomposed "Ro\u0308stwerk" are all "roestwerk".
  A consequence: "Zürich" folds to "zuerich", not "zurich".
- Word characters are Unicode letters, digits and underscore (Python's ``\\w``); everything else
  (spaces, punctuation, ``-``, ``'``, emojis) separates words.
- A word term matches whole words only: ``bike`` matches "bike", "E-Bike" and "bike's" but not
  "biker" or "ebike"; ``bike*`` matches "biker" too.
- A term is a sequence of words: a phrase, or a bare keyword that contains separators
  (``e-bike``, ``mcdonald's``) matches its words in order, separated in the text by any run of
  non-word characters. So ``e-bike`` and ``"e bike"`` both match "E-Bike", "e bike" and
  "e/bike" (but not "ebike"), and ``"velora cargo"`` matches "Velora-Cargo" and "velora  cargo".
- Plain words and phrases also match inside hashtags and mentions, users expect that:
  ``velora`` matches "#velora" and "@velora", ``"velora cargo"`` matches "#Velora #Cargo".
- ``#velora`` matches only the hashtag "#Velora", ``@velorabikes`` only the mention
  "@velorabikes" (also "@velorabikes@mastodon.social"), never the plain word. A ``#`` or ``@``
  in the text starts a hashtag or mention only where it does not follow a word character
  (so neither "C#" nor "info@velora.de" contain one). A hashtag or handle term with several
  words needs the marker on its first one: ``#e-bike`` matches "#e-bike", ``@name.bsky.social``
  matches "@name.bsky.social".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass
from typing import Literal, TypeAlias

__all__ = [
    "MAX_DEPTH",
    "MAX_QUERY_LENGTH",
    "MAX_TERMS",
    "MIN_PREFIX_LENGTH",
    "And",
    "Node",
    "Not",
    "Or",
    "Query",
    "QueryError",
    "Term",
    "TermKind",
    "fold",
    "fold_spaced",
    "fold_words",
    "parse_query",
    "spaced_words",
    "words_of",
]

MAX_QUERY_LENGTH = 2_000
MAX_TERMS = 200
MAX_DEPTH = 32
#: Letters or digits a `*` needs before it: `a*` would hit nearly every post.
MIN_PREFIX_LENGTH = 2

TermKind: TypeAlias = Literal["word", "phrase", "hashtag", "handle"]

_WORD_RE = re.compile(r"\w+")


# --- fold ----------------------------------------------------------------------------------
#
# Folding runs once per mention, so it avoids scanning the text in Python or with `re` (both
# cost tens of nanoseconds per character): it works on the UTF-8 bytes, where ASCII is mapped
# by one C-level `bytes.translate`, and each of the few distinct non-ASCII characters of a post
# is folded once (memoised) and substituted with `bytes.replace` (UTF-8 is self-synchronising,
# so a character's bytes never match inside another's). Folding is context-free after NFC, so
# this equals applying the documented pipeline to the whole text (the tests check it for every
# character of the BMP and plane 1).

_ASCII_BYTES = bytes(range(128))


def _ascii_table(keep: Callable[[str], bool]) -> bytes:
    """A translation table: ASCII letters lowercased, other ASCII kept if `keep` says so and
    else a space; the bytes of non-ASCII characters (>= 0x80) untouched."""
    table = bytearray(range(256))
    for byte in range(128):
        char = chr(byte)
        table[byte] = ord(char.lower()) if keep(char) else 32
    return bytes(table)


_CACHE_LIMIT = 50_000


def _is_spaced_kept(char: str) -> bool:
    """What `fold_spaced` keeps: word characters (exactly `re`'s ``\\w``), "#" and "@"."""
    return char.isalnum() or char in "_#@"


_LOWER_ASCII = _ascii_table(lambda char: True)
_SPACED_ASCII = _ascii_table(_is_spaced_kept)


def _fold_char(char: str) -> str:
    """The documented fold pipeline, applied to one character of NFC text."""
    folded = char.casefold().replace("ä", "ae").replace("ö", "oe").replace("ü", "ue")
    folded = unicodedata.normalize("NFKD", folded)
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    # Compatibility characters may decompose to capitals (U+210D is "H"): casefold again.
    return folded.casefold()


def _spaced_char(char: str) -> str:
    """`_fold_char`, each resulting character that `fold_spaced` does not keep a space."""
    return "".join(c if _is_spaced_kept(c) else " " for c in _fold_char(char))


def _utf8(text: str) -> bytes:
    """UTF-8 bytes; a lone surrogate (JSON can carry one) is encoded rather than an error."""
    return text.encode("utf-8", "surrogatepass")


class _Replacements(dict[str, tuple[bytes, bytes]]):
    """Memo: a non-ASCII character -> (its UTF-8, the UTF-8 of what it becomes). Cleared when
    full, so an adversary's text can only cost recomputation, not memory."""

    __slots__ = ("_compute",)

    def __init__(self, compute: Callable[[str], str]) -> None:
        super().__init__()
        self._compute = compute

    def __missing__(self, char: str) -> tuple[bytes, bytes]:
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        value = self[char] = (_utf8(char), _utf8(self._compute(char)))
        return value


_FOLDED = _Replacements(_fold_char)
_SPACED = _Replacements(_spaced_char)


def _transform(text: str, ascii_table: bytes, replacements: _Replacements) -> str:
    """`text` (not ASCII) in NFC, ASCII mapped by the table, other characters replaced."""
    utf8 = _utf8(unicodedata.normalize("NFC", text))
    result = utf8.translate(ascii_table)
    for char in set(utf8.translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass")):
        original, replacement = replacements[char]
        if replacement != original:
            result = result.replace(original, replacement)
    return result.decode("utf-8", "surrogatepass")


def fold(text: str) -> str:
    """`text` for comparison: case- and accent-insensitive, German umlauts spelled out.

    casefold (ß and ẞ become "ss"), then ä/ö/ü become ae/oe/ue, then compatibility
    decomposition (NFKD: "é" is "e" + accent; ligatures and fullwidth forms become plain
    letters) with the combining accents dropped. Text is NFC-composed first, so a decomposed
    "o" + U+0308 is an "ö" and becomes "oe". Idempotent.
    """
    if text.isascii():
        return text.lower()
    return _transform(text, _LOWER_ASCII, _FOLDED)


def fold_spaced(text: str) -> str:
    """`fold(text)` with every character other than letters, digits, "_", "#" and "@" a space.

    Character for character the same length as `fold(text)`, so word boundaries and hashtag
    and mention markers sit where they do in the folded text; the matcher confirms hashtag
    and handle terms in it and takes its words from it (`spaced_words`).
    """
    if text.isascii():
        return text.encode().translate(_SPACED_ASCII).decode()
    return _transform(text, _SPACED_ASCII, _SPACED)


def spaced_words(spaced: str) -> str:
    """The words of a `fold_spaced` text, single-space separated, a space at each end."""
    if "#" in spaced or "@" in spaced:
        spaced = spaced.replace("#", " ").replace("@", " ")
    return f" {' '.join(spaced.split())} "


def fold_words(text: str) -> str:
    """The words of `fold(text)`, single-space separated, with one space at each end.

    This is what the matcher scans: `" der espresso von roestwerk "` for "Der Espresso von
    Röstwerk!". Equal to `f" {' '.join(words_of(fold(text)))} "`, only much faster.
    """
    return spaced_words(fold_spaced(text))


def words_of(folded: str) -> tuple[str, ...]:
    """The words of already folded text: the runs of letters, digits and underscores."""
    return tuple(_WORD_RE.findall(folded))


# --- AST -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Term:
    """One searchable unit; `value` is folded (hashtags and handles without their `#`/`@`).

    `prefix` is the trailing `*` wildcard: the last word only needs to start with its value.
    """

    kind: TermKind
    value: str
    prefix: bool = False

    @property
    def words(self) -> tuple[str, ...]:
        """The words the term matches in sequence (a plain word has one, `e-bike` two)."""
        return words_of(self.value)

    @property
    def marker(self) -> str:
        """The marker: "#" for hashtags, "@" for handles, "" for words and phrases."""
        return "#" if self.kind == "hashtag" else "@" if self.kind == "handle" else ""

    def __str__(self) -> str:
        if self.kind == "phrase":
            return f'"{self.value}"'
        return f"{self.marker}{self.value}{'*' if self.prefix else ''}"


@dataclass(frozen=True, slots=True)
class And:
    """All children must match (at least two; nested Ands are flattened)."""

    children: tuple[Node, ...]

    def __str__(self) -> str:
        return " AND ".join(f"({c})" if isinstance(c, Or) else str(c) for c in self.children)


@dataclass(frozen=True, slots=True)
class Or:
    """At least one child must match (at least two; nested Ors are flattened)."""

    children: tuple[Node, ...]

    def __str__(self) -> str:
        return " OR ".join(str(c) for c in self.children)


@dataclass(frozen=True, slots=True)
class Not:
    """The child must not match; only valid next to something that must be present."""

    child: Node

    def __str__(self) -> str:
        child = self.child
        return f"NOT ({child})" if isinstance(child, And | Or) else f"NOT {child}"


Node: TypeAlias = Term | And | Or | Not


def _evaluate(node: Node, present: Container[Term]) -> bool:
    if isinstance(node, Term):
        return node in present
    if isinstance(node, And):
        return all(_evaluate(child, present) for child in node.children)
    if isinstance(node, Or):
        return any(_evaluate(child, present) for child in node.children)
    return not _evaluate(node.child, present)


def _walk_terms(node: Node, positive: bool = True) -> Iterator[tuple[Term, bool]]:
    """Every term occurrence with its polarity (True: under an even number of NOTs)."""
    if isinstance(node, Term):
        yield node, positive
    elif isinstance(node, Not):
        yield from _walk_terms(node.child, not positive)
    else:
        for child in node.children:
            yield from _walk_terms(child, positive)


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed, valid query: the source text and its AST."""

    text: str
    root: Node

    def terms(self) -> list[Term]:
        """The distinct terms, in order of first appearance."""
        return list(dict.fromkeys(term for term, _ in _walk_terms(self.root)))

    def positive_terms(self) -> list[Term]:
        """Distinct terms that occur outside NOT (or under an even number of NOTs).

        A valid query can only match a text that contains at least one of them, which is
        what lets the matcher skip every query none of whose positive terms occur.
        """
        return list(dict.fromkeys(term for term, positive in _walk_terms(self.root) if positive))

    def evaluate(self, present: Container[Term]) -> bool:
        """Whether the query matches a text in which exactly the terms `present` occur."""
        return _evaluate(self.root, present)

    def __str__(self) -> str:
        return str(self.root)


# --- errors --------------------------------------------------------------------------------


class QueryError(ValueError):
    """An invalid query; `position` is the 0-based character offset the `reason` is about."""

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(f"position {position}: {reason}")
        self.position = position
        self.reason = reason

    def __reduce__(self) -> tuple[type[QueryError], tuple[int, str]]:
        return (type(self), (self.position, self.reason))


# --- lexer ---------------------------------------------------------------------------------

_Kind: TypeAlias = Literal["term", "(", ")", "AND", "OR", "NOT"]
_OPERATORS: dict[str, _Kind] = {"AND": "AND", "OR": "OR", "NOT": "NOT"}
_SPECIAL = frozenset('()"')


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _Kind
    position: int
    term: Term | None = None


def _bare_term(raw: str, position: int) -> Term:
    """A keyword, `#hashtag` or `@handle` token (not an operator) as a Term."""
    kind: TermKind = "word"
    body, offset = raw, 0
    if raw[0] == "#":
        kind, body, offset = "hashtag", raw[1:], 1
    elif raw[0] == "@":
        kind, body, offset = "handle", raw[1:], 1
    if kind != "word" and body.rstrip("*") == "":
        name = "hashtag" if kind == "hashtag" else "handle"
        raise QueryError(position, f"empty {name}: '{raw[0]}' must be followed by a name")
    prefix = body.endswith("*")
    if prefix:
        body = body[:-1]
    star = body.find("*")
    if star >= 0:
        raise QueryError(position + offset + star, "'*' is only allowed at the end of a term")
    value = fold(body)
    words = words_of(value)
    if kind == "word" and raw[0] == "-" and words:
        raise QueryError(
            position, f"a leading '-' does not exclude anything here; write 'NOT {raw[1:]}'"
        )
    if not words:
        if prefix and not body:
            raise QueryError(position, "'*' must follow a word, as in 'kaffee*'")
        raise QueryError(position, f"term {raw!r} has no letters or digits")
    if prefix:
        if not (value[-1].isalnum() or value[-1] == "_"):
            raise QueryError(position + len(raw) - 1, "'*' must directly follow a letter or digit")
        if len(words[-1]) < MIN_PREFIX_LENGTH:
            raise QueryError(
                position + len(raw) - 1,
                f"'*' needs at least {MIN_PREFIX_LENGTH} letters or digits before it",
            )
    return Term(kind, value, prefix)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    terms = 0
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
            continue
        if char in "()":
            tokens.append(_Token("(" if char == "(" else ")", i))
            i += 1
            continue
        term: Term
        if char == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise QueryError(i, "unterminated quote: the phrase has no closing '\"'")
            words = words_of(fold(text[i + 1 : end]))
            if not words:
                raise QueryError(i, "empty phrase: it has no letters or digits")
            term, start, i = Term("phrase", " ".join(words)), i, end + 1
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in _SPECIAL:
                i += 1
            raw = text[start:i]
            operator = _OPERATORS.get(raw)
            if operator is not None:
                tokens.append(_Token(operator, start))
                continue
            term = _bare_term(raw, start)
        terms += 1
        if terms > MAX_TERMS:
            raise QueryError(start, f"too many terms: a query may have at most {MAX_TERMS}")
        tokens.append(_Token("term", start, term))
    return tokens


# --- parser --------------------------------------------------------------------------------


class _Parser:
    """Recursive descent: or := and (OR and)*; and := unary ([AND] unary)*; unary := NOT* atom.

    Remembers where each node starts, to point errors found after parsing at the right place.
    """

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.positions: dict[int, int] = {}

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def previous(self) -> _Token | None:
        return self.tokens[self.index - 1] if self.index > 0 else None

    def node(self, node: Node, position: int) -> Node:
        self.positions[id(node)] = position
        return node

    def parse(self) -> Node:
        root = self.parse_or(0)
        token = self.peek()
        if token is not None:  # only a ')' can stop parse_or early
            raise QueryError(token.position, "unmatched ')'")
        return root

    def parse_or(self, depth: int) -> Node:
        first = self.parse_and(depth)
        children = [first]
        while (token := self.peek()) is not None and token.kind == "OR":
            self.index += 1
            children.append(self.parse_and(depth))
        return self.combine(Or, children)

    def parse_and(self, depth: int) -> Node:
        children = [self.parse_unary(depth)]
        while (token := self.peek()) is not None and token.kind in ("AND", "term", "(", "NOT"):
            if token.kind == "AND":
                self.index += 1
            children.append(self.parse_unary(depth))
        return self.combine(And, children)

    def combine(self, cls: type[And] | type[Or], children: list[Node]) -> Node:
        if len(children) == 1:
            return children[0]
        flat: list[Node] = []
        for child in children:
            flat.extend(child.children if isinstance(child, cls) else (child,))
        return self.node(cls(tuple(flat)), self.positions[id(children[0])])

    def parse_unary(self, depth: int) -> Node:
        nots: list[int] = []
        while (token := self.peek()) is not None and token.kind == "NOT":
            if depth + len(nots) + 1 > MAX_DEPTH:
                raise QueryError(token.position, f"nested deeper than {MAX_DEPTH} levels")
            nots.append(token.position)
            self.index += 1
        node = self.parse_atom(depth + len(nots))
        for position in reversed(nots):
            node = self.node(Not(node), position)
        return node

    def parse_atom(self, depth: int) -> Node:
        token = self.peek()
        if token is not None and token.kind == "term":
            self.index += 1
            assert token.term is not None  # term tokens always carry one
            return self.node(token.term, token.position)
        if token is not None and token.kind == "(":
            if depth + 1 > MAX_DEPTH:
                raise QueryError(token.position, f"nested deeper than {MAX_DEPTH} levels")
            self.index += 1
            if (inner := self.peek()) is not None and inner.kind == ")":
                raise QueryError(token.position, "empty parentheses")
            node = self.parse_or(depth + 1)
            closing = self.peek()
            if closing is None:
                raise QueryError(token.position, "unmatched '(': expected ')'")
            self.index += 1
            return node
        raise self.expected_term(token)

    def expected_term(self, token: _Token | None) -> QueryError:
        """The error for a missing term, placed at the operator or bracket that needs it."""
        previous = self.previous()
        found = "the end of the query" if token is None else f"'{token.kind}'"
        if previous is not None and previous.kind in _OPERATORS:
            return QueryError(
                previous.position, f"'{previous.kind}' needs a term after it, found {found}"
            )
        if token is None:  # the query ends right after '('
            position = previous.position if previous is not None else 0
            return QueryError(position, "unmatched '(': expected ')'")
        if token.kind == ")":
            return QueryError(token.position, "unmatched ')'")
        return QueryError(token.position, f"'{token.kind}' needs a term before it")

    def culprit(self, node: Node) -> int:
        """Where a query that matches the empty text goes wrong: the NOT that makes it so."""
        if isinstance(node, Or):
            for child in node.children:
                if _evaluate(child, ()):
                    return self.culprit(child)
        if isinstance(node, And):
            return self.culprit(node.children[0])
        return self.positions[id(node)]


def parse_query(text: str) -> Query:
    """Parse and validate a tracker query; raises QueryError saying where and why it is bad."""
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(MAX_QUERY_LENGTH, f"query is longer than {MAX_QUERY_LENGTH:,} characters")
    tokens = _tokenize(text)
    if not tokens:
        raise QueryError(0, "empty query")
    parser = _Parser(tokens)
    root = parser.parse()
    if _evaluate(root, ()):
        raise QueryError(
            parser.culprit(root),
            "this query matches posts by what they lack, so it would match almost every post "
            "on the internet; NOT can only narrow down terms that must be present, "
            "as in 'brand NOT spam'",
        )
    return Query(text, root)
