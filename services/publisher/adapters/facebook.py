"""Facebook Pages (Graph API): posts on the page feed, replies as comments."""

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


class FacebookAdapter:
    platform = "facebook"

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def publish(self, access: ChannelAccess, post: OutgoingPost) -> Published:
        base = access.api_base_url.rstrip("/")
        data: dict[str, str] = {"message": post.text}
        if post.reply_to_native_id:
            target = f"{base}/{post.reply_to_native_id}/comments"
        else:
            target = f"{base}/{access.account}/feed"
            if post.media:
                data["link"] = post.media[0]
        request = self._client.build_request(
            "POST", target, data=data, headers={"Authorization": f"Bearer {access.credential}"}
        )
        response = await send(self._client, request)
        raise_for_outcome(response)
        native = response.json().get("id")
        if not native:
            raise PermanentSendError("bad_response", "Graph API answered without an id")
        return Published(native_post_id=str(native), url=f"https://www.facebook.com/{native}")

    async def find_published(self, access: ChannelAccess, post: OutgoingPost) -> Published | None:
        """No idempotency key on the Graph API: look for the message on the page's feed."""
        base = access.api_base_url.rstrip("/")
        where = post.reply_to_native_id and f"{post.reply_to_native_id}/comments"
        request = self._client.build_request(
            "GET",
            f"{base}/{where or access.account + '/feed'}",
            params={"fields": "id,message", "limit": 100},
            headers={"Authorization": f"Bearer {access.credential}"},
        )
        response = await send(self._client, request)
        raise_for_outcome(response)
        for item in response.json().get("data") or []:
            if item.get("message") == post.text:
                native = str(item["id"])
                return Published(native_post_id=native, url=f"https://www.facebook.com/{native}")
        return None
