"""LinkedIn Posts API (`POST /rest/posts`); the new post's URN comes in `x-restli-id`."""

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

LINKEDIN_VERSION = "202411"


def _url(urn: str) -> str:
    return f"https://www.linkedin.com/feed/update/{urn}"


class LinkedInAdapter:
    platform = "linkedin"

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    def _headers(self, access: ChannelAccess) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {access.credential}",
            "LinkedIn-Version": LINKEDIN_VERSION,
            "X-Restli-Protocol-Version": "2.0.0",
        }

    async def publish(self, access: ChannelAccess, post: OutgoingPost) -> Published:
        body = {
            "author": access.account,
            "commentary": post.text,
            "visibility": "PUBLIC",
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        request = self._client.build_request(
            "POST",
            f"{access.api_base_url.rstrip('/')}/rest/posts",
            json=body,
            headers=self._headers(access),
        )
        response = await send(self._client, request)
        raise_for_outcome(response)
        urn = response.headers.get("x-restli-id")
        if not urn:
            raise PermanentSendError("bad_response", "LinkedIn answered without x-restli-id")
        return Published(native_post_id=urn, url=_url(urn))

    async def find_published(self, access: ChannelAccess, post: OutgoingPost) -> Published | None:
        """No idempotency key: look for the same commentary among the author's latest posts."""
        request = self._client.build_request(
            "GET",
            f"{access.api_base_url.rstrip('/')}/rest/posts",
            params={"q": "author", "author": access.account, "count": 50},
            headers=self._headers(access),
        )
        response = await send(self._client, request)
        raise_for_outcome(response)
        for item in response.json().get("elements") or []:
            if item.get("commentary") == post.text and item.get("id"):
                return Published(native_post_id=str(item["id"]), url=_url(str(item["id"])))
        return None
