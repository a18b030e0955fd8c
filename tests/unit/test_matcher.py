"""The Aho-Corasick tracker matcher, checked by hand and against a naive regex reference."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

import pytest

from services.ingest.domain.matcher import Matcher, TrackerRule
from services.ingest.domain.query import Query, QueryError, Term, fold, parse_query
from shared.local.demo_corpus import DEMO_TRACKERS


def matches(query: str, text: str, lang: str | None = None) -> bool:
    """Whether a single tracker with `query` matches `text`."""
    return Matcher.compile([TrackerRule("t", query)]).match(text, lang) == ["t"]


# --- basics --------------------------------------------------------------------------------


def test_no_rules_matches_nothing() -> None:
    matcher = Matcher.compile([])
    assert matcher.match("anything at all", "de") == []
    assert matcher.tracker_count == 0
    assert matcher.invalid == {}


def test_result_is_sorted_and_without_duplicates() -> None:
    matcher = Matcher.compile(
        [
            TrackerRule("zeta", "kaffee"),
            TrackerRule("alpha", "kaffee OR tee"),
            TrackerRule("mid", "tee"),
            TrackerRule("alpha", "kaffee"),  # the same id twice: reported once
            TrackerRule("none", "cola"),
        ]
    )
    assert matcher.match("Kaffee und Tee", None) == ["alpha", "mid", "zeta"]
    assert matcher.tracker_count == 5


def test_folding_applies_to_text_and_query() -> None:
    for text in ["Röstwerk", "ROESTWERK", "Ro\u0308stwerk", "röstwerk!", "RÖSTWERK."]:
        assert matches("röstwerk", text), text
        assert matches("roestwerk", text), text
    assert matches("straße", "STRASSE")
    assert matches("strasse", "Straße")
    assert matches("cafe", "Café crème")
    assert matches("café", "CAFE")


# --- whole words, prefixes, phrases --------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("bike", "my bike", True),
        ("bike", "Bike!", True),
        ("bike", "biker", False),
        ("bike", "ebike", False),
        ("bike", "bikes", False),
        ("bike", "bike_lane", False),  # underscore is a word character
        ("bike", "bike2go", False),
        ("bike", "E-Bike", True),  # '-' separates words
        ("bike", "the bike's bell", True),  # so does the apostrophe
        ("bike*", "biker", True),
        ("bike*", "Bikes", True),
        ("bike*", "ebike", False),  # prefix, not infix
        ("e-bike", "Mein E-Bike", True),
        ("e-bike", "e bike", True),
        ("e-bike", "e\u2011bike", True),  # non-breaking hyphen
        ("e-bike", "ebike", False),
        ('"e-bike"', "E-BIKE", True),
        ("kaffee*", "Kaffeebohnen", True),
        ("kaffee*", "Kaffee", True),
        ("kaffee*", "Filterkaffee", False),
        ("röst*", "Röstwerk", True),
        ("mcdonald's", "McDonald\u2019s", True),
        ("öl", "Öl", True),
        ("öl", "Oel", True),
        ("öl", "Öle", False),
    ],
)
def test_words_match_whole_words_only(query: str, text: str, expected: bool) -> None:
    assert matches(query, text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Velora Cargo", True),
        ("Velora-Cargo", True),
        ("velora  cargo", True),
        ("Velora,\ncargo!", True),
        ("VELORA / CARGO", True),
        ("#velora #cargo", True),
        ("velora cargos", False),
        ("cargo velora", False),
        ("velora the cargo", False),
        ("veloracargo", False),
    ],
)
def test_phrases_match_words_in_sequence_across_punctuation(text: str, expected: bool) -> None:
    assert matches('"velora cargo"', text) is expected


# --- hashtags and handles ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#velora", True),
        ("Love it #Velora!", True),
        ("##velora", True),
        ("(#VELORA)", True),
        ("\uff03velora", True),  # fullwidth number sign
        ("velora", False),
        ("@velora", False),
        ("#velorabikes", False),
        ("c#velora", False),  # a '#' after a word character starts no hashtag
        ("# velora", False),
    ],
)
def test_hashtag_terms_match_only_hashtags(text: str, expected: bool) -> None:
    assert matches("brand OR #velora", text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@velorabikes", True),
        ("Hey @VeloraBikes, help!", True),
        ("@velorabikes@mastodon.social", True),
        ("velorabikes", False),
        ("#velorabikes", False),
        ("@velorabikes_de", False),
        ("info@velorabikes.de", False),  # an e-mail address is not a mention
    ],
)
def test_handle_terms_match_only_mentions(text: str, expected: bool) -> None:
    assert matches("@velorabikes", text) is expected


def test_words_also_match_inside_hashtags_and_mentions() -> None:
    assert matches("velora", "#velora")
    assert matches("velora", "@velora")
    assert matches("velora", "#Velora-Fans")
    assert not matches("velora", "#velorabikes")


def test_hashtag_prefix_and_multi_word_hashtags() -> None:
    assert matches("#kaffee*", "#Kaffeeliebe")
    assert not matches("#kaffee*", "kaffeeliebe")
    assert matches("#e-bike", "#e-bike")
    assert matches("#e-bike", "#E-#Bike")
    assert not matches("#e-bike", "e-bike")
    assert matches("@name.bsky.social", "hi @Name.bsky.social")
    assert not matches("@name.bsky.social", "name.bsky.social")


def test_hashtag_term_next_to_the_plain_word() -> None:
    matcher = Matcher.compile(
        [TrackerRule("tag", "#velora"), TrackerRule("word", "velora"), TrackerRule("at", "@velora")]
    )
    assert matcher.match("#velora", None) == ["tag", "word"]
    assert matcher.match("@velora", None) == ["at", "word"]
    assert matcher.match("velora", None) == ["word"]
    assert matcher.match("velora and #velora and @velora", None) == ["at", "tag", "word"]


# --- boolean logic -------------------------------------------------------------------------


def test_not_excludes() -> None:
    query = "velora NOT (hotel OR resort)"
    assert matches(query, "Velora bikes")
    assert not matches(query, "Hotel Velora")
    assert not matches(query, "velora resort & spa")


def test_and_or_precedence_in_matching() -> None:
    query = "kaffee espresso OR tee NOT grün"
    assert matches(query, "Kaffee und Espresso")
    assert not matches(query, "nur Kaffee")
    assert matches(query, "schwarzer Tee")
    assert not matches(query, "Tee, GRUEN")  # grün folds to gruen
    assert matches(query, "Kaffee, Espresso und Tee, grün")


def test_nested_negations() -> None:
    assert matches("a NOT (b NOT c)", "a")
    assert not matches("a NOT (b NOT c)", "a b")
    assert matches("a NOT (b NOT c)", "a b c")
    assert matches("NOT NOT kaffee", "Kaffee")
    assert matches("(kaffee OR NOT tee) AND bohne", "bohne")
    assert not matches("(kaffee OR NOT tee) AND bohne", "tee bohne")


def test_rule_triggered_by_a_term_other_than_its_rarest() -> None:
    # the AND is indexed by one of its children only; the other must still be evaluated
    matcher = Matcher.compile([TrackerRule("t", "velora (akku OR battery) NOT recall")])
    assert matcher.match("Velora Akku hält ewig", None) == ["t"]
    assert matcher.match("Velora rocks", None) == []
    assert matcher.match("Akku leer", None) == []
    assert matcher.match("velora battery recall", None) == []


# --- the demo trackers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo() -> Matcher:
    return Matcher.compile(
        [TrackerRule(t["id"], t["query"], frozenset(t["languages"])) for t in DEMO_TRACKERS]
    )


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("Der Flat White von Röstwerk war heute mega ☕", "de", ["roestwerk"]),
        ("Bohnen von Ro\u0308stwerk sind da #röstwerk", "de", ["roestwerk"]),
        ("ROESTWERK hat die Preise erhöht", None, ["roestwerk"]),
        ("Danke @roestwerk für die schnelle Antwort", "de", ["roestwerk"]),
        ("Steak im Röstwerk Grill war zäh", "de", []),
        ("Cocktails in der Röstwerk-Bar", "de", []),
        (
            "Sorry Röstwerk, aber Bohnenblitz macht den besseren Latte",
            "de",
            [
                "bohnenblitz",
                "roestwerk",
            ],
        ),
        ("Das Bohnenblitz-Rezept für Chili", "de", []),
        ("Tried the bohnenblitz recipe, meh", "en", []),
        ("Waited 20 minutes at #Bohnenblitz again", "en", ["bohnenblitz"]),
        ("My Velora Cargo Duo handles the school run", "en", ["velora"]),
        ("Seit 3 Monaten pendle ich mit dem Velora E-Bike", "de", ["velora"]),
        ("@VeloraBikes my battery died after a week", "en", ["velora"]),
        ("Urlaub im Velora Resort am See", "de", []),
        ("Booked the velora hotel for June", "en", []),
        ("Kaffee trinken in Leipzig", "de", []),
        ("Velora is great", "fr", []),  # the demo trackers are de/en only
    ],
)
def test_demo_trackers(demo: Matcher, text: str, lang: str | None, expected: list[str]) -> None:
    assert demo.match(text, lang) == expected


# --- languages -----------------------------------------------------------------------------


def test_language_filter() -> None:
    matcher = Matcher.compile(
        [
            TrackerRule("de", "kaffee", frozenset({"de"})),
            TrackerRule("de_en", "kaffee", frozenset({"de", "EN"})),
            TrackerRule("any", "kaffee"),
        ]
    )
    assert matcher.match("Kaffee", "de") == ["any", "de", "de_en"]
    assert matcher.match("Kaffee", "en") == ["any", "de_en"]
    assert matcher.match("Kaffee", "fr") == ["any"]
    assert matcher.match("Kaffee", "DE") == ["any", "de", "de_en"]
    # unknown language: the filter cannot exclude anything
    assert matcher.match("Kaffee", None) == ["any", "de", "de_en"]
    assert matcher.match("Kaffee", "") == ["any", "de", "de_en"]


# --- invalid stored queries ----------------------------------------------------------------


def test_invalid_rules_are_skipped_and_reported() -> None:
    matcher = Matcher.compile(
        [
            TrackerRule("good", "kaffee"),
            TrackerRule("everything", "NOT spam"),
            TrackerRule("broken", "(kaffee OR tee"),
            TrackerRule("not_text", None),  # type: ignore[arg-type]  # a corrupt document
            TrackerRule("also_good", "tee"),
        ]
    )
    assert matcher.tracker_count == 2
    assert set(matcher.invalid) == {"everything", "broken", "not_text"}
    assert all(isinstance(error, QueryError) for error in matcher.invalid.values())
    assert matcher.invalid["broken"].position == 0
    assert "would match almost every post" in matcher.invalid["everything"].reason
    assert matcher.match("Kaffee oder Tee, ohne spam", "de") == ["also_good", "good"]


def test_only_invalid_rules() -> None:
    matcher = Matcher.compile([TrackerRule("bad", "a AND")])
    assert matcher.tracker_count == 0
    assert matcher.match("a", None) == []
    assert list(matcher.invalid) == ["bad"]


def test_rules_sharing_a_query_and_terms() -> None:
    rules = [TrackerRule(f"t{i}", "kaffee NOT tee") for i in range(3)]
    rules.append(TrackerRule("phrase", '"Kaffee"'))
    matcher = Matcher.compile(rules)
    assert matcher.match("Kaffee", None) == ["phrase", "t0", "t1", "t2"]
    assert matcher.match("Kaffee und Tee", None) == ["phrase"]


# --- the fast path equals a naive reference ------------------------------------------------


def term_regex(term: Term) -> re.Pattern[str]:
    """A term as a regex over the folded text, straight from the documented semantics."""
    body = r"\W+".join(re.escape(word) for word in term.words)
    marker = re.escape(term.marker)
    tail = "" if term.prefix else r"(?!\w)"
    return re.compile(rf"(?<!\w){marker}{body}{tail}")


class Reference:
    """One regex per term and one AST walk per rule for every text: slow, obviously right."""

    def __init__(self, rules: Sequence[TrackerRule]) -> None:
        self.rules: list[tuple[TrackerRule, Query]] = []
        for rule in rules:
            try:
                self.rules.append((rule, parse_query(rule.query)))
            except QueryError:
                continue
        self.regexes = {term: term_regex(term) for _, q in self.rules for term in q.terms()}

    def match(self, text: str, lang: str | None) -> list[str]:
        folded = fold(text)
        matched = set()
        for rule, query in self.rules:
            if rule.languages and lang and lang not in rule.languages:
                continue
            present = {term for term in query.terms() if self.regexes[term].search(folded)}
            if query.evaluate(present):
                matched.add(rule.tracker_id)
        return sorted(matched)


_VOCABULARY = [
    "röstwerk",
    "roestwerk",
    "kaffee",
    "kaffee*",
    "ka*",
    "bike",
    "bike*",
    "e-bike",
    "velora",
    "cargo",
    "hotel",
    "straße",
    "café",
    "über",
    "and",
    "x_y",
    "2go",
    '"velora cargo"',
    '"kaffee bar"',
    '"e bike hotel"',
    "#velora",
    "#kaffee*",
    "#e-bike",
    "@velora",
    "@roestwerk",
    "@velora.cargo",
]
_TEXT_WORDS = [
    "Röstwerk",
    "ROESTWERK",
    "Ro\u0308stwerk",
    "Kaffee",
    "kaffeebar",
    "KAFFEEBOHNEN",
    "bike",
    "biker",
    "Bike",
    "e",
    "ebike",
    "velora",
    "VELORA",
    "Velorabikes",
    "cargo",
    "Cargo",
    "Hotel",
    "STRASSE",
    "Straße",
    "STRAẞE",
    "cafe",
    "Café",
    "über",
    "ueber",
    "and",
    "AND",
    "x_y",
    "x",
    "y",
    "2go",
    "bar",
    "ka",
    "kä",
]
_SEPARATORS = [" ", " ", " ", "  ", "-", ", ", ". ", "\n", "!", " 😀 ", "'", "/", " \u2013 ", "_"]
_PREFIXES = ["", "", "", "", "#", "@", "##", "\uff03", "c#", "a@"]


def random_query(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth >= 3 or roll < 0.45:
        return rng.choice(_VOCABULARY)
    if roll < 0.6:
        return f"NOT {random_query(rng, depth + 1)}"
    parts = [random_query(rng, depth + 1) for _ in range(rng.randint(2, 3))]
    operator = rng.choice([" AND ", " OR ", " "])
    return f"({operator.join(parts)})"


def random_text(rng: random.Random) -> str:
    pieces = []
    for _ in range(rng.randint(1, 12)):
        pieces.append(rng.choice(_PREFIXES) + rng.choice(_TEXT_WORDS))
        pieces.append(rng.choice(_SEPARATORS))
    return "".join(pieces).strip()


def test_matcher_equals_naive_reference_on_random_rules_and_texts() -> None:
    rng = random.Random(20260501)
    rules: list[TrackerRule] = []
    invalid = 0
    while len(rules) < 300:
        query = random_query(rng)
        languages = rng.choice([frozenset(), frozenset({"de"}), frozenset({"de", "en"})])
        try:
            parse_query(query)
        except QueryError:
            invalid += 1
            if invalid % 10:  # keep a few invalid ones: they must be skipped identically
                continue
        rules.append(TrackerRule(f"r{len(rules):03d}", query, languages))
    matcher = Matcher.compile(rules)
    assert matcher.invalid  # some of them are there
    texts = [(random_text(rng), rng.choice(["de", "en", "fr", None])) for _ in range(300)]

    reference = Reference(rules)
    matched_any = 0
    pairs = 0
    for text, lang in texts:
        expected = reference.match(text, lang)
        assert matcher.match(text, lang) == expected, (text, lang)
        matched_any += bool(expected)
        pairs += len(expected)
    # the comparison means something: texts match some rules, and not all of them
    assert 100 < matched_any < 300
    assert 0 < pairs < 0.8 * len(rules) * len(texts)
