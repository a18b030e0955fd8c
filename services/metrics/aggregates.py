"""The mention aggregates in MongoDB: tracker-day rollups, and how a batch lands exactly once.

Collections:
- `metrics_rollups`: per tracker and UTC day, the sum of its mentions' facts (`DaySums`:
  counters and one entry per mention, by hour), a version `v` for compare-and-set, and the
  journals it holds (`j`). The entries are the stored facts: a mention seen again is looked
  up in the rollup of its first tracker, day and hour;
- `metrics_directory`: per batch and tracker, the ids of the new mentions whose first
  tracker it is (a multikey index on `ids`, one key per mention) and the other trackers of
  those that have more (`also`): which trackers a mention belongs to, when only its id is
  known (a reply post names the mention it answers);
- `metrics_trackers`: the trackers that have rollups (reads over all trackers look them up);
- `metrics_journal`, `metrics_offsets`: a batch's plan while it is carried out, and per
  partition the next offset to plan and the journals being carried out (`pending`);
- `metrics_replies`: the earliest published reply per mention.

A KPI window reads one rollup per tracker and day. Why whole rewrites of a few-element
document, and no document per mention: SecantusDB (the local and test server) costs about
70 microseconds an insert or a small rewrite, but an update of hundreds of paths, or of a
document with thousands of elements, costs milliseconds, and a key of a multikey index about
18 microseconds (`bench/metrics.py`). MongoDB itself is fine with all of these.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel, ReplaceOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.metrics import exporter
from services.metrics.domain.facts import (
    BatchDeltas,
    DayKey,
    DaySums,
    Entry,
    MentionFact,
    add_to_document,
    author_field,
    count_names,
    day_name,
    from_micros,
    latest_per_mention,
    micros,
    stored_mentions,
    supersedes,
)
from services.metrics.domain.windows import DAY, HOUR, Unit, floor_to
from services.metrics.exporter import AGGREGATION_STEP
from shared.events import ClassifiedMention, utc_now
from shared.logging import get_logger
from shared.mongo import DUPLICATE_KEY, Document, insert_new

log = get_logger(__name__)

ROLLUPS = "metrics_rollups"
JOURNAL = "metrics_journal"
OFFSETS = "metrics_offsets"
REPLIES = "metrics_replies"
TRACKERS = "metrics_trackers"
DIRECTORY = "metrics_directory"

INDEXES: dict[str, list[IndexModel]] = {
    DIRECTORY: [IndexModel([("ids", ASCENDING)], name="ids")],
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
#: Rollups kept in memory as last stored (the days a live stream keeps adding to).
ROLLUP_CACHE = 4_000
#: Rollup hours kept parsed in memory (the hours a live stream keeps adding to).
PARSED_HOURS = 2_000
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

    1. **Plan.** Read the rollups the batch touches. A mention seen before has its entry
       (its stored fact) in the rollup of its first tracker, day and hour: Kafka keys
       mentions by `mention_id`, so every message of a mention comes through one partition,
       whose owner has carried out every earlier batch before planning this one. Compute
       each touched tracker-day's change (`BatchDeltas`: new facts added, replaced ones taken
       back) and write it, with the new mentions' directory entries, as ONE journal document
       (atomic). Nothing else is written before step 2.
    2. **Claim the offsets.** One conditional update of the offsets document moves every
       partition of the batch from the next offset the plan started at to past its end, and
       lists the journal under `pending`. Only one claim per starting offset can succeed: a
       deposed owner still working on the same messages fails here, drops its journal and
       starts over from what the winner left.
    3. **Carry out.** Write the directory entries (by id, so twice is once) and add the
       plan's change to each tracker-day's rollup: read it, add, and replace it only if its
       version `v` is still the one read (else read again); the rollup lists the journal in
       `j` in the same write, so a journal carried out twice adds once. Then delete and
       unlist the journal. Before planning, a consumer carries out every pending journal of
       its partitions (left by an owner that died after step 2).

    Messages below a partition's next offset are skipped, so redeliveries cost one read; a
    duplicate at another offset finds its entry stored and unchanged.
    """

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._rollups = db[ROLLUPS]
        self._directory = db[DIRECTORY]
        self._journal = db[JOURNAL]
        self._offsets = db[OFFSETS]
        self._replies = db[REPLIES]
        self._trackers = db[TRACKERS]
        self._known_trackers: set[str] = set()
        # Pipelining: a batch is carried out in the background while the next one is decoded
        # and planned. The plan reads the rollups the running carry-out writes from
        # `_writing` (as they will be), and others from `_cache` (as read or written since it
        # was last emptied). Both hold every mention of a partition only while nobody else
        # moved that partition on since then: `_expected` is each partition's next offset as
        # this instance knows it (none for one with a journal pending when it was emptied).
        self._in_flight: tuple[str, asyncio.Task[dict[str, Document]]] | None = None
        self._writing: dict[str, Document] = {}
        self._cache: OrderedDict[str, Document] = OrderedDict()
        self._expected: dict[str, int] = {}
        self._parsed = _ParsedHours(PARSED_HOURS)

    @staticmethod
    @functools.lru_cache(maxsize=1024)
    def partition_key(topic: str, partition: int) -> str:
        """A topic partition as a MongoDB field name (dots escaped)."""
        return author_field(f"{topic}|{partition}")

    # --- writing ------------------------------------------------------------------------

    async def apply(self, batch: Sequence[tuple[Position, ClassifiedMention]]) -> AppliedMentions:
        """Aggregate a batch of positioned mentions exactly once (see the class docstring).

        Returns once the batch is claimed; it is carried out in the background while the
        next batch is planned (`drain` waits for it). A replica killed meanwhile leaves the
        journal pending, and the partition's next owner carries it out."""
        parts = {part for (part, _), _ in batch}
        while batch:
            state = await self._state()
            running = self._in_flight[0] if self._in_flight else None
            pending = [
                journal_id
                for journal_id, journal_parts in state["pending"].items()
                if journal_id != running and parts & set(journal_parts)
            ]
            if pending:
                await self.landed()
                for journal_id in pending:
                    await self._finish(journal_id, set(state["pending"]))
                continue
            next_offsets: dict[str, int] = {part: int(state["next"].get(part, 0)) for part in parts}
            if any(self._expected.get(part, 0) != n for part, n in next_offsets.items()):
                # Another owner moved a partition on: what this one wrote or read may miss
                # that owner's mentions (and its own running carry-out may have to read again).
                if not await self.landed():
                    continue
                self._forget(state, landed=running)
            below = [(pos, m) for pos, m in batch if pos[1] < next_offsets[pos[0]]]
            restarted = await self._restarted_partitions(below) if below else set()
            fresh = [
                (pos, m)
                for pos, m in batch
                if pos[1] >= next_offsets[pos[0]] or pos[0] in restarted
            ]
            applied = AppliedMentions(unchanged=len(batch) - len(fresh))
            if not fresh:
                return applied
            ends: dict[str, int] = {}
            for (part, offset), _ in fresh:
                ends[part] = max(ends.get(part, -1), offset)
            plan = await self._plan([mention for _, mention in fresh], applied)
            if not await self.landed():
                continue  # the last carry-out failed: its journal is pending, plan again
            restarts = {part: int(state.get("restarts", {}).get(part, 0)) for part in restarted}
            if await self._claim(next_offsets, ends, plan, set(state["pending"]), restarts):
                return applied
            self._distrust()
        return AppliedMentions()

    async def _restarted_partitions(
        self, below: Sequence[tuple[Position, ClassifiedMention]]
    ) -> set[str]:
        """The partitions whose messages below the applied offset were never applied: their
        topic was created anew (deleted and created, restored, mirrored, or a local broker
        without storage restarted), so its offsets begin again. A message below the offset
        that is applied (a redelivery after a crash or rebalance) is stored with its version
        or a later one; one that is not stored is new, whatever its offset says."""
        latest = latest_per_mention(mention for _, mention in below)
        stored = _StoredFacts(await self._rollups_of(latest.values()), self._parsed)
        unapplied = {
            mention_id
            for mention_id, fact in latest.items()
            if fact.tracker_ids and supersedes(fact, stored.find(fact))
        }
        restarted: dict[str, int] = {}
        for (part, offset), mention in below:
            if mention.mention_id in unapplied:
                restarted[part] = min(offset, restarted.get(part, offset))
        for part, offset in sorted(restarted.items()):
            exporter.OFFSET_RESTARTS.labels(part).inc()
            log.warning(
                "partition offsets began again: messages below the applied offset were never "
                "applied (the topic was created anew); applying them by mention identity",
                partition=part,
                first_unapplied_offset=offset,
            )
        return set(restarted)

    async def drain(self) -> None:
        """Wait until the last claimed batch is carried out (raises what it raised)."""
        if self._in_flight is not None:
            task = self._in_flight[1]
            self._in_flight = None
            try:
                written = await task
                self._writing = {}
                self._remember(written)
            except BaseException:
                self._distrust()
                raise

    async def landed(self) -> bool:
        """`drain`, with a failure logged, not raised: its journal stays pending, and is
        finished before its partitions go on (here, or by their next owner)."""
        try:
            await self.drain()
        except Exception:
            log.exception("carrying out a claimed batch failed; it is finished before going on")
            return False
        return True

    def _remember(self, stored: Mapping[str, Document]) -> None:
        """Cache rollups as stored now (read, or written by the carry-out that landed)."""
        for key, doc in stored.items():
            self._cache[key] = doc
            self._cache.move_to_end(key)
        while len(self._cache) > ROLLUP_CACHE:
            self._cache.popitem(last=False)

    def _distrust(self) -> None:
        """Another writer may have added to what is cached: read everything again."""
        self._writing = {}
        self._cache.clear()
        self._expected = {}

    def _forget(self, state: Document, landed: str | None) -> None:
        """Empty the cache (nothing is in flight: `landed` was, and is finished), and know the
        partitions' next offsets from now on, but for those with another journal pending."""
        self._distrust()
        pending = {
            part
            for journal_id, parts in state["pending"].items()
            if journal_id != landed
            for part in parts
        }
        self._expected = {part: int(n) for part, n in state["next"].items() if part not in pending}

    async def _state(self) -> Document:
        state = await self._offsets.find_one({"_id": OFFSETS_ID})
        if state is None:
            with contextlib.suppress(DuplicateKeyError):
                await self._offsets.insert_one({"_id": OFFSETS_ID, "next": {}, "pending": {}})
            return {"next": {}, "pending": {}}
        return state

    async def _plan(self, fresh: Sequence[ClassifiedMention], applied: AppliedMentions) -> Plan:
        """Step 1: read the touched rollups, find the mentions seen before, compute the change."""
        latest = latest_per_mention(fresh)
        rollups = await self._rollups_of(latest.values())
        with _step("plan"):
            stored = _StoredFacts(rollups, self._parsed)
            deltas = BatchDeltas()
            directory: dict[str, list[tuple[str, list[str]]]] = {}
            for fact in latest.values():
                old = stored.find(fact)
                if old is None:
                    deltas.add(fact, +1)
                    applied.new.append(fact)
                    if fact.tracker_ids:
                        first, *others = fact.tracker_ids
                        directory.setdefault(first, []).append((fact.mention_id, others))
                elif supersedes(fact, old):
                    deltas.replace(old, fact)
                    applied.changed.append((old, fact))
                else:
                    applied.unchanged += 1
            days = [
                {"tracker_id": tracker_id, "day": day, **sums.document()}
                for (tracker_id, day), sums in sorted(deltas.non_empty().items())
            ]
        return Plan({"days": days, "directory": directory}, rollups)

    async def _rollups_of(self, facts: Iterable[MentionFact]) -> dict[str, Document]:
        """The rollups that hold (or will hold) these facts' entries: as the running
        carry-out writes them, as cached, or read."""
        touched = {
            rollup_id(tracker_id, floor_to(fact.created_at, "day"))
            for fact in facts
            for tracker_id in fact.tracker_ids
        }
        rollups: dict[str, Document] = {}
        for key in touched:
            known = self._writing.get(key) or self._cache.get(key)
            if known is not None:
                rollups[key] = known
        with _step("rollups_read"):
            read = await find_ids(self._rollups, touched - rollups.keys())
        for doc in read:
            rollups[doc["_id"]] = doc
        self._remember({doc["_id"]: doc for doc in read})
        return rollups

    async def _claim(
        self,
        next_offsets: Mapping[str, int],
        ends: Mapping[str, int],
        plan: Plan,
        pending: set[str],
        restarts: Mapping[str, int],
    ) -> bool:
        """Step 2 (and 3): move the partitions on if nobody else did; False when someone did.

        A partition whose offsets began again (`restarts`: its count of restarts as read) is
        moved back to its new end, and its count goes up in the same update: a moved-back
        offset may equal one already stored, so the count is what only one claim can win."""
        condition: Document = {"_id": OFFSETS_ID}
        for part, offset in next_offsets.items():
            condition[f"next.{part}"] = offset if offset else {"$in": [0, None]}
        for part, count in restarts.items():
            condition[f"restarts.{part}"] = count if count else {"$in": [0, None]}
        moved: Document = {f"next.{part}": end + 1 for part, end in ends.items()}
        moved |= {f"restarts.{part}": count + 1 for part, count in restarts.items()}
        if not plan.changes["days"]:
            result = await self._offsets.update_one(condition, {"$set": moved})
            if result.matched_count == 1:
                self._expected.update({part: end + 1 for part, end in ends.items()})
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
        self._expected.update({part: end + 1 for part, end in ends.items()})
        self._writing = dict(zip(writes.keys, writes.documents, strict=True))
        carrying = asyncio.create_task(self._carry_out(journal, pending, writes))
        self._in_flight = (journal["_id"], carrying)
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
    ) -> dict[str, Document]:
        """Step 3: directory entries, add to the rollups, then delete and unlist the journal."""
        with _step("directory"):
            await self._register_trackers({day["tracker_id"] for day in journal["days"]})
            await insert_new(
                self._directory,
                [
                    {
                        "_id": f"{journal['_id']}|{tracker_id}",
                        "tracker_id": tracker_id,
                        "ids": [mention_id for mention_id, _ in mentions],
                        "also": json.dumps({m: others for m, others in mentions if others}),
                    }
                    for tracker_id, mentions in sorted(journal["directory"].items())
                ],
            )
        with _step("rollups_write"):
            written = await self._add_to_rollups(journal["_id"], journal["days"], pending, writes)
        with _step("finish"):
            # Journal first: a pending id without a journal is finished (`_finish`), while a
            # journal no longer pending would be left to `drop_orphan_journals`.
            await self._journal.delete_one({"_id": journal["_id"]})
            await self._unlist(journal["_id"])
        return written

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
    ) -> dict[str, Document]:
        """Add a journal's change to each tracker-day rollup once: compare-and-set on `v`,
        reading again the rollups another writer changed meanwhile. Returns the rollups
        written, as stored now."""
        todo = _by_rollup(days)
        written: dict[str, Document] = {}
        while todo:
            if writes is None:
                stored = {doc["_id"]: doc for doc in await find_ids(self._rollups, todo)}
                writes = _rollup_writes(journal_id, todo, stored, pending)
            lost = set(await _replace_all(self._rollups, writes.operations()))
            for index, key in enumerate(writes.keys):
                if index not in lost:
                    written[key] = writes.documents[index]
            todo = {writes.keys[index]: todo[writes.keys[index]] for index in lost}
            writes = None
        return written

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
            find_ids(
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
        self,
        tracker_id: str,
        start: datetime,
        end: datetime,
        *,
        authors: bool,
        replied: Mapping[str, datetime] | None = None,
    ) -> WindowTotals:
        """A tracker's counts over [start, end); if asked, each author's largest follower count
        in it, and the counted mentions in it that have a first reply in `replied` (mention id
        -> reply time). Hour sums for whole hours, mention entries for hours the window cuts
        (and for every hour, when authors or replies are asked for)."""
        totals = WindowTotals()
        if end <= start:
            return totals
        cut = [moment for moment in (start, end) if floor_to(moment, "hour") != moment]
        every_entry = authors or replied is not None
        parts = ["c", "e"] if every_entry else ["c"]
        sums = await self._day_sums([tracker_id], start, end, parts, entries_on=cut)
        first, last = micros(start), micros(end)
        for (_, day), day_sums in sums.items():
            for hour in day_sums.hours():
                hour_start = day + timedelta(hours=int(hour))
                if hour_start >= end or hour_start + HOUR <= start:
                    continue
                whole = start <= hour_start and hour_start + HOUR <= end
                if whole:
                    totals.counts.update(day_sums.hour_counts(hour))
                    if not every_entry:
                        continue
                for entry, times in day_sums.hour_entries(hour).items():
                    at, author, followers, sentiment, platform, action, mention_id, _ = entry
                    if times <= 0 or action == "hide" or not first <= at < last:
                        continue
                    if not whole:
                        for counter in count_names(sentiment, platform, action):
                            totals.counts[counter] += times
                    if authors:
                        _merge_maxima(totals.maxima, [(author, followers)])
                    if replied is not None and mention_id in replied:
                        totals.replies.append((from_micros(at), replied[mention_id], action))
        return totals

    async def counted_entries(
        self, tracker_id: str, start: datetime, end: datetime
    ) -> list[tuple[Entry, int]]:
        """The entries (with their times) of a tracker's counted mentions created in
        [start, end): the same entries, by the same rule, that `window_totals` reads each
        author's largest follower count from (`potential_reach`)."""
        if end <= start:
            return []
        sums = await self._day_sums([tracker_id], start, end, ["e"])
        first, last = micros(start), micros(end)
        counted: list[tuple[Entry, int]] = []
        for (_, day), day_sums in sums.items():
            for hour in day_sums.hours():
                hour_start = day + timedelta(hours=int(hour))
                if hour_start >= end or hour_start + HOUR <= start:
                    continue
                for entry, times in day_sums.hour_entries(hour).items():
                    if times > 0 and entry[5] != "hide" and first <= entry[0] < last:
                        counted.append((entry, times))
        return counted

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

    async def replied_since(self, start: datetime) -> dict[str, datetime]:
        """Mention id -> our first published reply, for replies published at or after `start`
        (a reply comes after its mention, so these are all that a window from `start` can
        hold)."""
        return {
            doc["_id"]: as_utc(doc["at"])
            async for doc in self._replies.find({"at": {"$gte": start}})
        }

    async def trackers_of(self, mention_ids: Sequence[str]) -> dict[str, list[str]]:
        """Trackers of the given mentions (those aggregated), from the directory."""
        wanted = set(mention_ids)
        found: dict[str, list[str]] = {}
        chunks = [sorted(wanted)[i : i + IN_CHUNK] for i in range(0, len(wanted), IN_CHUNK)]
        for chunk in chunks:
            async for doc in self._directory.find({"ids": {"$in": chunk}}):
                also = json.loads(doc["also"])
                for mention_id in wanted.intersection(doc["ids"]):
                    found[mention_id] = [doc["tracker_id"], *also.get(mention_id, [])]
        return found


