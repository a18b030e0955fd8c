"""Pure metrics logic: window plans, formulas, fact deltas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.metrics.domain.facts import BucketDeltas, BucketKey, MentionFact, supersedes
from services.metrics.domain.formulas import (
    follower_growth,
    net_sentiment,
    percent,
    response_times,
    spike_threshold,
)
from services.metrics.domain.windows import bucket_range, ceil_to, floor_to, plan_window

T0 = datetime(2026, 3, 10, 0, 0, tzinfo=UTC)


def covered_minutes(start: datetime, end: datetime) -> list[datetime]:
    plan = plan_window(start, end)
    minutes: list[datetime] = []
    for ranges in (plan.days, plan.hours, plan.raw):
        for a, b in ranges:
            minute = a
            while minute < b:
                minutes.append(minute)
                minute += timedelta(minutes=1)
    return sorted(minutes)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (T0, T0 + timedelta(days=3)),
        (T0 + timedelta(hours=5), T0 + timedelta(days=2, hours=3)),
        (T0 + timedelta(minutes=17), T0 + timedelta(days=1, hours=2, minutes=41)),
        (T0 + timedelta(minutes=5), T0 + timedelta(minutes=50)),
        (T0 + timedelta(hours=2), T0 + timedelta(hours=9)),
        (T0 + timedelta(minutes=59), T0 + timedelta(hours=1, minutes=1)),
    ],
)
def test_a_window_plan_covers_every_minute_exactly_once(start: datetime, end: datetime) -> None:
    minutes = covered_minutes(start, end)
    expected = int((end - start).total_seconds() // 60)
    assert len(minutes) == len(set(minutes)) == expected
    assert minutes[0] == start
    assert minutes[-1] == end - timedelta(minutes=1)


def test_plan_uses_days_inside_hours_at_the_edges_and_facts_below_an_hour() -> None:
    plan = plan_window(T0 + timedelta(hours=22, minutes=30), T0 + timedelta(days=3, hours=1))
    assert plan.days == [(T0 + timedelta(days=1), T0 + timedelta(days=3))]
    assert plan.hours == [
        (T0 + timedelta(hours=23), T0 + timedelta(days=1)),
        (T0 + timedelta(days=3), T0 + timedelta(days=3, hours=1)),
    ]
    assert plan.raw == [(T0 + timedelta(hours=22, minutes=30), T0 + timedelta(hours=23))]
    assert plan_window(T0, T0) == plan_window(T0 + timedelta(hours=1), T0)


def test_floor_and_ceil() -> None:
    moment = T0 + timedelta(hours=5, minutes=3)
    assert floor_to(moment, "hour") == T0 + timedelta(hours=5)
    assert ceil_to(moment, "hour") == T0 + timedelta(hours=6)
    assert floor_to(moment, "day") == T0
    assert ceil_to(moment, "day") == T0 + timedelta(days=1)
    assert ceil_to(T0, "day") == T0
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


def test_deltas_of_a_first_sighting_count_hour_and_day_per_tracker() -> None:
    deltas = BucketDeltas()
    deltas.replace(None, fact())
    changes = deltas.non_zero()
    assert len(changes) == 4  # two trackers x hour and day
    hour = changes[("a", "hour", T0 + timedelta(hours=3))]
    assert hour == {"volume": 1, "s.negative": 1, "p.x": 1, "review": 1}


def test_reclassification_moves_counts_and_hiding_removes_them() -> None:
    old = fact()
    moved = fact(sentiment="positive", action="approve", version=T0 + timedelta(minutes=1))
    deltas = BucketDeltas()
    deltas.replace(old, moved)
    hour = deltas.non_zero()[("a", "hour", T0 + timedelta(hours=3))]
    assert hour == {"s.negative": -1, "s.positive": 1, "review": -1}

    hidden = fact(sentiment="neutral", action="hide", version=T0 + timedelta(minutes=2))
    deltas = BucketDeltas()
    deltas.replace(moved, hidden)
    assert deltas.non_zero()[("b", "day", T0)] == {"volume": -1, "s.positive": -1, "p.x": -1}


def test_only_a_later_different_classification_supersedes() -> None:
    stored = fact()
    assert supersedes(stored, None)
    assert not supersedes(stored, stored)  # redelivery
    assert not supersedes(fact(sentiment="positive"), stored)  # same version: not later
    assert not supersedes(fact(version=T0 + timedelta(hours=1)), stored)  # later, same content
    assert supersedes(fact(sentiment="neutral", version=T0 + timedelta(hours=1)), stored)
    assert not supersedes(stored, fact(sentiment="neutral", version=T0 + timedelta(hours=1)))


def test_buckets_keep_each_authors_largest_followers_and_rebuild_after_a_loss() -> None:
    deltas = BucketDeltas()
    deltas.replace(None, fact(followers=10))
    deltas.replace(None, fact(mention_id="x:2", followers=30))
    deltas.replace(None, fact(mention_id="x:3", author="x:u.2%", followers=5))
    key: BucketKey = ("a", "day", T0)
    assert deltas.author_maxima(key) == {"r.x:u1": 30, "r.x:u%2E2%25": 5}

    moved = BucketDeltas()
    moved.replace(fact(), fact(action="hide", sentiment="neutral", version=T0 + timedelta(1)))
    assert key in moved.rebuild_authors
    assert moved.author_maxima(key) == {}
