"""Ingest's de-duplication memory on the real database: periods, abandoned batches, release."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.ingest.storage import CLAIMS_PREFIX, SeenStore, indexes
from shared.events import utc_now
from shared.mongo import Document, create_mongo_client, ensure_indexes, service_database
from shared.settings import Settings

pytestmark = pytest.mark.integration

IDS = [f"x:{n}" for n in range(50)]
Database = AsyncDatabase[Document]


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    client = create_mongo_client(settings, "test-dedup")
    database = service_database(client, settings)
    await ensure_indexes(database, indexes())
    yield database
    await client.close()


async def test_confirmed_ids_stay_duplicates_for_every_replica(db: Database) -> None:
    first, second = SeenStore(db, dedup_days=90), SeenStore(db, dedup_days=90)
    claim = await first.claim(IDS[:30])
    assert claim.owned == frozenset(IDS[:30])
    await first.confirm(claim)
    again = await second.claim(IDS)
    assert again.owned == frozenset(IDS[30:])
    assert await second.recover_abandoned() == 0  # nothing pending: nothing to give back


async def test_ids_of_the_previous_period_are_still_duplicates(db: Database) -> None:
    store = SeenStore(db, dedup_days=1)
    yesterday = store.period_of(utc_now()) - 1
    await store._claims(yesterday).insert_many([{"_id": i} for i in IDS[:10]])
    claim = await store.claim(IDS[:20])
    assert claim.owned == frozenset(IDS[10:20])


async def test_a_batch_abandoned_mid_flight_is_released_after_the_lease(db: Database) -> None:
    dead = SeenStore(db, dedup_days=90, lease=timedelta(seconds=0))
    abandoned = await dead.claim(IDS[:5])  # the replica dies before Kafka acknowledges
    survivor = SeenStore(db, dedup_days=90, lease=timedelta(seconds=0))
    assert (await survivor.claim(IDS[:5])).owned == frozenset()  # still held by the dead one
    assert await survivor.recover_abandoned() == 1
    retried = await survivor.claim(IDS[:5])
    assert retried.owned == abandoned.owned  # the source's retry is emitted: nothing lost


async def test_a_failed_publish_releases_only_what_the_batch_owned(db: Database) -> None:
    store = SeenStore(db, dedup_days=90)
    other = await store.claim(IDS[:3])
    await store.confirm(other)
    failed = await store.claim(IDS[:6])
    assert failed.owned == frozenset(IDS[3:6])
    await store.release(failed)
    assert (await store.claim(IDS[:6])).owned == frozenset(IDS[3:6])


async def test_old_periods_are_dropped_whole(db: Database) -> None:
    store = SeenStore(db, dedup_days=1)
    now = store.period_of(utc_now())
    for period in (now - 3, now - 2, now - 1, now):
        await store._claims(period).insert_one({"_id": "x:1"})
    dropped = await store.drop_expired_periods()
    assert dropped == sorted([store._claims(now - 3).name, store._claims(now - 2).name])
    names = await db.list_collection_names()
    left = sorted(n for n in names if n.startswith(CLAIMS_PREFIX))
    assert left == sorted([store._claims(now - 1).name, store._claims(now).name])
