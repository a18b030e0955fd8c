"""Reddit listings (`/r/<sub>/new.json`, `/comments.json`, `/search.json?sort=new`) to mentions.

Listings are newest-first and page backwards with `after`. A poll walks pages until it meets
the newest post of the previous poll (the cursor) and only then submits and moves the cursor,
so an interrupted poll is simply repeated. If the cursor's post was deleted meanwhile, its
creation time (kept beside its fullname) still tells where the previous poll stopped.

With a Reddit app's credentials (`SMM_REDDIT_CLIENT_ID`/`_SECRET`) the poller uses
application-only OAuth (client credentials grant) against `oauth.reddit.com`, which has a
documented quota; without them it reads the public listings, which Reddit throttles hard.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import ValidationError

from services.ingest.domain.batch import MentionSink, RejectedItem
from services.ingest.domain.normalise import MentionIn
from services.ingest.sources.polling import (
    POLL_BACKLOG_SKIPPED,
    HttpPoller,
    PollHttpError,
    PollOutcome,
    RateLimitedError,
    RedditSource,
    beyond_now,
    retry_after_delay,
)
from services.ingest.storage import CursorStore
from shared.events import utc_now
from shared.logging import get_logger

log = get_logger(__name__)

PAGE_SIZE = 100
PUBLIC_BASE = "https://www.reddit.com"
_GONE = frozenset({"[deleted]", "[removed]"})


def thing_to_mention(thing: dict[str, Any]) -> MentionIn:
    """Map a listing child: `t3` (post: title + selftext) or `t1` (comment: body)."""
    kind, data = thing.get("kind"), thing.get("data") or {}
    if kind == "t3":
        body = "" if data.get("selftext") in _GONE else str(data.get("selftext") or "")
        title = str(data.get("title") or "")
        text = f"{title}\n\n{body}" if body else title
        comments, in_reply_to = data.get("num_comments"), None
    elif kind == "t1":
        text = "" if data.get("body") in _GONE else str(data.get("body") or "")
        comments, in_reply_to = None, data.get("parent_id")
    else:
        raise ValueError(f"unsupported listing kind {kind!r}")
    author = str(data.get("author") or "[deleted]")
    gone = author in _GONE
    permalink = str(data.get("permalink") or "")
    score = data.get("score")
    return MentionIn.model_validate(
        {
            "platform": "reddit",
            "native_id": data["name"],
            "url": PUBLIC_BASE + permalink if permalink.startswith("/") else None,
            "text": text[:40_000],
            "author": {
                "id": "deleted" if gone else author,
                "handle": None if gone else f"u/{author}",
            },
            "created_at": datetime.fromtimestamp(float(data["created_utc"]), tz=UTC),
            "in_reply_to": in_reply_to,
            "metrics": {
                "likes": max(int(score), 0) if isinstance(score, int | float) else None,
                "comments": comments if isinstance(comments, int) and comments >= 0 else None,
            },
        }
    )


def _utc(epoch_seconds: float) -> datetime:
    try:
        return datetime.fromtimestamp(epoch_seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return datetime.max.replace(tzinfo=UTC)  # absurdly far: judged as in the future


@dataclass(frozen=True)
class RedditApp:
    """A Reddit app's credentials, for application-only OAuth."""

    client_id: str
    client_secret: str


