"""Voices: tallies of stored mention entries, and the two rankings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.metrics.domain.facts import Entry, micros
from services.metrics.domain.voices import VoiceTally, by_mentions, by_reach, tally_voices

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)


def entry(n: int, author: str, followers: int, sentiment: str, minutes: int = 0) -> Entry:
    platform = author.split(":", 1)[0]
    at = micros(T0 + timedelta(minutes=minutes))
    return (at, author, followers, sentiment, platform, "approve", f"{platform}:m{n}", at)


def test_a_tally_keeps_the_largest_followers_the_mentions_their_mix_and_the_latest() -> None:
    entries = [
        (entry(1, "x:anna", 900, "positive", minutes=5), 1),
        (entry(2, "x:anna", 1_200, "negative", minutes=50), 1),
        (entry(3, "x:anna", 1_000, "positive", minutes=20), 1),
        (entry(4, "mastodon:anna", 40, "neutral", minutes=1), 1),
    ]
    tallies = tally_voices(entries)
    anna = tallies["x:anna"]
    assert (anna.reach, anna.mentions, anna.sentiment) == (1_200, 3, (2, 0, 1))
    assert anna.last_mention_at == micros(T0 + timedelta(minutes=50))
    assert (anna.platform, anna.author_id) == ("x", "anna")
    # the same id on another platform is another author
    assert tallies["mastodon:anna"].mentions == 1
    assert tallies["mastodon:anna"].reach == 40


def test_an_author_id_with_colons_keeps_them() -> None:
    tallies = tally_voices([(entry(1, "bluesky:did:plc:abc", 3, "neutral"), 1)])
    assert tallies["bluesky:did:plc:abc"].author_id == "did:plc:abc"


def voice(author: str, reach: int, mentions: int) -> VoiceTally:
    return VoiceTally(author, author.split(":")[0], reach, mentions, (mentions, 0, 0), 0)


def test_rankings_order_by_reach_or_mentions_with_stable_ties_and_a_limit() -> None:
    voices = [
        voice("x:a", 100, 1),
        voice("x:b", 5_000, 1),
        voice("x:c", 100, 7),
        voice("x:d", 0, 7),
        voice("x:e", 100, 1),
    ]
    assert [v.author for v in by_reach(voices, 10)] == ["x:b", "x:c", "x:a", "x:e", "x:d"]
    assert [v.author for v in by_mentions(voices, 10)] == ["x:c", "x:d", "x:b", "x:a", "x:e"]
    assert [v.author for v in by_reach(voices, 2)] == ["x:b", "x:c"]
    assert [v.author for v in by_mentions(voices, 1)] == ["x:c"]
    assert by_reach([], 10) == []
