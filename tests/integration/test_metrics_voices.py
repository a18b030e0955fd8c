"""`GET /v1/voices` on the real broker and database: classified mentions go through the metrics
consumer, and the voices equal figures computed by hand and agree with the KPIs."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.metrics.app import build_app
from shared.events import Author, ClassifiedMention
from shared.settings import Settings
from shared.topics import MENTIONS_CLASSIFIED, topic_name
from tests.integration.helpers import eventually, produce, running
from tests.metrics_dataset import classified

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": "Bearer test-admin-token"}


@asynccontextmanager
async def metrics(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(settings)
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://metrics", headers=ADMIN
        ) as client:
            yield client


async def add_trackers(settings: Settings, groups: dict[str, str]) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongodb_uri.get_secret_value()
    )
    try:
        await client[settings.mongodb_database]["ingest_trackers"].insert_many(
            [{"_id": t, "id": t, "name": t, "query": t, "group": g} for t, g in groups.items()]
        )
    finally:
        await client.close()


START = datetime.now(UTC).replace(minute=30, second=0, microsecond=0) - timedelta(days=3)
END = START + timedelta(days=1)
VERSION = START - timedelta(days=1)


def mention(
    number: int,
    minutes: float,
    author: tuple[str, str, int | None],
    sentiment: str,
    action: str,
    trackers: tuple[str, ...] = ("brand",),
    handle: str | None = None,
    version: datetime = VERSION,
) -> ClassifiedMention:
    platform, author_id, followers = author
    made = classified(
        random.Random(number),
        number,
        START + timedelta(minutes=minutes),
        list(trackers),
        (platform, author_id, 0),
        version,
        sentiment,
        action,
    )
    labels = Author(
        id=author_id,
        followers=followers,
        handle=handle,
        display_name=None if handle is None else handle.title(),
    )
    return made.model_copy(update={"author": labels})


ANNA = ("x", "anna", 100)
BEN = ("x", "ben", None)  # never says how many follow them: reach null, adds 0
CARL = ("mastodon", "carl", 700)
ANNA_M = ("mastodon", "anna", 10)  # the same id on another platform: another author
FRED = ("x", "fred", 300)

MENTIONS = [
    mention(1, 0, ANNA, "positive", "approve", handle="anna_old"),  # at `from`: in
    mention(2, 180, ("x", "anna", 5_000), "neutral", "review", handle="anna_new"),
    mention(3, -1, ("x", "anna", 90_000), "positive", "approve", handle="anna_ancient"),  # out
    mention(4, 60, BEN, "negative", "review"),
    mention(5, 120, BEN, "positive", "approve"),
    mention(6, 130, BEN, "positive", "hide"),  # spam hidden: left out
    mention(7, 300, CARL, "negative", "review", ("brand", "rival"), handle="carl"),
    mention(8, 360, ANNA_M, "positive", "approve", handle="anna_m"),
    mention(9, 60, ("x", "spammer", 1_000_000), "neutral", "hide"),  # hidden: no voice
    mention(10, 120, ("x", "dora", 100_000), "positive", "approve", ("rival",)),
    mention(11, 24 * 60, ("x", "eve", 300), "positive", "approve"),  # at `to`: out
    mention(12, 1_200, FRED, "positive", "approve", handle="fred"),
    mention(13, 240, BEN, "neutral", "approve"),
    # fred's mention classified again later: it counts once, as negative
    mention(12, 1_200, FRED, "negative", "review", handle="fred", version=VERSION + timedelta(1)),
]

#: By hand: (platform, author_id, handle, reach, mentions, (pos, neu, neg), last minute).
EXPECTED = {
    "x:anna": ("x", "anna", "anna_new", 5_000, 2, (1, 1, 0), 180),
    "x:ben": ("x", "ben", None, None, 3, (1, 1, 1), 240),
    "mastodon:carl": ("mastodon", "carl", "carl", 700, 1, (0, 0, 1), 300),
    "mastodon:anna": ("mastodon", "anna", "anna_m", 10, 1, (1, 0, 0), 360),
    "x:fred": ("x", "fred", "fred", 300, 1, (0, 0, 1), 1_200),
}
BY_REACH = ["x:anna", "mastodon:carl", "x:fred", "mastodon:anna", "x:ben"]
BY_MENTIONS = ["x:ben", "x:anna", "mastodon:carl", "x:fred", "mastodon:anna"]


def window(**more: Any) -> dict[str, Any]:
    return {"tracker_id": "brand", "from": START.isoformat(), "to": END.isoformat(), **more}


def expected_voice(key: str) -> dict[str, Any]:
    platform, author_id, handle, reach, mentions, (pos, neu, neg), minute = EXPECTED[key]
    return {
        "platform": platform,
        "author_id": author_id,
        "handle": handle,
        "display_name": None if handle is None else handle.title(),
        "reach": reach,
        "mentions": mentions,
        "sentiment": {"positive": pos, "neutral": neu, "negative": neg},
        "last_mention_at": (START + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z"),
    }


def key_of(voice: dict[str, Any]) -> str:
    return f"{voice['platform']}:{voice['author_id']}"


async def test_voices_equal_a_hand_computation_and_agree_with_the_kpis(
    settings: Settings,
) -> None:
    await add_trackers(settings, {"brand": "coffee", "rival": "coffee"})
    topic = topic_name(MENTIONS_CLASSIFIED, settings)
    await produce(
        settings.kafka_bootstrap_servers,
        topic,
        [(m.mention_id.encode(), m.to_bytes()) for m in MENTIONS],
    )
    async with metrics(settings) as client:

        async def kpis() -> dict[str, Any]:
            answer = await client.get("/v1/kpis", params=window())
            assert answer.status_code == 200, answer.text
            return dict(answer.json())

        expected_sentiment = {"positive": 3, "neutral": 2, "negative": 3}
        snapshot = await eventually(
            kpis,
            lambda k: k["mention_volume"] == 8 and k["sentiment"] == expected_sentiment,
        )
        assert snapshot["potential_reach"] == 5_000 + 700 + 300 + 10

        answer = await client.get("/v1/voices", params=window(limit=50))
        assert answer.status_code == 200, answer.text
        voices = answer.json()
        assert voices["tracker_id"] == "brand"
        assert voices["from"] == START.isoformat().replace("+00:00", "Z")
        assert voices["to"] == END.isoformat().replace("+00:00", "Z")
        assert voices["authors"] == 5
        assert [key_of(v) for v in voices["by_reach"]] == BY_REACH
        assert [key_of(v) for v in voices["by_mentions"]] == BY_MENTIONS
        for voice in voices["by_reach"] + voices["by_mentions"]:
            assert voice == expected_voice(key_of(voice))

        # the voices add up to the KPIs when the limit covers every author
        listed = voices["by_reach"]
        assert sum(v["reach"] or 0 for v in listed) == snapshot["potential_reach"]
        assert sum(v["mentions"] for v in listed) == snapshot["mention_volume"]
        for sentiment, count in snapshot["sentiment"].items():
            assert sum(v["sentiment"][sentiment] for v in listed) == count
        # the top voice's reach is what it adds to potential_reach: from 3 h 1 min on, anna
        # has no mention left and every other author keeps their largest follower count, so
        # the KPI of that window is short of exactly her reach
        top = voices["by_reach"][0]
        later = await client.get(
            "/v1/kpis", params=window(**{"from": (START + timedelta(minutes=181)).isoformat()})
        )
        others = sum(v["reach"] or 0 for v in listed if key_of(v) != key_of(top))
        assert later.json()["potential_reach"] == others
        assert top["reach"] == snapshot["potential_reach"] - others == 5_000

        limited = (await client.get("/v1/voices", params=window(limit=2))).json()
        assert [key_of(v) for v in limited["by_reach"]] == BY_REACH[:2]
        assert [key_of(v) for v in limited["by_mentions"]] == BY_MENTIONS[:2]
        assert limited["authors"] == 5

        default = (await client.get("/v1/voices", params=window())).json()
        assert len(default["by_reach"]) == 5

        rival = (await client.get("/v1/voices", params=window(tracker_id="rival"))).json()
        assert [key_of(v) for v in rival["by_reach"]] == ["x:dora", "mastodon:carl"]

        empty_window = window(**{"to": (START + timedelta(minutes=1)).isoformat()})
        only_first = (await client.get("/v1/voices", params=empty_window)).json()
        assert [(key_of(v), v["reach"]) for v in only_first["by_reach"]] == [("x:anna", 100)]

        for params, status, code in [
            (window(limit=51), 422, "invalid_request"),
            (window(limit=0), 422, "invalid_request"),
            (window(tracker_id="nobody"), 404, "unknown_tracker"),
            (window(**{"from": END.isoformat(), "to": START.isoformat()}), 422, "invalid_window"),
            ({"tracker_id": "brand"}, 422, "invalid_request"),
        ]:
            refused = await client.get("/v1/voices", params=params)
            assert refused.status_code == status, refused.text
            assert refused.json()["error"]["code"] == code
