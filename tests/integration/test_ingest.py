"""Ingest on the real broker and database: trackers, matching, de-duplication, broker outage.

Every test runs the real ingest app (its lifespan starts the broker connection, the database,
the consumers and background tasks) and talks to it over HTTP.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from services.ingest.app import build_app
from services.ingest.importer import Importer
from shared.events import Mention, PostEvent
from shared.kafka import create_missing_topics
from shared.local.servers import free_port, kafka_process
from shared.settings import Settings
from shared.topics import ENGAGEMENT, MENTIONS_RAW, POSTS_EVENTS, topic_name
from tests.integration.helpers import consume, eventually, produce, running

pytestmark = pytest.mark.integration

AUTH = {"Authorization": "Bearer test-admin-token"}
ROESTWERK = {
    "id": "roestwerk",
    "name": "Röstwerk",
    "query": '(röstwerk OR #roestwerk) NOT "röstwerk grill"',
    "languages": ["de", "en"],
    "group": "kaffee",
}
BOHNENBLITZ = {
    "id": "bohnenblitz",
    "name": "Bohnenblitz",
    "query": "bohnenblitz",
    "group": "kaffee",
}


def item(native_id: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "platform": "instagram",
        "native_id": native_id,
        "text": text,
        "author": {"id": f"author-{native_id}", "followers": 90},
        "created_at": (datetime.now(UTC) - timedelta(minutes=3)).isoformat(),
        **extra,
    }


@asynccontextmanager
async def ingest(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(settings)
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://ingest", headers=AUTH
        ) as client:
            yield client


async def raw_mentions(settings: Settings, count: int, timeout: float = 20) -> list[Mention]:
    records = await consume(
        settings.kafka_bootstrap_servers, topic_name(MENTIONS_RAW, settings), count, timeout
    )
    return [Mention.model_validate_json(r.value) for r in records]


async def test_trackers_api_validates_and_manages_trackers(settings: Settings) -> None:
    async with ingest(settings) as client:
        created = await client.post("/v1/trackers", json=ROESTWERK)
        assert created.status_code == 201, created.text
        assert created.json()["query"] == ROESTWERK["query"]
        assert (await client.post("/v1/trackers", json=ROESTWERK)).status_code == 409

        broken = await client.post(
            "/v1/trackers", json={**BOHNENBLITZ, "query": "(bohnenblitz OR kaffee"}
        )
        assert broken.status_code == 422
        error = broken.json()["error"]
        assert error["code"] == "invalid_query"
        assert error["details"]["position"] == 0

        unauthenticated = await client.post(
            "/v1/trackers", json=BOHNENBLITZ, headers={"Authorization": ""}
        )
        assert unauthenticated.status_code == 401
        assert (
            await client.post("/v1/trackers", json={**BOHNENBLITZ, "id": "Bad Id"})
        ).status_code == 422

        changed = await client.put("/v1/trackers/roestwerk", json={**ROESTWERK, "group": "brands"})
        assert changed.json()["group"] == "brands"
        mismatched = await client.put("/v1/trackers/missing", json=BOHNENBLITZ)
        assert mismatched.status_code == 422  # the body names another tracker
        missing = {**BOHNENBLITZ, "id": "missing"}
        assert (await client.put("/v1/trackers/missing", json=missing)).status_code == 404
        listed = await client.get("/v1/trackers")
        assert [t["id"] for t in listed.json()["items"]] == ["roestwerk"]
        assert (await client.delete("/v1/trackers/roestwerk")).status_code == 204
        assert (await client.get("/v1/trackers/roestwerk")).status_code == 404


async def test_mentions_are_matched_deduplicated_and_emitted_once(settings: Settings) -> None:
    async with ingest(settings) as client:
        for tracker in (ROESTWERK, BOHNENBLITZ):
            assert (await client.post("/v1/trackers", json=tracker)).status_code == 201
        batch = [
            item("1", "Der Espresso im ROESTWERK Hamburg war heute großartig"),
            item("2", "Bohnenblitz oder Röstwerk? Ich bleibe bei #roestwerk"),
            item("3", "Heute nur Tee getrunken, kein Kaffee"),  # no tracker
            item("4", "Grillabend im Röstwerk Grill war laut"),  # excluded by NOT
            item("1", "Der Espresso im ROESTWERK Hamburg war heute großartig"),  # in-batch twin
            {"platform": "instagram", "native_id": "$bad", "text": "x"},  # rejected
            item("5", "<p>Röstwerk &amp; Co: <b>mega</b> Crema</p>", lang=None),
        ]
        first = (await client.post("/v1/mentions", json=batch)).json()
        assert first["accepted"] == 3
        assert first["duplicates"] == 1
        assert first["unmatched"] == 2
        assert [r["index"] for r in first["rejected"]] == [5]
        assert "native_id" in first["rejected"][0]["reason"]

        again = (await client.post("/v1/mentions", json={"mentions": batch[:2]})).json()
        assert again["accepted"] == 0
        assert again["duplicates"] == 2

    emitted = {m.mention_id: m for m in await raw_mentions(settings, 3)}
    assert set(emitted) == {"instagram:1", "instagram:2", "instagram:5"}
    assert emitted["instagram:2"].tracker_ids == ["bohnenblitz", "roestwerk"]
    assert emitted["instagram:1"].tracker_ids == ["roestwerk"]
    assert emitted["instagram:5"].text == "Röstwerk & Co: mega Crema"
    assert emitted["instagram:5"].lang == "de"
    assert emitted["instagram:1"].source == "api"
    assert emitted["instagram:1"].created_at.tzinfo is not None


async def test_two_replicas_emit_each_mention_once(settings: Settings) -> None:
    batch = [item(str(n), f"Röstwerk Filterkaffee Nummer {n} schmeckt") for n in range(300)]
    async with ingest(settings) as first, ingest(settings) as second:
        await first.post("/v1/trackers", json=ROESTWERK)
        await eventually(
            lambda: second.post("/v1/mentions", json=[item("probe", "röstwerk probe")]),
            lambda response: response.json()["accepted"] == 1,
            timeout=15,
        )
        results = await asyncio.gather(
            first.post("/v1/mentions", json=batch),
            second.post("/v1/mentions", json=batch),
            first.post("/v1/mentions", json=batch[::-1]),
        )
    bodies = [r.json() for r in results]
    assert sum(b["accepted"] for b in bodies) == 300
    assert sum(b["duplicates"] for b in bodies) == 600
    emitted = await raw_mentions(settings, 301, timeout=15)
    ids = [m.mention_id for m in emitted]
    assert len(ids) == len(set(ids)) == 301


async def test_broker_down_answers_503_and_retry_emits_everything(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    broker = kafka_process("127.0.0.1", port, tmp_path / "kafka.log")
    broker.start()
    broker.wait_port(30)
    own = settings.model_copy(
        update={"kafka_bootstrap_servers": f"127.0.0.1:{port}", "publish_timeout_seconds": 3.0}
    )
    batch = [item(str(n), f"Röstwerk Bohnen Lieferung {n}") for n in range(20)]
    try:
        async with ingest(own) as client:
            await client.post("/v1/trackers", json=ROESTWERK)
            broker.stop()
            down = await client.post("/v1/mentions", json=batch)
            assert down.status_code == 503
            assert down.json()["error"]["code"] == "broker_unavailable"
            assert down.headers["retry-after"] == "5"

            broker = kafka_process("127.0.0.1", port, tmp_path / "kafka-2.log")
            broker.start()
            broker.wait_port(30)
            await create_missing_topics(own)  # memory storage: the new broker starts empty
            retried = await eventually(
                lambda: client.post("/v1/mentions", json=batch),
                lambda response: response.status_code == 202,
                timeout=60,
            )
            assert retried.json()["accepted"] == 20  # the failed attempt held nothing back
        records = await consume(own.kafka_bootstrap_servers, topic_name(MENTIONS_RAW, own), 20)
        assert len({r.key for r in records}) == 20
    finally:
        broker.stop()


async def test_bulk_import_of_jsonl_and_csv(settings: Settings, tmp_path: Path) -> None:
    jsonl = tmp_path / "export.jsonl"
    jsonl.write_text(
        "\n".join(
            [json.dumps(item("j1", "Röstwerk Abo gekündigt, zu teuer")), "{not json"]
            + [json.dumps(item(f"j{n}", f"röstwerk backfill {n}")) for n in range(2, 12)]
        )
    )
    csv_file = tmp_path / "export.csv"
    csv_file.write_text(
        "platform,native_id,text,created_at,author_id,author_followers,likes\n"
        "review,r1,Röstwerk Bohnen kamen frisch an,2026-11-01T10:00:00Z,kunde1,,3\n"
        "review,r2,Röstwerk Kundenservice antwortet nie,2026-11-01T11:00:00+01:00,kunde2,12,0\n"
        "review,,fehlende id,2026-11-01T11:00:00Z,kunde3,,\n"
    )
    app = build_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    serving = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: _ready(port), bool, timeout=60)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=AUTH) as client:
            await client.post("/v1/trackers", json=ROESTWERK)

        def run_imports() -> tuple[Any, Any, Any]:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=AUTH) as client:
                importer = Importer(client, batch_size=4)
                return (
                    importer.run(jsonl, "jsonl", progress=False),
                    importer.run(csv_file, "csv", progress=False),
                    importer.run(jsonl, "jsonl", progress=False),
                )

        first, from_csv, second = await asyncio.to_thread(run_imports)
    finally:
        server.should_exit = True
        await serving
    assert (first.accepted, first.rejected[0][0]) == (11, 2)
    assert (from_csv.accepted, [line for line, _ in from_csv.rejected]) == (2, [4])
    assert (second.accepted, second.duplicates) == (0, 11)
    emitted = await raw_mentions(settings, 13)
    sources = {m.mention_id: m.source for m in emitted}
    assert sources["review:r2"] == "import"
    review = next(m for m in emitted if m.mention_id == "review:r2")
    assert review.author.followers == 12
    assert review.created_at == datetime(2026, 11, 1, 10, tzinfo=UTC)


async def _ready(port: int) -> bool:
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/readyz")
            return response.status_code == 200
    except httpx.HTTPError:
        return False


def _fake_mastodon(likes: list[int]) -> FastAPI:
    """Answers GET /api/v1/statuses/{id} like Mastodon, with growing counters."""
    app = FastAPI()

    @app.get("/api/v1/statuses/{status_id}")
    async def status(status_id: str) -> dict[str, Any]:
        count = likes.pop(0) if len(likes) > 1 else likes[0]
        return {
            "id": status_id,
            "favourites_count": count,
            "reblogs_count": 2,
            "replies_count": 1,
            "account": {"followers_count": 5120},
        }

    return app


async def test_published_posts_engagement_is_polled_and_emitted(settings: Settings) -> None:
    port = free_port()
    platform = uvicorn.Server(
        uvicorn.Config(_fake_mastodon([3, 9]), host="127.0.0.1", port=port, log_config=None)
    )
    serving = asyncio.create_task(platform.serve())
    published = PostEvent(
        post_id="post-7",
        status="published",
        channel_id="mastodon-main",
        platform="mastodon",
        native_post_id="110",
        url=f"http://127.0.0.1:{port}/@roestwerk/110",
        published_at=datetime.now(UTC) - timedelta(minutes=2),
        attempt=1,
    )
    try:
        app = build_app(settings)
        tracker = None
        async with running(app):
            await produce(
                settings.kafka_bootstrap_servers,
                topic_name(POSTS_EVENTS, settings),
                [(b"post-7", published.to_bytes()), (b"post-7", published.to_bytes())],
            )
            tracker = app.state.runtime
            records = await consume(
                settings.kafka_bootstrap_servers, topic_name(ENGAGEMENT, settings), 1, timeout=45
            )
        assert tracker is not None
    finally:
        platform.should_exit = True
        await serving
    observation = json.loads(records[0].value)
    assert observation["post_id"] == "post-7"
    assert (observation["likes"], observation["shares"], observation["comments"]) == (3, 2, 1)
    assert observation["followers"] == 5120
    assert records[0].key == b"post-7"
