"""A generic signed webhook: our post as JSON, signed with HMAC-SHA256.

Headers: `X-SMM-Timestamp` (Unix seconds), `X-SMM-Signature: sha256=<hex>` over
`<timestamp>.<body>`, and `Idempotency-Key` (the receiver must ignore a repeated key: that is
how a re-send after an uncertain attempt stays one post).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx

from services.publisher.adapters.base import (
    ChannelAccess,
    OutgoingPost,
    Published,
    raise_for_outcome,
    send,
)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


class WebhookAdapter:
    platform = "generic"

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def publish(self, access: ChannelAccess, post: OutgoingPost) -> Published:
        body = json.dumps(
            {
                "post_id": post.post_id,
                "channel_id": access.channel_id,
                "account": access.account,
                "text": post.text,
                "media": post.media,
                "in_reply_to": post.reply_to_native_id,
                "scheduled_for": post.scheduled_for.isoformat() if post.scheduled_for else None,
            },
            ensure_ascii=False,
        ).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": post.idempotency_key,
            "X-SMM-Timestamp": timestamp,
            "X-SMM-Signature": signature(access.signing_secret or "", timestamp, body),
        }
        if access.credential:
            headers["Authorization"] = f"Bearer {access.credential}"
        request = self._client.build_request(
            "POST", access.api_base_url, content=body, headers=headers
        )
        response = await send(self._client, request)
        raise_for_outcome(response)
        data: object = None
        if response.headers.get("content-type", "").startswith("application/json"):
            data = response.json()
        native = data.get("id") if isinstance(data, dict) else None
        url = data.get("url") if isinstance(data, dict) else None
        return Published(native_post_id=str(native or post.post_id), url=url)

    async def find_published(self, access: ChannelAccess, post: OutgoingPost) -> Published | None:
        # The receiver de-duplicates by Idempotency-Key; the re-send is the reconciliation.
        return None
