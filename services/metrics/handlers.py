"""Metrics' Kafka side: mentions, decisions, post events and engagement in; KPIs and alerts out.

Each topic is consumed in batches by its own consumer group; every handler is idempotent, so a
redelivered batch (after a crash, a rebalance or a transient database error) changes nothing
a second time.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.metrics import exporter
from services.metrics.storage import EngagementStore, MentionAggregates, PostStore
from shared.events import (
    Alert,
    ClassifiedMention,
    EngagementObservation,
    KpiSnapshot,
    ModerationDecision,
    PostEvent,
)
from shared.kafka import EventPublisher, batch_consumer
from shared.logging import get_logger
from shared.service import ServiceRuntime
from shared.topics import (
    ALERTS,
    ENGAGEMENT,
    KPI,
    MENTIONS_CLASSIFIED,
    MODERATION_DECISIONS,
    POSTS_EVENTS,
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


def register(
    runtime: ServiceRuntime,
    aggregates: MentionAggregates,
    posts: PostStore,
    engagement: EngagementStore,
) -> None:
    settings = runtime.settings
    broker = runtime.broker
    batch = settings.metrics_batch_size

    @batch_consumer(
        broker,
        settings,
        MENTIONS_CLASSIFIED,
        ClassifiedMention,
        group_id=GROUP_ID,
        max_records=batch,
        description="Classified mentions, aggregated by event time once per mention_id.",
    )
    async def on_classified(mentions: list[ClassifiedMention]) -> None:
        applied = await aggregates.apply(mentions)
        exporter.count_mentions(applied.new, len(applied.changed))
        log.info(
            "mentions aggregated",
            received=len(mentions),
            new=len(applied.new),
            reclassified=len(applied.changed),
            unchanged=applied.unchanged,
        )

    @batch_consumer(
        broker,
        settings,
        MODERATION_DECISIONS,
        ModerationDecision,
        group_id=f"{GROUP_ID}-decisions",
        max_records=batch,
        description="Decisions: which post replies to which mention (response time).",
    )
    async def on_decisions(decisions: list[ModerationDecision]) -> None:
        reply_to = {d.reply_post_id: d.mention_id for d in decisions if d.reply_post_id}
        await aggregates.record_replies(await posts.link_replies(reply_to))

    @batch_consumer(
        broker,
        settings,
        POSTS_EVENTS,
        PostEvent,
        group_id=f"{GROUP_ID}-posts",
        max_records=batch,
        description="Our posts: published and failed counts, replies' publication times.",
    )
    async def on_post_events(events: list[PostEvent]) -> None:
        applied = await posts.apply(events)
        await aggregates.record_replies(applied.first_reply_at)
        exporter.count_posts(applied.published, applied.failed)

    @batch_consumer(
        broker,
        settings,
        ENGAGEMENT,
        EngagementObservation,
        group_id=f"{GROUP_ID}-engagement",
        max_records=batch,
        description="Engagement observations: the latest per post supersedes earlier ones.",
    )
    async def on_engagement(observations: list[EngagementObservation]) -> None:
        await engagement.apply(observations)
