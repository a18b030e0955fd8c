"""Pure metrics logic: windows, formulas, facts and their day sums."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.metrics.domain.facts import (
    BatchDeltas,
    DaySums,
    MentionFact,
    add_to_document,
    micros,
    stored_mentions,
    supersedes,
)
from services.metrics.domain.formulas import (
    follower_growth,
    net_sentiment,
    percent,
    response_times,
    spike_threshold,
)
from services.metrics.domain.windows import bucket_range, floor_to

T0 = datetime(2026, 3, 10, 0, 0, tzinfo=UTC)


def test_floor() -> None:
    moment = T0 + timedelta(hours=5, minutes=3)
    assert floor_to(moment, "hour") == T0 + timedelta(hours=5)
    assert floor_to(moment, "day") == T0
    assert len(bucket_range(T0, T0 + timedelta(days=1), "hour")) == 24


def test_formulas() -> None:
    assert percent(1, 0) is None
    assert percent(1, 4) == 25.0
    assert net_sentiment(0, 0) is None
    assert net_sentiment(3, 1) == 50.0
    assert response_times([]) == (None, None)
    assert response_times([10, 20, 60]) == (30.0, 20.0)
    assert follower_growth(200, 250) == (50, 25.0)
    assert follower_growth(None, 5) == (None, None)


def test_spike_threshold_is_at_least_ten_and_follows_mean_plus_three_sigma() -> None:
    assert spike_threshold([0] * 168) == 10.0
    assert spike_threshold([]) == 10.0
    busy = [20, 30] * 84  # mean 25, population sigma 5
    assert spike_threshold(busy) == pytest.approx(40.0)


def fact(**changes: object) -> MentionFact:
    values: dict[str, object] = {
        "mention_id": "x:1",
        "tracker_ids": ("a", "b"),
        "created_at": T0 + timedelta(hours=3, minutes=5),
        "platform": "x",
        "author": "x:u1",
        "followers": 10,
        "sentiment": "negative",
        "action": "review",
        "version": T0,
    }
    values.update(changes)
    return MentionFact(**values)  # type: ignore[arg-type]


HOUR3 = "03"


def test_deltas_of_a_first_sighting_count_the_hour_per_tracker_and_day() -> None:
    deltas = BatchDeltas()
    deltas.replace(None, fact())
    changes = deltas.non_empty()
    assert set(changes) == {("a", T0), ("b", T0)}
    day = changes[("a", T0)]
    assert day.hour_counts(HOUR3) == {"volume": 1, "s.negative": 1, "p.x": 1, "review": 1}
    assert day.author_maxima(HOUR3) == {"x:u1": 10}


def test_reclassification_moves_counts_and_hiding_removes_them() -> None:
    old = fact()
    moved = fact(sentiment="positive", action="approve", version=T0 + timedelta(minutes=1))
    deltas = BatchDeltas()
    deltas.replace(old, moved)
    counts = deltas.non_empty()[("a", T0)].hour_counts(HOUR3)
    assert {k: v for k, v in counts.items() if v} == {
        "s.negative": -1,
        "s.positive": 1,
        "review": -1,
    }

    hidden = fact(sentiment="neutral", action="hide", version=T0 + timedelta(minutes=2))
    before = DaySums()
    before.add_fact(moved, +1)
    deltas = BatchDeltas()
    deltas.replace(moved, hidden)
    after = add_to_document(before.document(), deltas.non_empty()[("b", T0)].document())
    stored = DaySums.from_document(after)
    assert stored.hour_counts(HOUR3) == {}  # counted nowhere, no author for reach
    assert stored.author_maxima(HOUR3) == {}
    # but still listed, so a stale redelivery of the earlier classification finds it
    assert stored_mentions(after["e"][HOUR3]) == {"x:1": hidden.entry()}


def test_a_redelivered_equal_fact_changes_nothing() -> None:
    deltas = BatchDeltas()
    deltas.replace(fact(), fact())
    assert deltas.non_empty() == {}
    # A later one with the same content would only swap the entry's version: `supersedes`
    # keeps it from being applied at all.
    deltas.replace(fact(), fact(version=T0 + timedelta(hours=1)))
    (day, *_) = deltas.non_empty().values()
    assert {k: v for k, v in day.hour_counts(HOUR3).items() if v} == {}


def test_only_a_later_different_classification_supersedes() -> None:
    stored = fact()
    assert supersedes(stored, None)
    assert not supersedes(stored, stored)  # redelivery
    assert not supersedes(fact(sentiment="positive"), stored)  # same version: not later
    assert not supersedes(fact(version=T0 + timedelta(hours=1)), stored)  # later, same content
    assert supersedes(fact(sentiment="neutral", version=T0 + timedelta(hours=1)), stored)
    assert not supersedes(stored, fact(sentiment="neutral", version=T0 + timedelta(hours=1)))


def test_reach_keeps_each_authors_largest_followers_and_forgets_a_taken_back_one() -> None:
    day = DaySums()
    day.add_fact(fact(followers=10), +1)
    day.add_fact(fact(mention_id="x:2", followers=30), +1)
    day.add_fact(fact(mention_id="x:3", author="x:u.2%", followers=5), +1)
    stored = DaySums.from_document(day.document())  # JSON and back: keys with dots survive
    assert stored.author_maxima(HOUR3) == {"x:u1": 30, "x:u.2%": 5}

    stored.add_fact(fact(mention_id="x:2", followers=30), -1)  # the 30-follower one is hidden
    assert stored.author_maxima(HOUR3) == {"x:u1": 10, "x:u.2%": 5}
    assert stored.hour_counts(HOUR3)["volume"] == 2


def test_a_day_sums_document_round_trips_entries_exactly() -> None:
    day = DaySums()
    moment = T0 + timedelta(hours=3, minutes=7, seconds=9, microseconds=123_456)
    day.add_fact(fact(created_at=moment), +1)
    (entry,) = DaySums.from_document(day.document()).hour_entries(HOUR3)
    assert entry[0] == micros(moment)
    assert entry[1:] == ("x:u1", 10, "negative", "x", "review", "x:1", micros(T0))


def test_an_entry_gives_back_the_fact_it_was_made_of() -> None:
    original = fact(created_at=T0 + timedelta(microseconds=7), version=T0 + timedelta(seconds=1))
    assert MentionFact.from_entry(original.entry(), original.tracker_ids) == original


def test_stored_mentions_are_the_entries_an_hour_holds_now() -> None:
    first, second = fact(), fact(mention_id="x:2", author="x:u2")
    day = DaySums()
    day.add_fact(first, +1)
    day.add_fact(second, +1)
    change = DaySums()
    change.add_fact(second, -1)  # taken back (appended as a -1 item would be compacted)
    merged = add_to_document(day.document(), change.document())
    assert stored_mentions(merged["e"][HOUR3]) == {"x:1": first.entry()}
    assert stored_mentions(day.document()["e"][HOUR3]).keys() == {"x:1", "x:2"}


def test_adding_to_a_stored_day_appends_entries_and_compacts_an_hour_with_take_backs() -> None:
    first, second = fact(), fact(mention_id="x:2", author="x:u2", followers=40)
    stored = DaySums()
    stored.add_fact(first, +1)
    change = DaySums()
    change.add_fact(second, +1)
    added = add_to_document(stored.document(), change.document())
    assert added["e"][HOUR3].count("x:u") == 2  # appended: both entries listed
    day = DaySums.from_document(added)
    assert day.hour_counts(HOUR3)["volume"] == 2
    assert day.author_maxima(HOUR3) == {"x:u1": 10, "x:u2": 40}

    hidden = DaySums()
    hidden.add_fact(second, -1)
    compacted = add_to_document(added, hidden.document())
    assert compacted["e"][HOUR3].count("x:u") == 1  # the cancelled pair is gone
    assert DaySums.from_document(compacted).author_maxima(HOUR3) == {"x:u1": 10}

    emptied = DaySums()
    emptied.add_fact(first, -1)
    assert DaySums.from_document(add_to_document(compacted, emptied.document())).is_empty()


def test_an_entry_listed_twice_counts_twice() -> None:
    twice = DaySums()
    twice.add_fact(fact(), +1)
    again = DaySums()
    again.add_fact(fact(mention_id="x:9"), +1)  # same time, author and labels
    day = DaySums.from_document(add_to_document(twice.document(), again.document()))
    assert day.hour_counts(HOUR3)["volume"] == 2
    assert sum(day.hour_entries(HOUR3).values()) == 2


def test_parsed_hours_follow_appends_and_rewrites_of_an_hour() -> None:
    from services.metrics.aggregates import _ParsedHours

    first, second = fact(), fact(mention_id="x:2", author="x:u2")
    day = DaySums()
    day.add_fact(first, +1)
    stored = day.document()
    hours = _ParsedHours(size=4)
    assert hours.mentions("a|2026-03-10", HOUR3, stored["e"][HOUR3]).keys() == {"x:1"}

    change = DaySums()
    change.add_fact(second, +1)
    appended = add_to_document(stored, change.document())
    assert hours.mentions("a|2026-03-10", HOUR3, appended["e"][HOUR3]).keys() == {"x:1", "x:2"}

    taken_back = DaySums()
    taken_back.add_fact(first, -1)  # compacts the hour: a rewrite, not an append
    compacted = add_to_document(appended, taken_back.document())
    assert hours.mentions("a|2026-03-10", HOUR3, compacted["e"][HOUR3]) == {"x:2": second.entry()}
