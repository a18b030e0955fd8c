"""Instagram @mentions: fetch the caption or comment that a `mentions` webhook only names.

Meta's webhook says "account X was mentioned in media M (comment C)" and nothing more. The
Instagram Graph API gives the text to the mentioned account only, through
`GET /{account}?fields=mentioned_media.media_id(M){…}` or `mentioned_comment.comment_id(C){…}`
with the account's access token (`SMM_META_ACCESS_TOKEN`). Lookups wait in MongoDB
(`LookupQueue`), so a webhook answers at once and a Graph API outage loses nothing: transient
errors are retried with backoff, permanent ones (deleted media, no permission) end as
`failed` with the reason.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
from prometheus_client import Counter

from services.ingest.domain.batch import MentionLookup, MentionSink
from services.ingest.domain.normalise import MentionIn
from services.ingest.storage import LookupQueue
from shared.events import utc_now
from shared.logging import get_logger
from shared.metrics import registry

log = get_logger(__name__)

LOOKUPS = Counter(
    "smm_ingest_lookups_total",
    "Mentions whose content was fetched from a platform API, by outcome "
    "(resolved, retried, failed).",
    ["platform", "outcome"],
    registry=registry,
)
MEDIA_FIELDS = "caption,timestamp,permalink,username,like_count,comments_count"
COMMENT_FIELDS = "text,timestamp,username,like_count,media{id,permalink}"
#: Graph API error codes that mean "slow down" (app, user and page rate limits).
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 80001, 80002})
MAX_ATTEMPTS = 8


class PermanentLookupError(Exception):
    """The platform will never give this content (deleted, private, no permission)."""


class TransientLookupError(Exception):
    """Try again later; `delay` is what the platform asked for, if it said. `counts` is False
    for errors that say nothing about the lookup itself (a refused token): those never make
    the lookup give up."""

    def __init__(self, reason: str, delay: float | None = None, *, counts: bool = True) -> None:
        super().__init__(reason)
        self.delay = delay
        self.counts = counts


def lookup_document(lookup: MentionLookup) -> dict[str, Any]:
    """What the queue stores for a lookup (its `_id` is the mention's native id)."""
    return {
        "_id": lookup.native_id,
        "platform": lookup.platform,
        "account_id": lookup.account_id,
        "media_id": lookup.media_id,
        "comment_id": lookup.comment_id,
        "announced_at": lookup.announced_at,
    }


def graph_time(value: Any) -> datetime:
    """Graph API timestamps look like `2026-11-20T09:15:00+0000`."""
    return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S%z")


def to_mention(lookup: dict[str, Any], found: dict[str, Any]) -> MentionIn:
    """Map a `mentioned_media` or `mentioned_comment` object to the mention it announced."""
    comment_id = lookup.get("comment_id")
    text = found.get("text") if comment_id else found.get("caption")
    if not text:
        raise PermanentLookupError("the mentioned media or comment has no text")
    username = found.get("username")
    media = found.get("media")
    media = media if isinstance(media, dict) else {}
    likes = found.get("like_count")
    comments = found.get("comments_count")
    return MentionIn.model_validate(
        {
            "platform": "instagram",
            "native_id": lookup["_id"],
            "url": found.get("permalink") or media.get("permalink"),
            "text": str(text),
            "author": {
                "id": str(username or "unknown"),
                "handle": f"@{username}" if username else None,
                "display_name": username,
            },
            "created_at": graph_time(found["timestamp"])
            if found.get("timestamp")
            else lookup["announced_at"],
            "in_reply_to": lookup["media_id"] if comment_id else None,
            "metrics": {
                "likes": likes if isinstance(likes, int) and likes >= 0 else None,
                "comments": comments if isinstance(comments, int) and comments >= 0 else None,
            },
        }
    )


class InstagramMentionResolver:
    """Background worker: fetch due lookups, hand the mentions to the intake, retry or fail."""

    def __init__(
        self,
        queue: LookupQueue,
        http: httpx.AsyncClient,
        sink: MentionSink,
        access_token: str,
        graph_url: str,
        *,
        batch: int = 20,
        lease: timedelta = timedelta(minutes=2),
        rng: random.Random | None = None,
    ) -> None:
        self.queue = queue
        self.http = http
        self.sink = sink
        self.access_token = access_token
        self.graph_url = graph_url.rstrip("/")
        self.batch = batch
        self.lease = lease
        self.rng = rng or random.Random()

    async def run(self, idle: float = 5.0) -> None:
        while True:
            handled = await self.resolve_due()
            await asyncio.sleep(0.5 if handled else idle)

    async def resolve_due(self) -> int:
        """One round: the number of lookups handled (resolved, retried or failed)."""
        due = await self.queue.claim_due(utc_now(), self.lease, self.batch)
        resolved: list[tuple[str, MentionIn]] = []
        for lookup in due:
            outcome = await self._resolve(lookup)
            if outcome is not None:
                resolved.append((lookup["_id"], outcome))
        if resolved:
            # Raises if Kafka did not acknowledge: the leases expire and the lookups are redone.
            await self.sink([mention for _, mention in resolved], "webhook")
            await self.queue.done([lookup_id for lookup_id, _ in resolved])
            LOOKUPS.labels("instagram", "resolved").inc(len(resolved))
        return len(due)

    async def _resolve(self, lookup: dict[str, Any]) -> MentionIn | None:
        try:
            return to_mention(lookup, await self.fetch(lookup))
        except PermanentLookupError as exc:
            await self._fail(lookup, str(exc))
        except TransientLookupError as exc:
            await self._retry(lookup, str(exc), exc.delay, counts=exc.counts)
        except httpx.HTTPError as exc:
            await self._retry(lookup, f"graph API unreachable: {type(exc).__name__}", None)
        except (ValueError, KeyError, TypeError) as exc:  # an answer we cannot map
            await self._fail(lookup, f"unmappable answer: {exc!r}"[:300])
        return None

    async def fetch(self, lookup: dict[str, Any]) -> dict[str, Any]:
        """The mentioned media or comment, as the Graph API returns it."""
        if lookup.get("comment_id"):
            edge = "mentioned_comment"
            fields = f"{edge}.comment_id({lookup['comment_id']}){{{COMMENT_FIELDS}}}"
        else:
            edge = "mentioned_media"
            fields = f"{edge}.media_id({lookup['media_id']}){{{MEDIA_FIELDS}}}"
        response = await self.http.get(
            f"{self.graph_url}/{lookup['account_id']}",
            params={"fields": fields},
            headers={"Authorization": f"Bearer {self.access_token}"},
        )
        body = response.json() if response.content else {}
        if response.is_success:
            found = body.get(edge)
            if not isinstance(found, dict):
                raise PermanentLookupError(f"the answer holds no {edge}")
            return dict(found)
        error = body.get("error") if isinstance(body, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        message = str(error.get("message"))[:200] if isinstance(error, dict) else ""
        if response.status_code == 429 or code in RATE_LIMIT_CODES:
            retry_after = response.headers.get("retry-after")
            delay = float(retry_after) if retry_after and retry_after.isdigit() else 600.0
            raise TransientLookupError(f"rate limited ({code}): {message}", delay)
        if response.status_code in (401, 403) or code == 190:
            # The token expired or lacks a permission: keep the lookup until it is fixed.
            raise TransientLookupError(
                f"access token refused ({code}): {message}", 3600.0, counts=False
            )
        if response.status_code >= 500:
            raise TransientLookupError(f"graph API answered {response.status_code}")
        raise PermanentLookupError(f"graph API answered {response.status_code} ({code}): {message}")

    async def _retry(
        self, lookup: dict[str, Any], reason: str, delay: float | None, *, counts: bool = True
    ) -> None:
        attempts = int(lookup.get("attempts", 0)) + 1
        if counts and attempts >= MAX_ATTEMPTS:
            await self._fail(lookup, f"gave up after {attempts} attempts: {reason}")
            return
        backoff = delay if delay is not None else min(30.0 * 2**attempts, 6 * 3600.0)
        at = utc_now() + timedelta(seconds=backoff * self.rng.uniform(1.0, 1.25))
        await self.queue.retry_later(lookup["_id"], reason, at, count=counts)
        LOOKUPS.labels("instagram", "retried").inc()
        log.warning(
            "mention lookup retried", mention_id=f"instagram:{lookup['_id']}", reason=reason
        )

    async def _fail(self, lookup: dict[str, Any], reason: str) -> None:
        await self.queue.fail(lookup["_id"], reason)
        LOOKUPS.labels("instagram", "failed").inc()
        log.warning("mention lookup failed", mention_id=f"instagram:{lookup['_id']}", reason=reason)


def documents_of(lookups: Sequence[MentionLookup]) -> list[dict[str, Any]]:
    return [lookup_document(lookup) for lookup in lookups]
