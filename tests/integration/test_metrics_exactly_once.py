"""Mention aggregation stays exact when a batch is redelivered or the process dies mid-batch.

`MentionAggregates.apply` writes no multi-document transaction: a journal per batch and a
per-partition high-water mark on every bucket make each step idempotent. These tests cut a
batch at every step (before the journal is carried out, in the middle of the bucket bulk
write, before the journal is finished), let a fresh instance (a restarted replica) receive
the redelivery, possibly with other batch boundaries, and compare every bucket with a
reference database that saw each message once, and the volumes with a plain count.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.metrics import storage
from services.metrics.domain.facts import field_key, hour_id
from services.metrics.storage import BUCKETS, INDEXES, JOURNAL, MentionAggregates, Position
from shared.events import ClassifiedMention
from shared.settings import Settings
from tests.metrics_dataset import classified

pytestmark = pytest.mark.integration

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
PARTS = ("mentions|0", "mentions|1")


class SimulatedCrashError(Exception):
    """Stands for a SIGKILL: nothing after it runs."""


def stream(seed: int, count: int) -> list[tuple[Position, ClassifiedMention]]:
    """Positioned mentions: two partitions, late ones, spam, shared authors, several trackers."""
    rng = random.Random(seed)
    version = T0 + timedelta(days=3)
    offsets = dict.fromkeys(PARTS, 0)
    out: list[tuple[Position, ClassifiedMention]] = []
    for n in range(count):
        created = T0 + timedelta(minutes=rng.randrange(6 * 60))
        trackers = sorted({rng.choice(("acme", "rival", "other")) for _ in range(2)})
        author = (rng.choice(("x", "mastodon")), f"a{rng.randrange(15)}", rng.randrange(9000))
        mention = classified(rng, n, created, trackers, author, version)
        part = PARTS[n % 2]
        out.append(((part, offsets[part]), mention))
        offsets[part] += 1
    return out


def reclassified(
    batch: Sequence[tuple[Position, ClassifiedMention]], start: dict[str, int]
) -> list[tuple[Position, ClassifiedMention]]:
    """A later classification of every third mention, at new offsets of its partition."""
    offsets = dict(start)
    out: list[tuple[Position, ClassifiedMention]] = []
    for (part, _), mention in batch[::3]:
        flipped = {"approve": "hide", "hide": "review", "review": "approve"}[mention.action]
        later = mention.model_copy(
            update={"action": flipped, "occurred_at": mention.occurred_at + timedelta(hours=1)}
        )
        out.append(((part, offsets[part]), later))
        offsets[part] += 1
    return out


def end_offsets(batch: Sequence[tuple[Position, ClassifiedMention]]) -> dict[str, int]:
    ends = dict.fromkeys(PARTS, 0)
    for (part, offset), _ in batch:
        ends[part] = max(ends[part], offset + 1)
    return ends


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongodb_uri.get_secret_value(), tz_aware=True
    )
    try:
        yield mongo
    finally:
        await mongo.close()


async def database(
    client: AsyncMongoClient[dict[str, Any]], name: str
) -> AsyncDatabase[dict[str, Any]]:
    db = client[name]
    for collection, indexes in INDEXES.items():
        if indexes:
            await db[collection].create_indexes(indexes)
    return db


async def buckets(db: AsyncDatabase[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every tracker's non-empty bucket (a day document, or its part of an hour document)
    without bookkeeping marks, zero and empty fields dropped (a bucket that a redelivery fills
    and empties again is no different from none)."""

    def clean(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        cleaned = {k: clean(v) for k, v in value.items() if k != "hw"}
        return {k: v for k, v in cleaned.items() if v != 0 and v != {}}

    found: dict[str, dict[str, Any]] = {}
    async for doc in db[BUCKETS].find({}):
        if doc["unit"] == "hour":
            hour = doc["_id"].rsplit("|", 1)[1]
            for tracker, part in doc.get("t", {}).items():
                found[f"{field_key(tracker)}|hour|{hour}"] = clean(part)
        else:
            found[doc["_id"]] = clean(doc)
    return {key: doc for key, doc in found.items() if doc.get("volume")}


def plain_volumes(messages: Sequence[tuple[Position, ClassifiedMention]]) -> Counter[str]:
    """Hour volumes per tracker from the latest classification of each mention (no product code)."""
    latest: dict[str, ClassifiedMention] = {}
    for _, mention in messages:
        known = latest.get(mention.mention_id)
        if known is None or mention.occurred_at >= known.occurred_at:
            latest[mention.mention_id] = mention
    volumes: Counter[str] = Counter()
    for mention in latest.values():
        if mention.action != "hide":
            hour = mention.created_at.strftime("%Y-%m-%dT%H")
            for tracker_id in set(mention.tracker_ids):
                volumes[f"{tracker_id}|hour|{hour}"] += 1
    return volumes


async def reference(
    client: AsyncMongoClient[dict[str, Any]],
    settings: Settings,
    batches: Sequence[Sequence[tuple[Position, ClassifiedMention]]],
) -> dict[str, dict[str, Any]]:
    """The buckets after each batch is applied once, with no crash."""
    db = await database(client, settings.mongodb_database + "_ref")
    aggregates = MentionAggregates(db)
    for batch in batches:
        await aggregates.apply(batch)
    return await buckets(db)


def crash_bulk_write_after(collection: Any, keep: int) -> None:
    """Make the collection's next bulk write carry out only `keep` operations, then crash."""
    original = collection.bulk_write

    async def partial(operations: list[Any], **kwargs: Any) -> Any:
        if keep:
            await original(operations[:keep], **kwargs)
        raise SimulatedCrashError

    collection.bulk_write = partial


async def check(
    db: AsyncDatabase[dict[str, Any]],
    expected: dict[str, dict[str, Any]],
    messages: Sequence[tuple[Position, ClassifiedMention]],
) -> None:
    got = await buckets(db)
    assert got == expected
    hour_volumes = Counter({key: doc["volume"] for key, doc in got.items() if "|hour|" in key})
    assert hour_volumes == plain_volumes(messages)
    assert await db[JOURNAL].count_documents({}) == 0


async def test_the_same_batch_twice_and_duplicates_at_new_offsets_count_once(
    client: AsyncMongoClient[dict[str, Any]], settings: Settings
) -> None:
    batch = stream(1, 120)
    expected = await reference(client, settings, [batch])
    db = await database(client, settings.mongodb_database)
    aggregates = MentionAggregates(db)
    first = await aggregates.apply(batch)
    again = await aggregates.apply(batch)
    ends = end_offsets(batch)
    duplicates = [((part, ends[part] + i), m) for i, ((part, _), m) in enumerate(batch[:30])]
    await aggregates.apply(duplicates)
    assert len(first.new) == 120
    assert again.unchanged == 120
    assert not again.new
    await check(db, expected, batch)


@pytest.mark.parametrize("max_paths", [100, 3])
@pytest.mark.parametrize(
    "crash_point",
    ["before_carry_out", "mid_bucket_write", "before_offsets", "before_journal_delete"],
)
async def test_a_batch_cut_at_any_step_and_redelivered_converges(
    client: AsyncMongoClient[dict[str, Any]],
    settings: Settings,
    crash_point: str,
    max_paths: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(storage, "MAX_PATHS", max_paths)  # 3: many chunks per document
    first = stream(2, 150)
    second = reclassified(first, end_offsets(first))  # moves counts, hides, un-hides
    expected = await reference(client, settings, [first, second])
    db = await database(client, settings.mongodb_database)
    await MentionAggregates(db).apply(first)

    dying = MentionAggregates(db)
    if crash_point == "before_carry_out":

        async def die(journal: Any) -> None:
            raise SimulatedCrashError

        dying._carry_out = die  # type: ignore[method-assign]
    elif crash_point == "mid_bucket_write":
        crash_bulk_write_after(dying._buckets, keep=7)
    elif crash_point == "before_offsets":
        crash_bulk_write_after(dying._offsets, keep=0)
    else:

        async def die_on_delete(*args: Any, **kwargs: Any) -> None:
            raise SimulatedCrashError

        dying._journal.delete_one = die_on_delete  # type: ignore[method-assign,assignment]
    with pytest.raises(SimulatedCrashError):
        await dying.apply(second)

    # A restarted replica: Kafka redelivers from the last commit, in other batch sizes.
    restarted = MentionAggregates(db)
    redelivered = first[-20:] + second
    for cut in range(0, len(redelivered), 17):
        await restarted.apply(redelivered[cut : cut + 17])
    await check(db, expected, first + second)


async def test_a_new_owner_finishes_the_journal_of_a_dead_one_before_going_on(
    client: AsyncMongoClient[dict[str, Any]], settings: Settings
) -> None:
    batch = stream(3, 100)
    later = reclassified(batch, end_offsets(batch))
    expected = await reference(client, settings, [batch, later])
    db = await database(client, settings.mongodb_database)
    dying = MentionAggregates(db)
    crash_bulk_write_after(dying._buckets, keep=3)
    with pytest.raises(SimulatedCrashError):
        await dying.apply(batch)
    # The partitions' next owner gets only the messages after the ones it never saw.
    await MentionAggregates(db).apply(later)
    await check(db, expected, batch + later)


async def test_an_author_map_rebuild_keeps_authors_another_partition_adds_meanwhile(
    client: AsyncMongoClient[dict[str, Any]], settings: Settings
) -> None:
    rng = random.Random(4)
    version = T0 + timedelta(days=1)
    hidden_later = classified(rng, 1, T0, ["acme"], ("x", "gone", 50), version, action="approve")
    db = await database(client, settings.mongodb_database)
    await MentionAggregates(db).apply([(("mentions|0", 0), hidden_later)])
    newcomer = classified(rng, 2, T0 + timedelta(minutes=5), ["acme"], ("x", "new", 70), version)
    newcomer = newcomer.model_copy(update={"action": "approve"})
    other_partition = MentionAggregates(db)
    rebuilding = MentionAggregates(db)
    read_entries = rebuilding._entries
    interleaved = False

    async def entries_then_other_writer(*args: Any) -> list[list[Any]]:
        nonlocal interleaved
        found = await read_entries(*args)
        if not interleaved:  # between the rebuild's read and its write
            interleaved = True
            await other_partition.apply([(("mentions|1", 0), newcomer)])
        return found

    rebuilding._entries = entries_then_other_writer  # type: ignore[method-assign,assignment]
    hide = hidden_later.model_copy(
        update={"action": "hide", "occurred_at": version + timedelta(hours=1)}
    )
    await rebuilding.apply([(("mentions|0", 1), hide)])
    assert interleaved
    hour = await db[BUCKETS].find_one({"_id": hour_id(T0)})
    day = await db[BUCKETS].find_one({"_id": f"acme|day|{T0:%Y-%m-%dT00}"})
    assert hour is not None
    assert day is not None
    for bucket in (hour["t"]["acme"], day):
        assert bucket["r"] == {"x:new": 70}
        assert bucket["volume"] == 1
