"""Moderation's Kafka side: consumes raw mentions, produces its decisions and alerts."""

from __future__ import annotations

from dataclasses import dataclass

from services.moderation.storage import MentionStore
from shared.events import Alert, ClassifiedMention, Mention, ModerationDecision
from shared.kafka import EventPublisher, batch_consumer
from shared.logging import get_logger
from shared.service import ServiceRuntime
from shared.topics import (
    ALERTS,
    MENTIONS_CLASSIFIED,
    MENTIONS_RAW,
    MODERATION_DECISIONS,
)

log = get_logger(__name__)
GROUP_ID = "smm-moderation"


@dataclass(frozen=True)
class ModerationPublishers:
    classified: EventPublisher
    decisions: EventPublisher
    alerts: EventPublisher


def register(runtime: ServiceRuntime, store: MentionStore) -> ModerationPublishers:
    """Subscribe to raw mentions (in batches) and declare moderation's publishers."""
    settings = runtime.settings
    broker = runtime.broker
    publishers = ModerationPublishers(
        classified=EventPublisher(broker, MENTIONS_CLASSIFIED, ClassifiedMention, settings),
        decisions=EventPublisher(broker, MODERATION_DECISIONS, ModerationDecision, settings),
        alerts=EventPublisher(broker, ALERTS, Alert, settings),
    )

    @batch_consumer(
        broker,
        settings,
        MENTIONS_RAW,
        Mention,
        group_id=GROUP_ID,
        description="Raw mentions from ingest.",
    )
    async def on_raw_mentions(mentions: list[Mention]) -> None:
        new = await store.add_many(mentions)
        log.info("raw mentions stored", received=len(mentions), new=new)

    return publishers
