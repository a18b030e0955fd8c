"""Ingest's Kafka side: raw mentions and engagement out, our post events in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from shared.events import EngagementObservation, Mention, PostEvent
from shared.kafka import BatchProducer, EventPublisher
from shared.logging import bound_ids
from shared.service import ServiceRuntime
from shared.topics import ENGAGEMENT, MENTIONS_RAW, POSTS_EVENTS, consumer_group, topic_name

GROUP_ID = "smm-ingest"


@dataclass(frozen=True)
class IngestPublishers:
    raw_mentions: EventPublisher
    engagement: EventPublisher


def publishers(runtime: ServiceRuntime) -> IngestPublishers:
    """Declare ingest's publishers on the broker (they appear in its AsyncAPI document).

    Raw mentions go out through a batch producer: the intake writes whole batches at once.
    """
    settings = runtime.settings
    batch = BatchProducer(settings, runtime.name)
    runtime.on_start(batch.start)
    runtime.on_stop(batch.stop)
    return IngestPublishers(
        raw_mentions=EventPublisher(runtime.broker, MENTIONS_RAW, Mention, settings, batch),
        engagement=EventPublisher(runtime.broker, ENGAGEMENT, EngagementObservation, settings),
    )


def subscribe_post_events(
    runtime: ServiceRuntime, on_post_event: Callable[[PostEvent], Awaitable[None]]
) -> None:
    """Our own posts, so their engagement can be polled once they are published."""

    @runtime.broker.subscriber(
        topic_name(POSTS_EVENTS, runtime.settings),
        group_id=consumer_group(GROUP_ID, runtime.settings),
        auto_offset_reset="earliest",
        title=f"{POSTS_EVENTS}:consume",
        description="Published posts start engagement polling.",
    )
    async def on_post(event: PostEvent) -> None:
        with bound_ids(post_id=event.post_id):
            await on_post_event(event)
