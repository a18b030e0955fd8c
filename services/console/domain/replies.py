"""A reply as the reviewer writes it: placeholders left to fill, and its length as the
network counts it.

The length comes from the publisher (`POST /v1/text/count`), counted by the same function that
refuses a post when it is created, so the console's count never disagrees with what the
publisher accepts. Pure functions; the page asks for the count after a typing pause.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: The bytes Bluesky takes besides its graphemes (named in the message when a reply has more).
BLUESKY_MAX_BYTES = 3_000

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
    """The network whose rules count a reply: the reply channel's platform."""
    return platform or None


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


def reply_count(answer: dict[str, Any]) -> ReplyCount:
    """The publisher's count of a reply (`POST /v1/text/count`) as the inbox shows it."""
    return ReplyCount(
        str(answer["platform"]),
        int(answer["length"]),
        int(answer["limit"]),
        str(answer["unit"]),
        bool(answer.get("too_many_bytes")),
    )


@dataclass(frozen=True, slots=True)
class ReplyProblem:
    """Why a reply cannot be sent yet: an English message id and its values."""

    message: str
    values: dict[str, str | int]


def reply_problems(text: str, network: str | None, count: ReplyCount | None) -> list[ReplyProblem]:
    """Everything that blocks sending this reply, in the order a person fixes them (`count`
    is the publisher's count on `network`, None when it could not count)."""
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
    if network is None or count is None:
        problems.append(ReplyProblem("No reply channel for this network.", {}))
        return problems
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
