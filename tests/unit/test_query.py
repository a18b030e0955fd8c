"""The tracker query language: syntax, errors with positions, and text folding."""

from __future__ import annotations

import dataclasses
import pickle
import random
import unicodedata

import pytest

from services.ingest.domain.query import (
    MAX_DEPTH,
    MAX_QUERY_LENGTH,
    MAX_TERMS,
    And,
    Not,
    Or,
    QueryError,
    Term,
    fold,
    fold_spaced,
    fold_words,
    parse_query,
    words_of,
)
from shared.local.demo_corpus import DEMO_TRACKERS


def w(value: str, prefix: bool = False) -> Term:
    return Term("word", value, prefix)


def reference_fold(text: str) -> str:
    """The documented pipeline, step by step over the whole text (slow, obviously right)."""
    folded = unicodedata.normalize("NFC", text).casefold()
    folded = folded.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue")
    folded = unicodedata.normalize("NFKD", folded)
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return folded.casefold()


def reference_spaced(folded: str) -> str:
    return "".join(c if c.isalnum() or c in "_#@" else " " for c in folded)


# --- fold ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Röstwerk", "roestwerk"),
        ("ROESTWERK", "roestwerk"),
        ("RÖSTWERK", "roestwerk"),
        ("Ro\u0308stwerk", "roestwerk"),  # decomposed: o + combining diaeresis
        ("RO\u0308STWERK", "roestwerk"),
        ("Äpfel Übermut", "aepfel uebermut"),
        ("Straße", "strasse"),
        ("STRAẞE", "strasse"),  # capital sharp s
        ("Crème brûlée", "creme brulee"),
        ("señor Ñandú", "senor nandu"),
        ("Çà et là", "ca et la"),
        ("\ufb01ne \uff03Velora", "fine #velora"),  # ligature and fullwidth forms
        ("İstanbul", "istanbul"),
        ("Kaffee ☕ & Kuchen 🍰", "kaffee ☕ & kuchen 🍰"),
        ("plain ascii TEXT", "plain ascii text"),
        ("", ""),
    ],
)
def test_fold(text: str, expected: str) -> None:
    assert fold(text) == expected


def test_fold_spellings_of_a_brand_agree() -> None:
    spellings = ["Röstwerk", "röstwerk", "Roestwerk", "ROESTWERK", "RÖSTWERK", "Ro\u0308stwerk"]
    assert {fold(s) for s in spellings} == {"roestwerk"}


def test_fold_equals_the_reference_pipeline_for_every_bmp_and_smp_character() -> None:
    # fold works character by character after NFC; this proves it equals the whole pipeline
    # (and is idempotent) for each character, and fold_words equals fold's words.
    for code_point in range(0x20000):
        if 0xD800 <= code_point < 0xE000:
            continue
        char = chr(code_point)
        folded = fold(char)
        assert folded == reference_fold(char), hex(code_point)
        assert fold(folded) == folded, hex(code_point)
        assert fold_words(char) == f" {' '.join(words_of(folded))} ", hex(code_point)
        assert fold_spaced(char) == reference_spaced(folded), hex(code_point)


