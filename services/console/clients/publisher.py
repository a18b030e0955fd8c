"""The publisher service's API, as the console uses it."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from services.console.clients.base import ServiceClient
from shared.auth import Actor


class PublisherClient(ServiceClient):
    service = "publisher"

    async def channel(self, actor: Actor, channel_id: str) -> dict[str, Any]:
        """One channel (its `platform` decides how a reply's characters are counted)."""
        found: dict[str, Any] = await self.get(f"/v1/channels/{quote(channel_id, safe='')}", actor)
        return found

    async def replies_to(self, actor: Actor, mention_id: str) -> list[dict[str, Any]]:
        """The posts answering a mention."""
        found = await self.get("/v1/posts", actor, in_reply_to_mention_id=mention_id)
        posts: list[dict[str, Any]] = found["posts"]
        return posts

    async def count_text(self, actor: Actor, platform: str, text: str) -> dict[str, Any]:
        """`text` counted as `platform` counts it: {platform, length, limit, unit, over,
        too_many_bytes}, the publisher's own rule for refusing a post."""
        counted: dict[str, Any] = await self.post(
            "/v1/text/count", actor, {"platform": platform, "text": text}
        )
        return counted
