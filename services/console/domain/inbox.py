"""The inbox's rules on screen: tabs, moving through the queue, what a decision needs, who
holds an item. Pure functions; moderation keeps the queue and enforces the same on its side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Tab = Literal["mine", "unclaimed", "all"]
TABS: tuple[Tab, ...] = ("mine", "unclaimed", "all")
#: Each tab is a status filter of `GET /v1/review`.
TAB_STATUS: dict[Tab, str] = {"mine": "mine", "unclaimed": "open", "all": "waiting"}

DecisionAction = Literal["approve", "hide", "escalate", "reply"]
DECISIONS: tuple[DecisionAction, ...] = ("approve", "hide", "escalate", "reply")
#: Decisions that hide a voice or hand it up: the reviewer says why, for the audit trail.
REASON_REQUIRED: frozenset[str] = frozenset({"hide", "escalate"})
#: What the audit trail says when a reviewer approves or replies without a word.
DEFAULT_REASONS: dict[str, str] = {"approve": "approved", "reply": "replied"}
MAX_REASON = 2_000


class InboxInputError(ValueError):
    """A tab, action or reason the inbox cannot take (message in words, an English id)."""


def parse_tab(value: str | None) -> Tab:
    """The tab asked for; none is Unclaimed (the work nobody has taken yet)."""
    if not value:
        return "unclaimed"
    for tab in TABS:
        if tab == value:
            return tab
    raise InboxInputError("Unknown tab.")


def neighbours(queue: list[str], current: str | None) -> tuple[str | None, str | None]:
    """The items before and after `current` in the queue (j/k); the first as "next" when the
    current one is not in the queue."""
    if current not in queue:
        return None, queue[0] if queue else None
    at = queue.index(current)
    before = queue[at - 1] if at > 0 else None
    after = queue[at + 1] if at + 1 < len(queue) else None
    return before, after


def next_after(before: list[str], current: str, now: list[str]) -> str | None:
    """The item to open after deciding `current`: the first one that followed it in the queue
    the reviewer saw and is still waiting, else the top of the queue as it is now."""
    waiting = set(now)
    if current in before:
        for mention_id in before[before.index(current) + 1 :]:
            if mention_id in waiting and mention_id != current:
                return mention_id
    return next((mention_id for mention_id in now if mention_id != current), None)


@dataclass(frozen=True, slots=True)
class Decision:
    action: DecisionAction
    reason: str


def parse_decision(action: str | None, reason: str | None) -> Decision:
    """The decision a form asks for: a known action, and a reason where one is required."""
    chosen = next((known for known in DECISIONS if known == action), None)
    if chosen is None:
        raise InboxInputError("Choose approve, hide, escalate or reply.")
    text = " ".join((reason or "").split())
    if len(text) > MAX_REASON:
        raise InboxInputError("The reason is too long (2,000 characters at most).")
    if not text:
        if chosen in REASON_REQUIRED:
            raise InboxInputError("Give a reason to hide or escalate.")
        text = DEFAULT_REASONS[chosen]
    return Decision(chosen, text)


Holding = Literal["free", "mine", "other", "done"]


def holding(item: dict[str, Any], me: str) -> Holding:
    """Whether an item is free to claim, held by the viewer, held by someone else, or done."""
    if item.get("status") == "done":
        return "done"
    owner = item.get("lease_owner")
    if not owner:
        return "free"
    return "mine" if owner == me else "other"


def waiting_since(item: dict[str, Any]) -> datetime | str | None:
    """When the item started waiting (queued, else the mention's own time)."""
    found: datetime | str | None = item.get("queued_at") or item.get("created_at")
    return found


def chosen_action(button: str | None, selected: str | None, reply_text: str) -> str | None:
    """The decision a submitted form means: the button pressed (a, h, e, send), else the
    decision picked for "submit and next", else a reply when one is written. None: the
    reviewer has not said what to do."""
    for value in (button, selected):
        if value:
            return value
    return "reply" if reply_text.strip() else None


def excerpt(text: str | None, length: int = 140) -> str:
    """The start of a mention for the queue, cut at a word."""
    flat = " ".join((text or "").split())
    if len(flat) <= length:
        return flat
    cut = flat[:length].rsplit(" ", 1)[0] or flat[:length]
    return cut + "…"


def parse_labels(value: str | None) -> list[str]:
    """Labels as a reviewer types them: separated by commas or spaces, each once, lower case."""
    labels: list[str] = []
    for part in (value or "").replace(",", " ").split():
        label = part.strip().lower()
        if label and label not in labels:
            labels.append(label)
    return labels
