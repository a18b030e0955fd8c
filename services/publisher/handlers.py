"""Publisher's Kafka side: post commands in (through the same calendar as the API), events out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.publisher.calendar import Calendar, PostRequest
from services.publisher.domain.posts import KAFKA_ACTOR_PREFIX
from services.publisher.errors import DomainError
from services.publisher.storage import CommandInbox, MentionTrackers
from shared.dlq import PermanentError
from shared.events import (
    ApproveCommand,
    CancelCommand,
    ClassifiedMention,
    PostCommand,
    PostEvent,
    RescheduleCommand,
    ScheduleCommand,
    utc_now,
)
from shared.kafka import BatchProducer, EventPublisher, batch_consumer
from shared.logging import bound_ids, get_logger
from shared.service import ServiceRuntime
from shared.topics import (
    MENTIONS_CLASSIFIED,
    POSTS_COMMANDS,
    POSTS_EVENTS,
    consumer_group,
    topic_name,
)

log = get_logger(__name__)
GROUP_ID = "smm-publisher"
MENTIONS_GROUP_ID = "smm-publisher-mentions"


@dataclass(frozen=True)
class PublisherPublishers:
    post_events: EventPublisher

    async def emit(self, events: Sequence[PostEvent]) -> None:
        """Publish post events keyed by post id; returns once Kafka acknowledged them all."""
        await self.post_events.publish_many(list(events), key=lambda event: event.post_id)


def publishers(runtime: ServiceRuntime) -> PublisherPublishers:
    """Post events go out through a batch producer: a scheduler round announces many at once."""
    batch = BatchProducer(runtime.settings, runtime.name)
    runtime.on_start(batch.start)
    runtime.on_stop(batch.stop)
    return PublisherPublishers(
        post_events=EventPublisher(runtime.broker, POSTS_EVENTS, PostEvent, runtime.settings, batch)
    )


def request_of(command: ScheduleCommand) -> PostRequest:
    return PostRequest(
        post_id=command.post_id,
        channel_id=command.channel_id,
        text=command.text,
        media=list(command.media),
        publish_at=command.publish_at,
        rrule=command.rrule,
        cron=command.cron,
        # An unset timezone means the channel's; the model's "UTC" default is not a choice.
        timezone=command.timezone if "timezone" in command.model_fields_set else None,
        in_reply_to_mention_id=command.in_reply_to_mention_id,
        requires_approval=command.requires_approval,
        idempotency_key=command.idempotency_key,
        draft=False,
        actor=kafka_actor(command.actor),
    )


def kafka_actor(claimed: str) -> str:
    """The actor recorded for a command from Kafka: whoever its producer says, namespaced.

    Any system that may write the topic can claim any name, so the name is kept for the
    audit trail but never taken for a person the API authenticated.
    """
    return KAFKA_ACTOR_PREFIX + claimed


async def apply_command(
    calendar: Calendar, command: PostCommand, mention_wait: float = 0.0
) -> None:
    """Apply one command; a refusal becomes a failed post (schedule) or a dead letter."""
    try:
        if isinstance(command, ScheduleCommand):
            request = request_of(command)
            try:
                await calendar.create(request, mention_wait=mention_wait)
            except DomainError as exc:
                if exc.status == 409:
                    raise
                log.warning("schedule command refused", code=exc.code, reason=exc.message)
                await calendar.record_rejected(request, exc)
        elif isinstance(command, RescheduleCommand):
            if command.publish_at is None:
                raise PermanentError("a reschedule command needs publish_at")
            await calendar.reschedule(
                command.post_id, command.publish_at, kafka_actor(command.actor)
            )
        elif isinstance(command, CancelCommand):
            await calendar.cancel(command.post_id, command.reason, kafka_actor(command.actor))
        elif isinstance(command, ApproveCommand):
            # An approval is a person's decision (four eyes): the topic cannot prove who sent
            # it, so it is refused here and only `POST /v1/posts/{id}/approve` approves.
            raise PermanentError(
                "approve commands are not accepted from Kafka: a person approves with "
                "POST /v1/posts/{id}/approve"
            )
    except DomainError as exc:
        raise PermanentError(f"{exc.code}: {exc.message}") from exc


def register(runtime: ServiceRuntime, inbox: CommandInbox, calendar: Calendar) -> None:
    settings = runtime.settings

    @runtime.broker.subscriber(
        topic_name(POSTS_COMMANDS, settings),
        group_id=consumer_group(GROUP_ID, settings),
        auto_offset_reset="earliest",
        title=f"{POSTS_COMMANDS}:consume",
        description="Commands for posts: schedule, reschedule, cancel, approve.",
    )
    async def on_post_command(command: PostCommand) -> None:
        with bound_ids(post_id=command.post_id):
            # Applied first, recorded after: every command is idempotent, so a redelivery
            # after a crash between the two changes nothing a second time.
            await apply_command(calendar, command, settings.publisher_reply_mention_wait_seconds)
            new = await inbox.add(command)
            log.info("post command applied", command=command.command, new=new)


def register_mentions(runtime: ServiceRuntime, mentions: MentionTrackers) -> None:
    """Mentions routed to review, remembered with their trackers for the reply-channel rule."""

    @batch_consumer(
        runtime.broker,
        runtime.settings,
        MENTIONS_CLASSIFIED,
        ClassifiedMention,
        group_id=MENTIONS_GROUP_ID,
        description="Which trackers a mention in review belongs to (replies are checked).",
    )
    async def on_classified_mentions(batch: list[ClassifiedMention]) -> None:
        await mentions.record([m for m in batch if m.action == "review"], utc_now())
