"""WebSub subscriptions managed over the API: discovery, hub verification, renewal, unsubscribe.

The ingest app runs on a real uvicorn server (hubs call it back over loopback); the hub and the
feed are played by an httpx MockTransport that verifies intents the way a real hub does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import uvicorn

from services.ingest.app import build_app
from services.ingest.sources.websub import renew_expiring
from services.ingest.storage import WebSubStore
from shared.events import utc_now
from shared.local.servers import free_port
from shared.mongo import create_mongo_client, service_database
from shared.settings import Settings
from tests.integration.helpers import eventually

pytestmark = pytest.mark.integration

AUTH = {"Authorization": "Bearer test-admin-token"}
TOPIC = "https://blog.example.de/feed.atom"
HUB = "https://hub.example.net/"
FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Kaffeeblog</title>
<id>tag:blog.example.de,2024:feed</id><updated>2024-06-10T08:00:00Z</updated></feed>"""


class FakeHub:
    """Answers feed fetches (naming the hub in a Link header) and hub requests, verifying
    each intent by calling the subscriber back before it answers, as many hubs do."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            if str(request.url) != TOPIC:
                return httpx.Response(404)
            return httpx.Response(200, content=FEED, headers={"Link": f'<{HUB}>; rel="hub"'})
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        self.requests.append(form)
        params = {
            "hub.mode": form["hub.mode"],
            "hub.topic": form["hub.topic"],
            "hub.challenge": f"challenge-{len(self.requests)}",
        }
        if form["hub.mode"] == "subscribe":
            params["hub.lease_seconds"] = form["hub.lease_seconds"]
        async with httpx.AsyncClient(timeout=10) as callback:
            answer = await callback.get(form["hub.callback"], params=params)
        return httpx.Response(204 if answer.text == params["hub.challenge"] else 409)


@asynccontextmanager
async def serving(settings: Settings, hub: FakeHub) -> AsyncIterator[httpx.AsyncClient]:
    port = free_port()
    configured = settings.model_copy(update={"public_base_url": f"http://127.0.0.1:{port}"})
    outbound = httpx.AsyncClient(transport=httpx.MockTransport(hub))
    app = build_app(configured, http=outbound)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", log_config=None)
    )
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: asyncio.sleep(0.05, server.started), bool, timeout=60)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=AUTH, timeout=20
        ) as client:
            yield client
    finally:
        server.should_exit = True
        await task


async def test_subscribe_discover_renew_and_unsubscribe(settings: Settings) -> None:
    hub = FakeHub()
    async with serving(settings, hub) as client:
        created = await client.post("/v1/websub/subscriptions", json={"topic": TOPIC})
        assert created.status_code == 202, created.text
        subscription: dict[str, Any] = created.json()
        assert subscription["hub"] == HUB  # discovered from the feed's Link header
        assert subscription["state"] == "subscribed"  # the hub verified before answering
        assert "secret" not in subscription
        assert hub.requests[0]["hub.secret"]
        sub_id = subscription["id"]
        listed = (await client.get("/v1/websub/subscriptions")).json()["items"]
        assert [s["id"] for s in listed] == [sub_id]

        mongo = create_mongo_client(settings, "test-websub")
        store = WebSubStore(service_database(mongo, settings))
        try:
            assert await renew_expiring(httpx.AsyncClient(), store, "http://unused") == []
            await store.upsert(sub_id, {"lease_expires_at": utc_now() + timedelta(hours=2)})
            base = str(client.base_url)
            outbound = httpx.AsyncClient(transport=httpx.MockTransport(hub))
            assert await renew_expiring(outbound, store, base) == [sub_id]
            renewed = await store.get(sub_id)
        finally:
            await mongo.close()
        assert renewed is not None
        assert renewed["lease_expires_at"] > utc_now() + timedelta(days=9)
        assert hub.requests[1]["hub.callback"] == hub.requests[0]["hub.callback"]
        assert hub.requests[1]["hub.secret"] == hub.requests[0]["hub.secret"]

        gone = await client.delete(f"/v1/websub/subscriptions/{sub_id}")
        assert gone.status_code == 202, gone.text
        assert gone.json()["state"] == "unsubscribed"
        assert hub.requests[2]["hub.mode"] == "unsubscribe"


async def test_subscription_api_rejects_bad_input_clearly(settings: Settings) -> None:
    async with serving(settings, FakeHub()) as client:
        cases = [
            ({"topic": "ftp://blog.example.de/feed"}, 422),
            ({"topic": TOPIC, "lease_seconds": 10}, 422),
            ({"topic": TOPIC, "secret": "mine"}, 422),
            ({"topic": "https://elsewhere.example/feed", "hub": None}, 502),  # feed unreachable
        ]
        for body, status in cases:
            response = await client.post("/v1/websub/subscriptions", json=body)
            assert response.status_code == status, (body, response.text)
            assert response.json()["error"]["message"]
        missing = await client.get(f"/v1/websub/subscriptions/{'0' * 32}")
        assert missing.status_code == 404
        assert (await client.get("/v1/websub/subscriptions/$where")).status_code == 422
        unauthenticated = await client.post(
            "/v1/websub/subscriptions", json={"topic": TOPIC}, headers={"Authorization": ""}
        )
        assert unauthenticated.status_code == 401


async def test_without_a_public_url_websub_is_switched_off(settings: Settings) -> None:
    app = build_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://ingest", headers=AUTH) as client,
    ):
        response = await client.post("/v1/websub/subscriptions", json={"topic": TOPIC})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "websub_disabled"
