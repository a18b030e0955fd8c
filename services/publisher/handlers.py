"""Publisher's Kafka side: consumes post commands, produces post events."""

from __future__ import annotations

from dataclasses import dataclass

from services.publisher.storage import CommandInbox
from shared.events import PostCommand, PostEvent
from shared.kafka import EventPublisher
from shared.logging import bound_ids, get_logger
from shared.service import ServiceRuntime
from shared.topics import POSTS_COMMANDS, POSTS_EVENTS, consumer_group, topic_name

log = get_logger(__name__)
GROUP_ID = "smm-publisher"


@dataclass(frozen=True)
class PublisherPublishers:
    post_events: EventPublisher


def register(runtime: ServiceRuntime, inbox: CommandInbox) -> PublisherPublishers:
    settings = runtime.settings
    publishers = PublisherPublishers(
        post_events=EventPublisher(runtime.broker, POSTS_EVENTS, PostEvent, settings)
    )

    @runtime.broker.subscriber(
        topic_name(POSTS_COMMANDS, settings),
        group_id=consumer_group(GROUP_ID, settings),
        auto_offset_reset="earliest",
        title=f"{POSTS_COMMANDS}:consume",
        description="Commands for posts: schedule, reschedule, cancel, approve.",
    )
    async def on_post_command(command: PostCommand) -> None:
        with bound_ids(post_id=command.post_id):
            new = await inbox.add(command)
            log.info("post command received", command=command.command, new=new)

    return publishers
