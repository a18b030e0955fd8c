"""Issue 16 for moderation: rules that cannot freeze the consumer, reasons that fit their
field, replies that do not paste a stranger's links, and a rate-limited classify endpoint."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from services.moderation.api import _public_rules
from services.moderation.app import build_app
from services.moderation.domain.classifiers import TextItem
from services.moderation.domain.replies import render, safe_author, safe_handle
from services.moderation.domain.review import DecisionRequest, QueuePosition, RulesPosition
from services.moderation.domain.routing import REASON_LIMIT, Outcome, fit_reasons, moderate
from services.moderation.domain.rules import (
    MAX_PROGRAM_SIZE,
    PATTERN_TEXT_CHARS,
    PATTERNS_UNCHECKED,
    CompiledRules,
    Matcher,
    PatternBudget,
    PatternRule,
    TrackerRules,
    WordMatcher,
    compile_pattern,
)
from services.moderation.inbox import Inbox
from services.moderation.pipeline import (
    ModerationPublishers,
    Moderator,
    RulesRegistry,
    _stored_rules,
)
from shared.events import Classification, Mention
from shared.ratelimit import TokenBuckets, retry_after
from shared.settings import Settings

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def mention(text: str, trackers: Sequence[str] = ("roestwerk",), **author: Any) -> Mention:
    return Mention(
        mention_id="x:1",
        platform="x",
        native_id="1",
        text=text,
        author={"id": "u1", "handle": "kundin", "followers": 10, **author},
        created_at=NOW,
        ingested_at=NOW,
        source="api",
        tracker_ids=list(trackers),
    )


def neutral() -> Classification:
    return Classification(
        language="de",
        sentiment="neutral",
        sentiment_score=0.0,
        toxicity=0.0,
        spam=0.0,
        intent="other",
        model_version="fake-1",
    )


# --- 5. rule patterns: linear time, one budget per mention ------------------------------------


def test_the_probe_bypass_pattern_runs_in_linear_time_on_many_patterns() -> None:
    """`(?:\\.|\\.)+!` passed the old backtracking probe and then took its full timeout on every
    mention for every pattern: 50 of them stalled the consumer for seconds per mention."""
    bypass = [PatternRule(pattern=rf"(?:\.|\.)+!|nomatch{i}", action="hide") for i in range(50)]
    rules = CompiledRules(TrackerRules(patterns=bypass))
    started = time.perf_counter()
    route = rules.route(mention("." * 5_000), neutral())
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"50 patterns took {elapsed:.2f} s on one mention"
    assert not any("timed out" in reason or "budget" in reason for reason in route.reasons)
    assert route.action == "approve"
    assert rules.route(mention("...!"), neutral()).action == "hide"


def test_patterns_keep_unicode_word_and_space_classes_on_re2() -> None:
    def hits(pattern: str, text: str) -> bool:
        return compile_pattern(pattern).search(text.encode()) is not None

    assert hits(r"#\w+kampagne", "Toll, #Frühlingskampagne!")
    assert hits(r"^[\w-]+$", "Größe-ÄÖÜ")
    assert hits(r"lieferung\s+\d+", "Lieferung\u00a042")  # a no-break space is a space
    assert not hits(r"x\Wy", "xäy")
    assert hits(r"[^\w]", "ä!")
    assert hits(r"\Q\w+\E", "literal \\w+ here")
    assert not hits(r"\Q\w+\E", "word")
    assert hits(r"[]x]", "]")
    assert hits("ÜBER", "über")  # case-insensitive in every script
    with pytest.raises(ValueError, match=r"\\W"):
        compile_pattern(r"[\Wa]")


def test_one_pattern_budget_per_mention_across_its_trackers() -> None:
    """Each tracker's patterns used to get their own 50 ms, per pattern; now the mention has
    one budget for all of them, and what was not checked goes to a person."""
    ticks = iter(range(1_000))
    budget = PatternBudget(seconds=5.0, clock=lambda: float(next(ticks)))  # 1 s per search
    rules = CompiledRules(
        TrackerRules(patterns=[PatternRule(pattern=f"nomatch{i}") for i in range(4)])
    )
    first = rules.route(mention("hallo"), neutral(), budget)
    assert PATTERNS_UNCHECKED not in first.labels
    second = rules.route(mention("hallo"), neutral(), budget)  # the same mention, tracker 2
    assert (second.action, second.priority) == ("review", "normal")
    assert PATTERNS_UNCHECKED in second.labels
    assert "pattern time budget spent: 3 patterns not checked" in second.reasons

    many = [PatternRule(pattern=f"nomatch{i}", action="approve") for i in range(50)]
    compiled = CompiledRules(TrackerRules(patterns=many))
    trackers = [(f"t{i}", compiled) for i in range(3)]
    outcome = moderate(
        mention("x" * 20_000, [t for t, _ in trackers]),
        neutral(),
        trackers,
        NOW,
        pattern_budget_seconds=1e-9,
    )
    assert outcome.route.action == "review"
    assert PATTERNS_UNCHECKED in outcome.classified.classification.labels


#: Patterns whose one RE2 search took 0.5 to 1 s on 40 kB, against a 50 ms budget.
BLOWUPS = (r"(\W?\w?){190}!", r"(\W*\w){200}!", r"(?:\w*\W*){95}!")


@pytest.mark.parametrize("pattern", BLOWUPS)
def test_patterns_whose_program_outgrows_the_budget_are_refused(pattern: str) -> None:
    with pytest.raises(ValidationError, match="too complex for the time budget") as refused:
        PatternRule(pattern=pattern)
    assert f"at most {MAX_PROGRAM_SIZE:,}" in str(refused.value)
    rules = _stored_rules("roestwerk", {"patterns": [{"pattern": pattern}, {"pattern": "ok"}]})
    assert rules is not None
    assert [p.pattern for p in rules.patterns] == ["ok"]  # stored: skipped, the rest kept


def test_a_pattern_beyond_the_cap_is_a_422_with_the_reason(
    slow_app: tuple[TestClient, SlowSuite],
) -> None:
    client, _ = slow_app
    response = client.put(
        "/v1/rules/roestwerk",
        json={"patterns": [{"pattern": BLOWUPS[1]}]},
        headers={"Authorization": "Bearer unit-admin-token"},
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_rules"
    assert "too complex for the time budget" in error["message"]


def test_rules_saved_before_the_cap_are_shown_with_the_patterns_now_skipped() -> None:
    """GET /v1/rules validated the stored set whole: one pattern saved before the cap made it
    a 500, while the consumer applied the rest."""
    stored = {"block_words": ["gratis"], "patterns": [{"pattern": BLOWUPS[0]}, {"pattern": "ok"}]}
    shown = _public_rules("roestwerk", {"_id": "roestwerk", "rules": stored})
    assert shown["block_words"] == ["gratis"]
    assert [p["pattern"] for p in shown["patterns"]] == ["ok"]
    assert shown["skipped_patterns"] == [{"pattern": BLOWUPS[0]}]
    plain = _public_rules("roestwerk", {"_id": "roestwerk", "rules": {"patterns": []}})
    assert "skipped_patterns" not in plain


def test_legitimate_patterns_fit_under_the_program_cap() -> None:
    for pattern in (
        r"foo\w+bar",
        r"#\w+kampagne|#\w+aktion",
        r"\bgutschein\w*",
        r"\w+\s+\w+",
        r"[\w.-]+@[\w.-]+",
        r"https?://(?:www\.)?[\w-]+\.(?:com|de|net|org|xyz|io)(?:/\S*)?",
        r"\b(?:kaffee|espresso|cappuccino|latte|mokka|bohnen|röstung|crema|barista|mühle)\b",
        r"(?:x000|geliefert)" + "q?" * 91,
    ):
        assert compile_pattern(pattern).programsize <= MAX_PROGRAM_SIZE, pattern


class _SeenEnd:
    """A compiled pattern that remembers how much of the text it was asked to search."""

    def __init__(self, compiled: Matcher, ends: list[int]) -> None:
        self.compiled, self.ends = compiled, ends
        self.programsize = compiled.programsize

    def search(self, text: bytes, pos: int | None = None, endpos: int | None = None) -> Any:
        self.ends.append(len(text) if endpos is None else endpos)
        return self.compiled.search(text, pos, endpos)


def test_patterns_at_the_cap_on_a_long_text_stay_near_the_budget() -> None:
    """The costliest programs under the cap (a dot repeated to the cap after `!`, on a random
    text of `a` and `!`, where RE2's automaton outgrows its memory: ~40 ms on 5,000 characters,
    ~0.3 s on 40,000) search only the text's start, so the budget is overrun by one short
    search at most."""
    patterns = [PatternRule(pattern=f"!.{{374}}x{i:02d}", action="hide") for i in range(50)]
    rules = CompiledRules(TrackerRules(patterns=patterns))
    assert all(m.programsize == MAX_PROGRAM_SIZE for _, m in rules.patterns)
    ends: list[int] = []
    rules.patterns = [(rule, _SeenEnd(m, ends)) for rule, m in rules.patterns]
    text = "".join(random.Random(0).choices("a!", k=40_000))  # the longest a mention may be
    budget = PatternBudget()
    route = rules.route(mention(text), neutral(), budget)
    assert ends
    assert set(ends) == {PATTERN_TEXT_CHARS}  # every search saw 5,000 of the 40,000 bytes
    assert budget.spent <= budget.seconds + budget.longest
    assert budget.longest < 0.25, f"one search took {budget.longest:.3f} s"
    if len(ends) < len(patterns):
        assert PATTERNS_UNCHECKED in route.labels
    tail = "x" * (PATTERN_TEXT_CHARS - 3) + "!" + "." * 374 + "x00"  # a match past the cut
    assert rules.route(mention(tail), neutral()).action == "approve"


def test_a_cut_text_does_not_end_for_dollar_or_word_boundaries() -> None:
    ends_here = CompiledRules(TrackerRules(patterns=[PatternRule(pattern="ende$", action="hide")]))
    long = "x" * (PATTERN_TEXT_CHARS - 4) + "ende und weiter"
    assert ends_here.route(mention(long), neutral()).action == "approve"
    assert ends_here.route(mention("das ende"), neutral()).action == "hide"
    word = CompiledRules(TrackerRules(patterns=[PatternRule(pattern=r"\bend\b", action="hide")]))
    assert word.route(mention("x" * (PATTERN_TEXT_CHARS - 4) + " endlos"), neutral()).action == (
        "approve"
    )


def test_word_lists_are_linear_in_the_text_however_the_words_begin() -> None:
    """1,000 words of "!!!…" made Python's alternation try each at every "!": 1.6 s here."""
    words = [f"{mark * 90}{i:09d}" for mark in "!?" for i in range(500)]
    rules = CompiledRules(TrackerRules(block_words=words, crisis_words=words, allow_words=words))
    started = time.perf_counter()
    route = rules.route(mention("!" * 40_000), neutral())
    elapsed = time.perf_counter() - started
    assert route.action == "approve"
    assert elapsed < 0.3, f"three word lists took {elapsed:.2f} s on 40,000 characters"


