"""MongoDB collections of the publisher service, their indexes, and the repositories over them.

Every state change of a post is a compare-and-set on its `status` (and, while it is being
sent, on the `claim_token` of the replica holding it), so a cancel and a due send can race
and exactly one of them wins.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.events import (
    ApproveCommand,
    CancelCommand,
    ClassifiedMention,
    RescheduleCommand,
    ScheduleCommand,
)
from shared.mongo import Document

COMMANDS = "publisher_commands"
CHANNELS = "publisher_channels"
POSTS = "publisher_posts"
RATE_WINDOWS = "publisher_rate_windows"
MENTIONS = "publisher_mention_trackers"
SECRET_BINDINGS = "publisher_secret_bindings"  # noqa: S105 - a collection name
#: How long the publisher remembers a review mention's trackers (replies come within days).
MENTION_DAYS = 90

INDEXES: dict[str, list[IndexModel]] = {
    COMMANDS: [IndexModel([("post_id", ASCENDING), ("received_at", ASCENDING)], name="post")],
    CHANNELS: [],
    POSTS: [
        # The scheduler's one index: due scheduled posts, and (because a claim sets `due_at`
        # to the lease's end) publishing posts whose lease expired. Few indexes keep the
        # claim and outcome writes cheap.
        IndexModel([("status", ASCENDING), ("due_at", ASCENDING)], name="due"),
        IndexModel(
            [("channel_id", ASCENDING), ("status", ASCENDING), ("scheduled_for", ASCENDING)],
            name="channel",
        ),
        IndexModel([("series_id", ASCENDING)], name="series", sparse=True),
        # "Add to queue": one live post per channel slot (the field is removed when released).
        IndexModel([("queue_slot", ASCENDING)], name="queue_slot", unique=True, sparse=True),
        IndexModel([("created_at", ASCENDING), ("_id", ASCENDING)], name="listing"),
    ],
    RATE_WINDOWS: [IndexModel([("expires_at", ASCENDING)], name="ttl", expireAfterSeconds=0)],
    SECRET_BINDINGS: [],  # by `_id`, the reference: at most one destination each
    MENTIONS: [
        IndexModel([("seen_at", ASCENDING)], name="ttl", expireAfterSeconds=MENTION_DAYS * 86_400)
    ],
}

AnyPostCommand = ScheduleCommand | RescheduleCommand | CancelCommand | ApproveCommand


class CommandInbox:
    """Every post command received, once per `event_id` (redelivery is a no-op)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._commands = db[COMMANDS]

    async def add(self, command: AnyPostCommand) -> bool:
        """Record the command; False when it was already recorded."""
        document = command.model_dump(mode="json")
        document["_id"] = str(command.event_id)
        document["received_at"] = command.occurred_at
        try:
            await self._commands.insert_one(document)
        except DuplicateKeyError:
            return False
        return True

    async def for_post(
        self, post_id: str, after: tuple[datetime, str] | None = None, limit: int = 1000
    ) -> list[Document]:
        """The post's commands, oldest first, after the (received_at, id) `after`."""
        query: Document = {"post_id": post_id}
        if after is not None:
            received, command_id = after
            query["$or"] = [
                {"received_at": {"$gt": received}},
                {"received_at": received, "_id": {"$gt": command_id}},
            ]
        cursor = self._commands.find(query).sort([("received_at", ASCENDING), ("_id", ASCENDING)])
        return await cursor.limit(limit).to_list(limit)


class MentionTrackers:
    """The trackers of the mentions routed to review: what a reply's channel is checked against."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._mentions = db[MENTIONS]

    async def record(self, mentions: Sequence[ClassifiedMention], seen_at: datetime) -> None:
        """Remember each mention's trackers (a redelivery writes the same again)."""
        if mentions:
            await self._mentions.bulk_write(
                [
                    UpdateOne(
                        {"_id": m.mention_id},
                        {"$set": {"tracker_ids": list(m.tracker_ids), "seen_at": seen_at}},
                        upsert=True,
                    )
                    for m in mentions
                ],
                ordered=False,
            )

    async def of(self, mention_id: str) -> list[str] | None:
        """The mention's trackers, or None when the publisher has not seen it."""
        found = await self._mentions.find_one({"_id": mention_id}, {"tracker_ids": 1})
        return None if found is None else list(found.get("tracker_ids") or [])


