"""Mastodon: `POST /api/v1/statuses` with an `Idempotency-Key`.

Mastodon keeps idempotency keys for an hour: a status re-sent with the same key within that
hour returns the status created the first time instead of a second one, so reconciliation
after an uncertain send is the re-send itself.
"""

from __future__ import annotations

import httpx

from services.publisher.adapters.base import (
    ChannelAccess,
    OutgoingPost,
    PermanentSendError,
    Published,
    raise_for_outcome,
    send,
)


class MastodonAdapter:
    platform = "mastodon"

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def publish(self, access: ChannelAccess, post: OutgoingPost) -> Published:
        body: dict[str, object] = {"status": post.text, "visibility": "public"}
        if post.reply_to_native_id:
            body["in_reply_to_id"] = post.reply_to_native_id
        request = self._client.build_request(
            "POST",
            f"{access.api_base_url.rstrip('/')}/api/v1/statuses",
            json=body,
            headers={
                "Authorization": f"Bearer {access.credential}",
                "Idempotency-Key": post.idempotency_key,
            },
        )
        response = await send(self._client, request)
        raise_for_outcome(response)
        data = response.json()
        if not isinstance(data, dict) or "id" not in data:
            raise PermanentSendError("bad_response", "Mastodon answered without a status id")
        return Published(native_post_id=str(data["id"]), url=data.get("url"))

    async def find_published(self, access: ChannelAccess, post: OutgoingPost) -> Published | None:
        # Not looked up: the re-send carries the same Idempotency-Key (see module docstring).
        return None
