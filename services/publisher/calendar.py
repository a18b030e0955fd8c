"""The content calendar: every post change, from the API and from commands, goes through here.

Changes are compare-and-set on the post's status in MongoDB, then announced as a PostEvent on
smm.posts.events.v1. Edits and cancels win until a scheduler replica has claimed the post
(`publishing`); after that they answer 409, and a cancelled post is never claimed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pymongo.errors import DuplicateKeyError

from services.publisher.domain.channels import reply_channel_problem
from services.publisher.domain.posts import CHANGEABLE, FINAL, PostPatch, self_approval_problem
from services.publisher.domain.text_rules import PostRuleError, check_post
from services.publisher.domain.timing import (
    Slot,
    TimingError,
    compact_instant,
    next_free_slot,
    next_occurrence,
    validate_recurrence,
)
from services.publisher.errors import DomainError
from services.publisher.metrics import TRANSITIONS
from services.publisher.storage import ChannelStore, MentionTrackers, PostStore
from shared.events import PostError, PostEvent, utc_now
from shared.logging import get_logger
from shared.mongo import Document

log = get_logger(__name__)

#: A `publish_at` this far in the past is still accepted (sent at once); older is a mistake.
PAST_GRACE = timedelta(minutes=10)
EmitEvents = Callable[[Sequence[PostEvent]], Awaitable[None]]


@dataclass(frozen=True)
class PostRequest:
    """A new post, from `POST /v1/posts` or a `schedule` command."""

    post_id: str
    channel_id: str
    text: str
    media: list[str]
    publish_at: datetime | None
    rrule: str | None
    cron: str | None
    timezone: str | None
    in_reply_to_mention_id: str | None
    requires_approval: bool
    idempotency_key: str | None
    draft: bool
    actor: str


def event_of(post: Document, error: PostError | None = None) -> PostEvent:
    """The PostEvent announcing `post`'s current state."""
    stored_error = post.get("error")
    if error is None and stored_error:
        error = PostError.model_validate(stored_error)
    return PostEvent(
        post_id=post["_id"],
        status=post["status"],
        channel_id=post["channel_id"],
        platform=post.get("platform"),
        native_post_id=post.get("native_post_id"),
        url=post.get("url"),
        scheduled_for=post.get("scheduled_for"),
        published_at=post.get("published_at"),
        attempt=max(0, int(post.get("attempt", 0))),
        error=error,
        in_reply_to_mention_id=post.get("in_reply_to_mention_id"),
    )


def public_post(post: Document) -> dict[str, Any]:
    """A post as the API shows it (no lease internals)."""
    hidden = {"_id", "claim_token", "lease_owner", "due_at", "queue_slot"}
    return {"id": post["_id"], **{k: v for k, v in post.items() if k not in hidden}}


