"""MongoDB collections of the metrics service, their indexes, and the repositories over them.

- `metrics_mentions`: one fact per mention (what the KPIs read, plus our first reply's time);
- `metrics_buckets`: per tracker and UTC day (`<tracker>|day|<date>`), and per UTC hour one
  document for all trackers (`*|hour|<hour>`, each tracker's part under `t.<tracker>`):
  volume, sentiment, platform, review, authors' largest follower counts (`r`), and in hours
  one entry per counted mention (`m`);
- `metrics_posts`, `metrics_engagement`, `metrics_followers`: our posts, each post's latest
  engagement observation, and our accounts' follower counts over time;
- `metrics_alerts`: one document per tracker and hour, so a spike alert is emitted once;
- `metrics_leases`: which replica publishes the scheduled KPI snapshots;
- `metrics_journal`, `metrics_offsets`: mention batches being applied, and each partition's
  last applied offset (`MentionAggregates` explains how they keep the buckets exact).
Tracker names and groups are read from ingest's `ingest_trackers` in the same database.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, InsertOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.metrics.domain.facts import (
    BucketDeltas,
    BucketKey,
    MentionFact,
    author_field,
    bucket_id,
    field_key,
    hour_id,
    latest_per_mention,
    supersedes,
    tracker_field,
)
from services.metrics.domain.windows import UNITS, Unit, WindowPlan, floor_to
from shared.events import ClassifiedMention, EngagementObservation, PostEvent, utc_now
from shared.mongo import DUPLICATE_KEY, Document

MENTIONS = "metrics_mentions"
BUCKETS = "metrics_buckets"
POSTS = "metrics_posts"
ENGAGEMENT = "metrics_engagement"
FOLLOWERS = "metrics_followers"
ALERTS = "metrics_alerts"
LEASES = "metrics_leases"
JOURNAL = "metrics_journal"
OFFSETS = "metrics_offsets"
#: Owned by ingest (`services/ingest/storage.py`); metrics only reads `_id` and `group`.
INGEST_TRACKERS = "ingest_trackers"

INDEXES: dict[str, list[IndexModel]] = {
    MENTIONS: [
        IndexModel([("reply_at", ASCENDING)], name="reply_at", sparse=True),
    ],
    BUCKETS: [
        IndexModel(
            [("tracker_id", ASCENDING), ("unit", ASCENDING), ("start", ASCENDING)],
            name="tracker_unit_start",
        ),
        IndexModel([("unit", ASCENDING), ("start", ASCENDING)], name="unit_start"),
    ],
    POSTS: [
        IndexModel([("published_at", ASCENDING)], name="published_at"),
        IndexModel([("in_reply_to_mention_id", ASCENDING)], name="reply_to"),
    ],
    ENGAGEMENT: [],
    FOLLOWERS: [IndexModel([("at", ASCENDING)], name="at")],
    ALERTS: [
        IndexModel([("window_start", DESCENDING)], name="window_start"),
        IndexModel([("tracker_id", ASCENDING), ("window_start", DESCENDING)], name="tracker"),
        IndexModel([("state", ASCENDING), ("claimed_at", ASCENDING)], name="state"),
    ],
    LEASES: [],
    JOURNAL: [],
    OFFSETS: [],
}

#: The counters of a bucket (besides `r`, its authors, and `m`, an hour's mention entries).
COUNT_FIELDS = ["volume", "s", "p", "review"]


#: Where a mention came from: (partition key, offset). The key names the topic and partition
#: (`MentionAggregates.partition_key`); Kafka keys mentions by `mention_id`, so every message
#: of one mention comes through one partition, and one consumer owns a partition at a time.
Position = tuple[str, int]


@dataclass
class AppliedMentions:
    """What a batch changed: facts seen for the first time, and reclassified ones."""

    new: list[MentionFact] = field(default_factory=list)
    changed: list[tuple[MentionFact, MentionFact]] = field(default_factory=list)
    unchanged: int = 0


class MentionAggregates:
    """Mention facts and the hour/day buckets summed from them, kept exact without transactions.

    A batch is applied in four steps, each idempotent, so a SIGKILL between any two (or in the
    middle of a bulk write) is repaired by doing them again:

    1. **Plan.** Read the stored facts of the batch's mentions and compute, in memory, which
       facts to insert or replace and each touched bucket's increments (`BucketDeltas`). Only
       messages past the partition's applied offset (`metrics_offsets`) are planned.
    2. **Journal.** Insert the plan as ONE document in `metrics_journal` (atomic), naming the
       last offset of each partition it covers (`ends`). Before planning a batch, a consumer
       finishes every journal left for its partitions (by a crashed or deposed owner).
    3. **Carry out.** Write the facts (inserts whose duplicate-key errors become `$set`s; a
       replay writes the same values again), then one upsert per bucket document (per chunk
       of at most `MAX_PATHS` paths, marks `hw.<partition>~<chunk>`) that increments the
       counts *only if* the bucket's high-water mark `hw.<partition>` is below the journal's end
       for every partition of the journal, and sets the marks in the same single-document
       update. A bucket therefore takes a journal's increments exactly once, however often the
       journal is replayed (an already-marked bucket fails the filter; its upsert's duplicate
       key error is ignored). Buckets that lost a mention get their author map recomputed from
       the facts (a `$set`: idempotent).
    4. **Finish.** Raise the partitions' applied offsets (`$max`) and delete the journal.

    A crash before step 2 leaves nothing: Kafka redelivers and the batch is planned afresh.
    After step 2 the journal is replayed before the partition moves on, and messages at or
    below the applied offset are skipped, so redeliveries of a finished batch cost one read.
    A duplicate at another offset (a producer retry) finds its fact stored and unchanged.
    Every step touches few documents and no multi-document transaction holds locks, so a
    killed replica stalls nobody.
    """

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db
        self._mentions = db[MENTIONS]
        self._buckets = db[BUCKETS]
        self._journal = db[JOURNAL]
        self._offsets = db[OFFSETS]

    @staticmethod
    def partition_key(topic: str, partition: int) -> str:
        """A topic partition as a MongoDB field name (dots escaped)."""
        return author_field(f"{topic}|{partition}")

    async def apply(self, batch: Sequence[tuple[Position, ClassifiedMention]]) -> AppliedMentions:
        """Aggregate a batch of positioned mentions exactly once (see the class docstring)."""
        if not batch:
            return AppliedMentions()
        parts = {part for (part, _), _ in batch}
        await self._finish_journals(parts)
        done = await self._applied_offsets(parts)
        ends: dict[str, int] = {}
        fresh: list[ClassifiedMention] = []
        for (part, offset), mention in batch:
            if offset > done.get(part, -1):
                fresh.append(mention)
                ends[part] = max(ends.get(part, -1), offset)
        applied = AppliedMentions(unchanged=len(batch) - len(fresh))
        if not fresh:
            return applied
        journal = await self._plan(latest_per_mention(fresh), applied)
        if journal["inserts"] or journal["updates"]:
            journal |= {"_id": uuid.uuid4().hex, "ends": ends, "created_at": utc_now()}
            await self._journal.insert_one(journal)
            await self._carry_out(journal)
        else:
            await self._record_offsets(ends)
        return applied

    async def _plan(self, latest: dict[str, MentionFact], applied: AppliedMentions) -> Document:
        """Step 1: the facts to write and the bucket increments, as a journal document."""
        cursor = self._mentions.find({"_id": {"$in": list(latest)}}, {"reply_at": 0})
        stored_docs = {doc["_id"]: doc async for doc in cursor}
        deltas = BucketDeltas()
        inserts: list[Document] = []
        updates: list[Document] = []
        for mention_id, fact in latest.items():
            doc = stored_docs.get(mention_id)
            stored = MentionFact.from_document(mention_id, doc) if doc is not None else None
            if not supersedes(fact, stored):
                applied.unchanged += 1
                continue
            deltas.replace(stored, fact)
            if doc is None:
                inserts.append({"_id": mention_id, **fact.document()})
            else:
                updates.append({"_id": mention_id, **fact.document()})
            if stored is None:
                applied.new.append(fact)
            else:
                applied.changed.append((stored, fact))
        return {
            "inserts": inserts,
            "updates": updates,
            "buckets": _bucket_changes(deltas),
            "rebuild": [list(key) for key in sorted(deltas.rebuild_authors)],
        }

    async def _finish_journals(self, parts: set[str]) -> None:
        """Replay journals left for these partitions by an owner that died before finishing."""
        left = await self._journal.find({}, {"ends": 1}).to_list(None)
        for entry in left:
            if parts & set(entry["ends"]):
                journal = await self._journal.find_one({"_id": entry["_id"]})
                if journal is not None:
                    await self._carry_out(journal)

    async def _applied_offsets(self, parts: set[str]) -> dict[str, int]:
        cursor = self._offsets.find({"_id": {"$in": sorted(parts)}})
        return {doc["_id"]: int(doc["applied"]) async for doc in cursor}

    async def _record_offsets(self, ends: Mapping[str, int]) -> None:
        await self._offsets.bulk_write(
            [
                UpdateOne({"_id": part}, {"$max": {"applied": end}}, upsert=True)
                for part, end in ends.items()
            ],
            ordered=False,
        )

    async def _carry_out(self, journal: Document) -> None:
        """Steps 3 and 4: write facts and guarded bucket increments, then finish the journal."""
        await self._write_facts(journal["inserts"], journal["updates"])
        ends: dict[str, int] = journal["ends"]
        operations: dict[str, list[UpdateOne]] = {"hour": [], "day": []}
        for change in journal["buckets"]:
            # Chunk n of a document has its own marks: each chunk is applied exactly once.
            suffix = f"~{change['chunk']}" if change.get("chunk") else ""
            marks = {f"hw.{part}{suffix}": end for part, end in ends.items()}
            below_marks = {name: {"$not": {"$gte": end}} for name, end in marks.items()}
            update: Document = {
                "$setOnInsert": change["key"],
                "$set": marks | change["set"],
            }
            if change["unset"]:
                update["$unset"] = dict.fromkeys(change["unset"], "")
            if change["inc"]:
                update["$inc"] = change["inc"]
            if change["max"]:
                update["$max"] = change["max"]
            operations[change["key"]["unit"]].append(
                UpdateOne({"_id": change["_id"], **below_marks}, update, upsert=True)
            )
        # Hours before days: a day's author-map rebuild reads the hours after the day's marks,
        # so an entry written under a mark it saw is never missed (`_rebuild_author_maps`).
        for unit in ("hour", "day"):
            if operations[unit]:
                await _guarded_upserts(self._buckets, operations[unit])
        if journal["rebuild"]:
            await self._rebuild_author_maps(
                [(tracker_id, unit, _utc(start)) for tracker_id, unit, start in journal["rebuild"]]
            )
        await self._record_offsets(ends)
        await self._journal.delete_one({"_id": journal["_id"]})

    async def _write_facts(self, inserts: list[Document], updates: list[Document]) -> None:
        """Insert new facts (a duplicate key means a reply or a replay got there first: `$set`
        instead) and replace changed ones; writing the same values twice changes nothing."""
        overwrite = list(updates)
        if inserts:
            try:
                await self._mentions.insert_many(inserts, ordered=False)
            except BulkWriteError as exc:
                for error in exc.details.get("writeErrors", []):
                    if error.get("code") != DUPLICATE_KEY:
                        raise
                    overwrite.append(inserts[error["index"]])
        if overwrite:
            await self._mentions.bulk_write(
                [
                    UpdateOne(
                        {"_id": doc["_id"]},
                        {"$set": {k: v for k, v in doc.items() if k != "_id"}},
                        upsert=True,
                    )
                    for doc in overwrite
                ],
                ordered=False,
            )

    async def record_replies(self, first_reply_at: Mapping[str, datetime]) -> None:
        """Our earliest published reply per mention (`$min`, so order and repeats do not matter)."""
        if first_reply_at:
            await self._mentions.bulk_write(
                [
                    UpdateOne({"_id": mention_id}, {"$min": {"reply_at": at}}, upsert=True)
                    for mention_id, at in first_reply_at.items()
                ],
                ordered=False,
            )

    async def _rebuild_author_maps(self, keys: Iterable[BucketKey]) -> None:
        """Recompute `r` of buckets that lost a mention from the hour buckets' mention entries.

        Compare-and-set on the bucket's marks: another partition's journal that changes the
        bucket between our read and our write raises a mark (its hour entries are written
        before its day buckets), so we read again instead of dropping its authors.
        """
        for tracker_id, unit, start in keys:
            key, prefix = _bucket_location(tracker_id, unit, start)
            while True:
                seen = await self._buckets.find_one({"_id": key}, {"hw": 1})
                if seen is None:
                    break
                maxima: dict[str, int] = {}
                for entry in await self._entries(tracker_id, start, start + UNITS[unit]):
                    author = author_field(entry[1])
                    maxima[author] = max(maxima.get(author, 0), entry[2])
                result = await self._buckets.update_one(
                    {"_id": key, "hw": seen.get("hw")}, {"$set": {f"{prefix}r": maxima}}
                )
                if result.matched_count:
                    break

    async def _entries(self, tracker_id: str, start: datetime, end: datetime) -> list[list[Any]]:
        """Entries of a tracker's counted mentions created in [start, end), from hour documents."""
        entries: list[list[Any]] = []
        for part in await self._hour_parts(tracker_id, floor_to(start, "hour"), end, ["m"]):
            for entry in part.get("m", {}).values():
                if start <= _utc(entry[0]) < end:
                    entries.append(entry)
        return entries

    async def window_totals(
        self, tracker_id: str, plan: WindowPlan, *, authors: bool
    ) -> tuple[Counter[str], dict[str, int]]:
        """A tracker's counts over a planned window, and (if asked) each author's largest
        follower count in it: day and hour buckets for whole hours, hour entries for the edges.

        One indexed query per range (no `$or`/`$in`, which SecantusDB answers by scanning).
        """
        projection: Document = {
            "_id": 0,
            "tracker_id": 0,
            "unit": 0,
            "start": 0,
            "hw": 0,
        }
        if not authors:
            projection["r"] = 0
        day_queries = [
            self._buckets.find(
                {"tracker_id": tracker_id, "unit": "day", "start": {"$gte": start, "$lt": end}},
                projection,
            ).to_list(None)
            for start, end in plan.days
        ]
        fields = [*COUNT_FIELDS, "r"] if authors else COUNT_FIELDS
        hour_queries = [
            self._hour_parts(tracker_id, start, end, fields) for start, end in plan.hours
        ]
        entry_queries = [self._entries(tracker_id, start, end) for start, end in plan.raw]
        bucket_docs: list[list[Document]] = await asyncio.gather(*day_queries, *hour_queries)
        edge_entries: list[list[list[Any]]] = await asyncio.gather(*entry_queries)
        counts: Counter[str] = Counter()
        maxima: dict[str, int] = {}
        for docs in bucket_docs:
            for doc in docs:
                doc.pop("start", None)
                for author, followers in doc.pop("r", {}).items():
                    maxima[author] = max(maxima.get(author, 0), followers)
                counts.update(dict(_flatten(doc)))
        for entries in edge_entries:
            for _, author_key, followers, sentiment, platform, action in entries:
                counts.update(_entry_fields(sentiment, platform, action))
                author = author_field(author_key)
                maxima[author] = max(maxima.get(author, 0), followers)
        return counts, maxima

    async def _hour_parts(
        self, tracker_id: str, start: datetime, end: datetime, fields: Sequence[str]
    ) -> list[Document]:
        """One tracker's part (the given fields, and `start`) of each hour document in range."""
        prefix = tracker_field(tracker_id)
        projection: Document = {"_id": 0, "start": 1} | {f"{prefix}.{f}": 1 for f in fields}
        query = {"unit": "hour", "start": {"$gte": start, "$lt": end}}
        parts = []
        async for doc in self._buckets.find(query, projection):
            part = _tracker_part(doc, tracker_id)
            if part:
                parts.append(part | {"start": doc["start"]})
        return parts

    async def buckets(
        self, tracker_id: str, unit: Unit, start: datetime, end: datetime
    ) -> dict[datetime, tuple[Counter[str], int]]:
        """Stored buckets of one tracker in [start, end): counts and potential reach."""
        if unit == "hour":
            docs = await self._hour_parts(tracker_id, start, end, [*COUNT_FIELDS, "r"])
        else:
            query = {"tracker_id": tracker_id, "unit": unit, "start": {"$gte": start, "$lt": end}}
            projection = {"_id": 0, "tracker_id": 0, "unit": 0, "hw": 0}
            docs = await self._buckets.find(query, projection).to_list(None)
        series: dict[datetime, tuple[Counter[str], int]] = {}
        for doc in docs:
            bucket_start = _utc(doc.pop("start"))
            reach = sum(doc.pop("r", {}).values())
            series[bucket_start] = (Counter(dict(_flatten(doc))), reach)
        return series

    async def replies(
        self, tracker_id: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime, str]]:
        """(created_at, first reply's published_at, routing action) of replied mentions."""
        # Through the reply index: replies are few, a tracker's mentions are many. A reply
        # is published after the mention, so reply_at >= start bounds the scan.
        query = {
            "reply_at": {"$gte": start},
            "t": tracker_id,
            "at": {"$gte": start, "$lt": end},
            "c": True,
        }
        cursor = self._mentions.find(query, {"at": 1, "reply_at": 1, "act": 1}).hint("reply_at")
        return [(_utc(doc["at"]), _utc(doc["reply_at"]), doc["act"]) async for doc in cursor]

    async def trackers_of(self, mention_ids: Sequence[str]) -> dict[str, list[str]]:
        """Trackers of the given mentions (those whose facts are known)."""
        if not mention_ids:
            return {}
        query = {"_id": {"$in": list(mention_ids)}, "t": {"$exists": True}}
        return {doc["_id"]: doc["t"] async for doc in self._mentions.find(query, {"t": 1})}

    async def hourly_negatives(
        self, start: datetime, end: datetime, tracker_ids: Sequence[str] | None = None
    ) -> dict[str, dict[datetime, int]]:
        """Negative mentions per tracker and hour in [start, end), from the hour documents."""
        query: Document = {"unit": "hour", "start": {"$gte": start, "$lt": end}}
        projection: Document = {"_id": 0, "start": 1}
        if tracker_ids is None:
            projection["t"] = 1
        else:
            projection |= {f"{tracker_field(t)}.s.negative": 1 for t in tracker_ids}
        counts: dict[str, dict[datetime, int]] = defaultdict(dict)
        async for doc in self._buckets.find(query, projection):
            for escaped, part in doc.get("t", {}).items():
                negative = int(part.get("s", {}).get("negative", 0))
                if negative > 0:
                    counts[field_key(escaped)][_utc(doc["start"])] = negative
        return dict(counts)

    async def trackers_with_data(self, start: datetime, end: datetime) -> set[str]:
        """Trackers with mentions in the UTC days that [start, end) overlaps."""
        query = {
            "unit": "day",
            "start": {"$gte": floor_to(start, "day"), "$lt": end},
            "volume": {"$gt": 0},
        }
        return set(await self._buckets.distinct("tracker_id", query))

    async def knows_tracker(self, tracker_id: str) -> bool:
        return await self._buckets.find_one({"tracker_id": tracker_id}, {"_id": 1}) is not None


