"""Mention aggregation stays exact when a batch is redelivered, the process dies mid-batch,
or a deposed owner works on the same messages.

`MentionAggregates.apply` writes no multi-document transaction: a journal per batch, one
conditional claim of the partitions' offsets, and compare-and-set rollups that list the
journals they hold (and hold each mention's entry: what a later sighting is compared with).
These tests cut a batch at every step, let a fresh instance (a restarted replica) receive the
redelivery, possibly with other batch boundaries, and compare every rollup with a reference
database that saw each message once, the volumes with a plain count, and the directory with
each mention's trackers.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.metrics.aggregates import (
    DIRECTORY,
    JOURNAL,
    OFFSETS,
    ROLLUPS,
    MentionAggregates,
    Position,
)
from services.metrics.domain.facts import DaySums
from services.metrics.storage import INDEXES
from shared.events import ClassifiedMention
from shared.metrics import registry
from shared.settings import Settings
from tests.metrics_dataset import classified

pytestmark = pytest.mark.integration

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
PARTS = ("mentions|0", "mentions|1")


class SimulatedCrashError(Exception):
    """Stands for a SIGKILL: nothing after it runs."""


def stream(
    seed: int, count: int, first: int = 0, start: dict[str, int] | None = None
) -> list[tuple[Position, ClassifiedMention]]:
    """Positioned mentions: two partitions, late ones, spam, shared authors, several trackers.
    Numbered from `first`, at offsets from `start`."""
    rng = random.Random(seed)
    version = T0 + timedelta(days=3)
    offsets = dict(start) if start else dict.fromkeys(PARTS, 0)
    out: list[tuple[Position, ClassifiedMention]] = []
    for n in range(first, first + count):
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


async def rollups(db: AsyncDatabase[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every tracker-day's non-zero counters and mention entries by hour (without versions
    or the journals listed: a day that a redelivery fills and empties again is no different
    from none)."""
    found: dict[str, dict[str, Any]] = {}
    async for doc in db[ROLLUPS].find({}):
        sums = DaySums.from_document(doc)
        hours = {
            hour: (
                {k: v for k, v in sums.hour_counts(hour).items() if v},
                {e: n for e, n in sums.hour_entries(hour).items() if n},
            )
            for hour in sums.hours()
        }
        kept = {hour: parts for hour, parts in hours.items() if parts[0] or parts[1]}
        if kept:
            found[doc["_id"]] = kept
    return found


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
            for tracker_id in set(mention.tracker_ids):
                volumes[f"{tracker_id}|{mention.created_at:%Y-%m-%d}|{mention.created_at:%H}"] += 1
    return volumes


async def reference(
    client: AsyncMongoClient[dict[str, Any]],
    settings: Settings,
    batches: Sequence[Sequence[tuple[Position, ClassifiedMention]]],
) -> dict[str, dict[str, Any]]:
    """The rollups after each batch is applied once, with no crash."""
    db = await database(client, settings.mongodb_database + "_ref")
    await apply_all(MentionAggregates(db), batches)
    return await rollups(db)


async def apply_all(
    aggregates: MentionAggregates, batches: Sequence[Sequence[tuple[Position, ClassifiedMention]]]
) -> None:
    """Apply the batches one after another (as a consumer does), then wait for the last one."""
    for batch in batches:
        await aggregates.apply(batch)
    await aggregates.drain()


def crash_after(collection: Any, method: str, keep: int) -> None:
    """Make the collection's next bulk `method` (`insert_many`, `bulk_write`) carry out only
    its first `keep` items, then crash."""
    original = getattr(collection, method)

    async def partial(items: list[Any], **kwargs: Any) -> Any:
        if keep:
            await original(items[:keep], **kwargs)
        raise SimulatedCrashError

    setattr(collection, method, partial)


async def die(*args: Any, **kwargs: Any) -> Any:
    raise SimulatedCrashError