class ChannelStore:
    """Channels; the secret itself is never here, only its reference."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._channels = db[CHANNELS]

    async def create(self, document: Document) -> bool:
        try:
            await self._channels.insert_one(document)
        except DuplicateKeyError:
            return False
        return True

    async def get(self, channel_id: str) -> Document | None:
        return await self._channels.find_one({"_id": channel_id})

    async def all(self) -> list[Document]:
        return await self._channels.find({}).sort("_id").to_list(None)

    async def page(self, after: str | None, limit: int) -> list[Document]:
        query: Document = {} if after is None else {"_id": {"$gt": after}}
        return await self._channels.find(query).sort("_id").limit(limit).to_list(limit)

    async def using_secrets(self, refs: Sequence[str], exclude: str) -> list[Document]:
        """Other channels that reference any of `refs` (as credential or signing secret)."""
        return await self._channels.find(
            {
                "_id": {"$ne": exclude},
                "$or": [
                    {"credential_ref": {"$in": list(refs)}},
                    {"signing_secret_ref": {"$in": list(refs)}},
                ],
            }
        ).to_list(100)

    async def many(self, channel_ids: Collection[str]) -> list[Document]:
        return await self._channels.find({"_id": {"$in": list(channel_ids)}}).to_list(None)

    async def update(
        self,
        channel_id: str,
        changes: Document,
        expected_state: str | None = None,
        expected: Mapping[str, object] | None = None,
    ) -> Document | None:
        """Apply `changes`; None when the channel is missing (or not in `expected_state`, or
        its fields differ from `expected`, when given; None there also matches a missing
        field)."""
        query: Document = {"_id": channel_id, **(expected or {})}
        if expected_state is not None:
            query["state"] = expected_state
        return await self._channels.find_one_and_update(
            query, {"$set": changes}, return_document=ReturnDocument.AFTER
        )

    async def pause(self, channel_id: str, until: datetime) -> None:
        """Hold the channel's sends until `until` (a later pause wins over an earlier one)."""
        await self._channels.update_one(
            {"_id": channel_id, "$or": [{"paused_until": None}, {"paused_until": {"$lt": until}}]},
            {"$set": {"paused_until": until}},
        )