class Calendar:
    def __init__(
        self,
        posts: PostStore,
        channels: ChannelStore,
        emit: EmitEvents,
        *,
        min_recurrence_seconds: int = 60,
        mentions: MentionTrackers | None = None,
        channel_trackers: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._posts = posts
        self._channels = channels
        self._emit = emit
        self._min_recurrence_seconds = min_recurrence_seconds
        self._mentions = mentions
        #: SMM_METRICS_CHANNEL_TRACKERS: the same brands the KPIs count a channel for.
        self._channel_trackers = channel_trackers or {}

    async def announce(self, posts: Sequence[Document], error: PostError | None = None) -> None:
        events = [event_of(post, error) for post in posts if post.get("kind", "post") == "post"]
        for event in events:
            TRANSITIONS.labels(event.status, event.platform or "unknown").inc()
        await self._emit(events)

    # --- creation ------------------------------------------------------------------------

    async def create(
        self, request: PostRequest, *, mention_wait: float = 0.0
    ) -> tuple[Document, bool]:
        """The new post (or series); False when `post_id` existed with the same request.

        `mention_wait`: how long a reply may wait for its mention to become known (a command
        from Kafka can overtake the mention on the other topic).
        """
        existing = await self._posts.get(request.post_id)
        if existing is not None:
            return self._same_request(existing, request), False
        channel = await self._channels.get(request.channel_id)
        if channel is None:
            raise DomainError(422, "unknown_channel", f"no channel '{request.channel_id}'")
        platform = channel["platform"]
        try:
            check_post(platform, request.text, request.media)
        except PostRuleError as exc:
            raise DomainError(422, exc.code, exc.message) from exc
        self._check_reply(platform, request.in_reply_to_mention_id)
        if request.in_reply_to_mention_id is not None:
            await self._check_reply_channel(channel, request.in_reply_to_mention_id, mention_wait)
        zone = ZoneInfo(request.timezone or channel.get("timezone") or "UTC")
        now = utc_now()
        needs_approval = bool(channel.get("approval_required")) or request.requires_approval
        base: Document = {
            "channel_id": request.channel_id,
            "platform": platform,
            "text": request.text,
            "media": request.media,
            "timezone": zone.key,
            "in_reply_to_mention_id": request.in_reply_to_mention_id,
            "requires_approval": needs_approval,
            "idempotency_key": request.idempotency_key or request.post_id,
            "created_by": request.actor,
            # Who wrote the content since the last approval (four eyes keeps them out).
            "authored_by": [request.actor],
            "created_at": now,
            "updated_at": now,
            "attempt": 0,
            "version": 1,
        }
        if request.rrule is not None or request.cron is not None:
            return await self._create_series(request, base, zone, now), True
        status = (
            "draft" if request.draft else ("awaiting_approval" if needs_approval else "scheduled")
        )
        post: Document = {"_id": request.post_id, "kind": "post", **base, "status": status}
        if request.publish_at is not None:
            if request.publish_at < now - PAST_GRACE:
                raise DomainError(422, "publish_at_in_past", "publish_at lies in the past")
            post["scheduled_for"] = request.publish_at
        elif request.in_reply_to_mention_id is not None:
            post["scheduled_for"] = now  # an answer goes out as soon as it may, not in a slot
        else:
            return await self._insert_queued(post, channel, zone, now), True
        post["due_at"] = post["scheduled_for"] if status == "scheduled" else None
        if not await self._posts.insert(post):
            raise DomainError(409, "conflict", f"post '{request.post_id}' exists")
        await self.announce([post])
        return post, True

    def _same_request(self, existing: Document, request: PostRequest) -> Document:
        same = (
            existing.get("idempotency_key") == (request.idempotency_key or request.post_id)
            and existing.get("channel_id") == request.channel_id
            and existing.get("text") == request.text
        )
        if not same:
            raise DomainError(
                409, "conflict", f"post '{request.post_id}' exists with other content"
            )
        return existing

    def _check_reply(self, platform: str, mention_id: str | None) -> None:
        if mention_id is None:
            return
        mention_platform, _, native = mention_id.partition(":")
        if not native:
            raise DomainError(422, "invalid_reply", "in_reply_to_mention_id must be platform:id")
        if mention_platform != platform:
            raise DomainError(
                422,
                "reply_platform_mismatch",
                f"a reply to a {mention_platform} mention must go to a {mention_platform} channel",
            )
        if platform == "linkedin":
            raise DomainError(422, "reply_not_supported", "replies on LinkedIn are not supported")

    async def _check_reply_channel(
        self, channel: Document, mention_id: str, wait: float = 0.0
    ) -> None:
        """A reply goes out only on a channel mapped to one of the mention's trackers."""
        trackers = set(channel.get("tracker_ids") or []) | set(
            self._channel_trackers.get(channel["_id"], [])
        )
        if not trackers:
            return
        known = await self._mention_trackers(mention_id, wait)
        problem = reply_channel_problem(channel["_id"], trackers, known)
        if problem is not None:
            raise DomainError(422, "reply_channel_not_mapped", problem)

    async def _mention_trackers(self, mention_id: str, wait: float) -> list[str] | None:
        if self._mentions is None:
            return None
        deadline = time.monotonic() + wait
        while True:
            known = await self._mentions.of(mention_id)
            if known is not None or time.monotonic() >= deadline:
                return known
            await asyncio.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

    async def _insert_queued(
        self, post: Document, channel: Document, zone: ZoneInfo, now: datetime
    ) -> Document:
        """Buffer-style "add to queue": the channel's next slot no live post occupies."""
        slots = [Slot.model_validate(s) for s in channel.get("slots") or []]
        if not slots:
            raise DomainError(
                422, "no_free_slot", "the channel has no posting slots: give publish_at"
            )
        taken = await self._posts.taken_times(post["channel_id"], now)
        for _ in range(20):  # a racing request may take the same slot: try the next one
            slot = next_free_slot(slots, zone, now, taken)
            if slot is None:
                raise DomainError(422, "no_free_slot", "every slot of the next year is taken")
            post.update(
                scheduled_for=slot,
                queue_slot=f"{post['channel_id']}@{compact_instant(slot)}",
                due_at=slot if post["status"] == "scheduled" else None,
            )
            try:
                inserted = await self._posts.insert_unique_slot(post)
            except DuplicateKeyError:
                taken.add(slot)
                continue
            if not inserted:
                raise DomainError(409, "conflict", f"post '{post['_id']}' exists")
            await self.announce([post])
            return post
        raise DomainError(409, "conflict", "could not reserve a free slot; retry")

    async def _create_series(
        self, request: PostRequest, base: Document, zone: ZoneInfo, now: datetime
    ) -> Document:
        try:
            # Off the event loop: a recurrence is cheap now, but a worker thread keeps even a
            # pathological one from stalling every other request and the scheduler.
            first = await asyncio.to_thread(
                validate_recurrence,
                request.rrule,
                request.cron,
                zone,
                now,
                self._min_recurrence_seconds,
            )
        except TimingError as exc:
            raise DomainError(422, "invalid_recurrence", str(exc)) from exc
        series: Document = {
            "_id": request.post_id,
            "kind": "series",
            **base,
            "status": "scheduled",
            "rrule": request.rrule,
            "cron": request.cron,
            "anchor": now,
            "draft": request.draft,
        }
        if not await self._posts.insert(series):
            raise DomainError(409, "conflict", f"post '{request.post_id}' exists")
        await self._add_instance(series, first)
        return series

    async def _add_instance(self, series: Document, when: datetime) -> Document | None:
        """The occurrence at `when`, with a deterministic id (a racing insert is a no-op)."""
        status = (
            "draft"
            if series.get("draft")
            else ("awaiting_approval" if series.get("requires_approval") else "scheduled")
        )
        keep = (
            "channel_id",
            "platform",
            "text",
            "media",
            "timezone",
            "requires_approval",
            "created_by",
            "in_reply_to_mention_id",
        )
        now = utc_now()
        instance_id = f"{series['_id']}@{compact_instant(when)}"
        instance: Document = {
            "_id": instance_id,
            "kind": "post",
            **{k: series.get(k) for k in keep},
            "series_id": series["_id"],
            # A series stored before authored_by existed: its creator (never null: editors
            # are added to this array).
            "authored_by": list(series.get("authored_by") or [series.get("created_by")]),
            "idempotency_key": instance_id,
            "status": status,
            "scheduled_for": when,
            "due_at": when if status == "scheduled" else None,
            "created_at": now,
            "updated_at": now,
            "attempt": 0,
            "version": 1,
        }
        if not await self._posts.insert(instance):
            return None
        await self.announce([instance])
        return instance

    async def advance_series(self, series_id: str, after: datetime) -> None:
        """Create the series' next occurrence after `after` (once one has finished)."""
        series = await self._posts.get(series_id)
        if series is None or series.get("status") != "scheduled":
            return
        zone = ZoneInfo(series.get("timezone") or "UTC")
        try:
            when = await asyncio.to_thread(
                lambda: next_occurrence(
                    rrule_text=series.get("rrule"),
                    cron=series.get("cron"),
                    zone=zone,
                    anchor=series["anchor"],
                    after=max(after, utc_now() - PAST_GRACE),
                )
            )
        except TimingError as exc:  # a series stored before today's rules: end it, visibly
            log.warning("series ended: its next occurrence cannot be computed", reason=str(exc))
            await self._posts.change(
                series_id,
                ["scheduled"],
                {
                    "status": "failed",
                    "ended": True,
                    "error": {"code": "invalid_recurrence", "message": str(exc)[:4000]},
                },
            )
            return
        if when is None:
            await self._posts.change(
                series_id, ["scheduled"], {"status": "published", "ended": True}
            )
            return
        await self._add_instance(series, when)

    # --- changes -------------------------------------------------------------------------

    async def get(self, post_id: str) -> Document:
        post = await self._posts.get(post_id)
        if post is None:
            raise DomainError(404, "not_found", f"no post '{post_id}'")
        return post

    async def _conflict(self, post_id: str, action: str) -> DomainError:
        post = await self.get(post_id)
        return DomainError(
            409,
            "conflict",
            f"cannot {action} a post that is {post['status']}"
            + (" (publishing has started)" if post["status"] == "publishing" else ""),
            {"status": post["status"], "version": post.get("version")},
        )

    async def edit(self, post_id: str, patch: PostPatch, actor: str) -> Document:
        post = await self.get(post_id)
        if post.get("kind") == "series":
            raise DomainError(409, "conflict", "edit the series' next occurrence, or cancel it")
        changes: Document = {"updated_at": utc_now(), "updated_by": actor}
        text = patch.text if patch.text is not None else post["text"]
        media = patch.media if patch.media is not None else post.get("media") or []
        try:
            check_post(post["platform"], text, media)
        except PostRuleError as exc:
            raise DomainError(422, exc.code, exc.message) from exc
        changes.update(text=text, media=media)
        status = post["status"]
        if patch.draft is True:
            status = "draft"
        elif patch.draft is False and status == "draft":
            status = "awaiting_approval" if post.get("requires_approval") else "scheduled"
        elif (
            status == "scheduled"
            and post.get("requires_approval")
            and (patch.text is not None or patch.media is not None)
        ):
            status = "awaiting_approval"  # changed content needs a new approval
        scheduled_for = post.get("scheduled_for")
        if patch.publish_at is not None:
            if patch.publish_at < utc_now() - PAST_GRACE:
                raise DomainError(422, "publish_at_in_past", "publish_at lies in the past")
            scheduled_for = patch.publish_at
            changes["queue_slot"] = None
        changes.update(
            status=status,
            scheduled_for=scheduled_for,
            due_at=scheduled_for if status == "scheduled" else None,
        )
        authors = [actor] if patch.changes_content else []
        if "authored_by" not in post and post.get("updated_by"):
            authors.append(post["updated_by"])  # stored before authored_by: keep its editor
        updated = await self._posts.change(
            post_id,
            sorted(CHANGEABLE),
            changes,
            expected_version=patch.expected_version,
            # Atomic: an editor is never lost to a concurrent edit, nor cleared by a later
            # change of publish_at alone.
            add_to_set={"authored_by": {"$each": authors}} if authors else None,
        )
        if updated is None:
            fresh = await self.get(post_id)
            if (
                patch.expected_version is not None
                and fresh.get("version") != patch.expected_version
            ):
                raise DomainError(
                    409,
                    "version_conflict",
                    "the post changed since you read it",
                    {"version": fresh.get("version")},
                )
            raise await self._conflict(post_id, "edit")
        await self.announce([updated])
        return updated

    async def reschedule(self, post_id: str, publish_at: datetime, actor: str) -> Document:
        return await self.edit(post_id, PostPatch(publish_at=publish_at), actor)

    async def cancel(self, post_id: str, reason: str, actor: str) -> Document:
        post = await self.get(post_id)
        if post["status"] == "cancelled":
            return post
        changes = {
            "status": "cancelled",
            "due_at": None,
            "queue_slot": None,
            "cancelled_by": actor,
            "cancel_reason": reason,
            "updated_at": utc_now(),
        }
        updated = await self._posts.change(post_id, sorted(CHANGEABLE), changes)
        if updated is None:
            raise await self._conflict(post_id, "cancel")
        if updated.get("kind") == "series":
            pending = await self._posts.pending_of_series(post_id)
            for instance in pending:
                done = await self._posts.change(instance["_id"], sorted(CHANGEABLE), changes)
                if done is not None:
                    await self.announce([done])
        else:
            await self.announce([updated])
            if updated.get("series_id"):
                await self.advance_series(updated["series_id"], updated["scheduled_for"])
        log.info("post cancelled", post_id=post_id, actor=actor)
        return updated

    async def approve(self, post_id: str, actor: str) -> Document:
        post = await self.get(post_id)
        if post["status"] == "scheduled":
            return post  # approving twice changes nothing
        if post["status"] == "awaiting_approval":
            channel = await self._channels.get(post["channel_id"]) or {}
            problem = self_approval_problem(post, actor, bool(channel.get("allow_self_approval")))
            if problem is not None:
                log.warning("self-approval refused", post_id=post_id, actor=actor)
                raise DomainError(403, "four_eyes", problem)
        changes = {
            "status": "scheduled",
            "due_at": post.get("scheduled_for") or utc_now(),
            "approved_by": actor,
            "approved_at": utc_now(),
            "updated_at": utc_now(),
            # The next content change starts a new set of authors (the creator stays in it).
            "authored_by": [post["created_by"]] if post.get("created_by") else [],
        }
        # Only the version checked above is approved: an edit in between (new text, a new
        # author) moved the version, and approving it unseen would defeat the check.
        updated = await self._posts.change(
            post_id, ["awaiting_approval"], changes, expected_version=post.get("version")
        )
        if updated is None:
            fresh = await self.get(post_id)
            if fresh.get("version") != post.get("version"):
                raise DomainError(
                    409,
                    "version_conflict",
                    "the post changed while it was being approved; review it again",
                    {"status": fresh["status"], "version": fresh.get("version")},
                )
            raise await self._conflict(post_id, "approve")
        await self.announce([updated])
        return updated

    async def record_rejected(self, request: PostRequest, error: DomainError) -> None:
        """A `schedule` command the domain refused: kept as a failed post, announced as such."""
        now = utc_now()
        post: Document = {
            "_id": request.post_id,
            "kind": "post",
            "channel_id": request.channel_id,
            "text": request.text,
            "status": "failed",
            "in_reply_to_mention_id": request.in_reply_to_mention_id,
            "error": {"code": error.code, "message": error.message, "retryable": False},
            "created_by": request.actor,
            "created_at": now,
            "updated_at": now,
            "attempt": 0,
            "version": 1,
        }
        if await self._posts.insert(post):
            await self.announce([post])


__all__ = ["FINAL", "Calendar", "PostRequest", "event_of", "public_post"]
