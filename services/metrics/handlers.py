"""Metrics' Kafka side: mentions, decisions, post events and engagement in; KPIs and alerts out.

Every handler is idempotent, so a redelivered batch (after a crash, a rebalance or a transient
database error) changes nothing a second time. Mentions are applied with their Kafka positions
(topic partition and offset), which `MentionAggregates` uses to apply each batch exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from faststream.kafka import KafkaMessage

from services.metrics import exporter
from services.metrics.aggregates import MentionAggregates
from services.metrics.storage import AuthorLabels, EngagementStore, PostStore
from shared.dlq import apply_or_dead_letter, decode_batch
from shared.events import (
    Alert,
    ClassifiedMention,
    EngagementObservation,
    Event,
    KpiSnapshot,
    ModerationDecision,
    PostEvent,
)
from shared.kafka import EventPublisher
from shared.logging import get_logger
from shared.metrics import EVENT_AGE
from shared.service import ServiceRuntime
from shared.topics import (
    ALERTS,
    ENGAGEMENT,
    KPI,
    MENTIONS_CLASSIFIED,
    MODERATION_DECISIONS,
    POSTS_EVENTS,
    consumer_group,
    topic_name,
)

log = get_logger(__name__)
GROUP_ID = "smm-metrics"


@dataclass(frozen=True)
class MetricsPublishers:
    kpis: EventPublisher
    alerts: EventPublisher


def publishers(runtime: ServiceRuntime) -> MetricsPublishers:
    settings = runtime.settings
    return MetricsPublishers(
        kpis=EventPublisher(runtime.broker, KPI, KpiSnapshot, settings),
        alerts=EventPublisher(runtime.broker, ALERTS, Alert, settings),
    )


#: What the service consumes, in the order a mixed batch is applied (mentions before replies).
CONSUMED: dict[str, type[Event]] = {
    MENTIONS_CLASSIFIED: ClassifiedMention,
    MODERATION_DECISIONS: ModerationDecision,
    POSTS_EVENTS: PostEvent,
    ENGAGEMENT: EngagementObservation,
}


async def _keep_bytes(msg: Any) -> list[bytes]:
    """Decoder: keep the bytes, so one bad record cannot fail the batch (validated below)."""
    raw = msg.raw_message
    return [record.value for record in (raw if isinstance(raw, tuple) else (raw,))]


def register(
    runtime: ServiceRuntime,
    aggregates: MentionAggregates,
    posts: PostStore,
    engagement: EngagementStore,
    labels: AuthorLabels,
) -> None:
    """One batch subscriber over the four input topics.

    One consumer (not one per topic) because a consumer group's first assignment takes a few
    seconds; batches are split by topic and validated record by record (bad ones go to the
    topic's `.dlq`), and the whole batch is committed only after every part is applied.
    """
    settings = runtime.settings
    broker = runtime.broker

    async def on_mentions(records: Sequence[tuple[Any, ClassifiedMention]]) -> None:
        positioned = [
            ((aggregates.partition_key(record.topic, record.partition), record.offset), mention)
            for record, mention in records
        ]
        # The authors' labels go to their own collection, written while the batch is applied.
        applied, _ = await asyncio.gather(
            aggregates.apply(positioned),
            labels.record([mention for _, mention in records if mention.tracker_ids]),
        )
        exporter.count_mentions(applied.new, len(applied.changed))
        log.info(
            "mentions aggregated",
            received=len(records),
            new=len(applied.new),
            reclassified=len(applied.changed),
            unchanged=applied.unchanged,
        )

    async def on_decisions(decisions: list[ModerationDecision]) -> None:
        reply_to = {d.reply_post_id: d.mention_id for d in decisions if d.reply_post_id}
        await aggregates.record_replies(await posts.link_replies(reply_to))

    async def on_post_events(events: list[PostEvent]) -> None:
        applied = await posts.apply(events)
        await aggregates.record_replies(applied.first_reply_at)
        exporter.count_posts(applied.published, applied.failed)

    async def on_engagement(observations: list[EngagementObservation]) -> None:
        await engagement.apply(observations)

    def events_only(
        handler: Callable[[list[Any]], Awaitable[None]],
    ) -> Callable[[Sequence[tuple[Any, Any]]], Awaitable[None]]:
        async def apply(records: Sequence[tuple[Any, Any]]) -> None:
            await handler([event for _, event in records])

        return apply

    # Mentions with their positions: the exactly-once bookkeeping needs partition and offset.
    applier: dict[str, Callable[[Sequence[tuple[Any, Any]]], Awaitable[None]]] = {
        MENTIONS_CLASSIFIED: on_mentions,
        MODERATION_DECISIONS: events_only(on_decisions),
        POSTS_EVENTS: events_only(on_post_events),
        ENGAGEMENT: events_only(on_engagement),
    }
    logical = {topic_name(topic, settings): topic for topic in CONSUMED}

    @broker.subscriber(
        *logical,
        group_id=consumer_group(GROUP_ID, settings),
        auto_offset_reset="earliest",
        batch=True,
        max_records=settings.metrics_batch_size,
        batch_timeout_ms=100,
        decoder=_keep_bytes,
        title="metrics:consume",
        description=(
            "Classified mentions (aggregated by event time once per mention_id), decisions "
            "(which post replies to which mention), post events and engagement observations."
        ),
    )
    async def consume(values: list[bytes], msg: KafkaMessage) -> None:
        raw = msg.raw_message
        by_topic: dict[str, list[Any]] = defaultdict(list)
        for record in raw if isinstance(raw, tuple) else (raw,):
            by_topic[logical[record.topic]].append(record)
        now = time.time()
        for topic, model in CONSUMED.items():
            if topic not in by_topic:
                continue
            valid = await decode_batch(broker, by_topic[topic], model)
            if valid:
                await apply_or_dead_letter(
                    broker, valid, applier[topic], max_attempts=settings.consumer_max_attempts
                )
            events: list[Event] = [event for _, event in valid]
            for event in events:
                EVENT_AGE.labels(topic).observe(max(0.0, now - event.occurred_at.timestamp()))
