"""MongoDB collections of the moderation service, their indexes, and the repositories over them.

Everything is keyed by `mention_id`, so a redelivered batch inserts nothing twice: the first
write wins and a second delivery reads back what was stored (and republishes exactly that).
Writes of the consumer are batched (`insert_many`, unordered): the database is slow per write.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, ExecutionTimeout

from services.moderation.domain.review import QueueFilter, QueuePosition
from services.moderation.domain.routing import Outcome
from services.moderation.domain.rules import PRIORITY_RANK, Route
from services.moderation.domain.search import MentionFilter, words_of
from shared.events import Alert, ClassifiedMention, ModerationDecision, Priority, utc_now
from shared.mongo import Document, insert_new

MENTIONS = "moderation_mentions"
REVIEW = "moderation_review"
AUDIT = "moderation_audit"
RULES = "moderation_rules"
CANNED_REPLIES = "moderation_canned_replies"
OUTBOX = "moderation_decision_outbox"
#: Owned by ingest (`services/ingest/storage.py`); moderation only reads `_id`, as metrics does.
INGEST_TRACKERS = "ingest_trackers"

#: Review items waiting for a person: open or escalated (whatever their lease says).
WAITING = ["open", "escalated"]

#: Few secondary indexes on purpose: every index costs on each insert of the consumer's hot
#: path (SecantusDB, the local server, writes at a third of the speed with three of them).
#: Mentions are read by id, and listed newest first for a brand (`GET /v1/mentions`, the
#: console's stream); the inbox is read in queue order. A search by words runs within the
#: brand's range of `newest_by_tracker` (see `MentionStore.search`): an index on `words` would
#: serve it without that bound, at the price of another index on every insert.
NEWEST_ORDER = [("created_at", DESCENDING), ("_id", DESCENDING)]
INDEXES: dict[str, list[IndexModel]] = {
    MENTIONS: [IndexModel([("tracker_ids", ASCENDING), *NEWEST_ORDER], name="newest_by_tracker")],
    REVIEW: [
        IndexModel(
            [("status", ASCENDING), ("rank", DESCENDING), ("created_at", ASCENDING)],
            name="queue",
        )
    ],
    AUDIT: [IndexModel([("mention_id", ASCENDING), ("at", ASCENDING)], name="mention")],
    OUTBOX: [],
    RULES: [],
    CANNED_REPLIES: [],
}


def _outcome_document(outcome: Outcome) -> Document:
    c = outcome.classified
    return {
        "_id": c.mention_id,
        "created_at": c.created_at,
        "tracker_ids": c.tracker_ids,
        "action": c.action,
        "priority": c.priority,
        "reasons": list(outcome.route.reasons),
        # What `GET /v1/mentions` filters on, as native fields (the event below is opaque).
        "platform": c.platform,
        "sentiment": c.classification.sentiment,
        "language": c.classification.language,
        "intent": c.classification.intent,
        "labels": list(c.classification.labels),
        "author_id": c.author.id,
        "words": words_of(c.text),
        # The events as published, byte for byte: a redelivery republishes exactly these, and
        # one binary field costs the database far less than the nested document would.
        "classified": outcome.classified_bytes,
        "auto_decision": outcome.decision_bytes,
        "alerts": [alert.to_bytes() for alert in outcome.alerts],
    }


def _readable(document: Document) -> Document:
    """A stored mention with its events as JSON objects, for the API."""
    decision = document.get("auto_decision")
    return {
        **document,
        "classified": json.loads(document["classified"]),
        "auto_decision": json.loads(decision) if decision else None,
        "alerts": [json.loads(alert) for alert in document.get("alerts", [])],
    }


def outcome_of(document: Document) -> Outcome:
    """Rebuild a stored outcome (same event ids), for republishing after a redelivery."""
    classified = ClassifiedMention.model_validate_json(document["classified"])
    labels = tuple(classified.classification.labels)
    route = Route(classified.action, classified.priority, tuple(document["reasons"]), labels)
    decision = document.get("auto_decision")
    return Outcome(
        classified=classified,
        route=route,
        decision=ModerationDecision.model_validate_json(decision) if decision else None,
        alerts=tuple(Alert.model_validate_json(alert) for alert in document.get("alerts", [])),
    )


def _review_document(outcome: Outcome) -> Document:
    c = outcome.classified
    return {
        "_id": c.mention_id,
        "status": "open",
        "priority": c.priority,
        "rank": PRIORITY_RANK[c.priority],
        "created_at": c.created_at,
        "queued_at": c.occurred_at,
        "tracker_ids": c.tracker_ids,
        "intent": c.classification.intent,
        "language": c.classification.language,
        "platform": c.platform,
        "reasons": list(outcome.route.reasons),
        "lease_owner": None,
        "lease_until": None,
        "decision": None,
    }


def routing_entry(document: Document) -> Document:
    """The automatic routing as the first audit entry, read from the stored mention.

    Not written to the audit collection: the stored mention never changes, and one insert
    less per mention is a third of the consumer's database time.
    """
    classified = document["classified"]
    return {
        "at": datetime.fromisoformat(classified["occurred_at"]),
        "actor": "auto",
        "action": document["action"],
        "reason": "; ".join(document.get("reasons", [])),
        "details": {
            "priority": document["priority"],
            "model_version": classified["classification"]["model_version"],
        },
    }


#: The longest one page of `GET /v1/mentions` may search (MongoDB's maxTimeMS).
SEARCH_SECONDS = 5.0


class SearchTooBroadError(Exception):
    """A mentions query that found too little in `SEARCH_SECONDS` (a rare word, all time)."""


class MentionStore:
    """Classified mentions and their stored events (`moderation_mentions`)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._mentions = db[MENTIONS]
        self._review = db[REVIEW]

    async def record(self, outcomes: Sequence[Outcome]) -> list[Outcome]:
        """Store a batch's outcomes; return what is stored (the earlier one for a redelivery).

        Two unordered bulk inserts, whatever the batch size. Review items are inserted for
        redelivered mentions too (duplicates ignored), so a crash between the two writes
        leaves nothing missing after the retry.
        """
        if not outcomes:
            return []
        existing = await insert_new(self._mentions, [_outcome_document(o) for o in outcomes])
        stored = list(outcomes)
        if existing:
            documents = await self._mentions.find({"_id": {"$in": list(existing)}}).to_list(None)
            earlier = {doc["_id"]: outcome_of(doc) for doc in documents}
            stored = [earlier.get(o.mention_id, o) for o in outcomes]
        await insert_new(
            self._review, [_review_document(o) for o in stored if o.route.action == "review"]
        )
        return stored

    async def get(self, mention_id: str) -> Document | None:
        """The stored mention, its events decoded (`classified`, `auto_decision`, `alerts`)."""
        document = await self._mentions.find_one({"_id": mention_id})
        return _readable(document) if document else None

    async def get_many(self, mention_ids: Sequence[str]) -> dict[str, Document]:
        documents = await self._mentions.find({"_id": {"$in": list(mention_ids)}}).to_list(None)
        return {doc["_id"]: _readable(doc) for doc in documents}

    async def search(
        self,
        found: MentionFilter,
        brands: frozenset[str] | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Document]:
        """Up to `limit` mentions newest first (created_at, then id), after `after`.

        `brands` (a console user's trackers) narrows to mentions of those trackers; the
        tracker clause leads, so `newest_by_tracker` serves the console's stream, and the
        other filters and the words are tested on the brand's mentions newest first. That
        scan is bounded by `SEARCH_SECONDS`: `SearchTooBroadError` past it.
        """
        query = _mentions_query(found, brands, after)
        if query is None:
            return []
        cursor = self._mentions.find(query).sort(NEWEST_ORDER).limit(limit)
        try:
            documents = await cursor.max_time_ms(int(SEARCH_SECONDS * 1000)).to_list(None)
        except ExecutionTimeout as exc:
            raise SearchTooBroadError from exc
        return [_readable(document) for document in documents]


