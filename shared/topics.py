"""The topic registry: every Kafka topic of the platform, its key, value and retention.

Search for a constant here (e.g. `MENTIONS_RAW`) to find who produces and who consumes it.
Each topic has a `.dlq` twin that receives the messages a consumer could not parse or validate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.settings import Settings

log = logging.getLogger(__name__)

DAY_MS = 24 * 60 * 60 * 1000
DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic: what it carries and how long the broker keeps it."""

    name: str
    key: str
    value: str
    retention_ms: int = 7 * DAY_MS
    compacted: bool = False
    #: Partitions relative to the configured default (e.g. 0.5 for low-volume topics).
    partition_factor: float = 1.0

    @property
    def dlq(self) -> str:
        return self.name + DLQ_SUFFIX

    def configs(self) -> dict[str, str]:
        if self.compacted:
            return {"cleanup.policy": "compact", "min.compaction.lag.ms": str(60 * 60 * 1000)}
        return {"cleanup.policy": "delete", "retention.ms": str(self.retention_ms)}


MENTIONS_RAW = "smm.mentions.raw.v1"
MENTIONS_CLASSIFIED = "smm.mentions.classified.v1"
MODERATION_DECISIONS = "smm.moderation.decisions.v1"
#: Produced by moderation (the inbox's corrections); for training and classifier quality.
MODERATION_CORRECTIONS = "smm.moderation.corrections.v1"
POSTS_COMMANDS = "smm.posts.commands.v1"
POSTS_EVENTS = "smm.posts.events.v1"
ENGAGEMENT = "smm.engagement.v1"
KPI = "smm.kpi.v1"
ALERTS = "smm.alerts.v1"

TOPICS: dict[str, TopicSpec] = {
    spec.name: spec
    for spec in (
        TopicSpec(MENTIONS_RAW, "mention_id", "Mention"),
        TopicSpec(MENTIONS_CLASSIFIED, "mention_id", "ClassifiedMention", retention_ms=30 * DAY_MS),
        TopicSpec(MODERATION_DECISIONS, "mention_id", "ModerationDecision", 30 * DAY_MS),
        # Few and precious (labelled data): kept a year, at half the partitions.
        TopicSpec(
            MODERATION_CORRECTIONS, "mention_id", "Correction", 365 * DAY_MS, partition_factor=0.5
        ),
        TopicSpec(POSTS_COMMANDS, "post_id", "PostCommand", 30 * DAY_MS, partition_factor=0.5),
        TopicSpec(POSTS_EVENTS, "post_id", "PostEvent", 30 * DAY_MS, partition_factor=0.5),
        TopicSpec(ENGAGEMENT, "post_id", "EngagementObservation", 30 * DAY_MS),
        # Latest snapshot per tracker is what subscribers want: compact by key.
        TopicSpec(KPI, "tracker_id", "KpiSnapshot", compacted=True, partition_factor=0.5),
        TopicSpec(ALERTS, "tracker_id", "Alert", 90 * DAY_MS, partition_factor=0.5),
    )
}

#: Dead letters are kept long enough for an operator to look at them after a holiday.
DLQ_RETENTION_MS = 30 * DAY_MS


def topic_name(name: str, settings: Settings) -> str:
    """The physical topic name: the registry name behind the configured prefix."""
    return settings.topic_prefix + name


def consumer_group(name: str, settings: Settings) -> str:
    """The physical consumer group: behind the same prefix as the topics it reads."""
    return settings.topic_prefix + name


def physical_topics(settings: Settings) -> list[NewTopic]:
    """Every topic and its `.dlq` twin, as the admin client creates them."""
    base = settings.topic_partitions
    new_topics: list[NewTopic] = []
    for spec in TOPICS.values():
        partitions = max(1, round(base * spec.partition_factor))
        new_topics.append(
            NewTopic(
                topic_name(spec.name, settings),
                num_partitions=partitions,
                replication_factor=settings.topic_replication_factor,
                topic_configs=spec.configs(),
            )
        )
        new_topics.append(
            NewTopic(
                topic_name(spec.dlq, settings),
                num_partitions=1,
                replication_factor=settings.topic_replication_factor,
                topic_configs={"cleanup.policy": "delete", "retention.ms": str(DLQ_RETENTION_MS)},
            )
        )
    return new_topics


async def ensure_topics(settings: Settings, admin: AIOKafkaAdminClient) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    Existing topics are left as they are (their partitions and configs are the operator's).
    """
    existing = set(await admin.list_topics())
    missing = [t for t in physical_topics(settings) if t.name not in existing]
    if not missing:
        return []
    response = await admin.create_topics(missing)
    created: list[str] = []
    for name, code, message in response.topic_errors:
        if code == 0:
            created.append(name)
        elif code != TopicAlreadyExistsError.errno:
            # Another service racing us is fine (code 36); anything else is not.
            raise TopicCreationError(f"cannot create topic {name}: {message} (error {code})")
    if created:
        log.info("created topics %s", created)
    return created


class TopicCreationError(RuntimeError):
    """The broker refused to create a topic (permissions, replication factor, ...)."""
