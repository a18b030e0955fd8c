"""Mastodon polling: a hashtag timeline or a full-text search on one instance, gap-free.

Mastodon answers newest-first. `since_id` gives the *newest* statuses above an id, so after a
burst of more than one page everything between the cursor and that page would be skipped.

* Tag timeline: `min_id` gives the statuses *immediately* newer than the cursor (the oldest
  unseen ones first, each page still sorted newest-first), so we walk forward page by page and
  save the cursor after every submitted page; an interrupted poll resumes where it stopped.
* Search (`/api/v2/search`): there `min_id` is only a lower bound on a newest-first result
  list, so we page backwards with `max_id` down to the cursor. If a poll reaches its page limit
  first, the cursor keeps the open gap (`backfill`) and the next poll continues filling it.

Status mapping is `sources.mastodon.status_to_mention` (shared with webhooks and streaming).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError

from services.ingest.domain.batch import RejectedItem
from services.ingest.domain.normalise import MentionIn
from services.ingest.sources.mastodon import status_to_mention
from services.ingest.sources.polling import HttpPoller, MastodonSource, PollOutcome, beyond_now
from shared.events import utc_now
from shared.logging import get_logger

log = get_logger(__name__)

#: The largest page the timeline and search endpoints return.
PAGE_SIZE = 40


def id_order(status_id: str) -> tuple[int, str]:
    """Sort key for status ids: numeric strings (Mastodon) and fixed-width flake ids alike."""
    return len(status_id), status_id


def snowflake_time(status_id: str) -> datetime | None:
    """When a Mastodon id was made: its upper bits are milliseconds since 1970 (ids since
    Mastodon 2.0; remote statuses get the id of their `published` time). None for ids that
    are not numeric (other servers' flake ids), which are never judged."""
    if not status_id.isdigit() or len(status_id) > 20:
        return None
    return datetime.fromtimestamp((int(status_id) >> 16) / 1000, tz=UTC)


def map_statuses(
    statuses: Sequence[dict[str, Any]], instance_url: str
) -> tuple[list[MentionIn], list[RejectedItem]]:
    """Map a page; a status that does not fit the contract is reported, not fatal."""
    items: list[MentionIn] = []
    rejected: list[RejectedItem] = []
    for index, status in enumerate(statuses):
        try:
            items.append(status_to_mention(status, instance_url))
        except (ValidationError, KeyError, TypeError, ValueError) as exc:
            rejected.append(RejectedItem(index=index, reason=f"unmappable status: {exc!r}"[:500]))
    return items, rejected


class MastodonPoller(HttpPoller[MastodonSource]):
    kind = "mastodon"

    async def _page(self, params: dict[str, str | int]) -> list[dict[str, Any]]:
        headers = {"Accept": "application/json"}
        if self.source.access_token is not None:
            headers["Authorization"] = f"Bearer {self.source.access_token.get_secret_value()}"
        if self.source.hashtag is not None:
            url = f"{self.source.instance_url}/api/v1/timelines/tag/{quote(self.source.hashtag)}"
            fetched = await self._get(self.http, url, params=params, headers=headers)
            statuses: list[dict[str, Any]] = fetched.json()
            return statuses
        url = f"{self.source.instance_url}/api/v2/search"
        query: dict[str, str | int] = {
            "q": self.source.query or "",
            "type": "statuses",
            "resolve": "false",
            **params,
        }
        fetched = await self._get(self.http, url, params=query, headers=headers)
        found: list[dict[str, Any]] = fetched.json().get("statuses") or []
        return found

    async def _submit_page(self, statuses: Sequence[dict[str, Any]]) -> list[MentionIn]:
        items, rejected = map_statuses(statuses, self.source.instance_url)
        await self._submit(items, rejected)
        return items

    def _future(self, status_id: str | None) -> bool:
        moment = snowflake_time(status_id) if status_id else None
        return moment is not None and beyond_now(moment, utc_now())

    def _newest_trusted(self, ids: Sequence[str], floor: str | None) -> str | None:
        """The newest id a cursor may take: never one dated in the future (it would hide
        every status until then)."""
        trusted = [i for i in ids if not self._future(i)]
        for skipped in set(ids) - set(trusted):
            self._distrust("item", skipped)
        return max([*trusted, *([floor] if floor else [])], key=id_order, default=None)

    async def _poll(self) -> PollOutcome:
        cursor = await self.cursors.load(self.key)
        since: str | None = cursor.get("since_id")
        backfill: dict[str, Any] | None = cursor.get("backfill")
        if self._future(since) or (backfill and self._future(backfill.get("newest"))):
            self._distrust("stored", since)
            since, backfill = None, None
        if self.source.hashtag is not None:
            return await self._forward(since)
        return await self._backward(since, backfill)

    async def _forward(self, since: str | None) -> PollOutcome:
        """Tag timeline: `min_id` pages, oldest unseen first; the cursor advances per page."""
        submitted: list[MentionIn] = []
        for _ in range(self.source.max_pages):
            params: dict[str, str | int] = {"limit": PAGE_SIZE}
            if since is not None:
                params["min_id"] = since
            page = await self._page(params)
            fresh = [s for s in page if since is None or id_order(s["id"]) > id_order(since)]
            if not fresh:
                break
            submitted += await self._submit_page(fresh)
            advanced = self._newest_trusted([s["id"] for s in fresh], since)
            if advanced is None or advanced == since:
                break  # only statuses dated in the future: keep the cursor where it is
            since = advanced
            await self.cursors.save(self.key, {"since_id": since})
            # No cursor yet: start at the newest page, we do not backfill the tag's history.
            if len(page) < PAGE_SIZE or "min_id" not in params:
                break
        return _outcome(submitted)

    async def _backward(self, since: str | None, backfill: dict[str, Any] | None) -> PollOutcome:
        """Search: newest-first pages down to `since`, keeping an unfinished gap in the cursor."""
        upper: str | None = backfill["max_id"] if backfill else None
        newest: str | None = backfill["newest"] if backfill else None
        submitted: list[MentionIn] = []
        caught_up = False
        for _ in range(self.source.max_pages):
            params: dict[str, str | int] = {"limit": PAGE_SIZE}
            if since is not None:
                params["min_id"] = since
            if upper is not None:
                params["max_id"] = upper
            page = await self._page(params)
            fresh = [
                s
                for s in page
                if (since is None or id_order(s["id"]) > id_order(since))
                and (upper is None or id_order(s["id"]) < id_order(upper))
            ]
            if fresh:
                submitted += await self._submit_page(fresh)
                ids = [s["id"] for s in fresh]
                newest = self._newest_trusted(ids, newest)
                upper = min(ids, key=id_order)
            if since is None or not fresh or len(page) < PAGE_SIZE:
                caught_up = True
                break
            await self.cursors.save(
                self.key, {"since_id": since, "backfill": {"max_id": upper, "newest": newest}}
            )
        if caught_up:
            await self.cursors.save(self.key, {"since_id": newest or since})
        else:  # the gap is already saved page by page
            log.info("search backlog continues next poll", poll_source=self.key, max_id=upper)
        return _outcome(submitted)


def _outcome(items: Sequence[MentionIn]) -> PollOutcome:
    newest: datetime | None = max((item.created_at for item in items), default=None)
    return PollOutcome(submitted=len(items), newest=newest)
