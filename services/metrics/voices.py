"""The voices of a tracker over any window: its authors with the largest reach and the most
mentions, computed from the same stored mention entries as the KPIs (`potential_reach`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, Field

from services.metrics.aggregates import MentionAggregates
from services.metrics.domain.facts import from_micros
from services.metrics.domain.voices import VoiceTally, by_mentions, by_reach, tally_voices
from services.metrics.storage import AuthorLabels
from shared.events import Model, SentimentCounts
from shared.mongo import Document


class Voice(Model):
    """One author of the tracker's counted mentions in the window."""

    platform: str
    author_id: str
    handle: str | None
    display_name: str | None
    #: Their largest follower count in the window: what they add to `potential_reach`
    #: (null when no mention of theirs in the window gave one).
    reach: int | None
    mentions: int
    sentiment: SentimentCounts
    last_mention_at: AwareDatetime


class Voices(Model):
    tracker_id: str
    window_from: AwareDatetime = Field(alias="from")
    window_to: AwareDatetime = Field(alias="to")
    #: Distinct authors of the window's counted mentions (the lists hold `limit` at most).
    authors: int
    by_reach: list[Voice]
    by_mentions: list[Voice]


class VoiceBoard:
    """Answers "who speaks about this tracker" from the aggregates and the author labels."""

    def __init__(self, aggregates: MentionAggregates, labels: AuthorLabels) -> None:
        self._aggregates = aggregates
        self._labels = labels

    async def voices(self, tracker_id: str, start: datetime, end: datetime, limit: int) -> Voices:
        tallies = tally_voices(await self._aggregates.counted_entries(tracker_id, start, end))
        reach = by_reach(tallies.values(), limit)
        mentions = by_mentions(tallies.values(), limit)
        labels = await self._labels.of(sorted({v.author for v in [*reach, *mentions]}))
        return Voices(
            tracker_id=tracker_id,
            window_from=start,
            window_to=end,
            authors=len(tallies),
            by_reach=[_voice(v, labels.get(v.author)) for v in reach],
            by_mentions=[_voice(v, labels.get(v.author)) for v in mentions],
        )


def _voice(tally: VoiceTally, label: Document | None) -> Voice:
    positive, neutral, negative = tally.sentiment
    return Voice(
        platform=tally.platform,
        author_id=tally.author_id,
        handle=(label or {}).get("handle"),
        display_name=(label or {}).get("display_name"),
        reach=tally.reach or None,
        mentions=tally.mentions,
        sentiment=SentimentCounts(positive=positive, neutral=neutral, negative=negative),
        last_mention_at=from_micros(tally.last_mention_at),
    )