@dataclass
class AppliedPosts:
    """Posts seen published or failed for the first time in a batch (for counters)."""

    published: list[PostEvent] = field(default_factory=list)
    failed: list[PostEvent] = field(default_factory=list)
    first_reply_at: dict[str, datetime] = field(default_factory=dict)


class PostStore:
    """Our posts: channel, platform, first publication time, and what they answer."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._posts = db[POSTS]

    async def apply(self, events: Sequence[PostEvent]) -> AppliedPosts:
        """Record post events (idempotent: `$min`, `$addToSet`); return first sightings."""
        applied = AppliedPosts()
        if not events:
            return applied
        ids = list({event.post_id for event in events})
        known = {
            doc["_id"]: doc
            async for doc in self._posts.find(
                {"_id": {"$in": ids}}, {"statuses": 1, "in_reply_to_mention_id": 1}
            )
        }
        operations: list[UpdateOne] = []
        seen_now: set[tuple[str, str]] = set()
        for event in events:
            statuses = set(known.get(event.post_id, {}).get("statuses", []))
            key = (event.post_id, event.status)
            first_time = event.status not in statuses and key not in seen_now
            seen_now.add(key)
            update: Document = {
                "$set": {"channel_id": event.channel_id},
                "$addToSet": {"statuses": event.status},
            }
            if event.platform is not None:
                update["$set"]["platform"] = event.platform
            if event.in_reply_to_mention_id is not None:
                update["$set"]["in_reply_to_mention_id"] = event.in_reply_to_mention_id
            if event.status == "published" and event.published_at is not None:
                update["$min"] = {"published_at": event.published_at}
                mention_id = event.in_reply_to_mention_id or known.get(event.post_id, {}).get(
                    "in_reply_to_mention_id"
                )
                if mention_id is not None:
                    earliest = applied.first_reply_at.get(mention_id, event.published_at)
                    applied.first_reply_at[mention_id] = min(earliest, event.published_at)
                if first_time:
                    applied.published.append(event)
            if event.status == "failed" and first_time:
                applied.failed.append(event)
            operations.append(UpdateOne({"_id": event.post_id}, update, upsert=True))
        await self._posts.bulk_write(operations, ordered=False)
        return applied

    async def link_replies(self, reply_to: Mapping[str, str]) -> dict[str, datetime]:
        """Record which mention a reply post answers (from decisions); return published ones."""
        if not reply_to:
            return {}
        await self._posts.bulk_write(
            [
                UpdateOne(
                    {"_id": post_id}, {"$set": {"in_reply_to_mention_id": mention_id}}, upsert=True
                )
                for post_id, mention_id in reply_to.items()
            ],
            ordered=False,
        )
        published: dict[str, datetime] = {}
        query = {"_id": {"$in": list(reply_to)}, "published_at": {"$exists": True}}
        async for doc in self._posts.find(query, {"published_at": 1}):
            mention_id = reply_to[doc["_id"]]
            at = _utc(doc["published_at"])
            published[mention_id] = min(published.get(mention_id, at), at)
        return published

    async def published_between(self, start: datetime, end: datetime) -> list[Document]:
        """Posts first published in [start, end)."""
        query = {"published_at": {"$gte": start, "$lt": end}}
        projection = {"channel_id": 1, "platform": 1, "in_reply_to_mention_id": 1}
        return await self._posts.find(query, projection).to_list(None)

    async def channels_of(self, post_ids: Sequence[str]) -> dict[str, str]:
        if not post_ids:
            return {}
        query = {"_id": {"$in": list(post_ids)}}
        return {doc["_id"]: doc["channel_id"] async for doc in self._posts.find(query)}


class EngagementStore:
    """Each post's latest engagement observation (by `observed_at`), and follower counts."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._latest = db[ENGAGEMENT]
        self._followers = db[FOLLOWERS]

    async def apply(self, observations: Sequence[EngagementObservation]) -> int:
        """Keep the latest observation per post; record follower counts. Returns posts seen."""
        latest: dict[str, EngagementObservation] = {}
        for observation in observations:
            if observation.post_id is None:
                continue  # engagement of someone else's post: not one of our KPIs
            known = latest.get(observation.post_id)
            if known is None or observation.observed_at > known.observed_at:
                latest[observation.post_id] = observation
        if latest:
            operations = [
                UpdateOne(
                    {"_id": post_id, "observed_at": {"$lt": o.observed_at}},
                    {"$set": _counters(o)},
                    upsert=True,
                )
                for post_id, o in latest.items()
            ]
            await _ignoring_duplicates(self._latest.bulk_write(operations, ordered=False))
        follower_docs = [
            InsertOne(
                {
                    "_id": f"{o.channel_id or o.post_id}|{o.observed_at.isoformat()}",
                    "channel_id": o.channel_id,
                    "post_id": o.post_id,
                    "at": o.observed_at,
                    "followers": o.followers,
                }
            )
            for o in observations
            if o.followers is not None and (o.channel_id or o.post_id)
        ]
        if follower_docs:
            await _ignoring_duplicates(self._followers.bulk_write(follower_docs, ordered=False))
        return len(latest)

    async def latest(self, post_ids: Sequence[str]) -> dict[str, Document]:
        if not post_ids:
            return {}
        query = {"_id": {"$in": list(post_ids)}}
        return {doc["_id"]: doc async for doc in self._latest.find(query)}

    async def follower_observations(
        self, channel_ids: Sequence[str], start: datetime, end: datetime
    ) -> list[Document]:
        """Follower observations in [start, end), oldest first: those of the channels, and
        those that name only a post (the caller resolves the post's channel)."""
        if not channel_ids:
            return []
        wanted = set(channel_ids)
        query = {"at": {"$gte": start, "$lt": end}}
        observations = await self._followers.find(query).sort("at", ASCENDING).to_list(None)
        return [o for o in observations if o.get("channel_id") in wanted | {None}]


