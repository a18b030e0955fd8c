"""Voices: the authors of a tracker's mentions in a window, tallied and ranked.

An author is platform + author id, as for `potential_reach`; their reach is their largest
follower count among the window's counted mentions, which is exactly what they add to the
tracker's `potential_reach`, so the voices and the KPI never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.metrics.domain.facts import Entry

SENTIMENTS = ("positive", "neutral", "negative")


@dataclass(frozen=True, slots=True)
class VoiceTally:
    """One author's counted mentions of a tracker in a window."""

    author: str  # platform + ":" + author id
    platform: str
    #: Largest follower count seen in the window; 0 when none was known (a mention without
    #: `followers` is stored with 0, and adds 0 to `potential_reach`).
    reach: int
    mentions: int
    sentiment: tuple[int, int, int]  # positive, neutral, negative
    #: created_at of the author's latest counted mention, microseconds since the epoch.
    last_mention_at: int

    @property
    def author_id(self) -> str:
        return self.author[len(self.platform) + 1 :]


def tally_voices(entries: Iterable[tuple[Entry, int]]) -> dict[str, VoiceTally]:
    """Per author, from the stored entries of a window (entry, times): reach, mentions,
    sentiment mix and latest mention. The caller passes only counted entries in the window
    (times > 0, not hidden as spam); entries of other sentiments count as mentions only."""
    reach: dict[str, int] = {}
    mentions: dict[str, int] = {}
    mix: dict[str, list[int]] = {}
    latest: dict[str, int] = {}
    platforms: dict[str, str] = {}
    for (at, author, followers, sentiment, platform, *_rest), times in entries:
        platforms.setdefault(author, platform)
        reach[author] = max(reach.get(author, 0), followers)
        mentions[author] = mentions.get(author, 0) + times
        counts = mix.setdefault(author, [0, 0, 0])
        if sentiment in SENTIMENTS:
            counts[SENTIMENTS.index(sentiment)] += times
        latest[author] = max(latest.get(author, at), at)
    return {
        author: VoiceTally(
            author=author,
            platform=platforms[author],
            reach=reach[author],
            mentions=mentions[author],
            sentiment=(mix[author][0], mix[author][1], mix[author][2]),
            last_mention_at=latest[author],
        )
        for author in mentions
    }


def by_reach(voices: Iterable[VoiceTally], limit: int) -> list[VoiceTally]:
    """The `limit` voices with the largest reach; ties by more mentions, then by author."""
    return sorted(voices, key=lambda v: (-v.reach, -v.mentions, v.author))[:limit]


def by_mentions(voices: Iterable[VoiceTally], limit: int) -> list[VoiceTally]:
    """The `limit` voices with the most mentions; ties by larger reach, then by author."""
    return sorted(voices, key=lambda v: (-v.mentions, -v.reach, v.author))[:limit]
