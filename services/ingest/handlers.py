"""Ingest's Kafka side: what it produces (and, later, consumes)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.events import Mention
from shared.kafka import EventPublisher
from shared.service import ServiceRuntime
from shared.topics import MENTIONS_RAW


@dataclass(frozen=True)
class IngestPublishers:
    raw_mentions: EventPublisher


def register(runtime: ServiceRuntime) -> IngestPublishers:
    """Declare ingest's publishers on the broker (they appear in its AsyncAPI document)."""
    return IngestPublishers(
        raw_mentions=EventPublisher(runtime.broker, MENTIONS_RAW, Mention, runtime.settings)
    )