def test_word_lists_match_whole_words_and_prefer_the_longest() -> None:
    def found(words: list[str], text: str) -> str | None:
        matcher = WordMatcher(words)
        return matcher.search(text.casefold().encode())

    assert found(["anzeige", "anzeige erstattet"], "Anzeige erstattet!") == "anzeige erstattet"
    assert found(["anzeige", "anzeige erstattet"], "Anzeige gelesen") == "anzeige"
    assert found(["klage"], "wir klagen") is None
    assert found(["klage"], "Klage") == "klage"
    assert found(["rückruf"], "der Rückruf\nkommt") == "rückruf"
    assert found(["rück"], "rückruf") is None
    assert found(["c++", "#boykott"], "wir #Boykott jetzt") == "#boykott"
    assert found(["c++"], "xc++") is None
    assert found(["a.b"], "a.b") == "a.b"
    assert found(["a.b"], "axb") is None  # words are literal, not patterns
    assert found(["straße"], "STRASSE") == "strasse"  # casefolded on both sides


def test_stored_rules_with_a_pattern_re2_refuses_keep_everything_else() -> None:
    stored = {
        "block_words": ["gratis"],
        "patterns": [{"pattern": "x(?=y)", "action": "hide"}, {"pattern": "ok", "label": "ok"}],
    }
    rules = _stored_rules("roestwerk", stored)
    assert rules is not None
    assert rules.block_words == ["gratis"]
    assert [p.pattern for p in rules.patterns] == ["ok"]


