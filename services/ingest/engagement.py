"""Poll our published posts' engagement and emit it on `smm.engagement.v1`.

Posts are scheduled when the publisher reports them published, leased to one replica at a time
while they are polled, and polled at a decreasing rate until the configured window ends.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
from prometheus_client import Counter

from services.ingest.domain.engagement import next_poll_at
from services.ingest.sources.engagement import (
    SUPPORTED_PLATFORMS,
    EngagementFetcher,
    PostGoneError,
)
from services.ingest.storage import EngagementSchedule
from shared.events import EngagementObservation, PostEvent, utc_now
from shared.kafka import EventPublisher
from shared.logging import bound_ids, get_logger
from shared.metrics import registry

log = get_logger(__name__)

ENGAGEMENT_POLLS = Counter(
    "smm_ingest_engagement_polls_total",
    "Engagement polls of our published posts, by platform and outcome.",
    ["platform", "outcome"],
    registry=registry,
)
LEASE = timedelta(minutes=2)


class EngagementTracker:
    def __init__(
        self,
        schedule: EngagementSchedule,
        fetcher: EngagementFetcher,
        publisher: EventPublisher,
        window: timedelta,
    ) -> None:
        self.schedule = schedule
        self.fetcher = fetcher
        self.publisher = publisher
        self.window = window

    async def on_post_event(self, event: PostEvent) -> None:
        """Start tracking a post once it is published on a platform we can read."""
        if event.status != "published" or event.published_at is None:
            return
        if event.platform not in SUPPORTED_PLATFORMS or not event.native_post_id:
            return
        first = next_poll_at(event.published_at, 0, utc_now(), self.window)
        if first is None:
            return
        await self.schedule.track(
            event.post_id,
            {
                "platform": event.platform,
                "channel_id": event.channel_id,
                "native_post_id": event.native_post_id,
                "url": event.url,
                "published_at": event.published_at,
            },
            first,
        )

    async def poll_due(self, limit: int = 50) -> int:
        """Poll every post that is due; return how many were polled."""
        due = await self.schedule.claim_due(utc_now(), LEASE, limit)
        for post in due:
            with bound_ids(post_id=post["_id"]):
                await self._poll(post)
        return len(due)

    async def _poll(self, post: dict[str, Any]) -> None:
        platform = str(post.get("platform"))
        try:
            counters = await self.fetcher.fetch(post)
        except PostGoneError:
            ENGAGEMENT_POLLS.labels(platform, "gone").inc()
            await self.schedule.reschedule(str(post["_id"]), None)
            return
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            ENGAGEMENT_POLLS.labels(platform, "error").inc()
            log.warning("engagement poll failed", error=repr(exc))
            return  # the lease expires and the post is polled again
        now = utc_now()
        await self.publisher.publish(
            EngagementObservation(
                post_id=str(post["_id"]),
                channel_id=str(post.get("channel_id")),
                observed_at=now,
                likes=counters.likes,
                comments=counters.comments,
                shares=counters.shares,
                saves=counters.saves,
                impressions=counters.impressions,
                reach=counters.reach,
                followers=counters.followers,
            ),
            key=str(post["_id"]),
        )
        ENGAGEMENT_POLLS.labels(platform, "ok").inc()
        published_at: datetime = post["published_at"]
        polls = int(post.get("polls", 0)) + 1
        await self.schedule.reschedule(
            str(post["_id"]), next_poll_at(published_at, polls, now, self.window)
        )

    async def run(self, idle_seconds: float = 5.0) -> None:
        """Background task: poll due posts forever."""
        while True:
            if await self.poll_due() == 0:
                await asyncio.sleep(idle_seconds)
