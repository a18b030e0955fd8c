"""Bluesky: `com.atproto.repo.createRecord` with a record key derived from our post id.

The same post always gets the same record key, so a second create cannot make a second post,
and reconciliation is one `getRecord` for that key.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import httpx

from services.publisher.adapters.base import (
    ChannelAccess,
    OutgoingPost,
    PermanentSendError,
    Published,
    raise_for_outcome,
    send,
)

COLLECTION = "app.bsky.feed.post"
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"


def record_key(post_id: str, scheduled_for: datetime | None) -> str:
    """A TID (13 base32-sortable chars): the due second plus bits of the post id's hash.

    Whole seconds only, so the key is the same whatever precision the database keeps.
    """
    digest = int.from_bytes(hashlib.sha256(post_id.encode()).digest()[:8], "big")
    base = scheduled_for or datetime(2024, 1, 1, tzinfo=UTC)
    micros = int(base.timestamp()) * 1_000_000 + digest % 1_000_000
    value = ((micros & ((1 << 53) - 1)) << 10) | (digest >> 54)
    chars = []
    for _ in range(13):
        chars.append(_TID_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _url(did: str, rkey: str) -> str:
    return f"https://bsky.app/profile/{did}/post/{rkey}"


class BlueskyAdapter:
    platform = "bluesky"

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    def _xrpc(self, access: ChannelAccess, method: str) -> str:
        return f"{access.api_base_url.rstrip('/')}/xrpc/{method}"

    def _auth(self, access: ChannelAccess) -> dict[str, str]:
        return {"Authorization": f"Bearer {access.credential}"}

    async def _get_record(
        self, access: ChannelAccess, repo: str, rkey: str
    ) -> dict[str, object] | None:
        request = self._client.build_request(
            "GET",
            self._xrpc(access, "com.atproto.repo.getRecord"),
            params={"repo": repo, "collection": COLLECTION, "rkey": rkey},
            headers=self._auth(access),
        )
        response = await send(self._client, request)
        if response.status_code in (400, 404) and "NotFound" in response.text:
            return None
        raise_for_outcome(response)
        data = response.json()
        return data if isinstance(data, dict) else None

    async def _reply_refs(self, access: ChannelAccess, native_id: str) -> dict[str, object]:
        did, _, rkey = native_id.partition("/")
        parent = await self._get_record(access, did, rkey)
        if parent is None:
            raise PermanentSendError("reply_target_missing", f"no Bluesky post {native_id}")
        ref = {"uri": parent["uri"], "cid": parent["cid"]}
        value = parent.get("value")
        reply = value.get("reply") if isinstance(value, dict) else None
        root = reply.get("root") if isinstance(reply, dict) else None
        return {"root": root or ref, "parent": ref}

    async def publish(self, access: ChannelAccess, post: OutgoingPost) -> Published:
        rkey = record_key(post.post_id, post.scheduled_for)
        record: dict[str, object] = {
            "$type": COLLECTION,
            "text": post.text,
            "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        if post.reply_to_native_id:
            record["reply"] = await self._reply_refs(access, post.reply_to_native_id)
        request = self._client.build_request(
            "POST",
            self._xrpc(access, "com.atproto.repo.createRecord"),
            json={"repo": access.account, "collection": COLLECTION, "rkey": rkey, "record": record},
            headers=self._auth(access),
        )
        response = await send(self._client, request)
        if response.status_code == 400 and "exists" in response.text.lower():
            found = await self.find_published(access, post)  # created by an earlier attempt
            if found is not None:
                return found
        raise_for_outcome(response)
        return Published(native_post_id=f"{access.account}/{rkey}", url=_url(access.account, rkey))

    async def find_published(self, access: ChannelAccess, post: OutgoingPost) -> Published | None:
        rkey = record_key(post.post_id, post.scheduled_for)
        if await self._get_record(access, access.account, rkey) is None:
            return None
        return Published(native_post_id=f"{access.account}/{rkey}", url=_url(access.account, rkey))
