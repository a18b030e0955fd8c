"""MongoDB collections of the ingest service, their indexes, and the repositories over them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.events import utc_now
from shared.mongo import Document, insert_new

TRACKERS = "ingest_trackers"
CLAIMS_PREFIX = "ingest_claims_"
PENDING = "ingest_pending_batches"
CURSORS = "ingest_cursors"
WEBSUB = "ingest_websub_subscriptions"
ENGAGEMENT = "ingest_engagement_schedule"
LOOKUPS = "ingest_mention_lookups"

#: A batch still pending after this long was abandoned by a replica that died mid-batch.
CLAIM_LEASE = timedelta(seconds=30)
_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def indexes() -> dict[str, list[IndexModel]]:
    """Collection → indexes (claim collections have none beyond `_id`: see SeenStore)."""
    return {
        TRACKERS: [IndexModel([("group", ASCENDING)], name="group")],
        PENDING: [IndexModel([("at", ASCENDING)], name="age")],
        CURSORS: [],
        WEBSUB: [IndexModel([("lease_expires_at", ASCENDING)], name="lease")],
        ENGAGEMENT: [
            IndexModel([("next_poll_at", ASCENDING), ("lease_until", ASCENDING)], name="due")
        ],
        LOOKUPS: [IndexModel([("state", ASCENDING), ("next_try_at", ASCENDING)], name="due")],
    }


class TrackerStore:
    """Trackers as the API writes them; `revision` tells replicas when to recompile."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._trackers = db[TRACKERS]

    async def all(self) -> list[Document]:
        return await self._trackers.find({}).sort("_id").to_list(None)

    async def get(self, tracker_id: str) -> Document | None:
        return await self._trackers.find_one({"_id": tracker_id})

    async def page(
        self, after: str | None, limit: int, among: Collection[str] | None = None
    ) -> list[Document]:
        """Up to `limit` trackers in id order, after the id `after` (keyset paging), only
        those with an id in `among` if given."""
        query: dict[str, Any] = {"_id": {"$gt": after}} if after is not None else {}
        if among is not None:
            query.setdefault("_id", {})["$in"] = sorted(among)
        return await self._trackers.find(query).sort("_id").limit(limit).to_list(None)

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


@dataclass(frozen=True)
class Claim:
    """The ids one intake batch owns, and where that ownership is written down."""

    batch_id: str
    period: str
    owned: frozenset[str]