@dataclass
class WindowTotals:
    """What `MentionAggregates.window_totals` read: counters, each author's largest follower
    count, and (created_at, first reply, routing action) of the replied mentions."""

    counts: Counter[str] = field(default_factory=Counter)
    maxima: dict[str, int] = field(default_factory=dict)
    replies: list[tuple[datetime, datetime, str]] = field(default_factory=list)


class _StoredFacts:
    """The facts of mentions seen before, as the rollups read for a batch hold them: a
    mention's entry is in the rollup of its first tracker, day and hour (every tracker of a
    mention gets its entry in the same journal)."""

    def __init__(self, rollups: Mapping[str, Document], hours: _ParsedHours) -> None:
        self._rollups = rollups
        self._hours = hours

    def find(self, fact: MentionFact) -> MentionFact | None:
        if not fact.tracker_ids:
            return None
        key = rollup_id(fact.tracker_ids[0], floor_to(fact.created_at, "day"))
        hour = f"{fact.created_at.hour:02d}"
        packed = (self._rollups.get(key) or {}).get("e", {}).get(hour)
        if not packed:
            return None
        entry = self._hours.mentions(key, hour, packed).get(fact.mention_id)
        return MentionFact.from_entry(entry, fact.tracker_ids) if entry else None


class _ParsedHours:
    """Rollup hours as last parsed (mention id -> entry), so that the hour a live stream keeps
    appending to is parsed once and then only in what each batch appended (`add_to_document`
    appends without rewriting what is there), not in full for every batch."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._known: OrderedDict[tuple[str, str], tuple[str, dict[str, Entry]]] = OrderedDict()

    def mentions(self, key: str, hour: str, packed: str) -> dict[str, Entry]:
        known = self._known.pop((key, hour), None)
        if known is not None and known[0] == packed:
            mentions = known[1]
        elif known is not None and _appended_to(known[0], packed):
            mentions = known[1]
            mentions.update(stored_mentions("[" + packed[len(known[0]) :]))
        else:
            mentions = stored_mentions(packed)
        self._known[(key, hour)] = (packed, mentions)
        while len(self._known) > self._size:
            self._known.popitem(last=False)
        return mentions


def _appended_to(old: str, new: str) -> bool:
    """Whether `new` is the JSON list `old` with items appended (`[a]` -> `[a,b]`)."""
    cut = len(old) - 1
    return len(new) > len(old) and new[cut] == "," and new.startswith(old[:cut])


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


@dataclass
class RollupWrites:
    """Rollups as they are to be stored (with `_id`), each replacing the version it was
    computed from (`v` - 1; for a new rollup nothing, so the upsert inserts it)."""

    keys: list[str] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)

    def operations(self) -> list[ReplaceOne[Document]]:
        return [
            ReplaceOne({"_id": key, "v": doc["v"] - 1}, doc, upsert=True)
            for key, doc in zip(self.keys, self.documents, strict=True)
        ]


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
    writes = RollupWrites()
    now = time.time()
    for key, day in todo.items():
        rollup = stored.get(key)
        journals: dict[str, float] = json.loads(rollup["j"]) if rollup else {}
        if journal_id in journals:
            continue  # added by an earlier attempt of this journal
        sums = add_to_document(rollup or {}, day)
        kept = {
            name: at
            for name, at in journals.items()
            if name in pending or at > now - JOURNALS_KEPT.total_seconds()
        }
        version = int(rollup["v"]) if rollup else 0
        document = {
            "_id": key,
            "tracker_id": day["tracker_id"],
            "day": day["day"],
            "v": version + 1,
            "j": json.dumps(kept | {journal_id: now}),
            **sums,
        }
        # The write names the version read; for a new rollup nothing matches, so the upsert
        # inserts it, unless another writer inserted it first (then it is read again).
        writes.keys.append(key)
        writes.documents.append(document)
    return writes


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


async def find_ids(
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
