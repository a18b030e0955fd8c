"""MongoDB collections of the ingest service, their indexes, and the repositories over them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared.events import utc_now
from shared.mongo import Document

TRACKERS = "ingest_trackers"
SEEN = "ingest_seen"
CLAIMS = "ingest_claims"
CURSORS = "ingest_cursors"
WEBSUB = "ingest_websub_subscriptions"
ENGAGEMENT = "ingest_engagement_schedule"

#: A claim on a mention that was never confirmed as emitted is taken over after this long.
CLAIM_LEASE = timedelta(seconds=30)


def indexes(dedup_days: int) -> dict[str, list[IndexModel]]:
    """Collection → indexes; the de-duplication memory expires after `dedup_days`."""
    keep = int(timedelta(days=dedup_days).total_seconds())
    return {
        TRACKERS: [IndexModel([("group", ASCENDING)], name="group")],
        SEEN: [IndexModel([("at", ASCENDING)], name="seen_ttl", expireAfterSeconds=keep)],
        CLAIMS: [
            IndexModel([("claimed_at", ASCENDING)], name="claim_ttl", expireAfterSeconds=keep)
        ],
        CURSORS: [],
        WEBSUB: [IndexModel([("lease_expires_at", ASCENDING)], name="lease")],
        ENGAGEMENT: [
            IndexModel([("next_poll_at", ASCENDING), ("lease_until", ASCENDING)], name="due")
        ],
    }


class TrackerStore:
    """Trackers as the API writes them; `revision` tells replicas when to recompile."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._trackers = db[TRACKERS]

    async def all(self) -> list[Document]:
        return await self._trackers.find({}).sort("_id").to_list(None)

    async def get(self, tracker_id: str) -> Document | None:
        return await self._trackers.find_one({"_id": tracker_id})

    async def count(self) -> int:
        return await self._trackers.count_documents({})

    async def create(self, tracker: dict[str, Any]) -> bool:
        """Insert; False when the id exists already."""
        now = utc_now()
        document = {"_id": tracker["id"], **tracker, "created_at": now, "updated_at": now}
        try:
            await self._trackers.insert_one(document)
        except DuplicateKeyError:
            return False
        return True

    async def replace(self, tracker: dict[str, Any]) -> Document | None:
        """Update an existing tracker; None when it does not exist."""
        return await self._trackers.find_one_and_update(
            {"_id": tracker["id"]},
            {"$set": {**tracker, "updated_at": utc_now()}},
            return_document=ReturnDocument.AFTER,
        )

    async def delete(self, tracker_id: str) -> bool:
        result = await self._trackers.delete_one({"_id": tracker_id})
        return result.deleted_count == 1

    async def revision(self) -> tuple[int, datetime | None]:
        """A cheap fingerprint of the whole set: count and latest change."""
        latest = await self._trackers.find_one({}, sort=[("updated_at", -1)])
        return await self.count(), latest["updated_at"] if latest else None


class SeenStore:
    """Which mention ids were emitted, shared by every ingest replica (de-duplication).

    Insert-only, because inserts are what a MongoDB server does fastest: a replica first
    *claims* ids (an insert into `ingest_claims`), publishes, then records them as emitted
    (an insert into `ingest_seen`). A claim that never became "emitted" (crash, broker down)
    goes stale after `CLAIM_LEASE`, and whoever sees the mention next emits it: nothing is
    lost. The worst a crash can cause is one duplicate on Kafka, which consumers absorb.
    """

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._claims = db[CLAIMS]
        self._seen = db[SEEN]

    async def claim(self, mention_ids: Sequence[str]) -> set[str]:
        """The ids this caller now owns and must emit; the others are duplicates."""
        if not mention_ids:
            return set()
        now = utc_now()
        owned = set(mention_ids) - await _insert_new(
            self._claims, [{"_id": i, "claimed_at": now} for i in mention_ids]
        )
        taken = [i for i in mention_ids if i not in owned]
        if taken:
            owned |= await self._take_over_stale(taken, now)
        return owned

    async def _take_over_stale(self, mention_ids: Sequence[str], now: datetime) -> set[str]:
        stale = await self._claims.distinct(
            "_id", {"_id": {"$in": list(mention_ids)}, "claimed_at": {"$lt": now - CLAIM_LEASE}}
        )
        if not stale:
            return set()
        emitted = set(await self._seen.distinct("_id", {"_id": {"$in": stale}}))
        won: set[str] = set()
        for mention_id in stale:  # only claims abandoned by a crash or an outage
            if mention_id in emitted:
                continue
            document = await self._claims.find_one_and_update(
                {"_id": mention_id, "claimed_at": {"$lt": now - CLAIM_LEASE}},
                {"$set": {"claimed_at": now}},
            )
            if document is not None:
                won.add(mention_id)
        return won

    async def mark_emitted(self, mention_ids: Sequence[str]) -> None:
        if mention_ids:
            now = utc_now()
            await _insert_new(self._seen, [{"_id": i, "at": now} for i in mention_ids])

    async def release(self, mention_ids: Sequence[str]) -> None:
        """Give up claims whose publishing failed, so a retry is not held back by the lease."""
        if mention_ids:
            await self._claims.delete_many({"_id": {"$in": list(mention_ids)}})


