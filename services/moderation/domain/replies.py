"""Canned replies: per-language answer templates with a few named placeholders.

Templates are written by marketing teams and rendered with values that come from strangers on
the internet (an author's display name), so rendering is plain substitution of known names:
no attribute access, no format specs, no nested fields. An unknown placeholder is refused when
the template is saved, so a reply never goes out with `{typo}` in it.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Mapping
from typing import Annotated

from pydantic import StringConstraints, field_validator

from services.moderation.domain import StrictModel
from shared.events import Identifier, ShortText

#: The placeholders a template may use, and what each stands for.
PLACEHOLDERS: dict[str, str] = {
    "author": "the author's display name (plain words only), else their handle's first part",
    "handle": "the author's handle (with @; left out when it is not shaped like one)",
    "brand": "the tracker's brand name (rules), else the tracker id",
    "platform": "the network the mention was posted on",
    "reviewer": "who answers (the reviewer's id)",
}

#: Full stops NFKC leaves as they are (ideographic, halfwidth) or that stand for a dot: a
#: network may link `example。com` as it links `example.com`.
_DOTS = str.maketrans({"\u3002": ".", "\uff61": ".", "\uff0e": "."})
#: Characters a name may have besides letters, combining marks and digits. Everything else is
#: refused rather than listed as unsafe: a stranger picks the name, and a list of what links
#: (`@`, `#`, `://`, `www.`, TLDs in Latin letters) misses `scam.рф`, `buy.中国` and `evil.com`
#: spelt with a Cyrillic o.
_NAME_PUNCTUATION = frozenset(" '-.")
#: A handle as the networks spell them: `kundin`, `@kundin`, `jana@social.example.de`,
#: `alice.bsky.social`. Replying to the author by handle is what a reply does anyway.
_HANDLE = re.compile(r"@?[\w][\w.-]{0,99}(?:@[\w][\w.-]{0,252})?")
#: Longer than this, a "name" is a message, not a name.
MAX_NAME_LENGTH = 64

Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]
TemplateText = Annotated[str, StringConstraints(min_length=1, max_length=5_000)]


class TemplateError(ValueError):
    """A template that cannot be rendered: bad syntax or an unknown placeholder."""


def placeholders_of(template: str) -> list[str]:
    """The placeholder names a template uses; TemplateError for anything but `{name}`."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(f"template syntax: {exc} (write '{{{{' for a literal brace)") from exc
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if spec or conversion or not name.isidentifier():
            raise TemplateError(f"placeholder '{{{name}}}' must be a plain name like '{{author}}'")
        if name not in PLACEHOLDERS:
            known = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
            raise TemplateError(f"unknown placeholder '{{{name}}}'; known: {known}")
        names.append(name)
    return names


def render(template: str, values: Mapping[str, str]) -> str:
    """Substitute the placeholders; values are inserted as they are, never interpreted.

    An empty value takes the space before it along when punctuation or a space follows
    ("Hallo {author}, danke" without a name reads "Hallo, danke").
    """
    placeholders_of(template)
    parts: list[str] = []
    dropped = False
    for literal, name, _, _ in string.Formatter().parse(template):
        if dropped and parts and (not literal or literal[0] in " \n,.;:!?)"):
            parts[-1] = parts[-1].rstrip(" ")
        parts.append(literal)
        value = values.get(name, "") if name is not None else ""
        dropped = name is not None and not value
        if value:
            parts.append(value)
    return "".join(parts).strip()


def unfilled(template: str, values: Mapping[str, str]) -> list[str]:
    """The placeholders of a template that `values` leave empty, each once, in order: a reply
    with one of them is not sent (a person writes the text instead)."""
    missing: list[str] = []
    for name in placeholders_of(template):
        if not values.get(name) and name not in missing:
            missing.append(name)
    return missing


def _plain(text: str) -> str:
    """NFKC (full-width letters and dots are plain ones), no control or format characters (bidi
    overrides, zero-width spaces), and every run of white space one space."""
    normal = unicodedata.normalize("NFKC", text)
    kept = (
        " " if char.isspace() else char
        for char in normal
        if char.isspace() or unicodedata.category(char) not in ("Cc", "Cf", "Co", "Cs", "Cn")
    )
    return " ".join("".join(kept).split())


def safe_handle(handle: str | None) -> str:
    """The author's handle with `@`, or "" when it is not shaped like a handle."""
    cleaned = _plain(handle or "")
    if not cleaned or _HANDLE.fullmatch(cleaned) is None:
        return ""
    return cleaned if cleaned.startswith("@") else f"@{cleaned}"


def _plain_name(text: str) -> str:
    """`text` when it is plain words a reply may repeat, else "".

    Letters, combining marks, digits, spaces and `'-.` only, and no `.` before a letter or a
    digit: `J. Doe` and `Dr. Weiß` stay, `evil.сом`, `1.2.3.4` and `J.R. Doe` go (no domain,
    no address, whatever the script).
    """
    name = _plain(text).translate(_DOTS)
    if not name or len(name) > MAX_NAME_LENGTH:
        return ""
    previous = ""
    for char in name:
        category = unicodedata.category(char)
        if not (category[0] in "LM" or category == "Nd" or char in _NAME_PUNCTUATION):
            return ""
        if previous == "." and (category[0] == "L" or category == "Nd"):
            return ""
        if category[0] != "M":  # a mark on a dot still leaves a dot before the letter
            previous = char
    return name


def safe_author(display_name: str | None, handle: str | None) -> str:
    """How a reply may call the author: their display name when it is plain words, else the
    first part of their handle (`jana` of `jana@social.example`), else nothing. A stranger
    chooses both (Bluesky handles are domains, RSS authors any text): neither may make our post
    link somewhere, ping or tag someone, or carry markup."""
    name = _plain_name(display_name or "")
    if name:
        return name
    local = re.split(r"[.@]", safe_handle(handle).removeprefix("@"), maxsplit=1)[0]
    return _plain_name(local)  # a name, not a ping: `{handle}` pings


class CannedReply(StrictModel):
    """A reusable answer, e.g. `apology-delay` in German and English."""

    id: Identifier
    language: Language
    title: ShortText
    text: TemplateText
    #: Empty: usable for every tracker.
    tracker_ids: list[Identifier] = []

    @field_validator("text")
    @classmethod
    def _known_placeholders(cls, text: str) -> str:
        placeholders_of(text)
        return text
