"""Meta webhooks (Facebook Pages, Instagram): one delivery's changes to MentionIn.

A delivery is `{"object": "page"|"instagram", "entry": [{"id", "time", "changes": [...]}]}`.
Only changes that carry someone's words become mentions; reactions, likes, removals and the like
are counted as ignored (Meta sends them whether we want them or not). A malformed change is
rejected with its position and reason while the rest of the delivery is still processed, so one
odd item never makes Meta redeliver (and us re-read) the whole batch. What our own page or
account wrote (e.g. our replies) is ignored too: it is a post of ours, not a mention.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from services.ingest.domain.batch import (
    BadPayloadError,
    Mapped,
    MentionLookup,
    RejectedItem,
    reason_of,
)
from services.ingest.domain.normalise import MentionIn

#: Page feed items whose `message` is someone's post or comment. Photos, videos and shares
#: posted to the page carry a message too, so they are mentions like plain posts.
FEED_ITEMS: frozenset[str] = frozenset({"post", "status", "comment", "photo", "video", "share"})
#: Verbs that mean "this text exists now"; remove, hide, block, unhide … carry no new text.
CONTENT_VERBS: frozenset[str] = frozenset({"add", "edit", "edited"})


def unix_time(value: Any) -> datetime:
    """Meta's `created_time` / entry `time`: unix seconds (ms on some Instagram entries)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"not a unix time: {type(value).__name__}")
    try:
        seconds = float(value)
        if seconds > 1e11:  # milliseconds
            seconds /= 1000
        return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise ValueError(f"not a unix time: {str(value)[:32]!r}") from exc


def _author(sender: Any, *, instagram: bool) -> dict[str, Any]:
    if not isinstance(sender, dict) or not sender.get("id"):
        raise ValueError("missing author ('from.id')")
    if instagram:
        username = sender.get("username")
        return {
            "id": str(sender["id"]),
            "handle": f"@{username}" if username else None,
            "display_name": username,
        }
    return {"id": str(sender["id"]), "display_name": sender.get("name")}


def _created_at(value: dict[str, Any], entry_time: Any) -> datetime:
    if value.get("created_time") is not None:
        return unix_time(value["created_time"])
    if entry_time is not None:
        return unix_time(entry_time)
    raise ValueError("no created_time and no entry time")


def _page_feed(value: dict[str, Any], entry_time: Any) -> MentionIn | None:
    """A Page `feed` change; None when it carries no new text (reaction, removal, …)."""
    item, verb = value.get("item"), value.get("verb")
    if item not in FEED_ITEMS or verb not in CONTENT_VERBS:
        return None
    if item == "comment":
        native_id = str(value["comment_id"])
        in_reply_to = value.get("parent_id") or value.get("post_id")
    else:
        native_id = str(value["post_id"])
        in_reply_to = None
    return MentionIn.model_validate(
        {
            "platform": "facebook",
            "native_id": native_id,
            "url": f"https://www.facebook.com/{native_id}",
            "text": value.get("message") or "",
            "author": _author(value.get("from"), instagram=False),
            "created_at": _created_at(value, entry_time),
            "in_reply_to": str(in_reply_to) if in_reply_to else None,
        }
    )


def _instagram_comment(value: dict[str, Any], entry_time: Any) -> MentionIn:
    """A comment on one of our media (`comments` field)."""
    media = value.get("media")
    parent = value.get("parent_id") or (media.get("id") if isinstance(media, dict) else None)
    return MentionIn.model_validate(
        {
            "platform": "instagram",
            "native_id": str(value["id"]),
            "text": value.get("text") or "",
            "author": _author(value.get("from"), instagram=True),
            "created_at": _created_at(value, entry_time),
            "in_reply_to": str(parent) if parent else None,
        }
    )


def _graph_id(value: Any, name: str) -> str:
    """A Graph API object id (digits): these go into lookup URLs and field expressions."""
    text = str(value)
    if not (text.isascii() and text.isdigit() and len(text) <= 32):
        raise ValueError(f"{name} must be a Graph API id (digits)")
    return text


def _instagram_mention(value: dict[str, Any], entry: dict[str, Any]) -> MentionIn | MentionLookup:
    """Our account @mentioned in a caption or comment (`mentions` field).

    Meta usually sends only `media_id` and `comment_id`: such a mention becomes a lookup, whose
    text ingest fetches with the Graph API (`sources/instagram.py`) before matching it.
    """
    media_id = _graph_id(value["media_id"], "media_id")
    comment_id = _graph_id(value["comment_id"], "comment_id") if value.get("comment_id") else None
    native_id = f"{media_id}_{comment_id}" if comment_id else media_id
    text = value.get("text") or value.get("caption")
    if not text:
        if not entry.get("id"):
            raise ValueError("instagram mention without text and without the account id")
        _graph_id(entry["id"], "entry id")  # it becomes the path of the Graph API lookup
        return MentionLookup(
            index=-1,
            platform="instagram",
            native_id=native_id,
            account_id=str(entry["id"]),
            media_id=media_id,
            comment_id=comment_id,
            announced_at=_created_at(value, entry.get("time")),
        )
    return MentionIn.model_validate(
        {
            "platform": "instagram",
            "native_id": native_id,
            "text": text,
            "author": _author(value.get("from"), instagram=True),
            "created_at": _created_at(value, entry.get("time")),
            "in_reply_to": media_id if comment_id else None,
        }
    )


def _map_change(obj: str, change: Any, entry: dict[str, Any]) -> MentionIn | MentionLookup | None:
    if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
        raise ValueError("change must be an object with an object 'value'")
    name, value, entry_time = change.get("field"), change["value"], entry.get("time")
    if obj == "page":
        return _page_feed(value, entry_time) if name == "feed" else None
    if name == "comments":
        return _instagram_comment(value, entry_time)
    if name == "mentions":
        return _instagram_mention(value, entry)
    return None


def map_meta_delivery(payload: Any) -> Mapped:
    """Map one delivery; `BadPayloadError` only when the envelope itself is unusable."""
    if not isinstance(payload, dict):
        raise BadPayloadError("body must be a JSON object")
    obj, entries = payload.get("object"), payload.get("entry")
    if not isinstance(entries, list):
        raise BadPayloadError("'entry' must be a list")
    result = Mapped()
    index = -1
    for entry_no, entry in enumerate(entries):
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            # Messenger-style entries carry `messaging`, not `changes`: not mentions.
            result.ignored += 1
            continue
        for change_no, change in enumerate(changes):
            index += 1
            if obj not in ("page", "instagram"):
                result.ignored += 1
                continue
            try:
                mention = _map_change(str(obj), change, entry)
            except (ValidationError, KeyError, ValueError, TypeError) as exc:
                where = f"entry[{entry_no}].changes[{change_no}]"
                result.rejected.append(
                    RejectedItem(index=index, reason=f"{where}: {reason_of(exc)}")
                )
                continue
            if isinstance(mention, MentionLookup):
                result.lookups.append(dataclasses.replace(mention, index=index))
            elif mention is None or mention.author.id == str(entry.get("id")):
                # Our own page or account posting (e.g. our replies) is not a mention.
                result.ignored += 1
            else:
                result.items.append(mention)
    return result
