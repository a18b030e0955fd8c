"""X API v2: `POST /2/tweets`; reconciliation reads the account's recent posts."""

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


def _url(native_id: str) -> str:
    return f"https://x.com/i/web/status/{native_id}"


class XAdapter:
    platform = "x"

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    def _auth(self, access: ChannelAccess) -> dict[str, str]:
        return {"Authorization": f"Bearer {access.credential}"}

    async def publish(self, access: ChannelAccess, post: OutgoingPost) -> Published:
        body: dict[str, object] = {"text": post.text}
        if post.reply_to_native_id:
            body["reply"] = {"in_reply_to_tweet_id": post.reply_to_native_id}
        request = self._client.build_request(
            "POST",
            f"{access.api_base_url.rstrip('/')}/2/tweets",
            json=body,
            headers=self._auth(access),
        )
        response = await send(self._client, request)
        raise_for_outcome(response)
        data = response.json().get("data") or {}
        if "id" not in data:
            raise PermanentSendError("bad_response", "X answered without a post id")
        return Published(native_post_id=str(data["id"]), url=_url(str(data["id"])))

    async def find_published(self, access: ChannelAccess, post: OutgoingPost) -> Published | None:
        """X has no idempotency key: look for the same text among the account's latest posts."""
        request = self._client.build_request(
            "GET",
            f"{access.api_base_url.rstrip('/')}/2/users/{access.account}/tweets",
            params={"max_results": 100, "exclude": "retweets"},
            headers=self._auth(access),
        )
        response = await send(self._client, request)
        raise_for_outcome(response)
        for item in response.json().get("data") or []:
            if item.get("text") == post.text:
                return Published(native_post_id=str(item["id"]), url=_url(str(item["id"])))
        return None
