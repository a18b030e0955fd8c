"""The console's overview arithmetic: periods, card changes, durations, series and shares."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.console.domain.cards import (
    Change,
    build_cards,
    group_volume,
    humanise_duration,
    point_change,
    relative_change,
)
from services.console.domain.figures import (
    active_crisis,
    buckets,
    sentiment_mix,
    share_of_voice,
)
from services.console.domain.periods import (
    PeriodError,
    chart_window,
    parse_day,
    resolve_period,
)

NOW = datetime(2026, 3, 10, 14, 37, 12, tzinfo=UTC)


# --- periods -------------------------------------------------------------------------------


def test_a_rolling_period_ends_after_the_current_minute_and_has_its_length() -> None:
    period = resolve_period("7d", NOW, "Europe/Berlin")
    assert period.end == datetime(2026, 3, 10, 14, 38, tzinfo=UTC)
    assert period.length == timedelta(days=7)
    assert period.bucket == "day"
    assert resolve_period(None, NOW, "UTC").key == "7d"
    assert resolve_period("24h", NOW, "UTC").bucket == "hour"


def test_the_previous_period_is_as_long_and_ends_where_this_one_starts() -> None:
    period = resolve_period("30d", NOW, "UTC")
    before = period.previous()
    assert before.end == period.start
    assert before.length == period.length


def test_custom_days_are_the_users_days_across_a_daylight_saving_change() -> None:
    # Berlin moves to summer time on 29 March 2026: that day has 23 hours.
    period = resolve_period("custom", NOW, "Europe/Berlin", date(2026, 3, 29), date(2026, 3, 29))
    assert period.start == datetime(2026, 3, 28, 23, tzinfo=UTC)
    assert period.end == datetime(2026, 3, 29, 22, tzinfo=UTC)
    assert period.length == timedelta(hours=23)


@pytest.mark.parametrize(
    ("key", "first", "last", "says"),
    [
        ("week", None, None, "Unknown period"),
        ("custom", None, date(2026, 3, 1), "needs a first and a last day"),
        ("custom", date(2026, 3, 2), date(2026, 3, 1), "before the first day"),
        ("custom", date(2025, 1, 1), date(2026, 3, 1), "366 days at most"),
    ],
)
def test_periods_that_make_no_sense_are_refused_in_words(
    key: str, first: date | None, last: date | None, says: str
) -> None:
    with pytest.raises(PeriodError, match=says) as refused:
        resolve_period(key, NOW, "UTC", first, last)
    assert "{" in refused.value.message or not refused.value.values  # translatable template


def test_days_in_the_query_are_checked() -> None:
    assert parse_day("2026-03-01") == date(2026, 3, 1)
    assert parse_day("") is None
    with pytest.raises(PeriodError, match="not a day"):
        parse_day("2026-02-30")


def test_the_chart_window_widens_the_period_to_whole_utc_buckets() -> None:
    day = resolve_period("24h", NOW, "UTC")
    window = chart_window(day)
    assert (window.start, window.end) == (
        datetime(2026, 3, 9, 14, tzinfo=UTC),
        datetime(2026, 3, 10, 15, tzinfo=UTC),
    )
    assert (window.fetch, window.show) == ("hour", "hour")
    month = chart_window(resolve_period("30d", NOW, "UTC"))
    assert (month.fetch, month.show) == ("hour", "day")  # rolled up to the user's days
    year = chart_window(resolve_period("custom", NOW, "UTC", date(2025, 4, 1), date(2026, 3, 1)))
    assert (year.fetch, year.show) == ("day", "day")
    assert year.start == datetime(2025, 4, 1, tzinfo=UTC)
    assert year.end == datetime(2026, 3, 2, tzinfo=UTC)


# --- cards ---------------------------------------------------------------------------------


def test_counts_change_in_percent_and_percentages_in_points() -> None:
    assert relative_change(150, 100) == Change("up", 50.0)
    assert relative_change(50, 100) == Change("down", -50.0)
    assert relative_change(5, 0) == Change("new")
    assert relative_change(0, 0) == Change("flat", 0.0)
    assert relative_change(None, 3) == Change("none")
    assert point_change(42.5, 40.0) == Change("up", None, 2.5)
    assert point_change(40.0, 40.02) == Change("flat", None, -0.0)
    assert point_change(None, 40.0) == Change("none")


def _snapshot(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "mention_volume": 0,
        "potential_reach": 0,
        "sentiment": {"positive": 0, "neutral": 0, "negative": 0},
        "net_sentiment": None,
        "share_of_voice": None,
        "engagements": 0,
        "reach": 0,
        "engagement_rate_by_reach": None,
        "response_time_seconds": {"avg": None, "median": None},
        "response_rate": None,
    }
    return {**base, **fields}


def test_cards_carry_the_api_figures_their_samples_and_whether_the_move_is_good() -> None:
    now = _snapshot(
        mention_volume=6,
        potential_reach=1200,
        sentiment={"positive": 3, "neutral": 1, "negative": 2},
        net_sentiment=20.0,
        share_of_voice=75.0,
        engagements=30,
        reach=600,
        engagement_rate_by_reach=5.0,
        response_time_seconds={"avg": 900.0, "median": 600.0},
        response_rate=50.0,
    )
    before = _snapshot(
        mention_volume=3,
        net_sentiment=40.0,
        share_of_voice=50.0,
        response_time_seconds={"avg": 600.0, "median": 300.0},
    )
    cards = {card.key: card for card in build_cards(now, before)}
    assert list(cards) == [
        "mention_volume",
        "potential_reach",
        "net_sentiment",
        "share_of_voice",
        "response_time_median",
        "response_time_avg",
        "response_rate",
        "engagement_rate_by_reach",
    ]
    assert cards["mention_volume"].value == 6
    assert cards["mention_volume"].change == Change("up", 100.0)
    assert cards["potential_reach"].change == Change("new")
    assert cards["net_sentiment"].change == Change("down", None, -20.0)
    assert cards["net_sentiment"].verdict == "bad"
    assert cards["net_sentiment"].sample == {"positive": 3, "negative": 2, "mentions": 5}
    assert cards["share_of_voice"].sample == {"mentions": 6, "group": 8}
    # A longer response time is bad news, though the figure went up.
    assert cards["response_time_median"].change == Change("up", 100.0)
    assert cards["response_time_median"].verdict == "bad"
    assert cards["response_time_avg"].value == 900.0
    assert cards["response_rate"].change == Change("none")
    assert cards["engagement_rate_by_reach"].sample == {"engagements": 30, "reach": 600}


def test_the_group_volume_follows_from_volume_and_share() -> None:
    assert group_volume(1, 100 / 3) == 3
    assert group_volume(2, 40.0) == 5
    assert group_volume(0, 0.0) is None
    assert group_volume(3, None) is None


@pytest.mark.parametrize(
    ("seconds", "parts"),
    [
        (None, []),
        (0, [(0, "s")]),
        (42.4, [(42, "s")]),
        (89, [(1, "min"), (29, "s")]),
        (3_600, [(1, "h")]),
        (3_899, [(1, "h"), (5, "min")]),
        (3_599.6, [(1, "h")]),
        (2 * 86_400 + 5 * 3_600 + 59 * 60, [(2, "d"), (6, "h")]),
    ],
)
def test_durations_are_humanised_to_their_two_largest_units(
    seconds: float | None, parts: list[tuple[int, str]]
) -> None:
    assert humanise_duration(seconds) == parts


# --- series, share of voice, crisis, sentiment mix -----------------------------------------


def _point(start: datetime, positive: int, neutral: int, negative: int) -> dict[str, object]:
    return {
        "start": start.isoformat(),
        "mention_volume": positive + neutral + negative,
        "sentiment": {"positive": positive, "neutral": neutral, "negative": negative},
    }


def test_hourly_points_roll_up_to_the_users_days() -> None:
    # 22:00 and 23:00 UTC on 9 March are already 10 March in Berlin (UTC+1).
    points = [
        _point(datetime(2026, 3, 9, 21, tzinfo=UTC), 1, 0, 0),
        _point(datetime(2026, 3, 9, 23, tzinfo=UTC), 0, 2, 1),
        _point(datetime(2026, 3, 10, 5, tzinfo=UTC), 3, 0, 0),
    ]
    days = buckets(points, "day", "Europe/Berlin")
    assert [(b.label, b.positive, b.neutral, b.negative) for b in days] == [
        ("2026-03-09", 1, 0, 0),
        ("2026-03-10", 3, 2, 1),
    ]
    assert days[1].volume == 6
    hours = buckets(points, "hour", "Europe/Berlin", end=datetime(2026, 3, 10, tzinfo=UTC))
    assert [b.volume for b in hours] == [1, 3]


def test_each_buckets_share_of_voice_is_of_that_buckets_group_volume() -> None:
    shares = share_of_voice({"acme": [3, 0, 1, 0], "rival": [1, 0, 2, 2]})
    assert shares["acme"] == [75.0, None, 33.3, 0.0]
    assert shares["rival"] == [25.0, None, 66.7, 100.0]
    assert share_of_voice({}) == {}
    with pytest.raises(ValueError, match="same buckets"):
        share_of_voice({"acme": [1], "rival": [1, 2]})


def test_a_crisis_is_a_recent_negative_spike_of_the_brand() -> None:
    now = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)

    def alert(kind: str, tracker: str, start: datetime) -> dict[str, object]:
        return {
            "kind": kind,
            "tracker_id": tracker,
            "window_start": start.isoformat(),
            "window_end": (start + timedelta(hours=1)).isoformat(),
        }

    old = alert("negative_spike", "acme", datetime(2026, 3, 10, 10, tzinfo=UTC))
    recent = alert("negative_spike", "acme", datetime(2026, 3, 10, 12, tzinfo=UTC))
    current = alert("negative_spike", "acme", datetime(2026, 3, 10, 14, tzinfo=UTC))
    other = alert("negative_spike", "rival", datetime(2026, 3, 10, 14, tzinfo=UTC))
    urgent = alert("urgent_mention", "acme", datetime(2026, 3, 10, 14, tzinfo=UTC))
    assert active_crisis([old], "acme", now) is None
    assert active_crisis([recent, old], "acme", now) == recent
    assert active_crisis([recent, current, other, urgent], "acme", now) == current
    assert active_crisis([other, urgent], "acme", now) is None


def test_the_sentiment_mix_gives_counts_and_percentages() -> None:
    mix = sentiment_mix({"positive": 1, "neutral": 1, "negative": 2})
    assert [(s.sentiment, s.count, s.percent) for s in mix] == [
        ("positive", 1, 25.0),
        ("neutral", 1, 25.0),
        ("negative", 2, 50.0),
    ]
    assert [s.percent for s in sentiment_mix({})] == [0.0, 0.0, 0.0]


def test_the_platform_mix_ranks_networks_with_their_share() -> None:
    from services.console.domain.figures import platform_mix

    rows = platform_mix({"x": 1, "mastodon": 3, "reddit": 0})
    assert [(r["platform"], r["mentions"]) for r in rows] == [("mastodon", 3), ("x", 1)]
    assert [r["percent"] for r in rows] == [75.0, 25.0]
    assert platform_mix({}) == []