# --- 4. the decision's reason fits its field ------------------------------------------------


def test_many_long_matching_hide_patterns_still_make_a_valid_decision() -> None:
    patterns = [
        PatternRule(pattern=f"(?:x{i:03d}|geliefert)" + "q?" * 91, action="hide") for i in range(50)
    ]
    assert all(len(p.pattern) == 200 for p in patterns)
    compiled = CompiledRules(TrackerRules(patterns=patterns, block_words=["geliefert"]))
    outcome = moderate(mention("Röstwerk hat geliefert"), neutral(), [("t", compiled)], NOW)
    assert outcome.decision is not None
    reason = outcome.decision.reason
    assert len(reason) <= REASON_LIMIT
    assert reason.startswith("blocked word 'geliefert'; pattern '(?:x000|geliefert)q?q?")
    assert reason.endswith(" more")
    assert outcome.decision_bytes  # encodes (it is what the partition waits on)


def test_fit_reasons_cuts_at_whole_reasons_and_counts_the_rest() -> None:
    assert fit_reasons(["a", "b"]) == "a; b"
    assert fit_reasons([]) == ""
    assert fit_reasons(["aaaaa", "bbbbb", "ccccc"], limit=19) == "aaaaa; bbbbb; ccccc"
    assert fit_reasons(["aaaaa", "bbbbb", "ccccc"], limit=18) == "aaaaa; and 2 more"
    assert fit_reasons(["x" * 50], limit=20) == "and 1 more"
    assert fit_reasons(["aaaa", "bbbb"], limit=12, prefix="Urgent: ") == "Urgent: aaaa"[:12]
    for n in range(0, 200, 7):
        assert len(fit_reasons([f"reason {i}" * 5 for i in range(n)], limit=300)) <= 300


