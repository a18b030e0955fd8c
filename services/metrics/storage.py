"""MongoDB collections of the metrics service besides the mention aggregates, their indexes,
and the repositories over them.

- the mention aggregates: `services/metrics/aggregates.py` (its collections are in `INDEXES`);
- `metrics_posts`, `metrics_engagement`, `metrics_followers`: our posts, each post's latest
  engagement observation, and our accounts' follower counts over time;
- `metrics_alerts`: one document per tracker and hour, so a spike alert is emitted once;
- `metrics_leases`: which replica publishes the scheduled KPI snapshots;
- `metrics_authors`: per author (platform + author id) the handle and display name of their
  latest mention, the labels of `GET /v1/voices` (its figures come from the aggregates).
Tracker names and groups are read from ingest's `ingest_trackers` in the same database.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, InsertOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.metrics import aggregates
from services.metrics.aggregates import as_utc
from shared.events import ClassifiedMention, EngagementObservation, PostEvent, utc_now
from shared.mongo import DUPLICATE_KEY, Document

POSTS = "metrics_posts"
ENGAGEMENT = "metrics_engagement"
FOLLOWERS = "metrics_followers"
ALERTS = "metrics_alerts"
LEASES = "metrics_leases"
AUTHORS = "metrics_authors"
#: Owned by ingest (`services/ingest/storage.py`); metrics only reads `_id` and `group`.
INGEST_TRACKERS = "ingest_trackers"

INDEXES: dict[str, list[IndexModel]] = {
    **aggregates.INDEXES,
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
    AUTHORS: [],  # read by `_id` only
}


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
            at = as_utc(doc["published_at"])
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
        self, tracker_ids: Sequence[str] | None, since: datetime | None, limit: int
    ) -> list[Document]:
        """The newest alerts of these trackers (None: of all)."""
        query: Document = {}
        if tracker_ids is not None:
            query["tracker_id"] = {"$in": list(tracker_ids)}
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


class AuthorLabels:
    """Each author's handle and display name, as their latest mention (by created_at) gave
    them. Labels only: a lost or stale one changes no figure, so writes are best kept cheap
    (an author whose labels this replica wrote already is not written again)."""

    def __init__(self, db: AsyncDatabase[Document], remembered: int = 20_000) -> None:
        self._authors = db[AUTHORS]
        self._written: OrderedDict[str, tuple[str | None, str | None]] = OrderedDict()
        self._remembered = remembered

    async def record(self, mentions: Sequence[ClassifiedMention]) -> None:
        """Keep the labels of these mentions' authors (the latest per author wins)."""
        latest: dict[str, ClassifiedMention] = {}
        for mention in mentions:
            if mention.author.handle is None and mention.author.display_name is None:
                continue
            key = f"{mention.platform}:{mention.author.id}"
            known = latest.get(key)
            if known is None or mention.created_at >= known.created_at:
                latest[key] = mention
        changed = {
            key: m
            for key, m in latest.items()
            if self._written.get(key) != (m.author.handle, m.author.display_name)
        }
        if not changed:
            return
        operations = [
            UpdateOne(
                {"_id": key, "at": {"$lt": m.created_at}},
                {
                    "$set": {
                        "at": m.created_at,
                        "handle": m.author.handle,
                        "display_name": m.author.display_name,
                    }
                },
                upsert=True,
            )
            for key, m in changed.items()
        ]
        await _ignoring_duplicates(self._authors.bulk_write(operations, ordered=False))
        for key, m in changed.items():
            self._written[key] = (m.author.handle, m.author.display_name)
            self._written.move_to_end(key)
        while len(self._written) > self._remembered:
            self._written.popitem(last=False)

    async def of(self, authors: Sequence[str]) -> dict[str, Document]:
        """Labels by author key, for those known."""
        found = await aggregates.find_ids(self._authors, authors, {"handle": 1, "display_name": 1})
        return {doc["_id"]: doc for doc in found}


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


async def _ignoring_duplicates(write: Any) -> None:
    """Await a bulk write whose duplicate-key errors mean "a newer or equal one is stored"."""
    try:
        await write
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != DUPLICATE_KEY for error in errors):
            raise
