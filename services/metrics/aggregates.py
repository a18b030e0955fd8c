"""The mention aggregates in MongoDB: facts, tracker-day rollups, and how a batch lands
exactly once.

Collections:
- `metrics_mentions`: one *fact* per mention (what the KPIs read), with `src`, the position
  of the message it was written from;
- `metrics_rollups`: per tracker and UTC day, the sum of its facts (`DaySums`: counters and
  mention entries per hour), a version `v` for compare-and-set, and the journals it holds
  (`j`);
- `metrics_trackers`: the trackers that have rollups (reads over all trackers look them up);
- `metrics_journal`, `metrics_offsets`: a batch's plan while it is carried out, and per
  partition the next offset to plan and the journals being carried out (`pending`);
- `metrics_replies`: the earliest published reply per mention.

A KPI window reads one rollup per tracker and day. Why whole rewrites of a few-element
document and not `$inc` of many paths: SecantusDB (the local and test server) costs about
70 microseconds an insert or a small rewrite, but an update of hundreds of paths, or of a
document with thousands of elements, costs milliseconds (`bench/metrics.py`). MongoDB itself
is fine with both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel, ReplaceOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.metrics.domain.facts import (
    BatchDeltas,
    DayKey,
    DaySums,
    MentionFact,
    add_to_document,
    author_field,
    count_names,
    day_name,
    micros,
    supersedes,
)
from services.metrics.domain.windows import DAY, HOUR, Unit, floor_to
from services.metrics.exporter import AGGREGATION_STEP
from shared.events import ClassifiedMention, utc_now
from shared.mongo import DUPLICATE_KEY, Document, insert_new

MENTIONS = "metrics_mentions"
ROLLUPS = "metrics_rollups"
JOURNAL = "metrics_journal"
OFFSETS = "metrics_offsets"
REPLIES = "metrics_replies"
TRACKERS = "metrics_trackers"

INDEXES: dict[str, list[IndexModel]] = {
    MENTIONS: [],
    # No secondary index: each costs a rollup rewrite as much again, and every read knows
    # the `_id`s it wants (`rollup_id`: tracker and day; trackers from `metrics_trackers`).
    ROLLUPS: [],
    TRACKERS: [],
    JOURNAL: [],
    OFFSETS: [],
    REPLIES: [IndexModel([("at", ASCENDING)], name="at")],
}

#: The one `metrics_offsets` document of the mentions topic's partitions.
OFFSETS_ID = "mentions"
#: How long a rollup remembers a finished journal: a replica still carrying out a journal that
#: another one finished meanwhile must find it there (and skip it).
JOURNALS_KEPT = timedelta(minutes=2)
#: A journal that never became pending (its claim lost) is garbage after this long.
ORPHAN_AFTER = timedelta(hours=1)
#: Ids per `$in` query: SecantusDB checks each found document against the whole list.
IN_CHUNK = 50

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
    """Mention facts and their day sums, kept exact without multi-document transactions.

    A batch is applied in steps that are each safe to repeat or to lose:

    1. **Claim facts.** Insert each mention's fact (`src`: its position). An id that exists
       was seen before; its stored fact is read. A stored fact whose `src` is at or past the
       partition's next offset was written by an attempt that died before step 3: it was
       never counted, so it counts as new.
    2. **Plan.** Compute in memory each touched tracker-day's change (`BatchDeltas`: new facts
       added, replaced ones taken back) and the facts to overwrite; write the plan as ONE
       journal document (atomic).
    3. **Claim the offsets.** One conditional update of the offsets document moves every
       partition of the batch from the next offset the plan started at to past its end, and
       lists the journal under `pending`. Only one claim per starting offset can succeed: a
       deposed owner still working on the same messages fails here, drops its journal and
       starts over from what the winner left.
    4. **Carry out.** Overwrite the facts and add the plan's change to each tracker-day's
       rollup: read it, add, and replace it only if its version `v` is still the one read
       (else read again); the rollup lists the journal in `j` in the same write, so a
       journal carried out twice adds once. Then delete and unlist the journal. Before
       planning, a consumer carries out every pending journal of its partitions (left by an
       owner that died after step 3).

    Messages below a partition's next offset are skipped, so redeliveries cost one read; a
    duplicate at another offset finds its fact stored and unchanged.
    """

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._mentions = db[MENTIONS]
        self._rollups = db[ROLLUPS]
        self._journal = db[JOURNAL]
        self._offsets = db[OFFSETS]
        self._replies = db[REPLIES]
        self._trackers = db[TRACKERS]
        self._known_trackers: set[str] = set()

    @staticmethod
    def partition_key(topic: str, partition: int) -> str:
        """A topic partition as a MongoDB field name (dots escaped)."""
        return author_field(f"{topic}|{partition}")

    # --- writing ------------------------------------------------------------------------

    async def apply(self, batch: Sequence[tuple[Position, ClassifiedMention]]) -> AppliedMentions:
        """Aggregate a batch of positioned mentions exactly once (see the class docstring)."""
        parts = {part for (part, _), _ in batch}
        while batch:
            state = await self._state()
            pending = [
                journal_id
                for journal_id, journal_parts in state["pending"].items()
                if parts & set(journal_parts)
            ]
            if pending:
                for journal_id in pending:
                    await self._finish(journal_id, set(state["pending"]))
                continue
            next_offsets: dict[str, int] = {part: int(state["next"].get(part, 0)) for part in parts}
            fresh = [(pos, m) for pos, m in batch if pos[1] >= next_offsets[pos[0]]]
            applied = AppliedMentions(unchanged=len(batch) - len(fresh))
            if not fresh:
                return applied
            ends: dict[str, int] = {}
            for (part, offset), _ in fresh:
                ends[part] = max(ends.get(part, -1), offset)
            plan = await self._plan(fresh, next_offsets, applied)
            if await self._claim(next_offsets, ends, plan, set(state["pending"])):
                return applied
        return AppliedMentions()

    async def _state(self) -> Document:
        state = await self._offsets.find_one({"_id": OFFSETS_ID})
        if state is None:
            with contextlib.suppress(DuplicateKeyError):
                await self._offsets.insert_one({"_id": OFFSETS_ID, "next": {}, "pending": {}})
            return {"next": {}, "pending": {}}
        return state

    async def _plan(
        self,
        fresh: Sequence[tuple[Position, ClassifiedMention]],
        next_offsets: Mapping[str, int],
        applied: AppliedMentions,
    ) -> Plan:
        """Steps 1 and 2: claim new facts, read known ones, and compute the change.

        Most mentions are new, so the change is computed as if all were while their facts are
        inserted, and the rollups it touches are read meanwhile; the few seen before are then
        taken out again and handled as they are."""
        latest: dict[str, tuple[MentionFact, Position]] = {}
        for position, mention in fresh:
            fact = MentionFact.of(mention)
            known = latest.get(fact.mention_id)
            if known is None or fact.version >= known[0].version:
                latest[fact.mention_id] = (fact, position)
        documents = {
            mention_id: {"_id": mention_id, "f": fact.packed(), "src": list(position)}
            for mention_id, (fact, position) in latest.items()
        }
        inserting = asyncio.create_task(insert_new(self._mentions, list(documents.values())))
        await asyncio.sleep(0)  # let the insert be sent before the computing starts
        with _step("plan"):
            deltas = BatchDeltas()
            for fact, _ in latest.values():
                deltas.add(fact, +1)
        # A rollup that a replaced fact adds is not read here: its write finds it changed
        # (compare-and-set) and reads it then.
        reading = asyncio.create_task(
            _find_ids(self._rollups, [rollup_id(*key) for key in deltas.days])
        )
        with _step("facts"), _cancelled_on_error(inserting, reading):
            existing = await inserting
            stored = {doc["_id"]: doc for doc in await _find_ids(self._mentions, existing)}
        with _step("plan"):
            overwrite: list[Document] = []
            never_counted: set[str] = set()
            for mention_id in existing:
                fact = latest[mention_id][0]
                doc = stored.get(mention_id)
                if doc is None or _never_counted(doc, next_offsets):
                    overwrite.append(documents[mention_id])  # new after all
                    never_counted.add(mention_id)
                    continue
                deltas.add(fact, -1)  # take the addition as new back
                old = MentionFact.unpack(mention_id, doc["f"])
                if not supersedes(fact, old):
                    applied.unchanged += 1
                    continue
                deltas.replace(old, fact)
                overwrite.append(documents[mention_id])
                applied.changed.append((old, fact))
            applied.new = [
                fact
                for mention_id, (fact, _) in latest.items()
                if mention_id not in existing or mention_id in never_counted
            ]
            days = [
                {"tracker_id": tracker_id, "day": day, **sums.document()}
                for (tracker_id, day), sums in sorted(deltas.non_empty().items())
            ]
        with _step("rollups_read"):
            rollups = {doc["_id"]: doc for doc in await reading}
        return Plan({"overwrite": overwrite, "days": days}, rollups)

    async def _claim(
        self,
        next_offsets: Mapping[str, int],
        ends: Mapping[str, int],
        plan: Plan,
        pending: set[str],
    ) -> bool:
        """Step 3 (and 4): move the partitions on if nobody else did; False when someone did."""
        condition: Document = {"_id": OFFSETS_ID}
        for part, offset in next_offsets.items():
            condition[f"next.{part}"] = offset if offset else {"$in": [0, None]}
        moved = {f"next.{part}": end + 1 for part, end in ends.items()}
        if not plan.changes["overwrite"] and not plan.changes["days"]:
            result = await self._offsets.update_one(condition, {"$set": moved})
            return result.matched_count == 1
        journal: Document = {
            "_id": uuid.uuid4().hex,
            "parts": sorted(ends),
            "created_at": utc_now(),
            **plan.changes,
        }
        inserting = asyncio.create_task(self._journal.insert_one(journal))
        await asyncio.sleep(0)  # sent; the rollup writes are computed meanwhile
        with _step("plan"), _cancelled_on_error(inserting):
            writes = _rollup_writes(
                journal["_id"], _by_rollup(journal["days"]), plan.rollups, pending
            )
        with _step("journal"):
            await inserting
        with _step("claim"):
            result = await self._offsets.update_one(
                condition, {"$set": moved | {f"pending.{journal['_id']}": journal["parts"]}}
            )
        if result.matched_count != 1:
            await self._journal.delete_one({"_id": journal["_id"]})
            return False
        await self._carry_out(journal, pending, writes)
        return True

    async def _finish(self, journal_id: str, pending: set[str]) -> None:
        """Carry out a pending journal (one left by an owner that died after its claim)."""
        journal = await self._journal.find_one({"_id": journal_id})
        if journal is None:  # finished meanwhile by someone else
            await self._unlist(journal_id)
            return
        await self._carry_out(journal, pending)

    async def _unlist(self, journal_id: str) -> None:
        """The journal is no longer pending."""
        await self._offsets.update_one(
            {"_id": OFFSETS_ID}, {"$unset": {f"pending.{journal_id}": ""}}
        )

    async def _carry_out(
        self, journal: Document, pending: set[str], writes: RollupWrites | None = None
    ) -> None:
        """Step 4: overwrite facts, add to the rollups, then delete and unlist the journal."""
        if journal["overwrite"]:
            with _step("facts"):
                await self._mentions.bulk_write(
                    [
                        UpdateOne(
                            {"_id": doc["_id"]},
                            {"$set": {k: v for k, v in doc.items() if k != "_id"}},
                            upsert=True,
                        )
                        for doc in journal["overwrite"]
                    ],
                    ordered=False,
                )
        with _step("rollups_write"):
            await self._register_trackers({day["tracker_id"] for day in journal["days"]})
            await self._add_to_rollups(journal["_id"], journal["days"], pending, writes)
        with _step("finish"):
            # Journal first: a pending id without a journal is finished (`_finish`), while a
            # journal no longer pending would be left to `drop_orphan_journals`.
            await self._journal.delete_one({"_id": journal["_id"]})
            await self._unlist(journal["_id"])

    async def record_replies(self, first_reply_at: Mapping[str, datetime]) -> None:
        """Our earliest published reply per mention (`$min`, so order and repeats do not matter)."""
        if first_reply_at:
            await self._replies.bulk_write(
                [
                    UpdateOne({"_id": mention_id}, {"$min": {"at": at}}, upsert=True)
                    for mention_id, at in first_reply_at.items()
                ],
                ordered=False,
            )

    async def _register_trackers(self, tracker_ids: set[str]) -> None:
        """List trackers with rollups (before their first rollup), so reads over all trackers
        know which rollups to look up."""
        new = tracker_ids - self._known_trackers
        if new:
            await insert_new(self._trackers, [{"_id": tracker_id} for tracker_id in sorted(new)])
            self._known_trackers |= new

    async def _add_to_rollups(
        self,
        journal_id: str,
        days: Sequence[Document],
        pending: set[str],
        writes: RollupWrites | None = None,
    ) -> None:
        """Add a journal's change to each tracker-day rollup once: compare-and-set on `v`,
        reading again the rollups another writer changed meanwhile."""
        todo = _by_rollup(days)
        while todo:
            if writes is None:
                stored = {doc["_id"]: doc for doc in await _find_ids(self._rollups, todo)}
                writes = _rollup_writes(journal_id, todo, stored, pending)
            keys, operations = writes
            lost = await _replace_all(self._rollups, operations)
            todo = {keys[index]: todo[keys[index]] for index in lost}
            writes = None

    async def drop_orphan_journals_every(self, interval_seconds: float) -> None:
        """Background task: `drop_orphan_journals` now and then."""
        while True:
            await self.drop_orphan_journals()
            await asyncio.sleep(interval_seconds)

    async def drop_orphan_journals(self) -> int:
        """Delete journals whose claim was lost and whose writer died before deleting them."""
        pending = set((await self._state())["pending"])
        old = {"created_at": {"$lt": utc_now() - ORPHAN_AFTER}}
        orphans = [
            doc["_id"]
            async for doc in self._journal.find(old, {"_id": 1})
            if doc["_id"] not in pending
        ]
        for orphan in orphans:
            await self._journal.delete_one({"_id": orphan})
        return len(orphans)

    # --- reading ------------------------------------------------------------------------

    async def _day_sums(
        self,
        tracker_ids: Iterable[str],
        start: datetime,
        end: datetime,
        parts: Sequence[str],
        *,
        entries_on: Iterable[datetime] = (),
    ) -> dict[DayKey, DaySums]:
        """The rollups of these trackers for the UTC days that [start, end) overlaps, with the
        given parts (`c`, `e`); the mention entries `e` at least for the days in `entries_on`."""
        days = []
        day = floor_to(start, "day")
        while day < end:
            days.append(day)
            day += DAY
        with_entries = {floor_to(moment, "day") for moment in entries_on}
        projection = {"tracker_id": 1, "day": 1} | dict.fromkeys(parts, 1)
        lookups = [
            _find_ids(
                self._rollups,
                [rollup_id(t, d) for t in tracker_ids for d in days if (d in with_entries) == e],
                projection | ({"e": 1} if e else {}),
            )
            for e in (False, True)
        ]
        found = await asyncio.gather(*lookups)
        return {
            (rollup["tracker_id"], as_utc(rollup["day"])): DaySums.from_document(rollup)
            for rollups in found
            for rollup in rollups
        }

    async def _all_trackers(self) -> list[str]:
        return sorted(await self._trackers.distinct("_id"))

    async def window_totals(
        self, tracker_id: str, start: datetime, end: datetime, *, authors: bool
    ) -> tuple[Counter[str], dict[str, int]]:
        """A tracker's counts over [start, end), and (if asked) each author's largest follower
        count in it: hour sums for whole hours, mention entries for hours the window cuts."""
        counts: Counter[str] = Counter()
        maxima: dict[str, int] = {}
        if end <= start:
            return counts, maxima
        cut = [moment for moment in (start, end) if floor_to(moment, "hour") != moment]
        parts = ["c", "e"] if authors else ["c"]
        sums = await self._day_sums([tracker_id], start, end, parts, entries_on=cut)
        first, last = micros(start), micros(end)
        for (_, day), day_sums in sums.items():
            for hour in day_sums.hours():
                hour_start = day + timedelta(hours=int(hour))
                if hour_start >= end or hour_start + HOUR <= start:
                    continue
                if start <= hour_start and hour_start + HOUR <= end:
                    counts.update(day_sums.hour_counts(hour))
                    if authors:
                        _merge_maxima(maxima, day_sums.author_maxima(hour).items())
                    continue
                for entry, times in day_sums.hour_entries(hour).items():
                    at, author, followers, sentiment, platform, action = entry
                    if times > 0 and first <= at < last:
                        for counter in count_names(sentiment, platform, action):
                            counts[counter] += times
                        if authors:
                            _merge_maxima(maxima, [(author, followers)])
        return counts, maxima

    async def buckets(
        self, tracker_id: str, unit: Unit, start: datetime, end: datetime
    ) -> dict[datetime, tuple[Counter[str], int]]:
        """Per hour or day of [start, end) (aligned): counts and potential reach."""
        sums = await self._day_sums([tracker_id], start, end, ["c", "e"])
        counts: dict[datetime, Counter[str]] = {}
        maxima: dict[datetime, dict[str, int]] = {}
        for (_, day), day_sums in sums.items():
            for hour in day_sums.hours():
                hour_start = day + timedelta(hours=int(hour))
                if not start <= hour_start < end:
                    continue
                bucket = hour_start if unit == "hour" else day
                counts.setdefault(bucket, Counter()).update(day_sums.hour_counts(hour))
                _merge_maxima(maxima.setdefault(bucket, {}), day_sums.author_maxima(hour).items())
        return {
            bucket: (bucket_counts, sum(maxima.get(bucket, {}).values()))
            for bucket, bucket_counts in counts.items()
            if bucket_counts["volume"] or maxima.get(bucket)
        }

    async def hourly_negatives(
        self, start: datetime, end: datetime, tracker_ids: Sequence[str] | None = None
    ) -> dict[str, dict[datetime, int]]:
        """Negative mentions per tracker and hour in [start, end)."""
        wanted = await self._all_trackers() if tracker_ids is None else tracker_ids
        sums = await self._day_sums(wanted, start, end, ["c"])
        counts: dict[str, dict[datetime, int]] = {}
        for (tracker_id, day), day_sums in sums.items():
            for hour in day_sums.hours():
                hour_start = day + timedelta(hours=int(hour))
                negative = day_sums.hour_counts(hour).get("s.negative", 0)
                if negative > 0 and start <= hour_start < end:
                    counts.setdefault(tracker_id, {})[hour_start] = negative
        return counts

    async def trackers_with_data(self, start: datetime, end: datetime) -> set[str]:
        """Trackers with mentions in the UTC days that [start, end) overlaps."""
        sums = await self._day_sums(await self._all_trackers(), start, end, ["c"])
        return {
            tracker_id
            for (tracker_id, _), day_sums in sums.items()
            if any(counts.get("volume", 0) > 0 for counts in day_sums.counts.values())
        }

    async def knows_tracker(self, tracker_id: str) -> bool:
        return await self._trackers.find_one({"_id": tracker_id}) is not None

    async def replies(
        self, tracker_id: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime, str]]:
        """(created_at, first reply's published_at, routing action) of replied mentions."""
        # From the replies: they are few, a tracker's mentions are many. A reply is published
        # after the mention, so at >= start bounds the scan.
        replied = {
            doc["_id"]: as_utc(doc["at"])
            async for doc in self._replies.find({"at": {"$gte": start}})
        }
        facts = [
            MentionFact.unpack(doc["_id"], doc["f"])
            for doc in await _find_ids(self._mentions, replied, {"f": 1})
        ]
        return [
            (fact.created_at, replied[fact.mention_id], fact.action)
            for fact in facts
            if fact.counted and tracker_id in fact.tracker_ids and start <= fact.created_at < end
        ]

    async def trackers_of(self, mention_ids: Sequence[str]) -> dict[str, list[str]]:
        """Trackers of the given mentions (those whose facts are known)."""
        docs = await _find_ids(self._mentions, mention_ids, {"f": 1})
        return {
            doc["_id"]: list(MentionFact.unpack(doc["_id"], doc["f"]).tracker_ids) for doc in docs
        }


@contextlib.contextmanager
def _cancelled_on_error(*tasks: asyncio.Task[Any]) -> Iterator[None]:
    """Leave no task of ours running (or failing unobserved) when the batch fails."""
    try:
        yield
    except BaseException:
        for task in tasks:
            task.cancel()
        raise


@contextlib.contextmanager
def _step(name: str) -> Iterator[None]:
    """Time a step of `MentionAggregates.apply` (`smm_metrics_aggregation_step_seconds`)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        AGGREGATION_STEP.labels(name).observe(time.perf_counter() - started)


def rollup_id(tracker_id: str, day: datetime) -> str:
    return f"{tracker_id}|{day_name(day)}"


@dataclass
class Plan:
    """A batch's change (the journal's content) and the rollups it touches as read."""

    changes: Document
    rollups: dict[str, Document]


#: (rollup ids, their conditional replacements), in the same order.
RollupWrites = tuple[list[str], list[ReplaceOne[Document]]]


def _by_rollup(days: Sequence[Document]) -> dict[str, Document]:
    return {rollup_id(day["tracker_id"], as_utc(day["day"])): day for day in days}


def _rollup_writes(
    journal_id: str,
    todo: Mapping[str, Document],
    stored: Mapping[str, Document],
    pending: set[str],
) -> RollupWrites:
    """Each rollup plus its change, with the journal listed in `j`: a replacement that only
    applies to the version read. Rollups that list the journal already are left alone."""
    keys: list[str] = []
    operations: list[ReplaceOne[Document]] = []
    now = time.time()
    for key, day in todo.items():
        rollup = stored.get(key)
        journals: dict[str, float] = json.loads(rollup["j"]) if rollup else {}
        if journal_id in journals:
            continue  # added by an earlier attempt of this journal
        change = DaySums.from_document(day)
        sums = add_to_document(rollup, change) if rollup else change.document()
        kept = {
            name: at
            for name, at in journals.items()
            if name in pending or at > now - JOURNALS_KEPT.total_seconds()
        }
        version = int(rollup["v"]) if rollup else 0
        document = {
            "tracker_id": day["tracker_id"],
            "day": day["day"],
            "v": version + 1,
            "j": json.dumps(kept | {journal_id: now}),
            **sums,
        }
        # The filter names the version read; for a new rollup nothing matches, so the upsert
        # inserts it, unless another writer inserted it first (then it is read again).
        operations.append(ReplaceOne({"_id": key, "v": version}, document, upsert=True))
        keys.append(key)
    return keys, operations


def _never_counted(doc: Mapping[str, Any], next_offsets: Mapping[str, int]) -> bool:
    """A fact written by a batch that died before claiming its offsets (step 1 of `apply`)."""
    src = doc.get("src")
    if not src or src[0] not in next_offsets:
        return False
    return int(src[1]) >= next_offsets[src[0]]


def _merge_maxima(maxima: dict[str, int], pairs: Iterable[tuple[str, int]]) -> None:
    for author, followers in pairs:
        if followers >= maxima.get(author, 0):
            maxima[author] = followers


async def _replace_all(
    collection: AsyncCollection[Document], writes: list[ReplaceOne[Document]]
) -> list[int]:
    """Run conditional replacements; return the indexes of those that lost a race (their
    upsert hit the existing document's `_id`: it changed since it was read)."""
    if not writes:
        return []
    try:
        await collection.bulk_write(writes, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != DUPLICATE_KEY for error in errors):
            raise
        return [int(error["index"]) for error in errors]
    return []


async def _find_ids(
    collection: AsyncCollection[Document],
    ids: Iterable[str],
    projection: Document | None = None,
) -> list[Document]:
    """Documents by id, in chunks of `IN_CHUNK` (queried concurrently)."""
    wanted = list(ids)
    chunks = [wanted[i : i + IN_CHUNK] for i in range(0, len(wanted), IN_CHUNK)]
    found = await asyncio.gather(
        *(collection.find({"_id": {"$in": chunk}}, projection).to_list(None) for chunk in chunks)
    )
    return [doc for docs in found for doc in docs]


def as_utc(moment: datetime) -> datetime:
    """A datetime read from MongoDB as aware UTC (a client without `tz_aware` reads naive)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