def _mentions_query(
    found: MentionFilter, brands: frozenset[str] | None, after: tuple[datetime, str] | None
) -> Document | None:
    """The query of `MentionStore.search`; None when it can find nothing (another brand)."""
    clauses: list[Document] = []
    if found.tracker_id is not None:
        if brands is not None and found.tracker_id not in brands:
            return None
        clauses.append({"tracker_ids": found.tracker_id})
    elif brands is not None:
        clauses.append({"tracker_ids": {"$in": sorted(brands)}})
    for name in ("platform", "author_id", "sentiment", "language", "intent", "action", "priority"):
        value = getattr(found, name)
        if value is not None:
            clauses.append({name: value})
    if found.label is not None:
        clauses.append({"labels": found.label})
    window: Document = {}
    if found.created_from is not None:
        window["$gte"] = found.created_from
    if found.created_to is not None:
        window["$lt"] = found.created_to
    if window:
        clauses.append({"created_at": window})
    words = found.query_words()
    if words:
        clauses.append({"words": {"$all": words}})
    if after is not None:
        at, mention_id = after
        clauses.append(
            {"$or": [{"created_at": {"$lt": at}}, {"created_at": at, "_id": {"$lt": mention_id}}]}
        )
    return flat_query(clauses)


def flat_query(clauses: list[Document]) -> Document:
    """The clauses as one query document, `$and` only for keys that repeat.

    The same query to MongoDB either way; a flat document is also what the local SecantusDB
    plans on an index (it scans the whole collection for any `$and`)."""
    flat: Document = {}
    rest: list[Document] = []
    for clause in clauses:
        if any(key in flat for key in clause):
            rest.append(clause)
        else:
            flat.update(clause)
    if rest:
        flat["$and"] = rest
    return flat


