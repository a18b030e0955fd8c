"""Metrics' Kafka side: consumes classified mentions (and, later, decisions, posts, engagement)."""

from __future__ import annotations

from dataclasses import dataclass

from services.metrics.storage import MentionFacts
from shared.events import Alert, ClassifiedMention, KpiSnapshot
from shared.kafka import EventPublisher, batch_consumer
from shared.logging import get_logger
from shared.service import ServiceRuntime
from shared.topics import ALERTS, KPI, MENTIONS_CLASSIFIED

log = get_logger(__name__)
GROUP_ID = "smm-metrics"


@dataclass(frozen=True)
class MetricsPublishers:
    kpis: EventPublisher
    alerts: EventPublisher


def register(runtime: ServiceRuntime, facts: MentionFacts) -> MetricsPublishers:
    settings = runtime.settings
    broker = runtime.broker
    publishers = MetricsPublishers(
        kpis=EventPublisher(broker, KPI, KpiSnapshot, settings),
        alerts=EventPublisher(broker, ALERTS, Alert, settings),
    )

    @batch_consumer(
        broker,
        settings,
        MENTIONS_CLASSIFIED,
        ClassifiedMention,
        group_id=GROUP_ID,
        max_records=1000,
        description="Classified mentions, counted once per mention_id.",
    )
    async def on_classified(mentions: list[ClassifiedMention]) -> None:
        new = await facts.add_many(mentions)
        log.info("classified mentions stored", received=len(mentions), new=new)

    return publishers
