"""A post's life: what a client may send, and which state changes are allowed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from shared.events import HttpUrlText, Identifier, Model, PostStatus, TimezoneName, UtcDatetime

#: Edits and cancels are honoured until publishing starts.
CHANGEABLE: frozenset[str] = frozenset({"draft", "awaiting_approval", "scheduled"})
FINAL: frozenset[str] = frozenset({"published", "failed", "cancelled"})
PostKind = Literal["post", "series"]
PostText = Annotated[str, StringConstraints(min_length=1, max_length=100_000)]


class TextToCount(Model):
    """Body of `POST /v1/text/count`: a draft's or a reply's text and its network."""

    platform: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    text: Annotated[str, StringConstraints(max_length=100_000)]


class PostIn(Model):
    """Body of `POST /v1/posts` (the HTTP twin of a `schedule` command).

    No `publish_at`, `rrule` or `cron`: the channel's next free slot. `draft: true` keeps it
    a draft until a PATCH with `draft: false` submits it.
    """

    post_id: Identifier | None = None
    channel_id: Identifier
    text: PostText
    media: list[HttpUrlText] = Field(default_factory=list, max_length=20)
    publish_at: UtcDatetime | None = None
    rrule: Annotated[str, StringConstraints(min_length=1, max_length=1_000)] | None = None
    cron: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    timezone: TimezoneName | None = None
    in_reply_to_mention_id: Identifier | None = None
    requires_approval: bool = False
    idempotency_key: Identifier | None = None
    draft: bool = False

    @model_validator(mode="after")
    def _one_timing(self) -> PostIn:
        given = [n for n in ("publish_at", "rrule", "cron") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"give at most one of publish_at, rrule, cron (got {given})")
        return self


class PostPatch(Model):
    """Body of `PATCH /v1/posts/{id}`: only the given fields change (until publishing starts)."""

    text: PostText | None = None
    media: list[HttpUrlText] | None = Field(default=None, max_length=20)
    publish_at: UtcDatetime | None = None
    #: true moves a post back to draft; false submits a draft (approval or schedule).
    draft: bool | None = None
    #: The version the client last saw; a stale one answers 409 instead of losing an edit.
    expected_version: int | None = Field(default=None, ge=1)

    @property
    def changes_content(self) -> bool:
        """Text or media given: whoever sends this is an author of what gets approved."""
        return self.text is not None or self.media is not None


class PostQuery(Model):
    """Filters of `GET /v1/posts`."""

    status: PostStatus | None = None
    channel_id: Identifier | None = None
    series_id: Identifier | None = None
    in_reply_to_mention_id: Identifier | None = None
    scheduled_from: datetime | None = None
    scheduled_to: datetime | None = None
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = None


#: Actors of commands from Kafka carry this prefix: the topic cannot prove who a person is,
#: so such a name never equals a user authenticated by the API.
KAFKA_ACTOR_PREFIX = "kafka:"


def person_of(actor: str) -> str:
    """The name behind an actor, whether it came through the API or a command on Kafka."""
    return actor.removeprefix(KAFKA_ACTOR_PREFIX)


def content_authors(post: Mapping[str, object]) -> set[str]:
    """The people who wrote what an approval would approve (four eyes keeps them out).

    The creator, and everyone who changed text or media since the last approval
    (`authored_by`, added to on each such edit, so rescheduling afterwards clears nobody).
    A post stored before `authored_by` existed falls back to its creator and last editor.
    """
    recorded = post.get("authored_by")
    if isinstance(recorded, list):
        names = [post.get("created_by"), *recorded]
    else:
        names = [post.get("created_by"), post.get("updated_by")]
    return {person_of(str(name)) for name in names if name}


def self_approval_problem(post: Mapping[str, object], actor: str, allowed: bool) -> str | None:
    """Why `actor` may not approve `post` (four eyes), or None.

    Every author of the content counts. A name claimed on Kafka only ever counts against an
    approval, never for one.
    """
    if allowed:
        return None
    if person_of(actor) in content_authors(post):
        return (
            "a post needs the approval of somebody who did not write its content: not its "
            "creator nor anyone who changed its text or media since the last approval "
            "(four eyes; the channel setting allow_self_approval relaxes this)"
        )
    return None