def _queue_query(
    queue: QueueFilter,
    now: datetime,
    after: QueuePosition | None,
    brands: frozenset[str] | None = None,
) -> Document | None:
    """The queue's query; None when it can find nothing (a tracker outside `brands`)."""
    clauses: list[Document] = []
    # No lease, or one that ran out: `$not` also matches a missing or null field.
    free = {"lease_until": {"$not": {"$gt": now}}}
    if queue.status == "open":
        clauses += [{"status": {"$in": WAITING}}, free]
    elif queue.status == "claimed":
        clauses += [{"status": {"$in": WAITING}}, {"lease_until": {"$gt": now}}]
    elif queue.status == "mine":
        clauses += [
            {"status": {"$in": WAITING}},
            {"lease_owner": queue.actor},
            {"lease_until": {"$gt": now}},
        ]
    elif queue.status == "waiting":
        clauses.append({"status": {"$in": WAITING}})
    elif queue.status != "all":
        clauses.append({"status": queue.status})
    if queue.tracker_id is not None:
        if brands is not None and queue.tracker_id not in brands:
            return None
        clauses.append({"tracker_ids": queue.tracker_id})
    elif brands is not None:
        clauses.append({"tracker_ids": {"$in": sorted(brands)}})
    for name in ("priority", "intent", "language", "platform"):
        value = getattr(queue, name)
        if value is not None:
            clauses.append({name: value})
    if after is not None:
        clauses.append(
            {
                "$or": [
                    {"rank": {"$lt": after.rank}},
                    {"rank": after.rank, "created_at": {"$gt": after.created_at}},
                    {
                        "rank": after.rank,
                        "created_at": after.created_at,
                        "_id": {"$gt": after.mention_id},
                    },
                ]
            }
        )
    return flat_query(clauses)


QUEUE_ORDER = [("rank", DESCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)]