async def check(
    db: AsyncDatabase[dict[str, Any]],
    expected: dict[str, dict[str, Any]],
    messages: Sequence[tuple[Position, ClassifiedMention]],
    *,
    orphans: int = 0,
) -> None:
    got = await rollups(db)
    assert got == expected
    hour_volumes = Counter(
        {
            f"{key}|{hour}": counts.get("volume", 0)
            for key, hours in got.items()
            for hour, (counts, _) in hours.items()
        }
    )
    assert +hour_volumes == plain_volumes(messages)
    listed = Counter(
        [
            (mention_id, (doc["tracker_id"], *json.loads(doc["also"]).get(mention_id, [])))
            async for doc in db[DIRECTORY].find({})
            for mention_id in doc["ids"]
        ]
    )
    assert listed == Counter(
        {(m.mention_id, tuple(sorted(set(m.tracker_ids)))): 1 for _, m in messages}
    )  # every mention once, with all its trackers, hidden ones too
    assert await db[JOURNAL].count_documents({}) == orphans
    state = await db[OFFSETS].find_one({"_id": "mentions"})
    assert state is not None
    assert state["pending"] == {}


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
    await aggregates.drain()
    assert len(first.new) == 120
    assert again.unchanged == 120
    assert not again.new
    await check(db, expected, batch)


async def test_an_earlier_classification_arriving_late_changes_nothing(
    client: AsyncMongoClient[dict[str, Any]], settings: Settings
) -> None:
    """After a reclassification (moves, hides, un-hides), the earlier versions come again at
    new offsets (a replay from another source): the later classification stays."""
    first = stream(6, 120)
    second = reclassified(first, end_offsets(first))
    expected = await reference(client, settings, [first, second])
    db = await database(client, settings.mongodb_database)
    aggregates = MentionAggregates(db)
    await aggregates.apply(first)
    changed = await aggregates.apply(second)
    ends = end_offsets(first + second)
    stale = [((part, ends[part] + i), m) for i, ((part, _), m) in enumerate(first)]
    replayed = await aggregates.apply(stale)
    await aggregates.drain()
    assert len(changed.changed) == len(second)
    assert replayed.unchanged == len(first)
    assert not replayed.new
    assert not replayed.changed
    await check(db, expected, first + second)


async def test_a_batch_planned_while_the_last_one_is_carried_out_finds_its_mentions(
    client: AsyncMongoClient[dict[str, Any]], settings: Settings
) -> None:
    """The next batch is planned while the last one is still being written: duplicates of
    the last one's mentions (and reclassifications) must find them, whichever partitions
    each batch holds."""
    batch = stream(8, 120)
    p0 = [item for item in batch if item[0][0] == PARTS[0]]
    p1 = [item for item in batch if item[0][0] == PARTS[1]]
    ends = end_offsets(batch)
    again = [((PARTS[0], ends[PARTS[0]] + i), m) for i, (_, m) in enumerate(p0)]
    later = reclassified(p0, end_offsets(batch + again))
    expected = await reference(client, settings, [batch, later])
    db = await database(client, settings.mongodb_database)
    aggregates = MentionAggregates(db)
    await aggregates.apply(p0)  # not waited for: the next apply plans meanwhile
    second = await aggregates.apply(again + p1)
    third = await aggregates.apply(later)
    await aggregates.drain()
    assert len(second.new) == len(p1)
    assert len(third.changed) == len(later)
    await check(db, expected, batch + again + later)


def cut_at(dying: MentionAggregates, crash_point: str) -> None:
    """Make `dying` stop (as if SIGKILLed) at one step of its next batch."""
    if crash_point == "after_plan":  # rollups read and change computed, nothing written
        dying._claim = die  # type: ignore[method-assign]
    elif crash_point == "after_journal":  # journal written, its claim never made
        dying._offsets.update_one = die  # type: ignore[method-assign]
    elif crash_point == "after_claim":  # claimed, nothing carried out
        dying._carry_out = die  # type: ignore[method-assign]
    elif crash_point == "mid_rollup_write":
        crash_after(dying._rollups, "bulk_write", keep=3)
    elif crash_point == "mid_directory_write":
        crash_after(dying._directory, "insert_many", keep=1)
    else:  # "before_journal_delete": everything written, the journal left behind
        dying._journal.delete_one = die  # type: ignore[method-assign]