class RedditPoller(HttpPoller[RedditSource]):
    kind = "reddit"

    def __init__(
        self,
        source: RedditSource,
        cursors: CursorStore,
        sink: MentionSink,
        http: httpx.AsyncClient,
        *,
        app: RedditApp | None = None,
        **options: Any,
    ) -> None:
        super().__init__(source, cursors, sink, http, **options)
        self.app = app
        self._token: str | None = None
        self._token_valid_until = 0.0

    async def _authorization(self) -> dict[str, str]:
        """The bearer header for OAuth (fetching a token when none is valid), else nothing."""
        if self.app is None:
            return {}
        if self._token is None or time.monotonic() >= self._token_valid_until:
            response = await self.http.post(
                self.source.token_url,
                data={"grant_type": "client_credentials"},
                auth=(self.app.client_id, self.app.client_secret),
                headers={"User-Agent": self.source.user_agent},
            )
            if response.status_code in (429, 503):
                raise RateLimitedError(
                    response.status_code, retry_after_delay(response.headers, utc_now())
                )
            if not response.is_success:
                raise PollHttpError(
                    response.status_code, self.source.token_url, "token request refused"
                )
            grant = response.json()
            lifetime = float(grant.get("expires_in") or 3600)
            self._token = str(grant["access_token"])
            self._token_valid_until = time.monotonic() + max(lifetime - 60, lifetime / 2)
        return {"Authorization": f"bearer {self._token}"}

    def listing(self) -> tuple[str, dict[str, str | int]]:
        """The listing URL and its fixed parameters (`raw_json=1`: text without HTML escapes)."""
        base = self.source.oauth_base_url if self.app else self.source.base_url
        sub, query = self.source.subreddit, self.source.query
        params: dict[str, str | int] = {"limit": PAGE_SIZE, "raw_json": 1}
        if query is None:
            return f"{base}/r/{sub}/{self.source.listing}.json", params
        params.update({"q": query, "sort": "new"})
        if sub is not None:
            params["restrict_sr"] = 1
            return f"{base}/r/{sub}/search.json", params
        return f"{base}/search.json", params

    async def _poll(self) -> PollOutcome:
        cursor = await self.cursors.load(self.key)
        stop_name: str | None = cursor.get("newest")
        stop_time = float(cursor.get("newest_created_utc") or 0.0)
        if beyond_now(_utc(stop_time), utc_now()):
            # Everything would be "older than the cursor" until then: start afresh instead.
            self._distrust("stored", f"{stop_name}@{stop_time}")
            stop_name, stop_time = None, 0.0
        url, params = self.listing()
        headers = {
            "User-Agent": self.source.user_agent,
            "Accept": "application/json",
            **await self._authorization(),
        }
        collected: dict[str, dict[str, Any]] = {}
        reached = False
        after: str | None = None
        # Without a cursor: the newest page only, we do not backfill the history.
        for _ in range(self.source.max_pages if stop_name else 1):
            page_params = {**params, "after": after} if after else params
            try:
                fetched = await self._get(self.http, url, params=page_params, headers=headers)
            except PollHttpError as exc:
                if exc.status == 401:
                    self._token = None  # revoked or expired early: the next try gets a new one
                raise
            listing = fetched.json()
            data = listing.get("data") or {}
            for child in data.get("children") or []:
                child_data = child.get("data") or {}
                name = child_data.get("name")
                created = float(child_data.get("created_utc") or 0.0)
                if stop_name and (name == stop_name or created < stop_time):
                    reached = True
                    break
                if name:
                    collected.setdefault(name, child)
            after = data.get("after")
            if reached or not after:
                reached = True
                break
        if stop_name and not reached:
            POLL_BACKLOG_SKIPPED.labels(self.kind).inc()
            log.warning(
                "reddit backlog exceeds the page limit; older items skipped",
                poll_source=self.key,
                pages=self.source.max_pages,
            )
        if not collected:
            return PollOutcome()

        items: list[MentionIn] = []
        rejected: list[RejectedItem] = []
        for index, child in enumerate(collected.values()):
            try:
                items.append(thing_to_mention(child))
            except (ValidationError, KeyError, TypeError, ValueError) as exc:
                rejected.append(RejectedItem(index=index, reason=f"unmappable: {exc!r}"[:500]))
        await self._submit(items, rejected)
        now = utc_now()
        trusted = []
        for child in collected.values():
            if beyond_now(_utc(float(child["data"].get("created_utc") or 0.0)), now):
                self._distrust("item", child["data"].get("name"))
            else:
                trusted.append(child)
        if trusted:  # else the cursor stays: a future-dated post must not become the mark
            newest = max(
                trusted,
                key=lambda c: (float(c["data"].get("created_utc") or 0.0), c["data"]["name"]),
            )["data"]
            await self.cursors.save(
                self.key,
                {
                    "newest": newest["name"],
                    "newest_created_utc": float(newest.get("created_utc") or 0),
                },
            )
        newest_at = max((item.created_at for item in items), default=None)
        return PollOutcome(submitted=len(items), newest=newest_at)
