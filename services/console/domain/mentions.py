"""The mentions stream's rules on screen: filters from the URL, safe links, notable scores,
and which mentions are new since the newest one shown. Pure functions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

from services.console.domain.periods import PERIOD_KEYS, PeriodError, resolve_period
from shared.events import PLATFORMS

SENTIMENTS = ("positive", "neutral", "negative")
INTENTS = ("complaint", "question", "praise", "purchase_intent", "job", "other")
_LANGUAGE = re.compile(r"^[a-z]{2}$")
_LABEL = re.compile(r"^[a-z0-9][a-z0-9_:.-]{0,63}$")
_AUTHOR = re.compile(r"^@?[^\s]{1,200}$")
#: A toxicity or spam score worth a badge (moderation routes from its own thresholds).
NOTABLE_SCORE = 0.5
MAX_QUERY = 200


class FilterError(ValueError):
    """A filter value the list cannot take; the message is an English id with `{value}`."""

    def __init__(self, message: str, value: str) -> None:
        super().__init__(message)
        self.message = message
        self.value = value


@dataclass(frozen=True, slots=True)
class MentionFilters:
    """What the person filters by, checked, and as the moderation API's query parameters."""

    platform: str | None = None
    sentiment: str | None = None
    language: str | None = None
    intent: str | None = None
    label: str | None = None
    period: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    q: str | None = None
    author: str | None = None

    @property
    def active(self) -> bool:
        chosen = (self.platform, self.sentiment, self.language, self.intent, self.label)
        return any(chosen) or any((self.start, self.end, self.q, self.author))

    def author_key(self) -> tuple[str, str] | None:
        """`platform:author id` (as the voices link gives it), for moderation to filter by;
        None for a handle, which the console matches itself."""
        if not self.author:
            return None
        platform, _, author_id = self.author.partition(":")
        if platform in PLATFORMS and author_id and not author_id.startswith("$"):
            return platform, author_id
        return None

    def api_params(self, tracker_id: str) -> dict[str, str]:
        """The query of `GET /v1/mentions` (a handle is matched by the console)."""
        key = self.author_key()
        params = {
            "tracker_id": tracker_id,
            "platform": self.platform,
            "sentiment": self.sentiment,
            "language": self.language,
            "intent": self.intent,
            "label": self.label,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "q": self.q,
        }
        if key is not None:
            params["platform"], params["author_id"] = key
        return {name: value for name, value in params.items() if value}


def _choice(value: str | None, allowed: tuple[str, ...], message: str) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise FilterError(message, value)
    return value


def _pattern(value: str | None, pattern: re.Pattern[str], message: str) -> str | None:
    if not value:
        return None
    if pattern.fullmatch(value) is None:
        raise FilterError(message, value)
    return value


def _moment(value: str | None, time_zone: str, end: bool) -> datetime | None:
    """An ISO time with an offset (links from alerts), or a day in the user's zone."""
    if not value:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            period = resolve_period("custom", datetime.now(UTC), time_zone, day, day)
            return period.end if end else period.start
        moment = datetime.fromisoformat(value)
    except (ValueError, PeriodError) as exc:
        raise FilterError("Not a date or time: {value}", value) from exc
    if moment.tzinfo is None:
        raise FilterError("A time needs its offset: {value}", value)
    return moment.astimezone(UTC)


def parse_filters(query: dict[str, str], now: datetime, time_zone: str) -> MentionFilters:
    """The filters of a mentions URL; `FilterError` names the value that does not fit."""
    period = _choice(query.get("period"), PERIOD_KEYS, "Unknown period: {value}")
    start = _moment(query.get("from"), time_zone, end=False)
    end = _moment(query.get("to"), time_zone, end=True)
    if period and period != "custom":
        chosen = resolve_period(period, now, time_zone)
        start, end = chosen.start, chosen.end
    if start and end and end <= start:
        raise FilterError("The end is before the start: {value}", query.get("to", ""))
    q = " ".join((query.get("q") or "").split()) or None
    if q and len(q) > MAX_QUERY:
        raise FilterError("The search is too long: {value}", q[:40])
    return MentionFilters(
        platform=_choice(query.get("platform"), PLATFORMS, "Unknown network: {value}"),
        sentiment=_choice(query.get("sentiment"), SENTIMENTS, "Unknown sentiment: {value}"),
        language=_pattern(query.get("language"), _LANGUAGE, "Unknown language: {value}"),
        intent=_choice(query.get("intent"), INTENTS, "Unknown intent: {value}"),
        label=_pattern(query.get("label"), _LABEL, "Unknown label: {value}"),
        period=period,
        start=start,
        end=end,
        q=q,
        author=_pattern((query.get("author") or "").strip(), _AUTHOR, "Unknown author: {value}"),
    )


def by_author(mention: dict[str, Any], author: str | None) -> bool:
    """Whether a mention is by `author` (their id or handle, with or without @, or
    `platform:id`)."""
    if not author:
        return True
    who = mention.get("author") or {}
    if f"{mention.get('platform')}:{who.get('id')}" == author:
        return True
    wanted = author.lstrip("@").casefold()
    who = mention.get("author") or {}
    return any(str(who.get(key) or "").lstrip("@").casefold() == wanted for key in ("id", "handle"))


def safe_link(url: object) -> str | None:
    """A link to the original only when it is http(s) with a host: never `javascript:`."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def notable_scores(classification: dict[str, Any] | None) -> list[tuple[str, float]]:
    """Toxicity and spam worth showing (at least `NOTABLE_SCORE`), by name."""
    found: list[tuple[str, float]] = []
    for name in ("toxicity", "spam"):
        value = (classification or {}).get(name)
        if isinstance(value, int | float) and value >= NOTABLE_SCORE:
            found.append((name, float(value)))
    return found


def _at(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).astimezone(UTC)
        except ValueError:
            return None
    return None


def newer_than(
    mentions: list[dict[str, Any]], since: datetime | None, seen: set[str]
) -> list[dict[str, Any]]:
    """The mentions the page does not show yet: newer than its newest one (`since`), or as
    new but another mention (`seen` are the ids the page shows at that instant)."""
    if since is None:
        return [m for m in mentions if m.get("mention_id") not in seen]
    fresh: list[dict[str, Any]] = []
    for mention in mentions:
        at = _at(mention.get("created_at"))
        if at is None or at < since:
            continue
        if at == since and mention.get("mention_id") in seen:
            continue
        fresh.append(mention)
    return fresh


def newest_mark(mentions: list[dict[str, Any]]) -> tuple[datetime | None, list[str]]:
    """The newest time among mentions and the ids shown at that time (the "n new" anchor)."""
    times = [(at, m.get("mention_id")) for m in mentions if (at := _at(m.get("created_at")))]
    if not times:
        return None, []
    newest = max(at for at, _ in times)
    return newest, [str(mention_id) for at, mention_id in times if at == newest and mention_id]


def parse_since(value: str | None) -> datetime | None:
    """The anchor the page sent back (`since`), or None when absent or not a time."""
    if not value:
        return None
    moment = _at(value)
    return moment if moment is not None and moment.tzinfo is not None else None