CRASH_POINTS = [
    "after_plan",
    "after_journal",
    "after_claim",
    "mid_directory_write",
    "mid_rollup_write",
    "before_journal_delete",
]


@pytest.mark.parametrize("crash_point", CRASH_POINTS)
async def test_a_batch_cut_at_any_step_and_redelivered_converges(
    client: AsyncMongoClient[dict[str, Any]], settings: Settings, crash_point: str
) -> None:
    first = stream(2, 150)
    second = reclassified(first, end_offsets(first))  # moves counts, hides, un-hides
    second += stream(7, 40, first=1000, start=end_offsets(first + second))  # and new ones
    expected = await reference(client, settings, [first, second])
    db = await database(client, settings.mongodb_database)
    await apply_all(MentionAggregates(db), [first])

    dying = MentionAggregates(db)
    cut_at(dying, crash_point)
    with pytest.raises(SimulatedCrashError):
        await apply_all(dying, [second])

    # A restarted replica: Kafka redelivers from the last commit, in other batch sizes.
    restarted = MentionAggregates(db)
    redelivered = first[-20:] + second
    await apply_all(
        restarted, [redelivered[cut : cut + 17] for cut in range(0, len(redelivered), 17)]
    )
    orphans = 1 if crash_point == "after_journal" else 0  # its claim was never made
    await check(db, expected, first + second, orphans=orphans)
    if orphans:
        assert await restarted.drop_orphan_journals() == 0  # too young to be sure
        await db[JOURNAL].update_many({}, {"$set": {"created_at": T0}})
        assert await restarted.drop_orphan_journals() == 1
        await check(db, expected, first + second)


@pytest.mark.parametrize("crash_point", ["after_plan", "after_claim", "mid_rollup_write"])
async def test_a_new_owner_of_fresh_mentions_finishes_what_a_dead_one_left(
    client: AsyncMongoClient[dict[str, Any]], settings: Settings, crash_point: str
) -> None:
    batch = stream(3, 100)
    later = reclassified(batch, end_offsets(batch))
    expected = await reference(client, settings, [batch, later])
    db = await database(client, settings.mongodb_database)
    dying = MentionAggregates(db)
    cut_at(dying, crash_point)
    with pytest.raises(SimulatedCrashError):
        await apply_all(dying, [batch])
    # Redelivered from the start, in one batch with what came after.
    await apply_all(MentionAggregates(db), [batch + later])
    await check(db, expected, batch + later)


async def test_a_deposed_owner_that_planned_the_same_messages_changes_nothing(
    client: AsyncMongoClient[dict[str, Any]], settings: Settings
) -> None:
    """Kafka gave the partitions to a new owner while the old one was still at work on the
    same messages: whoever claims first applies them, the other drops its plan."""
    batch = stream(4, 90)
    later = reclassified(batch, end_offsets(batch))
    expected = await reference(client, settings, [batch, later])
    db = await database(client, settings.mongodb_database)
    deposed = MentionAggregates(db)
    owner = MentionAggregates(db)
    claim = deposed._claim
    raced = False

    async def owner_claims_first(*args: Any) -> bool:
        nonlocal raced
        if not raced:  # the deposed one has planned; the new owner gets there first
            raced = True
            await owner.apply(batch[:60])
        return await claim(*args)

    deposed._claim = owner_claims_first  # type: ignore[method-assign,assignment]
    await deposed.apply(batch)  # loses its claim, plans again from what the owner left
    assert raced
    await deposed.drain()
    await apply_all(owner, [batch + later])
    await check(db, expected, batch + later)


