"""Match a mention against every tracker at once: one Aho-Corasick scan, not a regex per tracker.

`Matcher.compile` parses every tracker's query (see `query` for the language and the matching
semantics) and builds a single automaton over the distinct terms of all of them. `match`:

1. folds the text once (`query.fold_spaced`: non-word characters but '#' and '@' become
   spaces) and reduces that to its words, single-space separated and padded with a space at
   each end (" der espresso von roestwerk "). Automaton keys carry their word boundaries as
   spaces (" roestwerk " for a word, " kaffee" for `kaffee*`, " velora cargo " for a
   phrase), so every hit is already a whole-word match;
2. scans that string once. A hashtag or handle term shares the key of its plain words; a hit
   on such a key is confirmed by finding "#word"/"@word" with word boundaries in the folded
   text of step 1;
3. evaluates only the trackers "triggered" by a found term (an inverted index), each against
   the set of terms found. A query's trigger terms are a set at least one of which must occur
   for it to match: a term for itself, the union of an OR's children, the most selective
   child's for an AND; or, failing that, all its positive terms (those outside NOT), which
   always works because `parse_query` rejects the queries that match without any of them.
   So "velora AND (akku OR battery)" is evaluated for posts naming Velora, not for every post
   about batteries.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, NamedTuple

import ahocorasick

from services.ingest.domain.query import (
    Node,
    Not,
    Or,
    Query,
    QueryError,
    Term,
    fold_spaced,
    parse_query,
    spaced_words,
)

__all__ = ["Matcher", "TrackerRule"]

_Evaluator = Callable[[AbstractSet[int]], bool]


@dataclass(frozen=True, slots=True)
class TrackerRule:
    """A tracker as the matcher needs it; `languages` empty means every language."""

    tracker_id: str
    query: str
    languages: frozenset[str] = frozenset()


# --- hashtags and handles ------------------------------------------------------------------


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


@dataclass(frozen=True, slots=True)
class _MarkedCheck:
    """Confirms a hashtag/handle term in the `fold_spaced` text once its words were found."""

    term_id: int
    needle: str  # single-word terms: "#velora", found with str.find and a boundary check
    prefix: bool
    pattern: re.Pattern[str] | None  # multi-word terms ("#e-bike"): a regex, they are rare

    def found_in(self, spaced: str) -> bool:
        if self.pattern is not None:
            return self.pattern.search(spaced) is not None
        needle, size = self.needle, len(self.needle)
        start = spaced.find(needle)
        while start >= 0:
            end = start + size
            if (start == 0 or not _is_word_char(spaced[start - 1])) and (
                self.prefix or end == len(spaced) or not _is_word_char(spaced[end])
            ):
                return True
            start = spaced.find(needle, start + 1)
        return False


def _marked_check(term_id: int, term: Term, words: tuple[str, ...]) -> _MarkedCheck:
    if len(words) == 1:
        return _MarkedCheck(term_id, term.marker + words[0], term.prefix, None)
    body = r"\W+".join(re.escape(word) for word in words)
    tail = "" if term.prefix else r"(?!\w)"
    return _MarkedCheck(term_id, "", term.prefix, re.compile(rf"(?<!\w){term.marker}{body}{tail}"))


# --- query evaluation ----------------------------------------------------------------------


def _is_term_group(node: Node) -> bool:
    """A term, or an OR of terms: what one C-level set operation can test."""
    return isinstance(node, Term) or (
        isinstance(node, Or) and all(isinstance(c, Term) for c in node.children)
    )


def _group_ids(node: Node, term_ids: dict[Term, int]) -> frozenset[int]:
    if isinstance(node, Term):
        return frozenset((term_ids[node],))
    assert isinstance(node, Or)
    return frozenset(term_ids[c] for c in node.children if isinstance(c, Term))


def _compile_node(node: Node, term_ids: dict[Term, int]) -> _Evaluator:
    """A closure evaluating `node` against the set of ids of the terms found in a text.

    An AND's term children, its `(a OR b)` children and its `NOT a` / `NOT (a OR b)` children
    each cost one C-level set operation, so a typical tracker query is a single call.
    """
    if isinstance(node, Term):
        term_id = term_ids[node]
        return lambda hits: term_id in hits
    if isinstance(node, Not):
        if _is_term_group(node.child):
            excluded = _group_ids(node.child, term_ids)
            return lambda hits: excluded.isdisjoint(hits)
        inner = _compile_node(node.child, term_ids)
        return lambda hits: not inner(hits)
    if isinstance(node, Or):
        any_of = frozenset(term_ids[c] for c in node.children if isinstance(c, Term))
        rest = tuple(_compile_node(c, term_ids) for c in node.children if not isinstance(c, Term))
        if not rest:
            return lambda hits: not any_of.isdisjoint(hits)
        return lambda hits: not any_of.isdisjoint(hits) or any(other(hits) for other in rest)
    # An AND.
    required: set[int] = set()
    groups: list[frozenset[int]] = []
    forbidden: set[int] = set()
    others: list[_Evaluator] = []
    for child in node.children:
        if isinstance(child, Term):
            required.add(term_ids[child])
        elif isinstance(child, Or) and _is_term_group(child):
            groups.append(_group_ids(child, term_ids))
        elif isinstance(child, Not) and _is_term_group(child.child):
            forbidden |= _group_ids(child.child, term_ids)
        else:
            others.append(_compile_node(child, term_ids))
    return _all_of(frozenset(required), tuple(groups), frozenset(forbidden), tuple(others))


def _all_of(
    required: frozenset[int],
    groups: tuple[frozenset[int], ...],
    forbidden: frozenset[int],
    others: tuple[_Evaluator, ...],
) -> _Evaluator:
    """An AND: every required term, a term of every group, no forbidden term, every other."""
    if not others and len(groups) == 1:  # "(brand OR #brand) NOT (...)", the common shape
        (group,) = groups
        return lambda hits: (
            required <= hits and not group.isdisjoint(hits) and forbidden.isdisjoint(hits)
        )

    def evaluate(hits: AbstractSet[int]) -> bool:
        if not required <= hits or not forbidden.isdisjoint(hits):
            return False
        for group in groups:
            if group.isdisjoint(hits):
                return False
        return all(other(hits) for other in others)

    return evaluate


def _rarity_cost(term: Term) -> float:
    """A guess at how often a term occurs (lower is rarer), to pick an AND's trigger terms.

    Without corpus statistics: longer words are rarer, phrases and hashtags/handles rarer
    than plain words, prefixes more common.
    """
    words = term.words
    cost = 2.0 ** -min(len(" ".join(words)), 20)
    if len(words) > 1:
        cost /= 8
    if term.marker:
        cost /= 4
    if term.prefix:
        cost *= 4
    return cost


def _triggers(node: Node) -> list[Term] | None:
    """Terms at least one of which occurs whenever `node` matches; None if there are none."""
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Not):
        return None
    if isinstance(node, Or):
        union: list[Term] = []
        for child in node.children:
            terms = _triggers(child)
            if terms is None:
                return None
            union.extend(terms)
        return union
    options = [terms for child in node.children if (terms := _triggers(child)) is not None]
    if not options:
        return None
    return min(options, key=lambda terms: sum(_rarity_cost(t) for t in set(terms)))


def _parse(query: object) -> Query | QueryError:
    """The parsed query, or the error to report (a query that is not text is an error too)."""
    if not isinstance(query, str):
        return QueryError(0, f"query is not text but {type(query).__name__}")
    try:
        return parse_query(query)
    except QueryError as exc:
        return exc


class _CompiledRule(NamedTuple):
    tracker_id: str
    languages: frozenset[str] | None  # None: every language
    evaluate: _Evaluator


# --- matcher -------------------------------------------------------------------------------


class Matcher:
    """All trackers compiled into one automaton; immutable, so safe to share across threads.

    Build it with `Matcher.compile`. Queries that do not parse are left out and reported in
    `invalid` (tracker id → QueryError), so one bad stored query never stops ingest.
    """

    __slots__ = (
        "_automaton",
        "_key_checks",
        "_key_terms",
        "_rules",
        "_term_rules",
        "invalid",
    )

    def __init__(self) -> None:
        """An empty matcher (matches nothing); use `compile`."""
        self._automaton: Any = None  # ahocorasick.Automaton; None when there is nothing to find
        self._key_terms: list[tuple[int, ...]] = []  # key id -> word/phrase term ids
        self._key_checks: list[tuple[_MarkedCheck, ...]] = []  # key id -> hashtag/handle terms
        self._term_rules: list[tuple[int, ...]] = []  # term id -> indexes of rules it triggers
        self._rules: list[_CompiledRule] = []
        self.invalid: dict[str, QueryError] = {}

    @classmethod
    def compile(cls, rules: Sequence[TrackerRule]) -> Matcher:
        """Compile every valid rule; invalid queries go to `invalid` instead of raising."""
        matcher = cls()
        parsed: dict[str, Query | QueryError] = {}  # trackers often share a query
        term_ids: dict[Term, int] = {}
        key_ids: dict[str, int] = {}
        key_terms: list[list[int]] = []
        key_checks: list[list[_MarkedCheck]] = []
        term_rules: list[list[int]] = []
        for rule in rules:
            query = parsed.get(rule.query) if isinstance(rule.query, str) else None
            if query is None:
                query = _parse(rule.query)
                if isinstance(rule.query, str):
                    parsed[rule.query] = query
            if isinstance(query, QueryError):
                matcher.invalid[rule.tracker_id] = query
                continue
            for term in query.terms():
                if term in term_ids:
                    continue
                term_id = term_ids[term] = len(term_ids)
                term_rules.append([])
                words = term.words
                key = f" {' '.join(words)}{'' if term.prefix else ' '}"
                key_id = key_ids.get(key)
                if key_id is None:
                    key_id = key_ids[key] = len(key_ids)
                    key_terms.append([])
                    key_checks.append([])
                if term.marker:
                    key_checks[key_id].append(_marked_check(term_id, term, words))
                else:
                    key_terms[key_id].append(term_id)
            rule_index = len(matcher._rules)
            triggers = _triggers(query.root) or query.positive_terms()
            for term in set(triggers):
                term_rules[term_ids[term]].append(rule_index)
            languages = frozenset(lang.lower() for lang in rule.languages) or None
            evaluate = _compile_node(query.root, term_ids)
            matcher._rules.append(_CompiledRule(rule.tracker_id, languages, evaluate))
        if key_ids:
            automaton = ahocorasick.Automaton()
            for key, key_id in key_ids.items():
                automaton.add_word(key, key_id)
            automaton.make_automaton()
            matcher._automaton = automaton
        matcher._key_terms = [tuple(ids) for ids in key_terms]
        matcher._key_checks = [tuple(checks) for checks in key_checks]
        matcher._term_rules = [tuple(indexes) for indexes in term_rules]
        return matcher

    @property
    def tracker_count(self) -> int:
        """How many trackers were compiled (the invalid ones are not counted)."""
        return len(self._rules)

    def match(self, text: str, lang: str | None) -> list[str]:
        """The sorted ids of the trackers whose query matches `text` (NFC plain text).

        A tracker restricted to languages matches only when `lang` is one of them; when
        `lang` is unknown (None or empty) the restriction cannot exclude anything.
        """
        automaton = self._automaton
        if automaton is None:
            return []
        spaced = fold_spaced(text)
        keys = {key_id for _, key_id in automaton.iter(spaced_words(spaced))}
        if not keys:
            return []
        hits: set[int] = set()
        for key_id in keys:
            hits.update(self._key_terms[key_id])
            for check in self._key_checks[key_id]:
                if check.found_in(spaced):
                    hits.add(check.term_id)
        candidates: set[int] = set()
        for term_id in hits:
            candidates.update(self._term_rules[term_id])
        if not candidates:
            return []
        language = lang.lower() if lang else None
        rules = self._rules
        matched: set[str] = set()
        for index in candidates:
            tracker_id, languages, evaluate = rules[index]
            if (languages is None or language is None or language in languages) and evaluate(hits):
                matched.add(tracker_id)
        return sorted(matched)

    def __repr__(self) -> str:
        return f"Matcher(trackers={self.tracker_count}, invalid={len(self.invalid)})"