def test_fold_and_fold_words_on_random_mixed_text() -> None:
    rng = random.Random(5)
    alphabet = (
        "aAoOuUsSzZ019_ -'#@.,!\n\t\u00a0äöüÄÖÜßẞéÉñçæøłΣ\u03c3ςЖж中文😀☕\u0308\u0301\u200d\ufe0f"
        "\uff03\uff20\ufb01"
    )
    for _ in range(3_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        folded = fold(text)
        assert folded == reference_fold(text), repr(text)
        assert fold_words(text) == f" {' '.join(words_of(folded))} ", repr(text)
        assert fold_spaced(text) == reference_spaced(folded), repr(text)


def test_fold_survives_lone_surrogates() -> None:
    # JSON can carry "\\ud800"; a mention with one must not break ingest.
    assert fold("Kaffee \ud800 Röstwerk") == "kaffee \ud800 roestwerk"
    assert fold_words("Kaffee\ud800Röstwerk") == " kaffee roestwerk "


def test_fold_spaced_lines_up_with_fold() -> None:
    assert fold_spaced("Crème, #Röstwerk & @Velora!") == "creme  #roestwerk   @velora "
    assert fold_spaced("ABC-def") == "abc def"


def test_fold_words() -> None:
    assert fold_words("Der Espresso von Röstwerk!") == " der espresso von roestwerk "
    assert fold_words("#Velora-Cargo, @velorabikes…") == " velora cargo velorabikes "
    assert fold_words("   ") == "  "


# --- syntax --------------------------------------------------------------------------------


def test_bare_keyword_is_folded() -> None:
    assert parse_query("Röstwerk").root == w("roestwerk")


def test_phrase_hashtag_handle_and_prefix() -> None:
    query = parse_query('"Velora  Cargo!" #Röstwerk @VeloraBikes kaffee*')
    assert query.root == And(
        (
            Term("phrase", "velora cargo"),
            Term("hashtag", "roestwerk"),
            Term("handle", "velorabikes"),
            w("kaffee", prefix=True),
        )
    )


def test_hashtag_and_handle_prefix() -> None:
    assert parse_query("#kaffee*").root == Term("hashtag", "kaffee", True)
    assert parse_query("@velora*").root == Term("handle", "velora", True)


def test_hyphenated_word_keeps_its_value_and_splits_into_words() -> None:
    term = parse_query("E-Bike").root
    assert term == w("e-bike")
    assert isinstance(term, Term)
    assert term.words == ("e", "bike")


def test_operators_inside_a_phrase_are_words() -> None:
    assert parse_query('"rock AND roll"').root == Term("phrase", "rock and roll")


def test_implicit_and() -> None:
    assert parse_query("röstwerk espresso").root == parse_query("röstwerk AND espresso").root
    assert parse_query("röstwerk espresso").root == And((w("roestwerk"), w("espresso")))


def test_lowercase_operators_are_words() -> None:
    assert parse_query("salt and pepper or not").root == And(
        (w("salt"), w("and"), w("pepper"), w("or"), w("not"))
    )


def test_precedence_not_over_and_over_or() -> None:
    assert parse_query("a b OR c NOT d").root == Or(
        (And((w("a"), w("b"))), And((w("c"), Not(w("d")))))
    )
    assert parse_query("a OR b AND c").root == Or((w("a"), And((w("b"), w("c")))))
    assert parse_query("a AND NOT b OR c").root == Or((And((w("a"), Not(w("b")))), w("c")))


def test_parentheses_override_precedence() -> None:
    assert parse_query("(a OR b) c").root == And((Or((w("a"), w("b"))), w("c")))
    assert parse_query("a NOT (b OR c)").root == And((w("a"), Not(Or((w("b"), w("c"))))))


def test_same_operator_nests_flat() -> None:
    assert parse_query("(a OR b) OR (c OR d)").root == Or(tuple(w(x) for x in "abcd"))
    assert parse_query("a (b c) AND d").root == And(tuple(w(x) for x in "abcd"))
    assert parse_query("((a))").root == w("a")


def test_operators_glued_to_parentheses() -> None:
    assert parse_query("a AND(b OR c)").root == And((w("a"), Or((w("b"), w("c")))))


def test_not_of_not_is_kept_and_valid() -> None:
    assert parse_query("NOT NOT a").root == Not(Not(w("a")))


def test_negation_inside_a_conjunction_is_allowed() -> None:
    assert parse_query("NOT spam brand").root == And((Not(w("spam")), w("brand")))
    parse_query("(a OR NOT b) AND c")


def test_terms_are_distinct_in_order_and_positive_terms_skip_negated_ones() -> None:
    query = parse_query("(röstwerk OR roestwerk OR #röstwerk) NOT (grill OR röstwerk)")
    assert query.terms() == [w("roestwerk"), Term("hashtag", "roestwerk"), w("grill")]
    assert query.positive_terms() == [w("roestwerk"), Term("hashtag", "roestwerk")]
    assert parse_query("a NOT NOT b").positive_terms() == [w("a"), w("b")]


def test_evaluate() -> None:
    query = parse_query("(a OR b) NOT c")
    assert query.evaluate({w("a")})
    assert query.evaluate({w("b"), w("x")})
    assert not query.evaluate({w("a"), w("c")})
    assert not query.evaluate(set())


def test_ast_is_immutable() -> None:
    query = parse_query("a b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        query.root = w("x")  # type: ignore[misc]
    term = query.terms()[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        term.value = "x"  # type: ignore[misc]
    assert isinstance(query.root, And)
    assert isinstance(query.root.children, tuple)


@pytest.mark.parametrize(
    "text",
    [
        "a b OR c NOT d",
        '(velora OR #velora OR @velorabikes OR "velora e-bike") NOT ("velora hotel" OR xy*)',
        "a NOT (b AND c) NOT (d OR e)",
        "NOT NOT a",
        "e-bike OR #e-bike",
        *[tracker["query"] for tracker in DEMO_TRACKERS],
    ],
)
def test_str_renders_a_query_that_parses_to_the_same_ast(text: str) -> None:
    query = parse_query(text)
    assert parse_query(str(query)).root == query.root


def test_demo_trackers_parse() -> None:
    for tracker in DEMO_TRACKERS:
        query = parse_query(tracker["query"])
        assert query.positive_terms()


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("", 0, "empty query"),
        ("   \n ", 0, "empty query"),
        ("(a OR b", 0, "unmatched '('"),
        ("a (b (c)", 2, "unmatched '('"),
        ("((a)", 0, "unmatched '('"),
        ("a)", 1, "unmatched ')'"),
        ("(a)) b", 3, "unmatched ')'"),
        (") a", 0, "unmatched ')'"),
        ("a ()", 2, "empty parentheses"),
        ("foo AND", 4, "'AND' needs a term after it"),
        ("foo OR", 4, "'OR' needs a term after it"),
        ("foo NOT", 4, "'NOT' needs a term after it"),
        ("a OR OR b", 2, "'OR' needs a term after it, found 'OR'"),
        ("(a AND) b", 3, "'AND' needs a term after it, found ')'"),
        ("AND foo", 0, "'AND' needs a term before it"),
        ("(OR a)", 1, "'OR' needs a term before it"),
        ('brand "open', 6, "unterminated quote"),
        ('brand ""', 6, "empty phrase"),
        ('brand "?!"', 6, "empty phrase"),
        ("brand #", 6, "empty hashtag"),
        ("brand # x", 6, "empty hashtag"),
        ("brand @", 6, "empty handle"),
        ("(@)", 1, "empty handle"),
        ("brand kaf*fee", 9, "'*' is only allowed at the end"),
        ("brand a*", 7, "at least 2 letters"),
        ("brand *", 6, "'*' must follow a word"),
        ("brand e-*", 8, "'*' must directly follow a letter or digit"),
        ("brand ---", 6, "has no letters or digits"),
        ("brand -spam", 6, "write 'NOT spam'"),
        ("NOT spam", 0, "would match almost every post"),
        ("NOT a OR NOT b", 0, "would match almost every post"),
        ("brand OR NOT spam", 9, "would match almost every post"),
        ("NOT (a AND b)", 0, "would match almost every post"),
        ("NOT a NOT b", 0, "would match almost every post"),
    ],
)
def test_errors_name_position_and_reason(text: str, position: int, reason: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(text)
    assert caught.value.position == position
    assert reason in caught.value.reason
    assert str(caught.value) == f"position {position}: {caught.value.reason}"


def test_match_everything_error_explains_why() -> None:
    with pytest.raises(QueryError, match="NOT can only narrow down terms that must be present"):
        parse_query("NOT spam")


def test_query_error_is_a_value_error_and_pickles() -> None:
    error = QueryError(14, "expected ')'")
    assert isinstance(error, ValueError)
    assert str(error) == "position 14: expected ')'"
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert (copy.position, copy.reason) == (14, "expected ')'")


def test_length_limit() -> None:
    longest = "a" * MAX_QUERY_LENGTH
    assert parse_query(longest).root == w(longest)
    with pytest.raises(QueryError) as caught:
        parse_query("a" * (MAX_QUERY_LENGTH + 1))
    assert caught.value.position == MAX_QUERY_LENGTH
    assert "longer than 2,000 characters" in caught.value.reason


def test_term_limit_points_at_the_first_term_too_many() -> None:
    assert len(parse_query(" ".join(["ab"] * MAX_TERMS)).root.children) == MAX_TERMS  # type: ignore[union-attr]
    with pytest.raises(QueryError) as caught:
        parse_query(" ".join(["ab"] * (MAX_TERMS + 1)))
    assert caught.value.position == 3 * MAX_TERMS
    assert "too many terms" in caught.value.reason


def test_phrases_and_hashtags_count_as_terms() -> None:
    with pytest.raises(QueryError, match="too many terms"):
        parse_query(" OR ".join(['"a b"', "#c"] * 101))


def test_nesting_limit() -> None:
    assert parse_query("(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH).root == w("a")
    with pytest.raises(QueryError) as caught:
        parse_query("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1))
    assert caught.value.position == MAX_DEPTH
    assert "nested deeper than 32" in caught.value.reason


def test_chained_nots_count_as_nesting() -> None:
    parse_query("a " + "NOT " * 31 + "b")  # odd count: a NOT b
    with pytest.raises(QueryError) as caught:
        parse_query("a " + "NOT " * 33 + "b")
    assert caught.value.position == 2 + 4 * 32
    assert "nested deeper" in caught.value.reason