async def test_concurrent_partitions_adding_to_the_same_days_lose_nothing(
    client: AsyncMongoClient[dict[str, Any]], settings: Settings
) -> None:
    """Two consumers (each owning one partition) write the same tracker-days at once: the
    compare-and-set makes the slower one read again and add its part on top."""
    batch = stream(5, 160)
    expected = await reference(client, settings, [batch])
    db = await database(client, settings.mongodb_database)
    by_part = {part: [item for item in batch if item[0][0] == part] for part in PARTS}
    await asyncio.gather(*(apply_all(MentionAggregates(db), [items]) for items in by_part.values()))
    await check(db, expected, batch)


def renumbered(
    messages: Sequence[tuple[Position, ClassifiedMention]], start: dict[str, int]
) -> list[tuple[Position, ClassifiedMention]]:
    """The same messages in the same partitions, at offsets from `start`."""
    offsets = dict(start)
    out: list[tuple[Position, ClassifiedMention]] = []
    for (part, _), mention in messages:
        out.append(((part, offsets[part]), mention))
        offsets[part] += 1
    return out


def restarts(part: str) -> float:
    value = registry.get_sample_value("smm_metrics_offset_restarts_total", {"partition": part})
    return value or 0.0


async def test_a_topic_created_anew_is_applied_by_mention_identity(
    client: AsyncMongoClient[dict[str, Any]], settings: Settings
) -> None:
    """The topic was deleted and created again (restored, mirrored, or a local broker without
    storage restarted): its offsets begin at 0 again, below those already applied. What was
    never applied is applied; mentions sent again still count once; the restart is counted."""
    old = stream(6, 120)
    again = old[:30] + stream(7, 50, first=2000)  # some of the old mentions, then new ones
    zero = dict.fromkeys(PARTS, 0)
    expected = await reference(client, settings, [old, renumbered(again, end_offsets(old))])
    db = await database(client, settings.mongodb_database)
    aggregates = MentionAggregates(db)
    before = {part: restarts(part) for part in PARTS}
    await apply_all(aggregates, [old])
    redelivered = await aggregates.apply(old[:40])  # a plain redelivery: no restart
    assert redelivered.unchanged == 40
    assert {part: restarts(part) for part in PARTS} == before
    incarnation = renumbered(again, zero)
    applied = [await aggregates.apply(incarnation[:25]), await aggregates.apply(incarnation[25:])]
    await aggregates.drain()
    assert sum(len(a.new) for a in applied) == 50
    assert all(restarts(part) > before[part] for part in PARTS)
    await check(db, expected, old + again)
    # From here on the partitions go on from the new offsets: a redelivery is skipped again.
    again_redelivered = await MentionAggregates(db).apply(incarnation)
    assert again_redelivered.unchanged == len(incarnation)


async def test_two_owners_of_a_topic_created_anew_apply_it_once(
    client: AsyncMongoClient[dict[str, Any]], settings: Settings
) -> None:
    """A deposed owner and the new one both find the partitions begun again, and both plan
    the same new messages at offsets already stored: one claim wins, the other plans again
    and finds them applied."""
    old = stream(8, 90)
    # Other mentions at exactly the old positions: the claim moves each partition "back" to
    # the offset already stored, so only the restart count can tell the two claims apart.
    incarnation = [
        (position, m) for (position, _), (_, m) in zip(old, stream(9, 90, 3000), strict=True)
    ]
    expected = await reference(client, settings, [old, renumbered(incarnation, end_offsets(old))])
    db = await database(client, settings.mongodb_database)
    await apply_all(MentionAggregates(db), [old])
    deposed, owner = MentionAggregates(db), MentionAggregates(db)
    claim = deposed._claim
    raced = False

    async def owner_claims_first(*args: Any) -> bool:
        nonlocal raced
        if not raced:
            raced = True
            await apply_all(owner, [incarnation])
        return await claim(*args)

    deposed._claim = owner_claims_first  # type: ignore[method-assign,assignment]
    await apply_all(deposed, [incarnation])
    assert raced
    await check(db, expected, old + incarnation)
