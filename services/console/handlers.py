"""The console's Kafka consumers: what is new, for the live pages.

No consumer group: every console replica reads every partition from the newest offset and
commits nothing, since each one serves its own browsers and nothing is lost by missing events
from before it started (pages load the current state over the APIs). A record that does not
validate is left to the topic's real consumers, which dead-letter it; here it is only skipped.
"""

from __future__ import annotations

from typing import Any

from faststream import AckPolicy
from pydantic import BaseModel, ValidationError

from services.console.live import LiveEvent, LiveHub
from shared.events import Alert, ClassifiedMention
from shared.logging import get_logger
from shared.service import ServiceRuntime
from shared.topics import ALERTS, MENTIONS_CLASSIFIED, topic_name

log = get_logger(__name__)


async def _raw_value(msg: Any) -> bytes:
    value: bytes = msg.raw_message.value
    return value


def _valid(model: type[BaseModel], value: bytes) -> Any:
    try:
        return model.model_validate_json(value)
    except ValidationError:
        log.debug("skipped a record that does not validate", model=model.__name__)
        return None


def register(runtime: ServiceRuntime, hub: LiveHub) -> None:
    settings = runtime.settings

    @runtime.broker.subscriber(
        topic_name(MENTIONS_CLASSIFIED, settings),
        auto_offset_reset="latest",
        ack_policy=AckPolicy.MANUAL,
        decoder=_raw_value,
        title=f"{MENTIONS_CLASSIFIED}:live",
        description="New classified mentions, announced to the open mentions and inbox pages.",
    )
    async def on_mention(value: bytes) -> None:
        mention = _valid(ClassifiedMention, value)
        if isinstance(mention, ClassifiedMention):
            hub.publish(LiveEvent("mention", mention.mention_id, tuple(mention.tracker_ids)))

    @runtime.broker.subscriber(
        topic_name(ALERTS, settings),
        auto_offset_reset="latest",
        ack_policy=AckPolicy.MANUAL,
        decoder=_raw_value,
        title=f"{ALERTS}:live",
        description="New alerts, announced to every open page of the tracker's users.",
    )
    async def on_alert(value: bytes) -> None:
        alert = _valid(Alert, value)
        if isinstance(alert, Alert):
            hub.publish(LiveEvent("alert", str(alert.event_id), (alert.tracker_id,)))
