"""Turn what a source sends into the contract's Mention."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from shared.events import (
    Author,
    HttpUrlText,
    Identifier,
    Mention,
    MentionMetrics,
    MentionSource,
    Model,
    Platform,
    UtcDatetime,
    mention_id_of,
)


class MentionIn(Model):
    """One item of `POST /v1/mentions`: a Mention without the fields the service fills."""

    platform: Platform
    native_id: Identifier
    url: HttpUrlText | None = None
    text: Annotated[str, StringConstraints(max_length=40_000)]
    lang: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")] | None = None
    author: Author
    created_at: UtcDatetime
    in_reply_to: Identifier | None = None
    metrics: MentionMetrics = Field(default_factory=MentionMetrics)


def normalise_text(text: str) -> str:
    """Unicode NFC, so 'ä' typed two ways is one string for matching and de-duplication."""
    return unicodedata.normalize("NFC", text).strip()


def to_mention(
    item: MentionIn, *, source: MentionSource, ingested_at: datetime, tracker_ids: list[str]
) -> Mention:
    return Mention(
        mention_id=mention_id_of(item.platform, item.native_id),
        platform=item.platform,
        native_id=item.native_id,
        url=item.url,
        text=normalise_text(item.text),
        lang=item.lang,
        author=item.author,
        created_at=item.created_at,
        ingested_at=ingested_at,
        source=source,
        tracker_ids=tracker_ids,
        in_reply_to=item.in_reply_to,
        metrics=item.metrics,
    )
