"""Per-tracker moderation rules and the routing they give a classified mention.

A marketing team edits its tracker's rules through the API; this module validates them and
turns one mention plus its classification into an action (approve, review, hide), a priority
and the reasons for both. The one rule no configuration can break: a negative or toxic mention
is never hidden or approved unseen, it goes to review.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol, Self

import re2  # type: ignore[import-untyped]
from pydantic import Field, StringConstraints, field_validator, model_validator

from services.moderation.domain import StrictModel
from shared.events import (
    Classification,
    Identifier,
    Intent,
    Mention,
    Platform,
    Priority,
    RoutingAction,
    ShortText,
)

PRIORITIES: tuple[Priority, ...] = ("low", "normal", "high", "urgent")
PRIORITY_RANK: dict[str, int] = {name: rank for rank, name in enumerate(PRIORITIES)}

MAX_PATTERN_LENGTH = 200
#: Largest RE2 program (`programsize`, in instructions) a pattern may compile to. RE2 is linear
#: in the text, but its factor is the program: once the DFA outgrows its memory, RE2 steps the
#: program byte by byte, and a search cannot be interrupted between patterns' budget checks.
#: Measured on 5,000 characters (2 busy cores): the worst programs up to 3,000 took 40 ms, from
#: about 4,100 on 0.2 s, and `(\W?\w?){190}!` (511,295) 1 s on 40 kB. A Unicode `\w` is ~1,350 of
#: it, so two classes and some literals fit: `foo\w+bar` 1,355, `\w+\s+\w+` 2,714.
MAX_PROGRAM_SIZE = 3_000
#: Characters of a mention's text its patterns search. A search costs text times program, so
#: this bounds the slowest one; posts are shorter (X 280, Instagram 2,200, LinkedIn 3,000),
#: only Reddit posts and articles reach the 40,000 a mention may have. Padding can thus keep a
#: match from a pattern; the classifiers and the word lists (block, allow, crisis) still read
#: the whole text.
PATTERN_TEXT_CHARS = 5_000
#: Time all user patterns together may take on one mention (all its trackers) by default.
DEFAULT_PATTERN_BUDGET_SECONDS = 0.05
#: Label of a mention whose patterns were not all checked in time (it goes to review).
PATTERNS_UNCHECKED = "patterns_unchecked"
#: Longest piece of a pattern quoted in a reason: reasons are read by people and fit a field.
_SHOWN_PATTERN = 60

#: RE2's `\w` and `\s` are ASCII only; these keep umlauts, ß and no-break spaces in them.
_WORD, _SPACE = r"\p{L}\p{N}_", r"\s\p{Z}"
_CLASS_ESCAPES = {"w": _WORD, "s": _SPACE}


#: Words that make any mention urgent by default (German and English): a crisis is brewing.
DEFAULT_CRISIS_WORDS: tuple[str, ...] = (
    "rückruf",
    "rückrufaktion",
    "lebensgefahr",
    "verletzt",
    "vergiftung",
    "anwalt",
    "klage",
    "anzeige erstattet",
    "datenleck",
    "boykott",
    "shitstorm",
    "recall",
    "injured",
    "food poisoning",
    "lawsuit",
    "lawyer",
    "data breach",
    "boycott",
)

DEFAULT_REVIEW_INTENTS: tuple[Intent, ...] = ("complaint", "question", "purchase_intent")

Word = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
AuthorRef = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
Label = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_:-]{0,49}$")]
Score = Annotated[float, Field(ge=0.0, le=1.0)]


def priority_max(*priorities: Priority) -> Priority:
    return max(priorities, key=PRIORITY_RANK.__getitem__)


def priority_raised(priority: Priority, steps: int = 1) -> Priority:
    return PRIORITIES[min(len(PRIORITIES) - 1, PRIORITY_RANK[priority] + steps)]


class Matcher(Protocol):
    """A compiled user pattern: RE2 on the UTF-8 bytes of a text, linear in their length."""

    @property
    def programsize(self) -> int: ...

    def search(self, text: bytes, pos: int | None = None, endpos: int | None = None) -> Any: ...


def _unicode_classes(pattern: str) -> str:
    """The pattern with `\\w`, `\\W`, `\\s`, `\\S` spelt as Unicode classes RE2 reads alike.

    Patterns were written for a Unicode engine: `\\w+kampagne` must still match
    "Frühlingskampagne". `\\b` stays RE2's ASCII word boundary (RE2 has no other).
    """
    out: list[str] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        char = pattern[i]
        if char == "\\" and i + 1 < n:
            escape = pattern[i + 1]
            if escape == "Q":  # \Q...\E quotes literal text: copied as it is
                end = pattern.find("\\E", i + 2)
                end = n if end < 0 else end + 2
                out.append(pattern[i:end])
                i = end
                continue
            members = _CLASS_ESCAPES.get(escape.lower())
            if members is None:
                out.append(pattern[i : i + 2])
            elif escape.islower():
                out.append(members if in_class else f"[{members}]")
            elif in_class:
                raise ValueError(f"'\\{escape}' inside [...] is not supported; write [^...]")
            else:
                out.append(f"[^{members}]")
            i += 2
            continue
        if not in_class and char == "[":
            in_class = True
            start = i + 1 + (pattern[i + 1 : i + 2] == "^")
            start += pattern[start : start + 1] == "]"  # a leading ] is a literal ]
            out.append(pattern[i:start])
            i = start
            continue
        if in_class and pattern.startswith("[:", i) and (end := pattern.find(":]", i)) > 0:
            out.append(pattern[i : end + 2])  # [:alpha:] and the like
            i = end + 2
            continue
        if in_class and char == "]":
            in_class = False
        out.append(char)
        i += 1
    return "".join(out)


def compile_pattern(pattern: str) -> Matcher:
    """Compile a user pattern for RE2; ValueError with the reason when it cannot run there.

    RE2 runs in time linear in the text, whatever the pattern, so no pattern can stall the
    consumer; in exchange it has no backreferences and no lookarounds, and a program larger
    than MAX_PROGRAM_SIZE is refused, as its one search could outlast the whole budget.
    """
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"pattern longer than {MAX_PATTERN_LENGTH} characters")
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # a refused pattern is the caller's 422, not a line on stderr
    options.never_capture = True
    try:
        compiled: Matcher = re2.compile(_unicode_classes(pattern), options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        raise ValueError(
            f"pattern not supported by the linear-time engine (RE2): {text}; "
            "backreferences and lookarounds are not available"
        ) from exc
    if compiled.programsize > MAX_PROGRAM_SIZE:
        raise ValueError(
            f"pattern too complex for the time budget: its RE2 program has "
            f"{compiled.programsize:,} instructions, at most {MAX_PROGRAM_SIZE:,} are allowed; "
            "each \\w or \\W is ~1,350 and {n} repeats what precedes it n times: use fewer "
            "classes (\\S, literal words) or share one, as in #\\w+(?:kampagne|aktion)"
        )
    return compiled


def shown_pattern(pattern: str) -> str:
    """A pattern as quoted in a reason: whole when short, else its start and an ellipsis."""
    if len(pattern) <= _SHOWN_PATTERN:
        return pattern
    return pattern[: _SHOWN_PATTERN - 1] + "…"


class WordMatcher:
    """Whole words from a list, found on RE2: linear in the text, however many words.

    `(?<!\\w)(?:w1|w2|…)(?!\\w)` on Python's `re` tried every word at every position: 1,000
    words starting with "!!!…" took 1.6 s on 40,000 "!". Sorted, the words share their
    prefixes (RE2 factors them into a trie) and RE2's automaton reads each byte once.
    """

    def __init__(self, words: Iterable[str]) -> None:
        # Descending order puts "anzeige erstattet" before "anzeige": the first word that
        # matches at a position is the longest, as with the longest-first alternation before.
        folded = sorted({w.casefold() for w in words}, reverse=True)
        options = re2.Options()
        options.case_sensitive = True  # text and words are casefolded
        options.log_errors = False
        alternation = "|".join(re2.escape(word) for word in folded)
        try:
            self._regexp = re2.compile(f"(?:^|[^{_WORD}])({alternation})(?:[^{_WORD}]|$)", options)
        except re2.error as exc:
            raise ValueError(f"word list too large for the matcher: {exc}") from exc

    def search(self, folded: bytes) -> str | None:
        """The first whole word of the list in a casefolded UTF-8 text, or None."""
        found = self._regexp.search(folded)
        return None if found is None else bytes(found.group(1)).decode()


def _word_matcher(words: Sequence[str]) -> WordMatcher | None:
    return WordMatcher(words) if words else None


@dataclass
class PatternBudget:
    """The time user patterns may still take on one mention, across all of its trackers.

    RE2 is linear, but 50 patterns on each of many trackers still add up; once the budget is
    spent the remaining patterns are skipped and a person looks at the mention instead.
    """

    seconds: float = DEFAULT_PATTERN_BUDGET_SECONDS
    clock: Callable[[], float] = time.perf_counter
    spent: float = 0.0
    #: The slowest single search: how far past `seconds` the spending can have gone.
    longest: float = 0.0

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.seconds


class PatternRule(StrictModel):
    """A regular expression on the mention text and what a match means."""

    pattern: Annotated[str, StringConstraints(min_length=1, max_length=MAX_PATTERN_LENGTH)]
    action: RoutingAction | None = None
    priority: Priority | None = None
    label: Label | None = None

    @field_validator("pattern")
    @classmethod
    def _safe(cls, pattern: str) -> str:
        compile_pattern(pattern)
        return pattern


class Thresholds(StrictModel):
    """Classifier scores → routing. Spam at or above `spam_hide` is hidden automatically."""

    spam_hide: Score = 0.9
    spam_review: Score = 0.5
    toxicity_review: Score = 0.5
    #: Sentiment score at or below this makes a negative mention `high` priority.
    strong_negative: Annotated[float, Field(ge=-1.0, le=0.0)] = -0.6

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.spam_review > self.spam_hide:
            raise ValueError("spam_review must not exceed spam_hide")
        return self


class TrackerRules(StrictModel):
    """Everything a team can configure for one tracker (defaults apply when none is stored)."""

    brand: ShortText | None = None
    block_authors: list[AuthorRef] = Field(default_factory=list, max_length=10_000)
    allow_authors: list[AuthorRef] = Field(default_factory=list, max_length=10_000)
    vip_authors: list[AuthorRef] = Field(default_factory=list, max_length=10_000)
    #: Authors with at least this many followers are high reach: their mentions rank higher.
    follower_threshold: Annotated[int, Field(ge=1)] | None = 10_000
    block_words: list[Word] = Field(default_factory=list, max_length=1_000)
    allow_words: list[Word] = Field(default_factory=list, max_length=1_000)
    crisis_words: list[Word] = Field(
        default_factory=lambda: list(DEFAULT_CRISIS_WORDS), max_length=1_000
    )
    #: Intents a person should answer even when the tone is fine.
    review_intents: list[Intent] = Field(default_factory=lambda: list(DEFAULT_REVIEW_INTENTS))
    #: False: every mention that is not hidden goes to review (small brands, strict teams).
    auto_approve: bool = True
    patterns: list[PatternRule] = Field(default_factory=list, max_length=50)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    #: Platform → our channel that answers there (replies need a channel).
    reply_channels: dict[Platform, Identifier] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _word_lists_compile(self) -> Self:
        for words in (self.block_words, self.allow_words, self.crisis_words):
            _word_matcher(words)  # RE2 caches the program for CompiledRules
        return self


DEFAULT_RULES = TrackerRules()


def stored_rules(stored: dict[str, Any]) -> tuple[TrackerRules, list[Any]]:
    """Rules as stored, less the patterns this version refuses (saved for the backtracking
    engine, or before the program cap), and those patterns: block lists and thresholds still
    apply. ValueError when the rest is invalid too."""
    try:
        return TrackerRules.model_validate(stored), []
    except ValueError:
        pass
    patterns = stored.get("patterns")
    kept: list[Any] = []
    skipped: list[Any] = []
    for pattern in patterns if isinstance(patterns, list) else []:
        try:
            PatternRule.model_validate(pattern)
            kept.append(pattern)
        except ValueError:
            skipped.append(pattern)
    return TrackerRules.model_validate({**stored, "patterns": kept}), skipped


@dataclass(frozen=True)
class Route:
    """What happens to a mention for one tracker, and why."""

    action: RoutingAction
    priority: Priority
    reasons: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()

    @property
    def urgent(self) -> bool:
        return self.priority == "urgent"


def _author_key(value: str) -> str:
    return value.strip().lstrip("@").casefold()


@dataclass
class CompiledRules:
    """A tracker's rules, compiled once and applied to many mentions."""

    rules: TrackerRules
    block_authors: frozenset[str] = field(init=False)
    allow_authors: frozenset[str] = field(init=False)
    vip_authors: frozenset[str] = field(init=False)
    block_words: WordMatcher | None = field(init=False)
    allow_words: WordMatcher | None = field(init=False)
    crisis_words: WordMatcher | None = field(init=False)
    patterns: list[tuple[PatternRule, Matcher]] = field(init=False)

    def __post_init__(self) -> None:
        rules = self.rules
        self.block_authors = frozenset(map(_author_key, rules.block_authors))
        self.allow_authors = frozenset(map(_author_key, rules.allow_authors))
        self.vip_authors = frozenset(map(_author_key, rules.vip_authors))
        self.block_words = _word_matcher(rules.block_words)
        self.allow_words = _word_matcher(rules.allow_words)
        self.crisis_words = _word_matcher(rules.crisis_words)
        self.patterns = [(p, compile_pattern(p.pattern)) for p in rules.patterns]

    def route(
        self,
        mention: Mention,
        classification: Classification,
        budget: PatternBudget | None = None,
    ) -> Route:
        """Apply the rules to one classified mention; `budget` is shared by its trackers."""
        rules, th = self.rules, self.rules.thresholds
        text = mention.text.casefold().encode()
        author = {_author_key(mention.author.id)}
        if mention.author.handle:
            author.add(_author_key(mention.author.handle))
        reasons: list[str] = []
        labels: list[str] = []
        must_review: list[Priority] = []  # negative, toxic, crisis: a person must look
        hide = False
        review: list[Priority] = []
        approve_by_pattern = False

        allowed_author = bool(author & self.allow_authors)
        allowed_word = self.allow_words is not None and self.allow_words.search(text) is not None
        if author & self.block_authors and not allowed_author:
            hide = True
            reasons.append("blocked author")
            labels.append("blocked_author")
        if self.block_words is not None and not allowed_word:
            found = self.block_words.search(text)
            if found is not None:
                hide = True
                reasons.append(f"blocked word '{found}'")
                labels.append("blocked_word")
        if classification.spam >= th.spam_hide and not allowed_author and not allowed_word:
            hide = True
            reasons.append(f"spam {classification.spam:.2f} ≥ {th.spam_hide:.2f}")
        elif classification.spam >= th.spam_review and not allowed_author:
            review.append("low")
            reasons.append(f"possible spam {classification.spam:.2f}")
        budget = budget or PatternBudget()
        # The searched start plus one character of context, so `$` and `\b` at the cut see
        # that the text goes on.
        head = encoded = b""
        if self.patterns:
            head = mention.text[:PATTERN_TEXT_CHARS].encode()
            encoded = head + mention.text[PATTERN_TEXT_CHARS : PATTERN_TEXT_CHARS + 1].encode()
        for index, (rule, compiled) in enumerate(self.patterns):
            if budget.exhausted:
                must_review.append("normal")
                skipped = len(self.patterns) - index
                reasons.append(f"pattern time budget spent: {skipped} patterns not checked")
                labels.append(PATTERNS_UNCHECKED)
                break
            started = budget.clock()
            matched = compiled.search(encoded, 0, len(head))
            took = budget.clock() - started
            budget.spent += took
            budget.longest = max(budget.longest, took)
            if matched is None:
                continue
            reasons.append(f"pattern '{shown_pattern(rule.pattern)}'")
            if rule.label:
                labels.append(rule.label)
            if rule.action == "hide":
                hide = True
            elif rule.action == "approve":
                approve_by_pattern = True
            elif rule.action == "review" or rule.priority is not None:
                review.append(rule.priority or "normal")

        toxic = "toxic" in classification.labels or classification.toxicity >= th.toxicity_review
        if toxic:
            must_review.append("high")
            reasons.append(f"toxic {classification.toxicity:.2f}")
        if classification.sentiment == "negative":
            strong = classification.sentiment_score <= th.strong_negative
            must_review.append("high" if strong else "normal")
            reasons.append(f"negative {classification.sentiment_score:.2f}")
        if self.crisis_words is not None:
            crisis = self.crisis_words.search(text)
            if crisis is not None:
                must_review.append("urgent")
                reasons.append(f"crisis word '{crisis}'")
                labels.append("crisis")
        if classification.intent in rules.review_intents:
            review.append("normal")
            reasons.append(f"intent {classification.intent}")

        action: RoutingAction
        if must_review:
            action, priority = "review", priority_max(*must_review, *review)
        elif hide:
            action, priority = "hide", "low"
        elif approve_by_pattern:
            action, priority = "approve", "low"
        elif review:
            action, priority = "review", priority_max(*review)
        elif not rules.auto_approve:
            action, priority = "review", "low"
            reasons.append("auto approval off")
        else:
            action, priority = "approve", "low"

        vip = bool(author & self.vip_authors)
        followers = mention.author.followers or 0
        high_reach = rules.follower_threshold is not None and followers >= rules.follower_threshold
        if vip:
            labels.append("vip")
        if high_reach:
            labels.append("high_reach")
        if action == "review" and (vip or high_reach):
            priority = priority_raised(priority)
            reasons.append("vip author" if vip else f"{followers} followers")
        return Route(action, priority, tuple(reasons), tuple(labels))


def merge_routes(routes: Sequence[Route]) -> Route:
    """One mention, several trackers: agreeing trackers decide; any disagreement → review."""
    if not routes:
        raise ValueError("no routes to merge")
    actions = {route.action for route in routes}
    action: RoutingAction = actions.pop() if len(actions) == 1 else "review"
    priority = priority_max(*(route.priority for route in routes))
    reasons = tuple(dict.fromkeys(r for route in routes for r in route.reasons))
    labels = tuple(dict.fromkeys(label for route in routes for label in route.labels))
    if len({route.action for route in routes}) > 1:
        reasons += ("trackers disagree",)
    return Route(action, priority, reasons, labels)