class SecretBindings:
    """Where each secret reference may be sent: written once, never changed or released.

    The insert is the check: of two writers binding one reference to two places, exactly
    one insert succeeds, and the other reads the winner's binding.
    """

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._bindings = db[SECRET_BINDINGS]

    async def of(self, references: Collection[str]) -> dict[str, Document]:
        """The existing bindings of `references`, by reference."""
        found = await self._bindings.find({"_id": {"$in": list(references)}}).to_list(None)
        return {binding["_id"]: binding for binding in found}

    async def bind(self, binding: Document) -> Document:
        """Insert `binding` unless its reference is bound; the binding in force either way."""
        try:
            await self._bindings.insert_one(binding)
        except DuplicateKeyError:
            existing = await self._bindings.find_one({"_id": binding["_id"]})
            if existing is None:  # bindings are never deleted; only an operator could
                raise
            return existing
        return binding


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to write for one sent post: its new fields (guarded by the claim token)."""

    post_id: str
    changes: Document


class PostStore:
    """Posts and recurring series, and the scheduler's lease-based claims."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._posts = db[POSTS]

    async def insert(self, document: Document) -> bool:
        """Insert; False when the id exists (a redelivered command or a racing replica)."""
        try:
            await self._posts.insert_one(document)
        except DuplicateKeyError:
            return False
        return True

    async def insert_many(self, documents: Sequence[Document]) -> None:
        if documents:
            await self._posts.insert_many(list(documents), ordered=False)

    async def get(self, post_id: str) -> Document | None:
        return await self._posts.find_one({"_id": post_id})

    async def change(
        self,
        post_id: str,
        statuses: Sequence[str],
        changes: Document,
        expected_version: int | None = None,
        add_to_set: Document | None = None,
    ) -> Document | None:
        """Compare-and-set: apply `changes` only while the post is in one of `statuses`
        (and at `expected_version`, when given). `add_to_set`: values added to array fields
        in the same write (two concurrent editors both end up in the list)."""
        query: Document = {"_id": post_id, "status": {"$in": list(statuses)}}
        if expected_version is not None:
            query["version"] = expected_version
        update = _set_or_unset(changes)
        if add_to_set:
            update["$addToSet"] = dict(add_to_set)
        return await self._posts.find_one_and_update(
            query, update, return_document=ReturnDocument.AFTER
        )

    async def insert_unique_slot(self, document: Document) -> bool:
        """Insert a queued post; False when its id exists, DuplicateKeyError when its slot does."""
        try:
            await self._posts.insert_one(document)
        except DuplicateKeyError:
            if await self._posts.find_one({"_id": document["_id"]}, {"_id": 1}) is not None:
                return False
            raise
        return True

    async def search(
        self, query: Document, after: tuple[datetime, str] | None, limit: int
    ) -> list[Document]:
        if after is not None:
            created, post_id = after
            query = {
                **query,
                "$or": [
                    {"created_at": {"$gt": created}},
                    {"created_at": created, "_id": {"$gt": post_id}},
                ],
            }
        cursor = self._posts.find(query).sort([("created_at", ASCENDING), ("_id", ASCENDING)])
        return await cursor.limit(limit).to_list(limit)

    async def taken_times(self, channel_id: str, after: datetime) -> set[datetime]:
        """Times already used by the channel's live posts (for "add to queue")."""
        times = await self._posts.distinct(
            "scheduled_for",
            {
                "channel_id": channel_id,
                "kind": "post",
                "status": {"$in": ["draft", "awaiting_approval", "scheduled", "publishing"]},
                "scheduled_for": {"$gt": after},
            },
        )
        return {t for t in times if isinstance(t, datetime)}

    async def pending_of_series(self, series_id: str) -> list[Document]:
        return await self._posts.find(
            {"series_id": series_id, "status": {"$in": ["awaiting_approval", "scheduled"]}}
        ).to_list(None)

    async def claim_due(
        self,
        owner: str,
        now: datetime,
        lease: timedelta,
        limit: int,
        blocked_channels: Sequence[str],
        ahead: timedelta = timedelta(0),
    ) -> list[Document]:
        """Claim up to `limit` due posts for `owner` in a few round trips, whatever `limit` is.

        Scheduled posts due before `now + ahead` become `publishing` (each keeps its due time
        as `claimed_due`, so the sender waits for it); posts whose lease expired while
        `publishing` (their replica died mid-send) are taken over and flagged `uncertain`, so
        the sender asks the network before sending again.
        """
        token = uuid.uuid4().hex
        blocked = {"channel_id": {"$nin": list(blocked_channels)}} if blocked_channels else {}
        due = (
            await self._posts.find(
                {"status": "scheduled", "due_at": {"$lte": now + ahead}, **blocked},
                {"_id": 1, "due_at": 1},
            )
            .sort("due_at", ASCENDING)
            .limit(limit)
            .to_list(limit)
        )
        expired = (
            await self._posts.find(
                {"status": "publishing", "due_at": {"$lt": now}, **blocked}, {"_id": 1}
            )
            .limit(max(1, limit // 4))
            .to_list(None)
        )
        if not due and not expired:
            return []
        lease_until = now + lease
        lease_fields = {
            "lease_owner": owner,
            "lease_until": lease_until,
            "due_at": lease_until,  # a publishing post is "due" for take-over when its lease ends
            "claim_token": token,
        }
        if due:
            await self._posts.update_many(
                {"_id": {"$in": [d["_id"] for d in due]}, "status": "scheduled"},
                {
                    "$set": {**lease_fields, "status": "publishing", "claimed_at": now},
                    "$inc": {"attempt": 1, "version": 1},
                },
            )
        if expired:
            await self._posts.update_many(
                {
                    "_id": {"$in": [d["_id"] for d in expired]},
                    "status": "publishing",
                    "due_at": {"$lt": now},
                },
                {"$set": {**lease_fields, "uncertain": True, "claimed_at": now}},
            )
        due_at = {d["_id"]: d["due_at"] for d in due}
        candidates = [*due_at, *(d["_id"] for d in expired)]
        claimed = await self._posts.find(
            {"_id": {"$in": candidates}, "claim_token": token}
        ).to_list(None)
        for post in claimed:
            post["claimed_due"] = due_at.get(post["_id"], now)
        return claimed

    async def finish(self, token: str, outcomes: Sequence[Outcome]) -> set[str]:
        """Write the outcome of each claimed post, only if this claim still holds it.

        Returns the ids whose claim was lost (another replica took the post over).
        """
        if not outcomes:
            return set()
        released = {"claim_token": None, "lease_owner": None, "lease_until": None}
        requests = [
            UpdateOne(
                {"_id": o.post_id, "claim_token": token, "status": "publishing"},
                _set_or_unset({**o.changes, **released}),
            )
            for o in outcomes
        ]
        result = await self._posts.bulk_write(requests, ordered=False)
        if result.matched_count == len(outcomes):
            return set()
        still = await self._posts.distinct(
            "_id", {"_id": {"$in": [o.post_id for o in outcomes]}, "claim_token": token}
        )
        return {o.post_id for o in outcomes} - set(still)

    async def release(self, token: str, post_ids: Sequence[str], due_at: datetime) -> None:
        """Give claimed posts back (rate limit, paused channel) without counting an attempt."""
        if post_ids:
            await self._posts.update_many(
                {"_id": {"$in": list(post_ids)}, "claim_token": token, "status": "publishing"},
                {
                    "$set": {"status": "scheduled", "due_at": due_at},
                    "$unset": {"claim_token": "", "lease_owner": "", "lease_until": ""},
                    "$inc": {"attempt": -1, "version": 1},
                },
            )

    async def counts(self) -> list[Document]:
        """Posts per status and platform (for the metrics gauge)."""
        cursor = await self._posts.aggregate(
            [
                {"$match": {"kind": "post"}},
                {
                    "$group": {
                        "_id": {"status": "$status", "platform": "$platform"},
                        "n": {"$sum": 1},
                    }
                },
            ]
        )
        return await cursor.to_list(None)


def _set_or_unset(changes: Document) -> Document:
    """`$set` the given values, `$unset` the fields given as None (sparse indexes skip them)."""
    update: Document = {"$inc": {"version": 1}}
    present = {key: value for key, value in changes.items() if value is not None}
    absent = {key: "" for key, value in changes.items() if value is None}
    if present:
        update["$set"] = present
    if absent:
        update["$unset"] = absent
    return update


class RateWindows:
    """Fixed-window send budgets per channel, shared by every replica."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._windows = db[RATE_WINDOWS]

    async def reserve(
        self, channel_id: str, max_posts: int, per_seconds: int, now: datetime, wanted: int
    ) -> tuple[int, datetime]:
        """How many of `wanted` sends fit in the current window, and when the window ends."""
        epoch = int(now.timestamp()) // per_seconds
        ends = datetime.fromtimestamp((epoch + 1) * per_seconds, tz=now.tzinfo)
        window: dict[str, Any] | None = await self._windows.find_one_and_update(
            {"_id": f"{channel_id}:{per_seconds}:{epoch}"},
            {"$inc": {"used": wanted}, "$setOnInsert": {"expires_at": ends + timedelta(hours=1)}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        used = int(window["used"]) if window else wanted
        before = used - wanted
        granted = max(0, min(wanted, max_posts - before))
        if granted < wanted:  # give back what we could not use
            await self._windows.update_one(
                {"_id": f"{channel_id}:{per_seconds}:{epoch}"}, {"$inc": {"used": granted - wanted}}
            )
        return granted, ends
