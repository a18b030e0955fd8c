"""A record that cannot be processed holds back nothing else, and is never retried for ever.

Real Tansu broker, the shared consumer plumbing (`shared/kafka.py`, `shared/dlq.py`) with a
handler of the test's own: a record it fails on goes to the `.dlq` with the reason after its
attempts, the rest of its batch is applied; a failure of every record (the cause is not in
the records) dead-letters nothing and shows as a stalled partition until it goes away.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
from faststream.kafka import KafkaBroker

from shared.events import Mention
from shared.kafka import batch_consumer, build_broker, create_missing_topics
from shared.metrics import registry
from shared.settings import Settings
from shared.topics import MENTIONS_RAW, POSTS_EVENTS, consumer_group, topic_name
from tests.integration.helpers import consume, eventually, produce

pytestmark = pytest.mark.integration


def _mention(n: int) -> Mention:
    now = datetime.now(UTC)
    return Mention(
        mention_id=f"x:{n}",
        platform="x",
        native_id=str(n),
        text=f"mention {n}",
        author={"id": "a-1"},
        created_at=now,
        ingested_at=now,
        source="api",
    )


@asynccontextmanager
async def started(broker: KafkaBroker) -> AsyncIterator[KafkaBroker]:
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


def _failing_since(topic: str) -> float:
    values = [
        sample.value
        for metric in registry.collect()
        if metric.name == "smm_consumer_failing_since_timestamp_seconds"
        for sample in metric.samples
        if sample.labels.get("topic") == topic
    ]
    return max(values, default=0.0)


async def test_a_poison_record_goes_to_the_dlq_and_its_batch_is_applied(
    settings: Settings,
) -> None:
    await create_missing_topics(settings)
    raw = topic_name(MENTIONS_RAW, settings)
    seen: Counter[str] = Counter()
    applied: set[str] = set()
    broker = build_broker(settings, "test")

    @batch_consumer(broker, settings, MENTIONS_RAW, Mention, group_id="poison", max_records=50)
    async def handler(mentions: list[Mention]) -> None:
        for mention in mentions:
            seen[mention.mention_id] += 1
        if any(m.mention_id in ("x:7", "x:13") for m in mentions):
            raise ValueError("cannot handle this one")  # a bug one record triggers
        applied.update(m.mention_id for m in mentions)

    messages = [(b"k", _mention(n).to_bytes()) for n in range(20)]
    async with started(broker):
        await produce(settings.kafka_bootstrap_servers, raw, messages)
        await eventually(lambda: _done(applied), lambda n: n == 18, timeout=60)
        dead = await consume(settings.kafka_bootstrap_servers, raw + ".dlq", count=2)
    assert applied == {f"x:{n}" for n in range(20)} - {"x:7", "x:13"}
    assert sorted(record.value for record in dead) == sorted([messages[7][1], messages[13][1]])
    for record in dead:
        error = dict(record.headers)["x-error"].decode()
        assert "ValueError: cannot handle this one" in error
    # Each poison record had its attempts alone (3 by default), plus the parts it was in.
    assert 3 <= seen["x:7"] <= 3 + 6


async def _done(applied: set[str]) -> int:
    return len(applied)


async def test_a_failure_of_every_record_dead_letters_nothing_and_shows_as_stalled(
    settings: Settings,
) -> None:
    await create_missing_topics(settings)
    raw = topic_name(MENTIONS_RAW, settings)
    applied: set[str] = set()
    outage = True
    broker = build_broker(settings, "test")

    @batch_consumer(broker, settings, MENTIONS_RAW, Mention, group_id="systemic", max_records=50)
    async def handler(mentions: list[Mention]) -> None:
        if outage:
            raise RuntimeError("the credentials of the database were rotated")
        applied.update(m.mention_id for m in mentions)

    # All six in one partition before the consumer starts, so they come as one batch: a batch
    # of one record cannot tell its own fault from the cause's (it is dead-lettered after its
    # tries, unless the error is an infrastructure one, `is_transient`).
    await produce(
        settings.kafka_bootstrap_servers,
        raw,
        [(b"k", _mention(n).to_bytes()) for n in range(6)],
    )
    async with started(broker):
        await eventually(lambda: _async(_failing_since(raw)), lambda since: since > 0, timeout=60)
        await asyncio.sleep(3)  # several more rounds of trying
        outage = False
        await eventually(lambda: _done(applied), lambda n: n == 6, timeout=60)
        await eventually(lambda: _async(_failing_since(raw)), lambda since: since == 0)
    dead = await consume(settings.kafka_bootstrap_servers, raw + ".dlq", count=1, timeout=3)
    assert dead == []


async def _async(value: float) -> float:
    return value


async def test_a_single_message_subscriber_gives_a_failing_record_bounded_attempts(
    settings: Settings,
) -> None:
    await create_missing_topics(settings)
    topic = topic_name(POSTS_EVENTS, settings)
    attempts: Counter[bytes] = Counter()
    handled: list[bytes] = []
    broker = build_broker(settings, "test")

    @broker.subscriber(
        topic, group_id=consumer_group("single", settings), auto_offset_reset="earliest"
    )
    async def handler(body: dict[str, str]) -> None:
        attempts[body["id"].encode()] += 1
        if body["id"] == "bad":
            raise KeyError("no such post")
        handled.append(body["id"].encode())

    async with started(broker):
        await produce(
            settings.kafka_bootstrap_servers,
            topic,
            [(b"p", b'{"id": "bad"}'), (b"p", b'{"id": "good"}')],
        )
        await eventually(lambda: _async(float(len(handled))), lambda n: n == 1, timeout=60)
        dead = await consume(settings.kafka_bootstrap_servers, topic + ".dlq", count=1)
    assert handled == [b"good"]
    assert attempts[b"bad"] == settings.consumer_max_attempts
    assert [record.value for record in dead] == [b'{"id": "bad"}']
    assert "KeyError" in dict(dead[0].headers)["x-error"].decode()