class SeenStore:
    """Which mention ids were emitted, shared by every ingest replica (de-duplication).

    Built for what a MongoDB server does cheapest, plain `_id` inserts with no secondary index:
    - Claims live in one collection per *period* of `dedup_days` (`ingest_claims_<start>`). A
      batch first looks for its ids in the previous period (a read that finds nothing for new
      mentions), then inserts them into the current one; a duplicate key means "seen already".
      Old periods are dropped whole instead of expiring document by document, so every id
      stays known for at least `dedup_days`.
    - Before claiming, the batch writes one *pending* record listing its ids, and deletes it
      once Kafka acknowledged. A pending record older than the lease belongs to a replica
      that died mid-batch: any replica then deletes those claims, so the source's retry is
      emitted and nothing is lost. The worst case is one duplicate on Kafka, which consumers
      absorb.
    """

    def __init__(
        self, db: AsyncDatabase[Document], dedup_days: int, lease: timedelta = CLAIM_LEASE
    ) -> None:
        self._db = db
        self._period = timedelta(days=dedup_days)
        self._lease = lease
        self._pending = db[PENDING]

    def period_of(self, at: datetime) -> int:
        return int((at - _EPOCH) / self._period)

    def _claims(self, period: int) -> AsyncCollection[Document]:
        start = _EPOCH + period * self._period
        return self._db[f"{CLAIMS_PREFIX}{start:%Y%m%d}"]

    async def claim(self, mention_ids: Sequence[str]) -> Claim:
        """Claim the ids; the caller owns and must emit `Claim.owned`, the rest are duplicates."""
        now = utc_now()
        period = self.period_of(now)
        claims = self._claims(period)
        batch_id = uuid.uuid4().hex
        if not mention_ids:
            return Claim(batch_id, claims.name, frozenset())
        earlier = set(
            await self._claims(period - 1).distinct("_id", {"_id": {"$in": list(mention_ids)}})
        )
        candidates = [i for i in mention_ids if i not in earlier]
        if not candidates:
            return Claim(batch_id, claims.name, frozenset())
        await self._pending.insert_one(
            {"_id": batch_id, "period": claims.name, "ids": candidates, "at": now}
        )
        taken = await insert_new(claims, [{"_id": i} for i in candidates])
        owned = frozenset(candidates) - taken
        if taken and owned:  # the pending record must name only what this batch owns
            await self._pending.update_one({"_id": batch_id}, {"$set": {"ids": sorted(owned)}})
        elif taken:
            await self._pending.delete_one({"_id": batch_id})
        return Claim(batch_id, claims.name, owned)

    async def confirm(self, claim: Claim) -> None:
        """Kafka acknowledged the batch: its claims are now the record of what was emitted."""
        await self._pending.delete_one({"_id": claim.batch_id})

    async def release(self, claim: Claim) -> None:
        """Give up the claims of a batch whose publishing failed, so its retry is emitted."""
        if claim.owned:
            await self._db[claim.period].delete_many({"_id": {"$in": sorted(claim.owned)}})
        await self._pending.delete_one({"_id": claim.batch_id})

    async def recover_abandoned(self) -> int:
        """Release batches left pending by a replica that died; returns how many."""
        cutoff = utc_now() - self._lease
        abandoned = await self._pending.find({"at": {"$lt": cutoff}}).to_list(None)
        for batch in abandoned:
            if batch["ids"]:
                await self._db[batch["period"]].delete_many({"_id": {"$in": batch["ids"]}})
            await self._pending.delete_one({"_id": batch["_id"]})
        return len(abandoned)

    async def drop_expired_periods(self) -> list[str]:
        """Drop claim collections older than the previous period; returns their names."""
        current = self.period_of(utc_now())
        keep = {self._claims(current).name, self._claims(current - 1).name}
        names = await self._db.list_collection_names()
        expired = sorted(
            n for n in names if n.startswith(CLAIMS_PREFIX) and n not in keep and n < min(keep)
        )
        for name in expired:
            await self._db.drop_collection(name)
        return expired

    async def keep_tidy(self, interval: float | None = None) -> None:
        """Background task: recover abandoned batches and drop expired periods."""
        pause = interval if interval is not None else self._lease.total_seconds() / 2
        while True:
            await asyncio.sleep(pause)
            await self.recover_abandoned()
            await self.drop_expired_periods()


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
        return await self._subscriptions.find({}).sort("_id").to_list(None)

    async def page(self, after: str | None, limit: int) -> list[Document]:
        """Up to `limit` subscriptions in id order, after the id `after` (keyset paging)."""
        query: dict[str, Any] = {"_id": {"$gt": after}} if after is not None else {}
        return await self._subscriptions.find(query).sort("_id").limit(limit).to_list(None)

    async def expiring(self, before: datetime) -> list[Document]:
        """Verified subscriptions whose lease ends before `before` (candidates for renewal)."""
        return await self._subscriptions.find(
            {"state": "subscribed", "intent": "subscribe", "lease_expires_at": {"$lt": before}}
        ).to_list(None)


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


class LookupQueue:
    """Mentions announced without content, waiting for their text from the platform's API.

    A lookup stays here until its mention was handed to the intake (then it is deleted) or
    it failed for good (`state` = `failed` with the reason, for operators to see).
    """

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._lookups = db[LOOKUPS]

    async def enqueue(self, lookups: Sequence[dict[str, Any]]) -> int:
        """Store new lookups (`_id` = the mention's native id); returns how many were new."""
        if not lookups:
            return 0
        now = utc_now()
        documents = [
            {**lookup, "state": "pending", "attempts": 0, "next_try_at": now, "received_at": now}
            for lookup in lookups
        ]
        return len(documents) - len(await insert_new(self._lookups, documents))

    async def claim_due(self, now: datetime, lease: timedelta, limit: int) -> list[Document]:
        """Due lookups, each leased to this replica so no two replicas fetch the same one."""
        claimed: list[Document] = []
        for _ in range(limit):
            document = await self._lookups.find_one_and_update(
                {"state": "pending", "next_try_at": {"$lte": now}},
                {"$set": {"next_try_at": now + lease}},
                sort=[("next_try_at", ASCENDING)],
                return_document=ReturnDocument.AFTER,
            )
            if document is None:
                break
            claimed.append(document)
        return claimed

    async def done(self, lookup_ids: Sequence[str]) -> None:
        if lookup_ids:
            await self._lookups.delete_many({"_id": {"$in": list(lookup_ids)}})

    async def retry_later(
        self, lookup_id: str, reason: str, at: datetime, *, count: bool = True
    ) -> None:
        await self._lookups.update_one(
            {"_id": lookup_id},
            {"$set": {"next_try_at": at, "last_error": reason}, "$inc": {"attempts": int(count)}},
        )

    async def fail(self, lookup_id: str, reason: str) -> None:
        await self._lookups.update_one(
            {"_id": lookup_id},
            {"$set": {"state": "failed", "last_error": reason, "failed_at": utc_now()}},
        )

    async def failed(self, limit: int = 100) -> list[Document]:
        return await self._lookups.find({"state": "failed"}).limit(limit).to_list(None)