class ReviewStore:
    """The review inbox (`moderation_review`): one item per mention routed to review."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._review = db[REVIEW]

    async def page(
        self,
        queue: QueueFilter,
        now: datetime,
        after: QueuePosition | None,
        limit: int,
        brands: frozenset[str] | None = None,
    ) -> list[Document]:
        query = _queue_query(queue, now, after, brands)
        if query is None:
            return []
        cursor = self._review.find(query).sort(QUEUE_ORDER)
        return await cursor.limit(limit).to_list(None)

    async def counts(
        self, tracker_id: str | None, actor: str, now: datetime, brands: frozenset[str] | None
    ) -> dict[str, int]:
        """The inbox tabs: waiting items leased to `actor`, not leased, and all waiting."""
        counts: dict[str, int] = {}
        for tab, status in (("mine", "mine"), ("unclaimed", "open"), ("all", "waiting")):
            queue = QueueFilter(tracker_id=tracker_id, status=status, actor=actor)
            query = _queue_query(queue, now, None, brands)
            counts[tab] = 0 if query is None else await self._review.count_documents(query)
        return counts

    async def get(self, mention_id: str) -> Document | None:
        return await self._review.find_one({"_id": mention_id})

    async def get_many(self, mention_ids: Sequence[str]) -> dict[str, Document]:
        documents = await self._review.find({"_id": {"$in": list(mention_ids)}}).to_list(None)
        return {doc["_id"]: doc for doc in documents}

    async def correct(
        self, mention_id: str, actor: str, now: datetime, correction: Document
    ) -> Document | None:
        """Store a correction; None when another reviewer holds the lease (or no item).

        A decided item may still be corrected: what the mention is does not change with what
        was done about it.
        """
        return await self._review.find_one_and_update(
            {
                "_id": mention_id,
                "$or": [
                    {"lease_until": None},
                    {"lease_until": {"$lte": now}},
                    {"lease_owner": actor},
                ],
            },
            {"$set": {"correction": correction}},
            return_document=ReturnDocument.AFTER,
        )

    async def correction_published(self, mention_id: str, event_id: str) -> None:
        """Mark the stored correction's event as acknowledged by Kafka."""
        await self._review.update_one(
            {"_id": mention_id, "correction.event.event_id": event_id},
            {"$set": {"correction.published": True}},
        )

    async def claim(
        self, mention_id: str, actor: str, now: datetime, lease: timedelta
    ) -> Document | None:
        """Take (or renew) the lease; None when another reviewer holds it or it is decided.

        One atomic find-and-modify: of two reviewers racing for an item exactly one wins.
        """
        return await self._review.find_one_and_update(
            {
                "_id": mention_id,
                "status": {"$in": WAITING},
                "$or": [
                    {"lease_until": None},
                    {"lease_until": {"$lte": now}},
                    {"lease_owner": actor},
                ],
            },
            {"$set": {"lease_owner": actor, "lease_until": now + lease, "claimed_at": now}},
            return_document=ReturnDocument.AFTER,
        )

    async def release(self, mention_id: str, actor: str, now: datetime) -> Document | None:
        return await self._review.find_one_and_update(
            {"_id": mention_id, "lease_owner": actor, "lease_until": {"$gt": now}},
            {"$set": {"lease_owner": None, "lease_until": None}},
            return_document=ReturnDocument.AFTER,
        )

    async def decide(
        self,
        mention_id: str,
        actor: str,
        now: datetime,
        decision: Document,
        escalate_to: Priority | None,
    ) -> Document | None:
        """Record the lease holder's decision and end the lease; None when not the holder.

        An escalation keeps the item waiting (status `escalated`, at `escalate_to` priority);
        every other decision closes it.
        """
        update: Document = {
            "decision": decision,
            "lease_owner": None,
            "lease_until": None,
            "decided_at": now,
        }
        if escalate_to is None:
            update["status"] = "done"
        else:
            update.update(
                {"status": "escalated", "priority": escalate_to, "rank": PRIORITY_RANK[escalate_to]}
            )
        return await self._review.find_one_and_update(
            {
                "_id": mention_id,
                "status": {"$in": WAITING},
                "lease_owner": actor,
                "lease_until": {"$gt": now},
            },
            {"$set": update},
            return_document=ReturnDocument.AFTER,
        )

    async def depth(self) -> dict[str, int]:
        """Waiting items per priority (the queue-depth gauge)."""
        counts = {name: 0 for name in PRIORITY_RANK}
        pipeline: list[Document] = [
            {"$match": {"status": {"$in": WAITING}}},
            {"$group": {"_id": "$priority", "n": {"$sum": 1}}},
        ]
        async for row in await self._review.aggregate(pipeline):
            if row["_id"] in counts:
                counts[row["_id"]] = int(row["n"])
        return counts


class DecisionOutbox:
    """Decisions stored but not yet acknowledged by Kafka (`moderation_decision_outbox`).

    Written before the review item changes and deleted once published; the sweep publishes
    what a dead request left behind, if the review item shows the decision was applied.
    """

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._outbox = db[OUTBOX]

    async def add(self, event_id: str, mention_id: str, decision: Document) -> None:
        await self._outbox.insert_one(
            {"_id": event_id, "mention_id": mention_id, "decision": decision, "at": utc_now()}
        )

    async def remove(self, event_id: str) -> None:
        await self._outbox.delete_one({"_id": event_id})

    async def older_than(self, moment: datetime, limit: int = 100) -> list[Document]:
        return await self._outbox.find({"at": {"$lt": moment}}).limit(limit).to_list(None)


