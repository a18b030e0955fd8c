"""A reply as the reviewer writes it: placeholders left to fill, and its length as the
network counts it.

The length comes from the publisher's own rules (`services.publisher.domain.text_rules`), the
same function that refuses a post when it is created, so the console's count never disagrees
with what the publisher accepts. Pure functions; the page calls them after a typing pause.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.publisher.domain.text_rules import (
    BLUESKY_MAX_BYTES,
    PUBLISH_PLATFORMS,
    RULES,
    text_length,
)

#: `{name}` as canned replies write placeholders; `{{` is a literal brace, not one.
_PLACEHOLDER = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")


def placeholders_left(text: str) -> list[str]:
    """The `{name}` placeholders still in a reply, each once, in order: it is not sent until
    a person has written them out."""
    names: list[str] = []
    for match in _PLACEHOLDER.finditer(text):
        if match.group(1) not in names:
            names.append(match.group(1))
    return names


def reply_network(platform: str | None) -> str | None:
    """The network whose rules count a reply: the channel's platform, if we can post there."""
    return platform if platform in PUBLISH_PLATFORMS else None


@dataclass(frozen=True, slots=True)
class ReplyCount:
    """A reply's length on one network, and whether that network would take it."""

    network: str
    length: int
    limit: int
    unit: str
    too_many_bytes: bool = False

    @property
    def over(self) -> bool:
        return self.length > self.limit or self.too_many_bytes

    @property
    def left(self) -> int:
        return self.limit - self.length


def count_reply(network: str, text: str) -> ReplyCount:
    """`text` counted as `network` counts it (X weights, Bluesky graphemes and bytes, ...)."""
    rules = RULES[network]
    too_many_bytes = network == "bluesky" and len(text.encode()) > BLUESKY_MAX_BYTES
    return ReplyCount(
        network, text_length(network, text), rules.max_length, rules.unit, too_many_bytes
    )


@dataclass(frozen=True, slots=True)
class ReplyProblem:
    """Why a reply cannot be sent yet: an English message id and its values."""

    message: str
    values: dict[str, str | int]


def reply_problems(text: str, network: str | None) -> list[ReplyProblem]:
    """Everything that blocks sending this reply, in the order a person fixes them."""
    problems: list[ReplyProblem] = []
    if not text.strip():
        problems.append(ReplyProblem("Write a reply first.", {}))
        return problems
    left = placeholders_left(text)
    if left:
        names = ", ".join(f"{{{name}}}" for name in left)
        problems.append(
            ReplyProblem("Fill in {placeholders} before sending.", {"placeholders": names})
        )
    if network is None:
        problems.append(ReplyProblem("No reply channel for this network.", {}))
        return problems
    count = count_reply(network, text)
    if count.length > count.limit:
        problems.append(
            ReplyProblem(
                "Too long for {network}: {length} of {limit} {unit}.",
                {
                    "network": network,
                    "length": count.length,
                    "limit": count.limit,
                    "unit": count.unit,
                },
            )
        )
    elif count.too_many_bytes:
        problems.append(
            ReplyProblem(
                "Too long for {network}: more than {limit} bytes.",
                {"network": network, "limit": BLUESKY_MAX_BYTES},
            )
        )
    return problems