# --- 6. replies do not paste hostile names ----------------------------------------------------


@pytest.mark.parametrize(
    "hostile",
    [
        "Gewinn: evil.example/x",
        "Visit https://evil.example",
        "www.evil.example",
        "".join(chr(ord(c) + 0xFEE0) for c in "www.evil.example"),  # full-width: NFKC
        "@everyone",
        "Anna @brand_support",
        "#boycott",
        "$SCAM to the moon",
        "<script>alert(1)</script>",
        "[click](http://x)",
        "Jana" + "x" * 80,
        "evil\u2024example",  # one-dot leader: NFKC makes it a dot
    ],
)
def test_hostile_display_names_fall_back_to_the_handle(hostile: str) -> None:
    assert safe_author(hostile, "kundin") == "kundin"
    assert safe_author(hostile, "evil.example/x") == ""
    assert safe_author(hostile, None) == ""


def test_plain_names_are_kept_and_cleaned() -> None:
    assert safe_author("Anna Müller", "kundin") == "Anna Müller"
    assert safe_author("Anna Müller 🌸", "kundin") == "kundin"  # symbols are not on the list
    assert safe_author("O'Brien-Smith", None) == "O'Brien-Smith"
    assert safe_author("José Ñandú", None) == "José Ñandú"  # combining marks: NFKC composes
    assert safe_author("Jana D.", None) == "Jana D."
    assert safe_author("Dr. Jürgen Weiß", None) == "Dr. Jürgen Weiß"
    assert safe_author("Ja\u202ena\u200b  Doe\n", None) == "Jana Doe"  # bidi, zero-width, lines
    assert safe_author(None, "@kundin") == "kundin"
    assert safe_handle("jana@social.example.de") == "@jana@social.example.de"
    assert safe_handle("alice.bsky.social") == "@alice.bsky.social"
    for bad in ("", "a b", "x/y", "<b>", "@", "a\nb@c"):
        assert safe_handle(bad) == "", bad


@pytest.mark.parametrize(
    "linking",
    [
        "scam.рф",
        "buy.中国",
        "evil.\u0441\u043e\u043c",  # Cyrillic top-level domain
        "evil.c\u043em",  # a Cyrillic o among Latin letters
        "example\u3002com",  # ideographic full stop
        "example\uff61com",  # halfwidth ideographic full stop
        "example\uff0ecom",  # fullwidth full stop
        "1.2.3.4",
        "Jana at shop.example",
        "e\u0301vil.\u0301com",  # a combining mark on the dot still leaves a dot
    ],
)
def test_names_that_link_in_any_script_fall_back(linking: str) -> None:
    assert safe_author(linking, "kundin") == "kundin"
    assert safe_author(linking, None) == ""


def test_the_fallback_is_only_the_first_part_of_a_handle() -> None:
    """Bluesky handles are domains and RSS authors any text: `free-crypto.xyz` as the name
    would put the link into our reply."""
    assert safe_author("bad@name", "free-crypto.xyz") == "free-crypto"
    assert safe_author(None, "alice.bsky.social") == "alice"
    assert safe_author(None, "jana@social.example.de") == "jana"
    assert safe_author(None, "@kundin") == "kundin"
    assert safe_author(None, "scam.рф") == "scam"
    assert safe_author(None, "evil.example/x") == ""  # not shaped like a handle
    assert safe_author(None, "kundin_99") == ""  # `_` is not on the list either


