"""Translations (gettext catalogues read with Babel) and locale-aware formatting.

The English text is the message id; `translations/<lang>/LC_MESSAGES/*.po` hold the other
languages, one catalogue per screen, merged at start. A missing translation shows the English.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

LANGUAGES: dict[str, str] = {"en": "English", "de": "Deutsch"}
_CATALOGUES = Path(__file__).parent / "translations"


def _load(language: str) -> dict[str, str]:
    messages: dict[str, str] = {}
    for path in sorted((_CATALOGUES / language / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as file:
            for message in read_po(file, locale=language):
                if message.id and message.string and not message.fuzzy:
                    messages[str(message.id)] = str(message.string)
    return messages


_MESSAGES: dict[str, dict[str, str]] = {lang: _load(lang) for lang in LANGUAGES if lang != "en"}


def best_language(accept_language: str | None) -> str:
    """The first of our languages in an Accept-Language header, else English."""
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "en"


@dataclass(frozen=True, slots=True)
class Locale:
    """One user's language and time zone, with the functions templates format with."""

    language: str
    time_zone: str

    def gettext(self, message: str) -> str:
        if self.language == "en":
            return message
        return _MESSAGES.get(self.language, {}).get(message, message)

    def format(self, message: str, **values: object) -> str:
        """Translate, then fill `{name}` placeholders (the translation may reorder them)."""
        text = self.gettext(message)
        return text.format(**values) if values else text

    def datetime(self, moment: datetime | str | None, pattern: str = "medium") -> str:
        if moment is None:
            return ""
        if isinstance(moment, str):
            moment = datetime.fromisoformat(moment)
        return format_datetime(
            moment, pattern, tzinfo=ZoneInfo(self.time_zone), locale=self.language
        )

    def number(self, value: float | int | None, digits: int = 1) -> str:
        if value is None:
            return "\u2013"  # an en dash: no value
        pattern = "#,##0" if isinstance(value, int) or digits == 0 else "#,##0." + "0" * digits
        return format_decimal(value, format=pattern, locale=self.language)

    def functions(self) -> dict[str, Callable[..., str]]:
        return {"_": self.format, "fmt_datetime": self.datetime, "fmt_number": self.number}