class AlertStore:
    """One document per tracker and hour: the alert emitted, and whether Kafka has it."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._alerts = db[ALERTS]

    async def claim(self, key: str, document: Document) -> bool:
        """Insert the alert as pending; False when it exists (emitted or being emitted)."""
        try:
            await self._alerts.insert_one(
                {"_id": key, **document, "state": "pending", "claimed_at": utc_now()}
            )
        except DuplicateKeyError:
            return False
        return True

    async def mark_sent(self, key: str) -> None:
        await self._alerts.update_one(
            {"_id": key}, {"$set": {"state": "sent", "sent_at": utc_now()}}
        )

    async def take_stale_pending(self, older_than: timedelta) -> list[Document]:
        """Pending alerts whose emitter died before Kafka had them, claimed again by us."""
        now = utc_now()
        taken: list[Document] = []
        query = {"state": "pending", "claimed_at": {"$lt": now - older_than}}
        async for doc in self._alerts.find(query).limit(100):
            claimed = await self._alerts.find_one_and_update(
                {"_id": doc["_id"], "state": "pending", "claimed_at": doc["claimed_at"]},
                {"$set": {"claimed_at": now}},
            )
            if claimed is not None:
                taken.append(claimed)
        return taken

    async def recent(
        self, tracker_id: str | None, since: datetime | None, limit: int
    ) -> list[Document]:
        query: Document = {}
        if tracker_id is not None:
            query["tracker_id"] = tracker_id
        if since is not None:
            query["window_start"] = {"$gte": since}
        cursor = self._alerts.find(query).sort("window_start", DESCENDING).limit(limit)
        return await cursor.to_list(None)


class LeaseStore:
    """Time-based leases, so one replica does a scheduled job per interval."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._leases = db[LEASES]

    async def acquire(self, name: str, holder: str, interval: timedelta) -> bool:
        """True when this holder runs the job now (the previous lease has run out)."""
        now = utc_now()
        try:
            await self._leases.find_one_and_update(
                {"_id": name, "until": {"$lte": now}},
                {"$set": {"until": now + interval * 0.9, "holder": holder}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False  # the lease exists and is still held by someone
        return True


class TrackerDirectory:
    """Tracker ids and groups, read from ingest's collection in the same database."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._trackers = db[INGEST_TRACKERS]

    async def get(self, tracker_id: str) -> Document | None:
        return await self._trackers.find_one({"_id": tracker_id}, {"group": 1, "name": 1})

    async def group_members(self, group: str) -> list[str]:
        return sorted(await self._trackers.distinct("_id", {"group": group}))

    async def all_ids(self) -> set[str]:
        return set(await self._trackers.distinct("_id"))


def _counters(observation: EngagementObservation) -> Document:
    return {
        "observed_at": observation.observed_at,
        "likes": observation.likes,
        "comments": observation.comments,
        "shares": observation.shares,
        "saves": observation.saves,
        "impressions": observation.impressions,
        "reach": observation.reach,
    }


async def _guarded_upserts(collection: Any, operations: list[UpdateOne]) -> None:
    """Guarded upserts; a duplicate key means "the guard failed: already applied" -- or that
    another writer inserted the document between our match and our insert. The document
    exists after that race, so one retry of those operations tells the two apart."""
    try:
        await collection.bulk_write(operations, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != DUPLICATE_KEY for error in errors):
            raise
        retry = [operations[error["index"]] for error in errors]
        await _ignoring_duplicates(collection.bulk_write(retry, ordered=False))


async def _ignoring_duplicates(write: Any) -> None:
    """Await a bulk write whose duplicate-key errors mean "a newer or equal one is stored"."""
    try:
        await write
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != DUPLICATE_KEY for error in errors):
            raise


def _bucket_location(tracker_id: str, unit: Unit, start: datetime) -> tuple[str, str]:
    """(document `_id`, field prefix) of a tracker's bucket: a day bucket is its own document;
    an hour is one document for all trackers, each tracker's part under `t.<tracker>`, so a
    batch in time order writes a handful of hour documents, not one per tracker and hour."""
    if unit == "hour":
        return hour_id(start), f"{tracker_field(tracker_id)}."
    return bucket_id(tracker_id, unit, start), ""


def _bucket_changes(deltas: BucketDeltas) -> list[Document]:
    """Per touched bucket document: its key fields, `$inc` of its counts, `$max` of its
    authors, and the mention entries an hour gains (`set`) or loses (`unset`)."""
    changes = deltas.non_zero()
    documents: dict[str, Document] = {}
    touched = set(changes) | set(deltas.authors) | set(deltas.entries) | set(deltas.removed)
    for key in sorted(touched):
        tracker_id, unit, start = key
        inc = changes.get(key, {})
        maxima = deltas.author_maxima(key)
        entries = deltas.entries.get(key, {})
        removed = sorted(deltas.removed.get(key, set()))
        if not (inc or maxima or entries or removed):
            continue
        doc_id, prefix = _bucket_location(tracker_id, unit, start)
        key_fields: Document = {"unit": unit, "start": start}
        if unit != "hour":
            key_fields["tracker_id"] = tracker_id
        change = documents.setdefault(
            doc_id,
            {"_id": doc_id, "key": key_fields, "inc": {}, "max": {}, "set": {}, "unset": []},
        )
        change["inc"].update({prefix + name: value for name, value in inc.items()})
        change["max"].update({prefix + name: value for name, value in maxima.items()})
        change["set"].update({prefix + name: value for name, value in entries.items()})
        change["unset"].extend(prefix + name for name in removed)
    return [chunk for change in documents.values() for chunk in _chunks(change)]


#: Most field paths in one bucket update. An hour document of a busy batch changes thousands
#: of paths, and a server may check an update's paths pairwise (SecantusDB does), so a big
#: change is written as several updates of the same document, each with its own mark.
MAX_PATHS = 100


def _chunks(change: Document) -> list[Document]:
    """Split a bucket change into parts of at most `MAX_PATHS` paths, numbered `chunk`."""
    items = [
        (operator, item) for operator in ("inc", "max", "set") for item in change[operator].items()
    ] + [("unset", (name, "")) for name in change["unset"]]
    chunks = []
    for number, first in enumerate(range(0, max(len(items), 1), MAX_PATHS)):
        chunk: Document = {
            "_id": change["_id"],
            "key": change["key"],
            "chunk": number,
            "inc": {},
            "max": {},
            "set": {},
            "unset": [],
        }
        for operator, (name, value) in items[first : first + MAX_PATHS]:
            if operator == "unset":
                chunk["unset"].append(name)
            else:
                chunk[operator][name] = value
        chunks.append(chunk)
    return chunks


def _tracker_part(doc: Mapping[str, Any], tracker_id: str) -> Document:
    part: Document = doc.get("t", {}).get(author_field(tracker_id), {})
    return part


def _entry_fields(sentiment: str, platform: str, action: str) -> list[str]:
    fields = ["volume", f"s.{sentiment}", f"p.{platform}"]
    if action == "review":
        fields.append("review")
    return fields


def _flatten(doc: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, int]]:
    for name, value in doc.items():
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{prefix}{name}.")
        elif isinstance(value, int | float):
            yield f"{prefix}{name}", int(value)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
