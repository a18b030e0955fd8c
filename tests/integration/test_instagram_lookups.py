"""Instagram @mentions: the webhook queues a lookup, the resolver fetches the text.

Real database (the lookup queue); the Graph API is an httpx MockTransport that answers the way
Meta documents it: the mentioned media or comment, error objects with codes, rate limits.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from pymongo.asynchronous.database import AsyncDatabase

from services.ingest.domain.batch import IntakeResult, RejectedItem
from services.ingest.domain.normalise import MentionIn
from services.ingest.sources.instagram import InstagramMentionResolver
from services.ingest.storage import LOOKUPS, LookupQueue, WebSubStore, indexes
from services.ingest.webhooks import build_webhook_router
from shared.events import utc_now
from shared.http import install_error_handlers
from shared.mongo import Document, create_mongo_client, ensure_indexes, service_database
from shared.settings import Settings

pytestmark = pytest.mark.integration

ACCOUNT = "17841400000000001"
APP_SECRET = "meta-app-secret-123"


class Sink:
    def __init__(self) -> None:
        self.items: list[MentionIn] = []

    async def __call__(
        self, items: Sequence[MentionIn], source: Any, rejected: Sequence[RejectedItem] = ()
    ) -> IntakeResult:
        self.items.extend(items)
        return IntakeResult(accepted=len(items), rejected=list(rejected))


def graph_api(request: httpx.Request) -> httpx.Response:
    """Media 1 and comment 2 exist; media 3 was deleted; media 4 hits a rate limit; media 5
    meets a server error; the token must be sent as a bearer header."""
    assert request.headers["authorization"] == "Bearer ig-token-abc"
    assert request.url.path == f"/v21.0/{ACCOUNT}"
    fields = request.url.params["fields"]
    if fields.startswith("mentioned_comment.comment_id(2)"):
        comment = {"text": "@bohnenglueck habt ihr Hafermilch?", "username": "mo", "id": "2"}
        return httpx.Response(200, json={"mentioned_comment": comment, "id": ACCOUNT})
    if fields.startswith("mentioned_media.media_id(1)"):
        media: dict[str, Any] = {
            "caption": "Neue Röstung von @bohnenglueck probiert",
            "timestamp": "2026-11-20T08:00:00+0000",
            "username": "kaffeekatze",
            "like_count": 12,
            "id": "1",
        }
        return httpx.Response(200, json={"mentioned_media": media, "id": ACCOUNT})
    if fields.startswith("mentioned_media.media_id(3)"):
        error = {"message": "Unsupported get request", "type": "GraphMethodException", "code": 100}
        return httpx.Response(400, json={"error": error})
    if fields.startswith("mentioned_media.media_id(4)"):
        error = {"message": "Application request limit reached", "code": 4}
        return httpx.Response(400, json={"error": error})
    return httpx.Response(500, json={"error": {"message": "unknown error", "code": 1}})


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[AsyncDatabase[Document]]:
    client = create_mongo_client(settings, "test-lookups")
    database = service_database(client, settings)
    await ensure_indexes(database, indexes())
    yield database
    await client.close()


def _delivery(*changes: dict[str, Any]) -> bytes:
    entry = {"id": ACCOUNT, "time": 1763625600, "changes": list(changes)}
    return json.dumps({"object": "instagram", "entry": [entry]}).encode()


def _mention(media_id: str, comment_id: str | None = None) -> dict[str, Any]:
    value = {"media_id": media_id} | ({"comment_id": comment_id} if comment_id else {})
    return {"field": "mentions", "value": value}


def _app(settings: Settings, db: AsyncDatabase[Document], lookups: LookupQueue | None) -> FastAPI:
    configured = settings.model_copy(
        update={
            "meta_app_secret": SecretStr(APP_SECRET),
            "meta_verify_token": SecretStr("verify-token-xyz"),
        }
    )
    app = FastAPI()
    install_error_handlers(app)
    router = build_webhook_router(configured, Sink(), WebSubStore(db), httpx.AsyncClient(), lookups)
    app.include_router(router)
    return app


async def _post(app: FastAPI, body: bytes) -> httpx.Response:
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://ingest"
    ) as client:
        return await client.post(
            "/webhooks/meta", content=body, headers={"X-Hub-Signature-256": signature}
        )


async def test_mentions_are_queued_fetched_and_failures_stay_visible(
    settings: Settings, db: AsyncDatabase[Document]
) -> None:
    queue = LookupQueue(db)
    app = _app(settings, db, queue)
    body = _delivery(_mention("1"), _mention("1", "2"), _mention("3"), _mention("4"), _mention("5"))
    first = await _post(app, body)
    assert first.status_code == 200, first.text
    assert first.json()["deferred"] == 5
    assert (await _post(app, body)).status_code == 200  # Meta redelivers: queued once
    assert await db[LOOKUPS].count_documents({}) == 5

    sink = Sink()
    graph = httpx.AsyncClient(transport=httpx.MockTransport(graph_api))
    resolver = InstagramMentionResolver(
        queue, graph, sink, "ig-token-abc", "https://graph.example/v21.0"
    )
    assert await resolver.resolve_due() == 5
    by_id = {item.native_id: item for item in sink.items}
    assert sorted(by_id) == ["1", "1_2"]
    assert by_id["1"].text == "Neue Röstung von @bohnenglueck probiert"
    assert by_id["1"].author.handle == "@kaffeekatze"
    assert by_id["1_2"].in_reply_to == "1"

    left = {d["_id"]: d async for d in db[LOOKUPS].find({})}
    assert sorted(left) == ["3", "4", "5"]
    assert left["3"]["state"] == "failed"
    assert "Unsupported get request" in left["3"]["last_error"]
    for retried in ("4", "5"):
        assert left[retried]["state"] == "pending"
        assert left[retried]["attempts"] == 1
        assert left[retried]["next_try_at"] > utc_now() + timedelta(seconds=20)
    assert "rate limited" in left["4"]["last_error"]
    assert left["4"]["next_try_at"] > utc_now() + timedelta(minutes=9)  # Meta's pause
    assert await resolver.resolve_due() == 0  # nothing is due again yet
    assert [d["_id"] for d in await queue.failed()] == ["3"]


async def test_without_a_token_such_mentions_are_rejected_with_the_reason(
    settings: Settings, db: AsyncDatabase[Document]
) -> None:
    response = await _post(_app(settings, db, None), _delivery(_mention("9")))
    assert response.status_code == 200
    (rejected,) = response.json()["rejected"]
    assert "SMM_META_ACCESS_TOKEN" in rejected["reason"]
    assert response.json()["deferred"] == 0
