"""The review inbox's vocabulary: statuses, queue filters, ordering cursor, decisions.

Pure logic; `storage.py` turns these into MongoDB queries and updates.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import Field, StringConstraints, ValidationError, model_validator

from services.moderation.domain import StrictModel
from services.moderation.domain.search import Label
from shared.events import (
    DecisionAction,
    Identifier,
    Intent,
    Model,
    Platform,
    Priority,
    Sentiment,
    UtcDatetime,
)

#: `open`: waiting for a reviewer (also escalated ones), `claimed`: someone holds a lease,
#: `escalated`: handed up, `done`: decided.
ReviewStatus = Literal["open", "claimed", "escalated", "done"]
#: The queue's filters; `mine`: waiting and leased to the caller (the inbox's Mine tab),
#: `waiting`: open or escalated, whoever holds it (the All tab).
StatusFilter = Literal["open", "claimed", "mine", "waiting", "escalated", "done", "all"]

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2_000)]
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]


class InvalidCursorError(ValueError):
    """The cursor was not produced by this API (or was altered)."""


class QueueFilter(Model):
    """What a reviewer asks the queue for; every value is an enum or a checked identifier."""

    tracker_id: Identifier | None = None
    priority: Priority | None = None
    intent: Intent | None = None
    language: Language | None = None
    platform: Platform | None = None
    status: StatusFilter = "open"
    #: Who asks: `mine` means leased to them.
    actor: str | None = None


class PagePosition(Model):
    """Where a page of a list ended: an opaque cursor for `next_cursor` and back."""

    def encode(self) -> str:
        raw = self.model_dump_json().encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> Self:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            return cls.model_validate(json.loads(raw))
        except (binascii.Error, ValueError, ValidationError, UnicodeDecodeError) as exc:
            raise InvalidCursorError("cursor is not one this API returned") from exc


class QueuePosition(PagePosition):
    """Where a page ended, in queue order (priority high→low, then oldest first, then id)."""

    rank: int = Field(ge=0, le=3)
    created_at: UtcDatetime
    mention_id: Identifier


class RulesPosition(PagePosition):
    """Where a page of `GET /v1/rules` ended (tracker id order)."""

    tracker_id: Identifier


class ReplyRequest(StrictModel):
    """The answer of a `reply` decision: free text, or a canned reply rendered for the author."""

    text: Annotated[str, StringConstraints(min_length=1, max_length=10_000)] | None = None
    canned_reply_id: Identifier | None = None
    #: Our channel that answers; default: the tracker rules' channel for the mention's platform.
    channel_id: Identifier | None = None
    #: Hold the reply for approval in the publisher before it goes out.
    requires_approval: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.text is None) == (self.canned_reply_id is None):
            raise ValueError("give exactly one of text and canned_reply_id")
        return self


class DecisionRequest(StrictModel):
    action: DecisionAction
    reason: Reason
    reply: ReplyRequest | None = None

    @model_validator(mode="after")
    def _reply_only_for_reply(self) -> Self:
        if self.action == "reply" and self.reply is None:
            raise ValueError("a 'reply' decision needs 'reply' {text or canned_reply_id}")
        if self.action != "reply" and self.reply is not None:
            raise ValueError("'reply' is only allowed with action 'reply'")
        return self


def reply_post_id(mention_id: str) -> str:
    """The post id of our reply to a mention: the same for every retry of the decision.

    The inbox answers a mention once, so a retried request (timeout, double click) produces
    the same command and the publisher, keyed by post id, posts it once.
    """
    digest = hashlib.sha256(f"reply\n{mention_id}".encode()).hexdigest()[:32]
    return f"reply-{digest}"


def lease_active(lease_until: datetime | None, now: datetime) -> bool:
    return lease_until is not None and lease_until > now


#: The classification fields a reviewer may correct.
CORRECTABLE = ("sentiment", "labels", "intent")


class CorrectionRequest(StrictModel):
    """A reviewer's correction of the classifiers: what the mention really is."""

    sentiment: Sentiment | None = None
    labels: list[Label] | None = Field(default=None, max_length=20)
    intent: Intent | None = None
    note: Reason | None = None

    @model_validator(mode="after")
    def _corrects_something(self) -> Self:
        if self.sentiment is None and self.labels is None and self.intent is None:
            raise ValueError("give at least one of sentiment, labels and intent")
        if self.labels is not None:
            self.labels = sorted(set(self.labels))
        return self


def corrected_values(earlier: dict[str, Any] | None, request: CorrectionRequest) -> dict[str, Any]:
    """The correction after this request: its fields over the earlier correction's (a field
    left out stays as corrected before, or uncorrected: None), and its note."""
    values = {name: (earlier or {}).get(name) for name in CORRECTABLE}
    for name in CORRECTABLE:
        value = getattr(request, name)
        if value is not None:
            values[name] = value
    values["note"] = request.note if request.note is not None else (earlier or {}).get("note")
    return values


def changes_nothing(earlier: dict[str, Any] | None, values: dict[str, Any]) -> bool:
    """Whether a correction repeats the stored one (a retried request, a double click)."""
    if earlier is None:
        return False
    return all(earlier.get(name) == values[name] for name in (*CORRECTABLE, "note"))
