"""The console's moderation rules without a server: words of a text, the mentions filter,
corrections merging and repeating, unfilled placeholders, and brand-scoped queries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from services.moderation.domain.replies import unfilled
from services.moderation.domain.review import (
    CorrectionRequest,
    QueueFilter,
    changes_nothing,
    corrected_values,
)
from services.moderation.domain.search import MAX_WORDS, MentionFilter, words_of
from services.moderation.storage import _mentions_query, _queue_query

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_words_are_distinct_folded_and_bounded() -> None:
    assert words_of("Grüße aus KÖLN, grüsse! a 42 \uff22\uff29\uff27") == [
        "grüsse",
        "aus",
        "köln",
        "42",
        "big",
    ]
    assert words_of("x" * 41 + " ok") == ["ok"]
    many = " ".join(f"w{i}" for i in range(500))
    assert len(words_of(many)) == MAX_WORDS


def test_the_mentions_filter_refuses_what_it_cannot_serve() -> None:
    assert MentionFilter.model_validate({"q": "Bestellung KAPUTT"}).query_words() == [
        "bestellung",
        "kaputt",
    ]
    for bad in (
        {"q": "!!"},
        {"q": " ".join(f"w{i}" for i in range(9))},
        {"label": "$gt"},
        {"tracker_id": "$ne"},
        {"sentiment": "angry"},
        {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
    ):
        with pytest.raises(ValidationError):
            MentionFilter.model_validate(bad)


def test_a_console_user_queries_only_their_brands() -> None:
    brands = frozenset({"t1", "t3"})
    assert _mentions_query(MentionFilter(tracker_id="t2"), brands, None) is None
    query = _mentions_query(MentionFilter(), brands, None)
    assert query == {"tracker_ids": {"$in": ["t1", "t3"]}}
    assert _mentions_query(MentionFilter(), None, None) == {}
    searched = _mentions_query(MentionFilter(tracker_id="t1", q="Kaputt $where"), brands, None)
    assert searched == {"tracker_ids": "t1", "words": {"$all": ["kaputt", "where"]}}
    assert _queue_query(QueueFilter(tracker_id="t2"), NOW, None, brands) is None
    mine = _queue_query(QueueFilter(status="mine", actor="rita@example.com"), NOW, None, brands)
    assert mine is not None
    assert mine["lease_owner"] == "rita@example.com"
    assert mine["tracker_ids"] == {"$in": ["t1", "t3"]}


def test_corrections_merge_and_a_repeat_changes_nothing() -> None:
    with pytest.raises(ValidationError):
        CorrectionRequest.model_validate({"note": "only a note"})
    with pytest.raises(ValidationError):
        CorrectionRequest.model_validate({"sentiment": "positive", "extra": 1})
    first = CorrectionRequest.model_validate({"sentiment": "positive", "labels": ["b", "a", "b"]})
    assert first.labels == ["a", "b"]
    values = corrected_values(None, first)
    assert values == {"sentiment": "positive", "labels": ["a", "b"], "intent": None, "note": None}
    assert not changes_nothing(None, values)
    assert changes_nothing(values, corrected_values(values, first))
    later = corrected_values(values, CorrectionRequest(intent="question"))
    assert later["sentiment"] == "positive"
    assert later["intent"] == "question"
    assert not changes_nothing(values, later)


def test_unfilled_placeholders_are_named_once() -> None:
    template = "Hallo {author}, {author}! {brand} ({handle})"
    assert unfilled(template, {"author": "", "brand": "Röstwerk"}) == ["author", "handle"]
    assert unfilled(template, {"author": "Jana", "brand": "R", "handle": "@j"}) == []


def test_queries_are_one_flat_document_with_and_only_for_repeated_keys() -> None:
    from services.moderation.storage import flat_query

    assert flat_query([{"a": 1}, {"b": 2}]) == {"a": 1, "b": 2}
    repeated = flat_query([{"$or": [{"a": 1}]}, {"b": 2}, {"$or": [{"c": 3}]}])
    assert repeated == {"$or": [{"a": 1}], "b": 2, "$and": [{"$or": [{"c": 3}]}]}
    assert flat_query([]) == {}