async def _insert_new(collection: Any, documents: list[Document]) -> set[str]:
    """Insert all; return the ids that existed already (duplicate keys are not errors here)."""
    try:
        await collection.insert_many(documents, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != 11000 for error in errors):
            raise
        return {documents[error["index"]]["_id"] for error in errors}
    return set()


class CursorStore:
    """Where each poller resumes: one document per source key (e.g. `rss:<url>`)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._cursors = db[CURSORS]

    async def load(self, source_key: str) -> dict[str, Any]:
        document = await self._cursors.find_one({"_id": source_key})
        cursor: dict[str, Any] = document.get("cursor", {}) if document else {}
        return cursor

    async def save(self, source_key: str, cursor: dict[str, Any]) -> None:
        await self._cursors.update_one(
            {"_id": source_key},
            {"$set": {"cursor": cursor, "updated_at": utc_now()}},
            upsert=True,
        )

    async def record_outcome(self, source_key: str, error: str | None) -> None:
        """Last success or error, shown to operators beside the cursor."""
        field = (
            {"last_error": error, "last_error_at": utc_now()}
            if error
            else {
                "last_error": None,
                "last_success_at": utc_now(),
            }
        )
        await self._cursors.update_one({"_id": source_key}, {"$set": field}, upsert=True)

    async def all(self) -> list[Document]:
        return await self._cursors.find({}).sort("_id").to_list(None)

    async def hold_lease(self, source_key: str, owner: str, ttl: timedelta) -> bool:
        """Take or renew the right to poll this source; False while another replica holds it.

        One replica polls a source at a time, so N replicas neither spend N times the API
        quota nor race each other's cursor. A dead holder's lease simply runs out.
        """
        now = utc_now()
        try:
            document = await self._cursors.find_one_and_update(
                {
                    "_id": source_key,
                    "$or": [
                        {"lease_owner": owner},
                        {"lease_until": {"$lt": now}},
                        {"lease_until": None},
                    ],
                },
                {"$set": {"lease_owner": owner, "lease_until": now + ttl}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            return False  # the document exists and someone else's lease is still running
        return document is not None and document.get("lease_owner") == owner

    async def release_lease(self, source_key: str, owner: str) -> None:
        """Give the source up at shutdown, so another replica takes over at once."""
        await self._cursors.update_one(
            {"_id": source_key, "lease_owner": owner}, {"$set": {"lease_until": None}}
        )


class WebSubStore:
    """WebSub subscriptions: feed (topic) URL → secret and lease, for push verification."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._subscriptions = db[WEBSUB]

    async def upsert(self, subscription_id: str, fields: dict[str, Any]) -> None:
        await self._subscriptions.update_one(
            {"_id": subscription_id}, {"$set": {**fields, "updated_at": utc_now()}}, upsert=True
        )

    async def get(self, subscription_id: str) -> Document | None:
        return await self._subscriptions.find_one({"_id": subscription_id})

    async def all(self) -> list[Document]:
        return await self._subscriptions.find({}).to_list(None)


class EngagementSchedule:
    """Our published posts whose counters are polled, and when each is due next."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._posts = db[ENGAGEMENT]

    async def track(self, post_id: str, fields: dict[str, Any], first_poll_at: datetime) -> None:
        """Start tracking a published post (a redelivered event changes nothing)."""
        await self._posts.update_one(
            {"_id": post_id},
            {"$setOnInsert": {**fields, "next_poll_at": first_poll_at, "polls": 0}},
            upsert=True,
        )

    async def claim_due(self, now: datetime, lease: timedelta, limit: int) -> list[Document]:
        """Posts due now, each leased to this replica so no two replicas poll the same post."""
        claimed: list[Document] = []
        for _ in range(limit):
            document = await self._posts.find_one_and_update(
                {"next_poll_at": {"$lte": now}, "lease_until": {"$not": {"$gt": now}}},
                {"$set": {"lease_until": now + lease}},
                sort=[("next_poll_at", ASCENDING)],
                return_document=ReturnDocument.AFTER,
            )
            if document is None:
                break
            claimed.append(document)
        return claimed

    async def reschedule(self, post_id: str, next_poll_at: datetime | None) -> None:
        """After a poll: the next due time, or stop tracking (None)."""
        if next_poll_at is None:
            await self._posts.delete_one({"_id": post_id})
            return
        await self._posts.update_one(
            {"_id": post_id},
            {"$set": {"next_poll_at": next_poll_at, "lease_until": None}, "$inc": {"polls": 1}},
        )

    async def bulk_track(self, operations: Sequence[UpdateOne]) -> None:
        if operations:
            await self._posts.bulk_write(list(operations), ordered=False)
