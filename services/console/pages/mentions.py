"""Mentions: the live stream of a brand's mentions, newest first, filtered in the URL.

New mentions never push the list around: the page listens for the stream's `mention` events
(or polls), asks `/mentions/news` how many mentions are newer than the newest one it shows,
and shows an "n new" bar; only a click on the bar inserts them (`/mentions/fresh`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from services.console.clients import ServiceError
from services.console.domain.mentions import (
    INTENTS,
    SENTIMENTS,
    FilterError,
    MentionFilters,
    by_author,
    newer_than,
    newest_mark,
    notable_scores,
    parse_filters,
    parse_since,
    safe_link,
)
from services.console.domain.periods import PERIOD_KEYS
from services.console.web import Brand, PageError, SignedIn, Viewer, is_htmx, render, utc_now
from shared.events import PLATFORMS
from shared.logging import get_logger

log = get_logger(__name__)
router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
#: How many mentions one "n new" count or insert looks at; beyond it the bar says "200+".
NEWS_LIMIT = 200
#: Pages of the API read to find `PAGE_SIZE` mentions of one author given by handle (the API
#: filters by `platform:id`, as the voices link gives it, itself), so one request stays bounded.
AUTHOR_SCAN_PAGES = 5
#: The filter fields the URL carries (and the fragments pass on).
FILTER_FIELDS: tuple[str, ...] = (
    "platform",
    "sentiment",
    "language",
    "intent",
    "label",
    "period",
    "from",
    "to",
    "q",
    "author",
)


def _filters(viewer: Viewer) -> MentionFilters:
    query = dict(viewer.request.query_params)
    try:
        return parse_filters(query, utc_now(), viewer.locale.time_zone)
    except FilterError as exc:
        raise PageError(422, viewer.locale.format(exc.message, value=exc.value)) from exc


async def _page(
    viewer: Viewer,
    brand: Brand,
    filters: MentionFilters,
    cursor: str | None,
    limit: int,
    start: datetime | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the brand's mentions (author matched here, a few API pages at most)."""
    client = viewer.request.app.state.console.clients.moderation
    params: dict[str, Any] = filters.api_params(brand.id)
    if start is not None and (filters.start is None or start > filters.start):
        # Moderation stores times to the millisecond: ask from the millisecond, so a mention
        # later in the same millisecond is not missed (`newer_than` drops what was shown).
        params["from"] = start.replace(microsecond=start.microsecond // 1000 * 1000).isoformat()
    items: list[dict[str, Any]] = []
    pages = AUTHOR_SCAN_PAGES if filters.author and filters.author_key() is None else 1
    for _ in range(pages):
        found = await client.mentions(viewer.actor, **params, cursor=cursor, limit=limit)
        items += [m for m in found["items"] if by_author(m, filters.author)]
        cursor = found.get("next_cursor")
        if cursor is None or len(items) >= limit:
            break
    return items, cursor


def _row(mention: dict[str, Any]) -> dict[str, Any]:
    """What a row shows, decided here rather than in the template."""
    classification = mention.get("classification") or {}
    review = mention.get("review") or {}
    correction = review.get("correction") or {}
    return {
        "mention": mention,
        "author": mention.get("author") or {},
        "link": safe_link(mention.get("url")),
        "sentiment": correction.get("sentiment") or classification.get("sentiment"),
        "intent": correction.get("intent") or classification.get("intent"),
        "labels": correction.get("labels") or classification.get("labels") or [],
        "scores": notable_scores(classification),
        "corrected": bool(correction),
        "tracker": brand_of(mention),
    }


def brand_of(mention: dict[str, Any]) -> str:
    trackers = mention.get("tracker_ids") or []
    return str(trackers[0]) if trackers else ""


def _anchor(rows: list[dict[str, Any]], since: datetime | None, seen: list[str]) -> tuple[str, str]:
    """The `since`/`seen` a page sends back when it asks what is new: its newest mention."""
    newest, ids = newest_mark([row["mention"] for row in rows])
    if newest is None or (since is not None and since > newest):
        return (since.isoformat() if since else ""), ",".join(seen)
    if since is not None and since == newest:
        ids = sorted(set(ids) | set(seen))
    return newest.isoformat(), ",".join(ids)


def _filter_query(viewer: Viewer, brand: Brand, **extra: str | None) -> str:
    """The URL query of this list's filters, plus `extra` (for the fragments' URLs)."""
    params = {"brand": brand.id}
    for field in FILTER_FIELDS:
        value = viewer.request.query_params.get(field)
        if value:
            params[field] = value
    params.update({k: v for k, v in extra.items() if v})
    return urlencode(params)


def _context(viewer: Viewer, brand: Brand, filters: MentionFilters) -> dict[str, Any]:
    return {
        "brand": brand,
        "screen": "mentions",
        "filters": filters,
        "query": dict(viewer.request.query_params),
        "platforms": PLATFORMS,
        "sentiments": SENTIMENTS,
        "intents": INTENTS,
        "periods": [key for key in PERIOD_KEYS if key != "custom"],
        "clear_url": f"/mentions?brand={brand.id}",
    }


@router.get("/mentions", response_class=HTMLResponse)
async def mentions_page(
    viewer: SignedIn, brand: str | None = None, cursor: str | None = None
) -> HTMLResponse:
    chosen = viewer.brand(brand)
    filters = _filters(viewer)
    context = _context(viewer, chosen, filters)
    rows: list[dict[str, Any]] = []
    next_cursor: str | None = None
    failed: str | None = None
    try:
        items, next_cursor = await _page(viewer, chosen, filters, cursor, PAGE_SIZE)
        rows = [_row(m) for m in items]
    except ServiceError as exc:
        if exc.status == 422:
            raise PageError(422, exc.message) from exc
        log.warning("mentions unavailable", error=str(exc))
        failed = exc.message
    since, seen = _anchor(rows, None, [])
    context |= {
        "rows": rows,
        "failed": failed,
        "appending": cursor is not None and is_htmx(viewer.request),
        "more_url": (
            f"/mentions?{_filter_query(viewer, chosen, cursor=next_cursor)}"
            if next_cursor
            else None
        ),
        "news_url": f"/mentions/news?{_filter_query(viewer, chosen, since=since, seen=seen)}",
    }
    return render(viewer, viewer.request, "mentions.html", context, block="page")


async def _fresh(
    viewer: Viewer, brand: Brand, filters: MentionFilters, since: datetime | None, seen: list[str]
) -> tuple[list[dict[str, Any]], bool]:
    """Mentions newer than the page's newest, newest first, and whether there are more."""
    items, more = await _page(viewer, brand, filters, None, NEWS_LIMIT, start=since)
    fresh = newer_than(items, since, set(seen))
    return fresh, more is not None


@router.get("/mentions/news", response_class=HTMLResponse)
async def mentions_news(
    viewer: SignedIn,
    brand: str | None = None,
    since: str | None = None,
    seen: str | None = None,
) -> HTMLResponse:
    """The "n new" bar: how many mentions matching the filters are newer than the page's."""
    chosen = viewer.brand(brand)
    filters = _filters(viewer)
    shown = [s for s in (seen or "").split(",") if s]
    moment = parse_since(since)
    fresh, more = await _fresh(viewer, chosen, filters, moment, shown)
    context = _context(viewer, chosen, filters) | {
        "new_count": len(fresh),
        "new_more": more,
        "fresh_url": "/mentions/fresh?" + _filter_query(viewer, chosen, since=since, seen=seen),
        "news_url": "/mentions/news?" + _filter_query(viewer, chosen, since=since, seen=seen),
    }
    return render(viewer, viewer.request, "mentions.html", context, block="news")


@router.get("/mentions/fresh", response_class=HTMLResponse)
async def mentions_fresh(
    viewer: SignedIn,
    brand: str | None = None,
    since: str | None = None,
    seen: str | None = None,
) -> HTMLResponse:
    """The new rows to put on top of the list, and the bar again, anchored at the newest."""
    chosen = viewer.brand(brand)
    filters = _filters(viewer)
    shown = [s for s in (seen or "").split(",") if s]
    moment = parse_since(since)
    fresh, _ = await _fresh(viewer, chosen, filters, moment, shown)
    rows = [_row(m) for m in fresh]
    new_since, new_seen = _anchor(rows, moment, shown)
    context = _context(viewer, chosen, filters) | {
        "rows": rows,
        "inserting": True,
        "new_count": 0,
        "new_more": False,
        "news_url": "/mentions/news?"
        + _filter_query(viewer, chosen, since=new_since, seen=new_seen),
    }
    return render(viewer, viewer.request, "mentions.html", context, block="fresh")
