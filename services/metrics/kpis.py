"""KPIs of a tracker over any window, computed from the stored aggregates (contract formulas).

Mention counts and reach come from the tracker's day sums: hour sums for the hours inside the
window, mention entries for an hour the window cuts; each hour keeps its authors' follower
counts, so reach over distinct authors is exact for any window.
Posts, engagement and followers belong to a tracker through the channels mapped to
it (`SMM_METRICS_CHANNEL_TRACKERS`) and through our replies to its mentions.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, Field

from services.metrics.aggregates import MentionAggregates
from services.metrics.domain.facts import platform_mix
from services.metrics.domain.formulas import (
    follower_growth,
    net_sentiment,
    percent,
    response_times,
)
from services.metrics.domain.windows import Unit, bucket_range
from services.metrics.storage import EngagementStore, PostStore, TrackerDirectory
from shared.events import (
    FollowerGrowth,
    KpiSnapshot,
    Model,
    ResponseTime,
    SentimentCounts,
)

SENTIMENTS = ("positive", "neutral", "negative")


class TimeseriesPoint(Model):
    """Mention KPIs of one hour or day."""

    start: AwareDatetime
    mention_volume: int
    potential_reach: int
    sentiment: SentimentCounts
    net_sentiment: float | None


class Timeseries(Model):
    tracker_id: str
    bucket: Unit
    window_from: AwareDatetime = Field(alias="from")
    window_to: AwareDatetime = Field(alias="to")
    points: list[TimeseriesPoint]


def _channels_by_tracker(channel_trackers: Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    channels: dict[str, set[str]] = {}
    for channel_id, tracker_ids in channel_trackers.items():
        for tracker_id in tracker_ids:
            channels.setdefault(tracker_id, set()).add(channel_id)
    return channels


class KpiCalculator:
    """Answers KPI questions for a tracker and window from the repositories."""

    def __init__(
        self,
        aggregates: MentionAggregates,
        posts: PostStore,
        engagement: EngagementStore,
        trackers: TrackerDirectory,
        channel_trackers: Mapping[str, Sequence[str]],
    ) -> None:
        self._aggregates = aggregates
        self._posts = posts
        self._engagement = engagement
        self._trackers = trackers
        self._channels = _channels_by_tracker(channel_trackers)

    async def tracker_exists(self, tracker_id: str) -> bool:
        """Defined in ingest, or known from stored mentions (a deleted tracker keeps history)."""
        if await self._trackers.get(tracker_id) is not None:
            return True
        return await self._aggregates.knows_tracker(tracker_id)

    async def snapshot(self, tracker_id: str, start: datetime, end: datetime) -> KpiSnapshot:
        tracker = await self._trackers.get(tracker_id)
        group: str | None = tracker.get("group") if tracker else None
        members = await self._trackers.group_members(group) if group else []
        if tracker_id not in members:
            members.append(tracker_id)
        replied = await self._aggregates.replied_since(start)
        totals, posts = await asyncio.gather(
            asyncio.gather(
                *(
                    self._aggregates.window_totals(
                        member,
                        start,
                        end,
                        authors=member == tracker_id,
                        replied=replied if member == tracker_id else None,
                    )
                    for member in members
                )
            ),
            self._post_kpis(tracker_id, start, end),
        )
        mine = totals[members.index(tracker_id)]
        own, replies = mine.counts, mine.replies
        reach = sum(mine.maxima.values())
        group_volume = sum(member.counts["volume"] for member in totals)
        waited = [max(0.0, (reply - created).total_seconds()) for created, reply, _ in replies]
        average, median = response_times(waited)
        replied_in_review = sum(1 for _, _, action in replies if action == "review")
        return KpiSnapshot(
            tracker_id=tracker_id,
            group=group,
            window_from=start,
            window_to=end,
            mention_volume=own["volume"],
            potential_reach=reach,
            sentiment=SentimentCounts(**{s: own[f"s.{s}"] for s in SENTIMENTS}),
            net_sentiment=net_sentiment(own["s.positive"], own["s.negative"]),
            share_of_voice=percent(own["volume"], group_volume),
            response_time_seconds=ResponseTime(avg=average, median=median),
            response_rate=percent(replied_in_review, own["review"]),
            platforms=platform_mix(own),
            review_volume=own["review"],
            replied_volume=replied_in_review,
            **posts,
        )

    async def _post_kpis(self, tracker_id: str, start: datetime, end: datetime) -> dict[str, Any]:
        """Engagement of our posts published in the window, and our follower growth."""
        channels = self._channels.get(tracker_id, set())
        published = await self._posts.published_between(start, end)
        reply_targets = [
            p["in_reply_to_mention_id"] for p in published if p.get("in_reply_to_mention_id")
        ]
        mention_trackers = await self._aggregates.trackers_of(reply_targets)
        own_posts = [
            p
            for p in published
            if p.get("channel_id") in channels
            or tracker_id in mention_trackers.get(p.get("in_reply_to_mention_id") or "", [])
        ]
        latest = await self._engagement.latest([p["_id"] for p in own_posts])
        engagements = impressions = reach = 0
        for observation in latest.values():
            engagements += sum(observation[k] for k in ("likes", "comments", "shares", "saves"))
            impressions += observation["impressions"]
            reach += observation["reach"]
        absolute, growth_percent = await self._follower_growth(
            channels | {p["channel_id"] for p in own_posts}, start, end
        )
        return {
            "engagements": engagements,
            "impressions": impressions,
            "reach": reach,
            "engagement_rate_by_reach": percent(engagements, reach),
            "engagement_rate_by_impressions": percent(engagements, impressions),
            "follower_growth": FollowerGrowth(absolute=absolute, percent=growth_percent),
        }

    async def _follower_growth(
        self, channels: set[str], start: datetime, end: datetime
    ) -> tuple[int | None, float | None]:
        """sum over our channels of (last - first follower count in the window)."""
        observations = await self._engagement.follower_observations(sorted(channels), start, end)
        unresolved = [o["post_id"] for o in observations if o.get("channel_id") is None]
        post_channels = await self._posts.channels_of(unresolved)
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        for observation in observations:  # oldest first
            channel = observation.get("channel_id") or post_channels.get(observation["post_id"])
            if channel not in channels:
                continue
            first.setdefault(channel, observation["followers"])
            last[channel] = observation["followers"]
        if not first:
            return None, None
        return follower_growth(sum(first.values()), sum(last.values()))

    async def timeseries(
        self, tracker_id: str, start: datetime, end: datetime, unit: Unit
    ) -> Timeseries:
        """Mention KPIs per bucket of [start, end) (both aligned to the bucket)."""
        buckets = await self._aggregates.buckets(tracker_id, unit, start, end)
        points = []
        for bucket_start in bucket_range(start, end, unit):
            counts, reach = buckets.get(bucket_start, (Counter(), 0))
            points.append(
                TimeseriesPoint(
                    start=bucket_start,
                    mention_volume=counts["volume"],
                    potential_reach=reach,
                    sentiment=SentimentCounts(**{s: counts[f"s.{s}"] for s in SENTIMENTS}),
                    net_sentiment=net_sentiment(counts["s.positive"], counts["s.negative"]),
                )
            )
        return Timeseries(
            tracker_id=tracker_id, bucket=unit, window_from=start, window_to=end, points=points
        )