def test_an_empty_name_leaves_no_gap_in_the_reply() -> None:
    assert render("Hallo {author}, danke!", {"author": ""}) == "Hallo, danke!"
    assert render("Hi {author} and thanks", {"author": ""}) == "Hi and thanks"
    assert render("{author} danke", {"author": ""}) == "danke"
    assert render("Hallo {author}!", {"author": "Anna"}) == "Hallo Anna!"


class _Mentions:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    async def get(self, mention_id: str) -> dict[str, Any] | None:
        return self.document


class _Canned:
    async def get(self, reply_id: str) -> dict[str, Any] | None:
        return {"_id": reply_id, "text": "Hallo {author}, danke für deine Nachricht! {handle}"}


def test_the_inbox_reply_never_carries_a_hostile_display_name() -> None:
    author = {"id": "u1", "handle": "kundin", "display_name": "Win at evil.example @everyone"}
    document = {"classified": {"platform": "x", "tracker_ids": ["t"], "author": author}}
    inbox = Inbox(
        review=None,  # type: ignore[arg-type]
        mentions=_Mentions(document),  # type: ignore[arg-type]
        audit=None,  # type: ignore[arg-type]
        outbox=None,  # type: ignore[arg-type]
        canned=_Canned(),  # type: ignore[arg-type]
        rules=RulesRegistry(store=None),  # type: ignore[arg-type]
        out=None,  # type: ignore[arg-type]
        lease=timedelta(minutes=5),
    )
    request = DecisionRequest.model_validate(
        {
            "action": "reply",
            "reason": "thanks",
            "reply": {"canned_reply_id": "thanks", "channel_id": "our-x"},
        }
    )
    command = asyncio.run(inbox._reply_command("x:1", "alice", request, NOW, None))
    assert command.text == "Hallo kundin, danke für deine Nachricht! @kundin"
    assert "evil" not in command.text
    assert "@everyone" not in command.text


# --- 5. classify: a scope, a rate limit, off the loop -----------------------------------------


def test_token_buckets_refill_and_say_how_long_to_wait() -> None:
    buckets = TokenBuckets(rate=10.0, capacity=20.0)
    assert buckets.take("a", 20, now=0.0) == 0.0
    assert buckets.take("a", 5, now=0.0) == pytest.approx(0.5)
    assert buckets.take("b", 5, now=0.0) == 0.0  # per key
    assert buckets.take("a", 5, now=0.5) == 0.0
    assert buckets.take("a", 500, now=100.0) == 0.0  # capped: the largest request fits
    assert retry_after(0.01) == "1"
    assert retry_after(2.2) == "3"
    small = TokenBuckets(rate=1.0, capacity=1.0, max_keys=2)
    for key in ("a", "b", "c"):
        small.take(key, 1, now=0.0)
    assert small.take("a", 1, now=0.0) == 0.0  # forgotten (oldest), so full again


class SlowSuite:
    """Classifies slowly, on whichever thread it is called, and remembers which."""

    model_version = "slow-1"

    def __init__(self) -> None:
        self.threads: list[str] = []

    def classify(self, items: Sequence[TextItem]) -> list[Classification]:
        self.threads.append(threading.current_thread().name)
        time.sleep(0.01 * len(items))
        return [neutral() for _ in items]


@pytest.fixture
def slow_app() -> tuple[TestClient, SlowSuite]:
    settings = Settings(
        admin_token="unit-admin-token",
        protect_reads=False,  # open reads: classify needs its scope all the same
        api_tokens={"only-a-reader-1": ["read"], "a-classifier-1": ["classify"]},
        moderation_classify_max_items=10,
        moderation_classify_rate_per_second=10.0,
        moderation_classify_burst=10,
    )
    suite = SlowSuite()
    app = build_app(settings, suite=suite)  # type: ignore[arg-type]
    return TestClient(app), suite


def test_classify_needs_the_classify_scope_even_with_open_reads(
    slow_app: tuple[TestClient, SlowSuite],
) -> None:
    client, _ = slow_app
    body = {"items": [{"text": "gut"}]}
    anonymous = client.post("/v1/classify", json=body)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"
    reader = client.post(
        "/v1/classify", json=body, headers={"Authorization": "Bearer only-a-reader-1"}
    )
    assert reader.status_code == 403
    allowed = client.post(
        "/v1/classify", json=body, headers={"Authorization": "Bearer a-classifier-1"}
    )
    assert allowed.status_code == 200, allowed.text


