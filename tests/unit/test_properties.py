"""Property-based tests (hypothesis) of the code that meets untrusted input first.

Each property is stated against an independent, naive oracle or an invariant, never against
the implementation's own output.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingest.domain.matcher import Matcher, TrackerRule
from services.ingest.domain.normalise import normalise_text
from services.ingest.domain.query import QueryError, fold_words, parse_query, words_of
from services.ingest.sources.signatures import verify_meta, verify_websub

PROPERTIES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

QUERY_ALPHABET = st.sampled_from(
    [*list('abcäöüß ()"#@*-_.,!?'), "AND", "OR", "NOT", " AND ", " OR ", " NOT ", "é", "😀"]
)


@given(st.lists(QUERY_ALPHABET, max_size=40).map("".join))
@PROPERTIES
def test_any_query_text_parses_or_fails_with_a_position_inside_it(text: str) -> None:
    try:
        query = parse_query(text)
    except QueryError as error:
        failure = error
    else:
        again = parse_query(str(query))  # the canonical form is itself a valid query
        assert str(again) == str(query)
        return
    assert 0 <= failure.position <= len(text)
    assert failure.reason


# --- matching against a naive oracle -------------------------------------------------------

WORDS = ["röstwerk", "kaffee", "bohnen", "tee", "lieferung", "muehle", "straße"]
SPELLINGS = {"röstwerk": ["Röstwerk", "ROESTWERK", "röstwerk"], "straße": ["Strasse", "straße"]}


@st.composite
def queries(draw: st.DrawFn, depth: int = 0) -> str:
    """Random queries over a small vocabulary: words, phrases, AND, OR, NOT, parentheses."""
    if depth >= 3 or draw(st.booleans()):
        if draw(st.integers(0, 4)) == 0:
            first, second = draw(st.sampled_from(WORDS)), draw(st.sampled_from(WORDS))
            return f'"{first} {second}"'
        return draw(st.sampled_from(WORDS))
    operator = draw(st.sampled_from(["AND", "OR", "AND NOT"]))
    left, right = draw(queries(depth + 1)), draw(queries(depth + 1))
    return f"({left} {operator} {right})"


@st.composite
def texts(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.sampled_from([*WORDS, "und", "mit", "heute"]), max_size=12))
    spelled = [draw(st.sampled_from(SPELLINGS.get(word, [word, word.upper()]))) for word in words]
    separators = draw(st.lists(st.sampled_from([" ", ", ", "! ", " - ", "\n"]), min_size=12))
    return "".join(word + sep for word, sep in zip(spelled, separators, strict=False))


def _contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    size = len(needle)
    return any(haystack[i : i + size] == needle for i in range(len(haystack) - size + 1))


@given(st.lists(queries(), min_size=1, max_size=6), texts())
@PROPERTIES
def test_the_matcher_agrees_with_naive_evaluation_of_each_query(
    raw_queries: list[str], text: str
) -> None:
    parsed = {}
    for n, raw in enumerate(raw_queries):
        try:
            parsed[f"t{n}"] = parse_query(raw)
        except QueryError:
            continue  # e.g. a query made only of NOTs matches everything: rejected by design
    matcher = Matcher.compile([TrackerRule(tid, str(q)) for tid, q in parsed.items()])
    text_words = words_of(fold_words(text))
    expected = sorted(
        tid
        for tid, query in parsed.items()
        if query.evaluate({t for t in query.terms() if _contains(text_words, t.words)})
    )
    assert matcher.match(text, "de") == expected


# --- normalisation and signatures ----------------------------------------------------------


@given(st.text(max_size=300))
@PROPERTIES
def test_normalised_text_is_nfc_and_normalising_again_changes_nothing(text: str) -> None:
    once = normalise_text(text)
    assert unicodedata.is_normalized("NFC", once)
    assert normalise_text(once) == once


@given(st.binary(min_size=1, max_size=500), st.text(min_size=8, max_size=40), st.data())
@PROPERTIES
def test_a_signature_holds_for_its_body_and_for_no_changed_body(
    body: bytes, secret: str, data: st.DataObject
) -> None:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert verify_meta(secret, body, f"sha256={digest}").ok
    position = data.draw(st.integers(0, len(body) - 1))
    flipped = bytearray(body)
    flipped[position] ^= data.draw(st.integers(1, 255))
    assert not verify_meta(secret, bytes(flipped), f"sha256={digest}").ok
    assert not verify_meta(secret + "x", body, f"sha256={digest}").ok
    sha1 = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    assert verify_websub(secret, body, f"sha1={sha1}").ok
    assert not verify_websub(secret, bytes(flipped), f"sha1={sha1}").ok
