"""Read a published post's counters from the platform's public API.

Supported: Mastodon (`GET /api/v1/statuses/{id}` on our instance) and Bluesky
(`app.bsky.feed.getPosts` on the public AppView), both readable without credentials. Other
networks need the channel's token, which only the publisher holds; their engagement arrives on
`smm.engagement.v1` from the systems that own those tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlparse

import httpx

BLUESKY_APPVIEW = "https://public.api.bsky.app"
SUPPORTED_PLATFORMS = frozenset({"mastodon", "bluesky"})


@dataclass(frozen=True)
class Counters:
    likes: int
    comments: int
    shares: int
    saves: int = 0
    impressions: int = 0
    reach: int = 0
    followers: int | None = None


class PostGoneError(Exception):
    """The post no longer exists (deleted): stop polling it."""


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and value >= 0 else 0


class EngagementFetcher:
    def __init__(self, http: httpx.AsyncClient, bluesky_appview: str = BLUESKY_APPVIEW) -> None:
        self.http = http
        self.bluesky_appview = bluesky_appview.rstrip("/")

    async def fetch(self, post: dict[str, Any]) -> Counters:
        platform = post.get("platform")
        if platform == "mastodon":
            return await self._mastodon(post)
        if platform == "bluesky":
            return await self._bluesky(post)
        raise ValueError(f"no public engagement API for platform {platform!r}")

    async def _mastodon(self, post: dict[str, Any]) -> Counters:
        parsed = urlparse(post["url"])
        instance = f"{parsed.scheme}://{parsed.netloc}"
        status_id = quote(str(post["native_post_id"]), safe="")  # never a path of its own
        response = await self.http.get(f"{instance}/api/v1/statuses/{status_id}")
        if response.status_code == 404:
            raise PostGoneError(post["native_post_id"])
        response.raise_for_status()
        status = response.json()
        return Counters(
            likes=_int(status.get("favourites_count")),
            comments=_int(status.get("replies_count")),
            shares=_int(status.get("reblogs_count")),
            followers=(status.get("account") or {}).get("followers_count"),
        )

    async def _bluesky(self, post: dict[str, Any]) -> Counters:
        response = await self.http.get(
            f"{self.bluesky_appview}/xrpc/app.bsky.feed.getPosts",
            params={"uris": post["native_post_id"]},
        )
        response.raise_for_status()
        posts = response.json().get("posts") or []
        if not posts:
            raise PostGoneError(post["native_post_id"])
        found = posts[0]
        return Counters(
            likes=_int(found.get("likeCount")),
            comments=_int(found.get("replyCount")),
            shares=_int(found.get("repostCount")) + _int(found.get("quoteCount")),
        )
