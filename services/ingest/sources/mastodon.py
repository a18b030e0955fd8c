"""Mastodon: a status (REST API, streaming and webhooks share the JSON) to a MentionIn.

Status ids are local to each instance, so the native id is the status `uri`, the same on every
server that federates it; the author is `user@domain`, also the same everywhere.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from pydantic import ValidationError

from services.ingest.domain.batch import BadPayloadError, Mapped, RejectedItem, reason_of
from services.ingest.domain.normalise import MentionIn

MASTODON_STATUS_EVENTS: frozenset[str] = frozenset({"status.created", "status.updated"})
#: Only statuses anyone may read are mentions; followers-only and direct messages are private.
MASTODON_PUBLIC: frozenset[str] = frozenset({"public", "unlisted"})


def account_id(account: dict[str, Any], instance_host: str) -> str:
    """`user@domain` for local (`user`) and remote (`user@domain`) accounts alike."""
    acct = str(account.get("acct") or account.get("username") or account.get("id"))
    return acct if "@" in acct else f"{acct}@{instance_host}"


def status_to_mention(status: dict[str, Any], instance_url: str) -> MentionIn:
    """Map one status; a boost is mapped as the boosted (original) status."""
    original = status.get("reblog") or status
    host = urlparse(instance_url).hostname or instance_url
    account = original.get("account") or {}
    author = account_id(account, host)
    return MentionIn.model_validate(
        {
            "platform": "mastodon",
            "native_id": original.get("uri") or original.get("url") or f"{host}/{original['id']}",
            "url": original.get("url") or original.get("uri"),
            "text": original.get("content") or "",
            "lang": original.get("language"),
            "author": {
                "id": author,
                "handle": "@" + author,
                "display_name": account.get("display_name") or None,
                "followers": account.get("followers_count"),
            },
            "created_at": original["created_at"],
            "in_reply_to": original.get("in_reply_to_id"),
            "metrics": {
                "likes": original.get("favourites_count"),
                "shares": original.get("reblogs_count"),
                "comments": original.get("replies_count"),
            },
        }
    )


def map_mastodon_event(payload: Any) -> Mapped:
    """A Mastodon webhook `{"event", "created_at", "object"}`; only public statuses count.

    The instance that rendered the status is the host of its `uri`/`url`: local accounts there
    appear as bare `user`, which `status_to_mention` completes to `user@host`.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("event"), str):
        raise BadPayloadError("body must be a JSON object with an 'event'")
    result = Mapped()
    status = payload.get("object")
    if payload["event"] not in MASTODON_STATUS_EVENTS:
        result.ignored += 1  # account.created, report.created, …
        return result
    try:
        if not isinstance(status, dict):
            raise ValueError("'object' must be a status object")
        if status.get("visibility", "public") not in MASTODON_PUBLIC:
            result.ignored += 1
            return result
        origin = status.get("uri") or status.get("url")
        host = urlparse(str(origin)).hostname if origin else None
        if not host:
            raise ValueError("status has no uri or url")
        result.items.append(status_to_mention(status, f"https://{host}"))
    except (ValidationError, KeyError, ValueError, TypeError) as exc:
        result.rejected.append(RejectedItem(index=0, reason=reason_of(exc)))
    return result
