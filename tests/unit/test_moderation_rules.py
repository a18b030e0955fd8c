"""Tracker rules and routing: pure functions, given classifications (no classifier involved)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from services.moderation.domain.classifiers import TextItem
from services.moderation.domain.routing import (
    CLASSIFICATION_FAILED,
    Outcome,
    _classified,
    moderate,
)
from services.moderation.domain.rules import (
    DEFAULT_RULES,
    CompiledRules,
    PatternRule,
    Route,
    TrackerRules,
    compile_pattern,
    merge_routes,
    priority_max,
    priority_raised,
)
from services.moderation.pipeline import ModerationPublishers, Moderator, RulesRegistry
from shared.events import Classification, ClassifiedMention, Mention

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def mention(text: str = "Röstwerk hat geliefert", followers: int = 100, **author: Any) -> Mention:
    return Mention(
        mention_id="x:1",
        platform="x",
        native_id="1",
        text=text,
        author={"id": "u1", "handle": "@kundin", "followers": followers, **author},
        created_at=NOW,
        ingested_at=NOW,
        source="api",
        tracker_ids=["roestwerk"],
    )


def classification(
    sentiment: str = "neutral",
    score: float = 0.0,
    toxicity: float = 0.0,
    spam: float = 0.0,
    intent: str = "other",
) -> Classification:
    labels = [n for n, v in (("toxic", toxicity), ("spam", spam)) if v >= 0.5]
    return Classification.model_validate(
        {
            "language": "de",
            "sentiment": sentiment,
            "sentiment_score": score,
            "toxicity": toxicity,
            "spam": spam,
            "intent": intent,
            "labels": labels,
            "model_version": "fake-1",
        }
    )


def route(rules: TrackerRules, text: str = "Röstwerk hat geliefert", **kwargs: Any) -> Route:
    followers = kwargs.pop("followers", 100)
    return CompiledRules(rules).route(mention(text, followers), classification(**kwargs))


DEFAULTS = DEFAULT_RULES


def test_neutral_mention_is_approved_and_obvious_spam_hidden() -> None:
    assert route(DEFAULTS).action == "approve"
    hidden = route(DEFAULTS, spam=0.97)
    assert (hidden.action, hidden.priority) == ("hide", "low")
    possible = route(DEFAULTS, spam=0.6)
    assert (possible.action, possible.priority) == ("review", "low")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sentiment": "negative", "score": -0.9, "spam": 0.99},
        {"toxicity": 0.9, "spam": 0.99},
    ],
)
def test_negative_or_toxic_is_never_hidden_even_when_spammy_or_blocked(
    kwargs: dict[str, Any],
) -> None:
    rules = TrackerRules(block_authors=["kundin"], block_words=["geliefert"])
    result = route(rules, **kwargs)
    assert result.action == "review"
    outcome = moderate(
        mention(), classification(**kwargs), [("roestwerk", CompiledRules(rules))], NOW
    )
    assert outcome.classified.action == "review"
    assert outcome.decision is None  # a person decides, not "auto"


def test_priorities_negative_toxic_crisis_and_reach() -> None:
    assert route(DEFAULTS, sentiment="negative", score=-0.3).priority == "normal"
    assert route(DEFAULTS, sentiment="negative", score=-0.8).priority == "high"
    assert route(DEFAULTS, toxicity=0.8).priority == "high"
    assert route(DEFAULTS, "Rückruf angekündigt?").priority == "urgent"
    # High reach multiplies: one step up for reviews, so toxic + reach is urgent.
    assert route(DEFAULTS, toxicity=0.8, followers=250_000).priority == "urgent"
    assert route(DEFAULTS, sentiment="negative", score=-0.3, followers=20_000).priority == "high"
    assert route(DEFAULTS, followers=250_000).action == "approve"  # reach alone asks nothing


def test_vip_authors_and_follower_threshold_are_configurable() -> None:
    rules = TrackerRules(vip_authors=["@Kundin"], follower_threshold=None)
    result = route(rules, intent="question")
    assert (result.action, result.priority) == ("review", "high")
    assert "vip" in result.labels
    assert route(TrackerRules(follower_threshold=None), intent="question").priority == "normal"


def test_block_and_allow_lists() -> None:
    assert route(TrackerRules(block_authors=["U1"])).action == "hide"
    blocked_word = route(TrackerRules(block_words=["Geliefert"]))
    assert blocked_word.action == "hide"
    assert "blocked_word" in blocked_word.labels
    # whole words only: "liefer" does not block "geliefert"
    assert route(TrackerRules(block_words=["liefer"])).action == "approve"
    allowed = TrackerRules(block_words=["geliefert"], allow_words=["röstwerk"])
    assert route(allowed).action == "approve"
    trusted = TrackerRules(allow_authors=["u1"])
    assert route(trusted, spam=0.99).action == "approve"


def test_intents_patterns_and_auto_approval() -> None:
    assert route(DEFAULTS, intent="question").action == "review"
    assert route(DEFAULTS, intent="praise").action == "approve"
    assert route(TrackerRules(review_intents=[]), intent="question").action == "approve"
    assert route(TrackerRules(auto_approve=False)).action == "review"
    rules = TrackerRules(
        patterns=[
            PatternRule(pattern=r"\bgutschein\w*", action="hide", label="voucher"),
            PatternRule(pattern=r"#\w+kampagne", action="approve"),
            PatternRule(pattern=r"betriebsrat", priority="high"),
        ]
    )
    voucher = route(rules, "Gutscheincode hier abholen")
    assert (voucher.action, voucher.labels) == ("hide", ("voucher",))
    assert route(rules, "Toll, #herbstkampagne", intent="question").action == "approve"
    assert route(rules, "Der Betriebsrat sagt").priority == "high"


def test_patterns_are_validated_by_re2_and_refusals_name_the_reason() -> None:
    compile_pattern(r"liefer(ung|zeit)\s+\d+")
    compile_pattern("(a+)+$")  # nested quantifiers: harmless in linear time
    for bad, reason in (
        ("([a-z", "missing ]"),
        (r"(a)\1", "invalid escape"),
        ("foo(?=bar)", "perl operator"),
        ("(?<!x)y", "perl operator"),
        ("a{1001}", "repetition"),
    ):
        with pytest.raises(ValueError, match="RE2") as refused:
            compile_pattern(bad)
        assert reason in str(refused.value), (bad, refused.value)
    with pytest.raises(ValueError, match="longer than"):
        compile_pattern("a" * 201)
    with pytest.raises(ValidationError, match="lookarounds"):
        TrackerRules.model_validate({"patterns": [{"pattern": "x(?!y)"}]})


def test_rules_are_strict_and_thresholds_ordered() -> None:
    with pytest.raises(ValidationError, match="block_word"):
        TrackerRules.model_validate({"block_word": ["x"]})
    with pytest.raises(ValidationError, match="spam_review"):
        TrackerRules.model_validate({"thresholds": {"spam_hide": 0.5, "spam_review": 0.8}})
    with pytest.raises(ValidationError):
        TrackerRules.model_validate({"review_intents": ["gossip"]})


def test_priority_helpers_and_merging_trackers() -> None:
    assert priority_max("low", "urgent", "normal") == "urgent"
    assert priority_raised("high") == "urgent"
    assert priority_raised("urgent") == "urgent"
    hide, approve = Route("hide", "low"), Route("approve", "low")
    assert merge_routes([hide, hide]).action == "hide"
    disagreement = merge_routes([hide, approve])
    assert disagreement.action == "review"
    assert "trackers disagree" in disagreement.reasons
    assert merge_routes([Route("review", "normal"), Route("review", "urgent")]).priority == "urgent"


def test_moderate_builds_events_with_auto_decision_and_urgent_alert() -> None:
    approved = moderate(mention(), classification(), [("roestwerk", CompiledRules(DEFAULTS))], NOW)
    assert approved.decision is not None
    assert (approved.decision.action, approved.decision.actor) == ("approve", "auto")
    assert approved.decision.tracker_ids == ["roestwerk"]
    assert approved.alerts == ()
    assert isinstance(approved.classified, ClassifiedMention)
    assert approved.classified.event_id != mention().event_id  # a new event, not the raw one

    crisis = moderate(
        mention("Datenleck bei Röstwerk?", followers=90_000),
        classification(sentiment="negative", score=-0.7),
        [("roestwerk", CompiledRules(DEFAULTS)), ("kaffee", CompiledRules(DEFAULTS))],
        NOW,
    )
    assert crisis.classified.priority == "urgent"
    assert "crisis" in crisis.classified.classification.labels
    assert [a.tracker_id for a in crisis.alerts] == ["roestwerk", "kaffee"]
    assert all(a.kind == "urgent_mention" and a.mention_id == "x:1" for a in crisis.alerts)


class ExplodingSuite:
    """Fails on any batch holding the word 'boom' (a classifier bug on one odd text)."""

    model_version = "fake-3"

    def classify(self, items: Sequence[TextItem]) -> list[Classification]:
        if any("boom" in item.text for item in items):
            raise RuntimeError("tokenizer crashed")
        return [classification() for _ in items]


def test_a_text_the_classifiers_fail_on_goes_to_review_and_spares_its_batch() -> None:
    moderator = Moderator(
        suite=ExplodingSuite(),  # type: ignore[arg-type]
        rules=None,  # type: ignore[arg-type]
        store=None,  # type: ignore[arg-type]
        out=None,  # type: ignore[arg-type]
    )
    results = moderator._classify([TextItem("fine"), TextItem("boom", "de"), TextItem("ok")])
    assert [CLASSIFICATION_FAILED in r.labels for r in results] == [False, True, False]
    outcome = moderate(
        mention("boom"), results[1], [("roestwerk", CompiledRules(DEFAULT_RULES))], NOW
    )
    assert (outcome.classified.action, outcome.decision) == ("review", None)
    assert "classification failed" in outcome.route.reasons


def test_classified_events_are_valid_and_keep_the_never_hidden_rule() -> None:
    outcome = moderate(mention(), classification(), [("roestwerk", CompiledRules(DEFAULTS))], NOW)
    wire = ClassifiedMention.model_validate_json(outcome.classified.to_bytes())
    assert wire.model_dump() == outcome.classified.model_dump()
    negative = classification(sentiment="negative", score=-0.5)
    with pytest.raises(ValueError, match="never hidden"):
        _classified(mention(), negative, Route("hide", "low"), NOW)


class RecordingStore:
    def __init__(self) -> None:
        self.chunks: list[list[str]] = []

    async def record(self, outcomes: Sequence[Outcome]) -> list[Outcome]:
        self.chunks.append([o.mention_id for o in outcomes])
        return list(outcomes)


class RecordingPublisher:
    def __init__(self) -> None:
        self.keys: list[str] = []

        self.values: list[bytes] = []

    async def publish_many(self, events: Sequence[Any], key: Any) -> None:
        self.keys += [key(event) for event in events]

    async def publish_encoded(self, messages: Sequence[tuple[str, bytes]]) -> None:
        self.keys += [key for key, _ in messages]
        self.values += [value for _, value in messages]


async def test_a_batch_is_stored_and_published_chunk_by_chunk_once_per_mention() -> None:
    store = RecordingStore()
    out = ModerationPublishers(*(RecordingPublisher() for _ in range(4)))  # type: ignore[arg-type]
    moderator = Moderator(
        suite=ExplodingSuite(),  # type: ignore[arg-type]
        rules=RulesRegistry(store=None),  # type: ignore[arg-type]
        store=store,  # type: ignore[arg-type]
        out=out,
        chunk_size=2,
    )
    batch = [mention(f"Text {n}").model_copy(update={"mention_id": f"x:{n}"}) for n in range(5)]
    stored = await moderator.process([*batch, batch[0]])  # a duplicate inside the batch
    assert store.chunks == [["x:0", "x:1"], ["x:2", "x:3"], ["x:4"]]
    assert [o.mention_id for o in stored] == ["x:0", "x:1", "x:2", "x:3", "x:4"]
    assert out.classified.keys == ["x:0", "x:1", "x:2", "x:3", "x:4"]  # type: ignore[attr-defined]
    assert out.decisions.keys == out.classified.keys  # type: ignore[attr-defined]
    published: list[bytes] = out.classified.values  # type: ignore[attr-defined]
    assert published == [o.classified_bytes for o in stored]  # encoded once: stored = published
    assert [json.loads(value)["mention_id"] for value in published] == [
        "x:0",
        "x:1",
        "x:2",
        "x:3",
        "x:4",
    ]


def test_a_slow_rules_refresh_never_installs_older_rules_last() -> None:
    """The periodic refresh read the rules before a PUT and is slow to finish; the PUT's own
    refresh must be what stays (before: the older rules won until the next refresh)."""
    import asyncio

    class Store:
        def __init__(self) -> None:
            self.documents: list[dict[str, Any]] = []
            self.reads = 0

        async def revision(self) -> object:
            return len(self.documents)

        async def all(self) -> list[dict[str, Any]]:
            self.reads += 1
            seen = list(self.documents)
            if self.reads == 1:
                await asyncio.sleep(0.2)
            return seen

    async def scenario() -> set[str]:
        store = Store()
        registry = RulesRegistry(store)  # type: ignore[arg-type]
        periodic = asyncio.create_task(registry.refresh())
        await asyncio.sleep(0.05)
        store.documents.append({"_id": "roestwerk", "rules": {"block_words": ["gratis"]}})
        await registry.refresh(force=True)  # the PUT's
        await periodic
        return set(registry.compiled)

    assert asyncio.run(scenario()) == {"roestwerk"}
