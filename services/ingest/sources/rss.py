"""RSS 2.0 and Atom feeds: conditional GET, feedparser on our own bytes, a seen-entry memory.

Feeds have no "since" parameter and many entries carry no date, so the cursor remembers the
ids of the last entries submitted (`seen_ids`) besides the HTTP validators (`etag`,
`last_modified`). An entry is submitted once, even across restarts; a 304 costs one request.
We fetch with httpx and hand the bytes to feedparser, never letting feedparser fetch: that
keeps timeouts, size limits, rate-limit handling and the User-Agent in one place.
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import io
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import feedparser
from pydantic import ValidationError

from services.ingest.domain.batch import RejectedItem
from services.ingest.domain.normalise import MentionIn, html_to_text
from services.ingest.sources.polling import HttpPoller, PollOutcome, RssSource
from shared import __version__
from shared.events import utc_now
from shared.logging import get_logger

log = get_logger(__name__)

#: How many entry ids the cursor remembers (a feed rarely lists more than 100 entries).
SEEN_IDS_KEPT = 500
USER_AGENT = f"smm-ingest/{__version__} (feed poller)"
_ACCEPT = "application/atom+xml, application/rss+xml, application/xml;q=0.9, */*;q=0.5"
_MAX_TEXT = 40_000
_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$")
_HTTP_URL = re.compile(r"^https?://\S+$")
_LANG = re.compile(r"^([a-zA-Z]{2})(?:[-_][a-zA-Z0-9]+)*$")
_SPACE = re.compile(r"\s")


def as_identifier(value: str) -> str:
    """Make any id fit the contract's Identifier (no white space, no leading `$`, ≤ 256)."""
    value = _SPACE.sub(lambda match: quote(match.group()), value.strip())
    if value.startswith("$"):
        value = "%24" + value[1:]
    if len(value) > 256:
        value = "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    return value


def entry_native_id(entry: Any, feed_url: str) -> str:
    """A globally unique id for an entry: its id if URI-like, else its link, else feed-scoped.

    RSS `guid`s are often just numbers ("4711") that another feed uses too, and the mention id
    is `rss:<native_id>`, so a bare guid is qualified with the feed URL.
    """
    raw_id = str(entry.get("id") or "").strip()
    link = str(entry.get("link") or "").strip()
    if raw_id and _URI.match(raw_id):
        candidate = raw_id
    elif link and _URI.match(link):
        candidate = link
    elif raw_id:
        candidate = f"{feed_url}#{raw_id}"
    else:
        content = f"{entry.get('title', '')}\n{entry.get('summary', '')}".encode()
        candidate = f"{feed_url}#sha256:{hashlib.sha256(content).hexdigest()[:32]}"
    return as_identifier(candidate)


def _iso_lang(value: Any) -> str | None:
    match = _LANG.match(str(value or "").strip())
    return match.group(1).lower() if match else None


def _entry_time(entry: Any) -> datetime | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        return None
    return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)


def _entry_body(entry: Any) -> tuple[str, str | None]:
    """The fullest text of an entry (content over summary) and its declared language."""
    contents = entry.get("content") or []
    if contents:
        return str(contents[0].get("value") or ""), contents[0].get("language")
    detail = entry.get("summary_detail") or {}
    return str(entry.get("summary") or ""), detail.get("language")


def entry_to_mention(entry: Any, feed: Any, feed_url: str, fetched_at: datetime) -> MentionIn:
    """Map one feedparser entry; `feed` is the parsed feed's `feed` part (title, language).

    An undated entry gets the fetch time; the cursor's seen ids stop it being resubmitted.
    """
    host = (urlsplit(feed_url).hostname or feed_url).lower()
    title = html_to_text(str(entry.get("title") or "")).strip()
    body, body_lang = _entry_body(entry)
    body_text = html_to_text(body).strip()
    text = f"{title}\n\n{body_text}" if title and body_text else title or body_text
    title_lang = (entry.get("title_detail") or {}).get("language")
    link = str(entry.get("link") or "").strip()
    return MentionIn.model_validate(
        {
            "platform": "rss",
            "native_id": entry_native_id(entry, feed_url),
            "url": link if _HTTP_URL.match(link) and len(link) <= 2048 else None,
            "text": text[:_MAX_TEXT],
            "lang": _iso_lang(body_lang)
            or _iso_lang(title_lang)
            or _iso_lang(feed.get("language")),
            "author": {
                "id": f"feed:{host}",
                "handle": host,
                "display_name": (entry.get("author") or feed.get("title") or host)[:1000],
            },
            "created_at": _entry_time(entry) or fetched_at,
        }
    )


def parse_feed(content: bytes, content_type: str | None, url: str) -> Any:
    """feedparser over bytes we fetched; the headers give it the charset and the base URL.

    The bytes go in as a stream: given plain bytes, feedparser first tries them as a local
    file name, which a body from the network must never be able to trigger.
    """
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    return feedparser.parse(io.BytesIO(content), response_headers=headers)


class FeedParseError(Exception):
    """The body is not a feed at all (HTML error page, truncated XML without entries)."""


class RssPoller(HttpPoller[RssSource]):
    kind = "rss"

    async def _poll(self) -> PollOutcome:
        cursor = await self.cursors.load(self.key)
        headers = {"User-Agent": USER_AGENT, "Accept": _ACCEPT}
        if cursor.get("etag"):
            headers["If-None-Match"] = cursor["etag"]
        if cursor.get("last_modified"):
            headers["If-Modified-Since"] = cursor["last_modified"]
        fetched = await self._get(self.http, self.source.url, headers=headers)
        if fetched.status_code == 304:
            return PollOutcome()
        parsed = await asyncio.to_thread(
            parse_feed, fetched.content, fetched.headers.get("content-type"), self.source.url
        )
        if parsed.get("bozo") and not parsed.entries and not parsed.feed.get("title"):
            raise FeedParseError(repr(parsed.get("bozo_exception")))

        fetched_at = utc_now()
        seen: list[str] = list(cursor.get("seen_ids") or [])
        already = set(seen)
        current: list[str] = []
        items: list[MentionIn] = []
        rejected: list[RejectedItem] = []
        for index, entry in enumerate(parsed.entries):
            native_id = entry_native_id(entry, self.source.url)
            current.append(native_id)
            if native_id in already:
                continue
            try:
                items.append(entry_to_mention(entry, parsed.feed, self.source.url, fetched_at))
            except ValidationError as exc:
                reason = "; ".join(e["msg"] for e in exc.errors(include_input=False))
                rejected.append(RejectedItem(index=index, reason=reason[:500]))
                log.warning("feed entry rejected", poll_source=self.key, reason=reason)

        await self._submit(items, rejected)
        # The feed's current entries first, so they are never forgotten while still listed.
        kept = list(dict.fromkeys(current + seen))[:SEEN_IDS_KEPT]
        await self.cursors.save(
            self.key,
            {
                "etag": fetched.headers.get("etag"),
                "last_modified": fetched.headers.get("last-modified"),
                "seen_ids": kept,
            },
        )
        newest = max((item.created_at for item in items), default=None)
        return PollOutcome(submitted=len(items), newest=newest)
