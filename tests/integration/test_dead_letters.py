"""A malformed message lands in `<topic>.dlq` with its headers; the next good one is processed.

Real Tansu broker, real SecantusDB, the services' own handlers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pymongo import AsyncMongoClient

from services.moderation.app import build_app as build_moderation
from services.moderation.storage import MENTIONS
from services.publisher.app import build_app as build_publisher
from services.publisher.storage import COMMANDS
from shared.events import Mention, ScheduleCommand
from shared.settings import Settings
from shared.topics import MENTIONS_RAW, POSTS_COMMANDS, topic_name
from tests.integration.helpers import consume, eventually, produce, running

pytestmark = pytest.mark.integration


def _mention(native_id: str) -> Mention:
    now = datetime.now(UTC)
    return Mention(
        mention_id=f"x:{native_id}",
        platform="x",
        native_id=native_id,
        text="Röstwerk liefert heute schneller als gedacht",
        author={"id": "a-1", "followers": 120},
        created_at=now,
        ingested_at=now,
        source="api",
        tracker_ids=["roestwerk"],
    )


async def test_batch_consumer_dead_letters_bad_records_and_keeps_going(settings: Settings) -> None:
    raw = topic_name(MENTIONS_RAW, settings)
    good_first, good_last = _mention("100"), _mention("101")
    malformed = b'{"mention_id": "x:bad", "platform": '
    invalid = json.dumps({"mention_id": "x:102", "platform": "x"}).encode()
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        settings.mongodb_uri.get_secret_value()
    )
    mentions = client[settings.mongodb_database][MENTIONS]
    try:
        async with running(build_moderation(settings)):
            await produce(
                settings.kafka_bootstrap_servers,
                raw,
                [
                    (b"k", good_first.to_bytes()),
                    (b"k", malformed),
                    (b"k", invalid),
                    (b"k", good_last.to_bytes()),
                    (b"k", good_first.to_bytes()),  # redelivered duplicate: changes nothing
                ],
            )
            stored = await eventually(
                lambda: mentions.distinct("_id"), lambda ids: "x:101" in ids, timeout=45
            )
            assert sorted(stored) == ["x:100", "x:101"]
        dead = await consume(settings.kafka_bootstrap_servers, raw + ".dlq", count=2)
    finally:
        await client.close()
    assert [record.value for record in dead] == [malformed, invalid]
    for record in dead:
        headers = {key: value.decode() for key, value in record.headers}
        assert headers["x-source-topic"] == raw
        assert headers["x-source-partition"].isdigit()
        assert headers["content-type"] == "application/json"
        assert headers["x-error"]
    offsets = [int(dict(r.headers)["x-source-offset"]) for r in dead]
    assert offsets == sorted(offsets)
    assert "invalid json" in dict(dead[0].headers)["x-error"].decode().lower()
    assert "native_id" in dict(dead[1].headers)["x-error"].decode()


async def test_typed_consumer_dead_letters_bad_commands(settings: Settings) -> None:
    commands = topic_name(POSTS_COMMANDS, settings)
    good = ScheduleCommand(post_id="post-1", channel_id="mastodon-main", text="Guten Morgen!")
    bad = json.dumps({"command": "schedule", "post_id": "post-2", "timezone": "Mars/Base"}).encode()
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        settings.mongodb_uri.get_secret_value()
    )
    inbox = client[settings.mongodb_database][COMMANDS]
    try:
        async with running(build_publisher(settings)):
            await produce(
                settings.kafka_bootstrap_servers,
                commands,
                [(b"post-2", bad), (b"post-2", b"\xff\xfe not json"), (b"post-1", good.to_bytes())],
            )
            await eventually(
                lambda: inbox.count_documents({"post_id": "post-1"}), lambda n: n == 1, timeout=45
            )
        dead = await consume(settings.kafka_bootstrap_servers, commands + ".dlq", count=2)
    finally:
        await client.close()
    assert sorted(record.value for record in dead) == sorted([bad, b"\xff\xfe not json"])
    errors = " | ".join(dict(r.headers)["x-error"].decode() for r in dead)
    assert "unknown IANA timezone" in errors
