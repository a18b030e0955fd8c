"""The moderation service's API, as the console uses it: mentions, the review inbox, canned
replies. Every call names the user (`actor`), so moderation scopes it to their brands and
records them as the one who claimed, decided or corrected."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from services.console.clients.base import ServiceClient
from shared.auth import Actor


def _mention_path(mention_id: str) -> str:
    """A mention id in a path: `platform:native` stays readable, anything else is escaped."""
    return quote(mention_id, safe=":@")


class ModerationClient(ServiceClient):
    service = "moderation"

    async def mentions(self, actor: Actor, **filters: Any) -> dict[str, Any]:
        """`GET /v1/mentions`: {items, next_cursor}, newest first, filtered and paged."""
        found: dict[str, Any] = await self.get("/v1/mentions", actor, **filters)
        return found

    async def mention(self, actor: Actor, mention_id: str) -> dict[str, Any]:
        """One classified mention with its review item (404 for another brand's)."""
        found: dict[str, Any] = await self.get(f"/v1/mentions/{_mention_path(mention_id)}", actor)
        return found

    async def review_queue(
        self,
        actor: Actor,
        tracker_id: str,
        status: str,
        cursor: str | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        """`GET /v1/review`: a page of the queue, priority first, then oldest first."""
        found: dict[str, Any] = await self.get(
            "/v1/review", actor, tracker_id=tracker_id, status=status, cursor=cursor, limit=limit
        )
        return found

    async def review_counts(self, actor: Actor, tracker_id: str) -> dict[str, int]:
        """The inbox tabs' counts (mine, unclaimed, all), counted by moderation."""
        counts: dict[str, int] = await self.get("/v1/review/counts", actor, tracker_id=tracker_id)
        return counts

    async def claim(self, actor: Actor, mention_id: str) -> dict[str, Any]:
        """Take the lease; `ServiceError` 409 `claimed_by_other` names who holds it."""
        item: dict[str, Any] = await self.post(
            f"/v1/review/{_mention_path(mention_id)}/claim", actor
        )
        return item

    async def decide(
        self,
        actor: Actor,
        mention_id: str,
        action: str,
        reason: str,
        reply_text: str | None = None,
    ) -> dict[str, Any]:
        """Approve, hide, escalate or reply (the reply becomes a post on the publisher)."""
        body: dict[str, Any] = {"action": action, "reason": reason}
        if reply_text is not None:
            body["reply"] = {"text": reply_text}
        item: dict[str, Any] = await self.post(
            f"/v1/review/{_mention_path(mention_id)}/decision", actor, body
        )
        return item

    async def correct(
        self, actor: Actor, mention_id: str, correction: dict[str, Any]
    ) -> dict[str, Any]:
        """A reviewer's correction of sentiment, labels or intent."""
        item: dict[str, Any] = await self.post(
            f"/v1/review/{_mention_path(mention_id)}/correction", actor, correction
        )
        return item

    async def audit(self, actor: Actor, mention_id: str) -> list[dict[str, Any]]:
        """Who did what to the mention, oldest first (routing included)."""
        found = await self.get(f"/v1/review/{_mention_path(mention_id)}/audit", actor)
        entries: list[dict[str, Any]] = found["entries"]
        return entries

    async def rules(self, actor: Actor, tracker_id: str) -> dict[str, Any]:
        """A tracker's rules (for its reply channels)."""
        found: dict[str, Any] = await self.get(f"/v1/rules/{quote(tracker_id, safe='')}", actor)
        return found

    async def canned_replies(
        self, actor: Actor, tracker_id: str, language: str | None = None
    ) -> list[dict[str, Any]]:
        """The canned replies usable for a tracker (its own and everybody's)."""
        found = await self.get(
            "/v1/canned-replies", actor, tracker_id=tracker_id, language=language
        )
        replies: list[dict[str, Any]] = found["canned_replies"]
        return replies

    async def render_canned(self, actor: Actor, reply_id: str, mention_id: str) -> dict[str, Any]:
        """A canned reply filled in for a mention: {text, missing}."""
        rendered: dict[str, Any] = await self.post(
            f"/v1/canned-replies/{quote(reply_id, safe='')}/render",
            actor,
            {"mention_id": mention_id},
        )
        return rendered
