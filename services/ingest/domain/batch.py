"""What a source hands to the intake and what it gets back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ValidationError

from services.ingest.domain.normalise import MentionIn
from shared.errors import validation_summary
from shared.events import MentionSource


class RejectedItem(BaseModel):
    index: int
    reason: str


class IntakeResult(BaseModel):
    """What happened to a batch; `mention_ids` lists the accepted (emitted) ones."""

    accepted: int = 0
    duplicates: int = 0
    unmatched: int = 0
    rejected: list[RejectedItem] = []
    mention_ids: list[str] = []


class MentionSink(Protocol):
    """`Intake.submit`: emits the new, matched mentions; raises if Kafka did not acknowledge."""

    async def __call__(
        self,
        items: Sequence[MentionIn],
        source: MentionSource,
        rejected: Sequence[RejectedItem] = (),
    ) -> IntakeResult: ...


class BadPayloadError(ValueError):
    """The delivery as a whole has the wrong shape (answered 400, nothing is emitted)."""


@dataclass(frozen=True)
class MentionLookup:
    """A mention announced without its content (an Instagram @mention carries only ids): its
    text must be fetched with the platform's API before it can be matched and emitted."""

    index: int
    platform: str
    native_id: str
    account_id: str
    media_id: str
    comment_id: str | None
    announced_at: datetime


@dataclass
class Mapped:
    """What a webhook delivery holds: mentions, mentions still to be looked up, rejected
    items, and how many were ignored."""

    items: list[MentionIn] = field(default_factory=list)
    rejected: list[RejectedItem] = field(default_factory=list)
    lookups: list[MentionLookup] = field(default_factory=list)
    ignored: int = 0


def reason_of(exc: Exception) -> str:
    """A short, readable reason for a per-item reject (never the item's content)."""
    if isinstance(exc, ValidationError):
        return validation_summary(exc, limit=5)
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc) or type(exc).__name__