def test_classify_is_rate_limited_per_token_with_retry_after(
    slow_app: tuple[TestClient, SlowSuite],
) -> None:
    client, _ = slow_app
    full = {"items": [{"text": "a"}] * 10}
    classifier = {"Authorization": "Bearer a-classifier-1"}
    assert client.post("/v1/classify", json=full, headers=classifier).status_code == 200
    limited = client.post("/v1/classify", json=full, headers=classifier)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    error = limited.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["message"]
    assert error["details"]["retry_after_seconds"] >= 1
    admin = {"Authorization": "Bearer unit-admin-token"}  # another token, its own bucket
    assert client.post("/v1/classify", json=full, headers=admin).status_code == 200


def test_classify_runs_off_the_event_loop(slow_app: tuple[TestClient, SlowSuite]) -> None:
    client, suite = slow_app
    answer = client.post(
        "/v1/classify",
        json={"items": [{"text": "a"}]},
        headers={"Authorization": "Bearer a-classifier-1"},
    )
    assert answer.status_code == 200
    assert suite.threads == ["moderation-classify_0"]


# --- 6. /v1/rules pages like every list ------------------------------------------------------


def test_rules_cursor_is_not_a_queue_cursor() -> None:
    position = RulesPosition(tracker_id="roestwerk")
    assert RulesPosition.decode(position.encode()) == position
    queue = QueuePosition(rank=1, created_at=NOW, mention_id="x:1").encode()
    with pytest.raises(ValueError, match="cursor"):
        RulesPosition.decode(queue)


def test_rules_list_refuses_a_limit_above_200(slow_app: tuple[TestClient, SlowSuite]) -> None:
    client, _ = slow_app
    for query in ("limit=201", "limit=0", "cursor=not-a-cursor"):
        response = client.get(
            f"/v1/rules?{query}", headers={"Authorization": "Bearer unit-admin-token"}
        )
        assert response.status_code == 422, query
        assert response.json()["error"]["code"] in ("invalid_request", "invalid_cursor")


class BlockingSuite:
    """Holds the thread it runs on for `seconds`, as a big batch of long texts would."""

    model_version = "blocking-1"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def classify(self, items: Sequence[TextItem]) -> list[Classification]:
        time.sleep(self.seconds)
        return [neutral() for _ in items]


async def test_health_checks_are_answered_while_classify_runs() -> None:
    settings = Settings(admin_token="unit-admin-token")
    app = build_app(settings, suite=BlockingSuite(0.6))  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://moderation") as http:
        classify = asyncio.create_task(
            http.post(
                "/v1/classify",
                json={"items": [{"text": "a"}]},
                headers={"Authorization": "Bearer unit-admin-token"},
            )
        )
        await asyncio.sleep(0.1)  # the classifiers are busy now
        started = time.perf_counter()
        health = await http.get("/healthz")
        took = time.perf_counter() - started
        assert health.status_code == 200
        assert not classify.done(), "healthz waited for the classifiers"
        assert took < 0.3
        assert (await classify).status_code == 200


class _Store:
    async def record(self, outcomes: Sequence[Outcome]) -> list[Outcome]:
        return list(outcomes)


class _Out:
    async def publish_encoded(self, messages: Sequence[tuple[str, bytes]]) -> None:
        return None

    async def publish_many(self, events: Sequence[Any], key: Any) -> None:
        return None


async def test_the_consumer_classifies_and_routes_off_the_event_loop() -> None:
    out = _Out()
    moderator = Moderator(
        suite=BlockingSuite(0.5),  # type: ignore[arg-type]
        rules=RulesRegistry(store=None),  # type: ignore[arg-type]
        store=_Store(),  # type: ignore[arg-type]
        out=ModerationPublishers(out, out, out, out),  # type: ignore[arg-type]
        executor=ThreadPoolExecutor(max_workers=1),
    )
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        outcomes = await moderator.process([mention("Röstwerk hat geliefert")])
    finally:
        ticker.cancel()
    assert [o.route.action for o in outcomes] == ["approve"]
    assert ticks >= 10, f"the event loop ran {ticks} times in 0.5 s of classifying"
