"""Moderation's Kafka side: raw mentions in (in batches); classified mentions, decisions,
urgent alerts, reply commands and reviewers' corrections out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from services.moderation.pipeline import ModerationPublishers
from shared.events import (
    Alert,
    ClassifiedMention,
    Correction,
    Mention,
    ModerationDecision,
    ScheduleCommand,
)
from shared.kafka import BatchProducer, EventPublisher, batch_consumer
from shared.service import ServiceRuntime
from shared.topics import (
    ALERTS,
    MENTIONS_CLASSIFIED,
    MENTIONS_RAW,
    MODERATION_CORRECTIONS,
    MODERATION_DECISIONS,
    POSTS_COMMANDS,
)

GROUP_ID = "smm-moderation"


def publishers(runtime: ServiceRuntime) -> ModerationPublishers:
    """Declare moderation's publishers (they appear in its AsyncAPI document).

    The consumer's output goes through one batch producer: a batch of mentions is written with
    one wait for all acknowledgements. Replies from the inbox are single commands.
    """
    settings = runtime.settings
    broker = runtime.broker
    batch = BatchProducer(settings, runtime.name)
    runtime.on_start(batch.start)
    runtime.on_stop(batch.stop)
    return ModerationPublishers(
        classified=EventPublisher(broker, MENTIONS_CLASSIFIED, ClassifiedMention, settings, batch),
        decisions=EventPublisher(broker, MODERATION_DECISIONS, ModerationDecision, settings, batch),
        alerts=EventPublisher(broker, ALERTS, Alert, settings, batch),
        commands=EventPublisher(broker, POSTS_COMMANDS, ScheduleCommand, settings),
        corrections=EventPublisher(broker, MODERATION_CORRECTIONS, Correction, settings),
    )


def subscribe_raw_mentions(
    runtime: ServiceRuntime, on_batch: Callable[[Sequence[Mention]], Awaitable[object]]
) -> None:
    """Raw mentions from ingest, in batches; committed after `on_batch` returns."""

    @batch_consumer(
        runtime.broker,
        runtime.settings,
        MENTIONS_RAW,
        Mention,
        group_id=GROUP_ID,
        max_records=runtime.settings.moderation_batch_size,
        description="Raw mentions from ingest, classified and routed in batches.",
    )
    async def on_raw_mentions(mentions: list[Mention]) -> None:
        await on_batch(mentions)