class AuditLog:
    """Who did what to which mention, when and why (`moderation_audit`): insert only."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._audit = db[AUDIT]

    async def append(
        self,
        mention_id: str,
        actor: str,
        action: str,
        reason: str = "",
        details: dict[str, Any] | None = None,
        entry_id: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Add an entry; `entry_id` makes a retried append a no-op."""
        document = {
            "_id": entry_id or f"{mention_id}:{uuid.uuid4().hex}",
            "mention_id": mention_id,
            "at": at or utc_now(),
            "actor": actor,
            "action": action,
            "reason": reason,
            "details": details or {},
        }
        try:
            await self._audit.insert_one(document)
        except DuplicateKeyError:
            return

    async def of(self, mention_id: str, limit: int = 500) -> list[Document]:
        cursor = self._audit.find({"mention_id": mention_id}).sort(
            [("at", ASCENDING), ("_id", ASCENDING)]
        )
        return await cursor.limit(limit).to_list(None)


class RulesStore:
    """Tracker rules as the API writes them (`moderation_rules`, keyed by tracker id)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._rules = db[RULES]

    async def all(self) -> list[Document]:
        return await self._rules.find({}).sort("_id").to_list(None)

    async def page(
        self, after: str | None, limit: int, brands: frozenset[str] | None = None
    ) -> list[Document]:
        """Up to `limit` rule sets in tracker id order, after the tracker id `after`, of the
        trackers `brands` (None: all)."""
        ids: Document = {} if after is None else {"$gt": after}
        if brands is not None:
            ids["$in"] = sorted(brands)
        query: Document = {"_id": ids} if ids else {}
        return await self._rules.find(query).sort("_id").limit(limit).to_list(None)

    async def get(self, tracker_id: str) -> Document | None:
        return await self._rules.find_one({"_id": tracker_id})

    async def put(self, tracker_id: str, rules: Document, actor: str) -> Document:
        now = utc_now()
        document = await self._rules.find_one_and_update(
            {"_id": tracker_id},
            {
                "$set": {"rules": rules, "updated_at": now, "updated_by": actor},
                "$setOnInsert": {"created_at": now},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert document is not None
        return document

    async def delete(self, tracker_id: str) -> bool:
        result = await self._rules.delete_one({"_id": tracker_id})
        return result.deleted_count == 1

    async def revision(self) -> tuple[int, datetime | None]:
        """A cheap fingerprint of the whole set: count and latest change."""
        latest = await self._rules.find_one({}, sort=[("updated_at", -1)])
        count = await self._rules.count_documents({})
        return count, latest["updated_at"] if latest else None


class TrackerDirectory:
    """Which trackers exist, read from ingest's collection in the same database.

    Read when rules are written (rare), never on the consumer's path: rules for a tracker
    that does not exist would never apply, so the API refuses them.
    """

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._trackers = db[INGEST_TRACKERS]

    async def exists(self, tracker_id: str) -> bool:
        return await self._trackers.find_one({"_id": tracker_id}, {"_id": 1}) is not None


class CannedReplyStore:
    """Canned replies (`moderation_canned_replies`, keyed by their id)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._replies = db[CANNED_REPLIES]

    async def list(self, language: str | None, tracker_id: str | None) -> list[Document]:
        query: Document = {}
        if language is not None:
            query["language"] = language
        if tracker_id is not None:
            query["$or"] = [{"tracker_ids": tracker_id}, {"tracker_ids": []}]
        return await self._replies.find(query).sort("_id").limit(1_000).to_list(None)

    async def get(self, reply_id: str) -> Document | None:
        return await self._replies.find_one({"_id": reply_id})

    async def create(self, reply: Document) -> bool:
        now = utc_now()
        try:
            await self._replies.insert_one(
                {"_id": reply["id"], **reply, "created_at": now, "updated_at": now}
            )
        except DuplicateKeyError:
            return False
        return True

    async def replace(self, reply: Document) -> Document | None:
        return await self._replies.find_one_and_update(
            {"_id": reply["id"]},
            {"$set": {**reply, "updated_at": utc_now()}},
            return_document=ReturnDocument.AFTER,
        )

    async def delete(self, reply_id: str) -> bool:
        result = await self._replies.delete_one({"_id": reply_id})
        return result.deleted_count == 1
