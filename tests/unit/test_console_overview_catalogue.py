"""Every text of the overview and voices screens has its German translation, placeholders
kept (a missing one would show English on a German page)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from string import Formatter

import pytest

from services.console.domain.periods import PeriodError, parse_day, resolve_period
from services.console.i18n import Locale

TEMPLATES = Path(__file__).parents[2] / "services" / "console" / "templates"
_LITERAL = re.compile(r"""_\((["'])(.+?)\1""")
#: Texts the page modules translate themselves (chart legends, units, errors).
FROM_PAGES = [
    "positive",
    "neutral",
    "negative",
    "Mentions",
    "Share of voice (%)",
    "The {service} service failed: {reason}",
    "hour",
    "day",
    "d",
    "h",
    "min",
    "s",
]


def _period_errors() -> list[str]:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    attempts: list[Callable[[], object]] = [
        lambda: resolve_period("week", now, "UTC"),
        lambda: resolve_period("custom", now, "UTC"),
        lambda: resolve_period("custom", now, "UTC", date(2026, 3, 2), date(2026, 3, 1)),
        lambda: resolve_period("custom", now, "UTC", date(2024, 1, 1), date(2026, 3, 1)),
        lambda: parse_day("someday"),
    ]
    messages = []
    for attempt in attempts:
        with pytest.raises(PeriodError) as refused:
            attempt()
        messages.append(refused.value.message)
    return messages


def _texts() -> list[str]:
    found: set[str] = set(FROM_PAGES) | set(_period_errors())
    for name in ("overview.html", "voices.html"):
        found |= {m.group(2) for m in _LITERAL.finditer((TEMPLATES / name).read_text())}
    return sorted(found)


def _fields(text: str) -> set[str]:
    return {field for _, field, _, _ in Formatter().parse(text) if field}


@pytest.mark.parametrize("text", _texts())
def test_the_text_has_a_german_translation_with_the_same_placeholders(text: str) -> None:
    german = Locale("de", "Europe/Berlin").gettext(text)
    if text not in ("neutral", "s", "Link"):  # the same word in German
        assert german != text, f"no German for {text!r}"
    assert _fields(german) == _fields(text)
