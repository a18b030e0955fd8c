"""Canned replies: per-language answer templates with a few named placeholders.

Templates are written by marketing teams and rendered with values that come from strangers on
the internet (an author's display name), so rendering is plain substitution of known names:
no attribute access, no format specs, no nested fields. An unknown placeholder is refused when
the template is saved, so a reply never goes out with `{typo}` in it.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Annotated

from pydantic import StringConstraints, field_validator

from services.moderation.domain import StrictModel
from shared.events import Identifier, ShortText

#: The placeholders a template may use, and what each stands for.
PLACEHOLDERS: dict[str, str] = {
    "author": "the author's display name, else their handle",
    "handle": "the author's handle (with @)",
    "brand": "the tracker's brand name (rules), else the tracker id",
    "platform": "the network the mention was posted on",
    "reviewer": "who answers (the reviewer's id)",
}

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
    """Substitute the placeholders; values are inserted as they are, never interpreted."""
    placeholders_of(template)
    parts: list[str] = []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(literal)
        if name is not None:
            parts.append(values.get(name, ""))
    return "".join(parts).strip()


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
