"""The webhook router on a real uvicorn server, called over loopback, with a real WebSubStore.

The sink is a recording stand-in (the intake has its own tests): what is under test is the HTTP
layer — handshakes, signatures on the raw bytes, status codes, and what reaches the sink.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from services.ingest.domain.batch import IntakeResult, RejectedItem
from services.ingest.domain.normalise import MentionIn
from services.ingest.sources.websub import callback_url, subscribe
from services.ingest.storage import WebSubStore
from services.ingest.webhooks import build_webhook_router
from shared.http import RequestGuard, install_error_handlers
from shared.local.servers import free_port
from shared.mongo import create_mongo_client, service_database
from shared.settings import Settings

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"
META_SECRET = "meta-app-secret-123"
META_TOKEN = "meta-verify-token-456"
X_SECRET = "x-consumer-secret-789"
MASTODON_SECRET = "mastodon-webhook-secret"
HUB_SECRET = "hub-secret"
MAX_BODY = 64 * 1024


@dataclass
class RecordingSink:
    """Records every call; `fail` makes it behave like an intake whose Kafka is down."""

    calls: list[tuple[list[MentionIn], str, list[RejectedItem]]] = field(default_factory=list)
    fail: bool = False

    async def __call__(
        self, items: Sequence[MentionIn], source: Any, rejected: Sequence[RejectedItem] = ()
    ) -> IntakeResult:
        if self.fail:
            raise RuntimeError("Kafka did not acknowledge the mentions")
        self.calls.append((list(items), source, list(rejected)))
        return IntakeResult(accepted=len(items), rejected=list(rejected))

    @property
    def items(self) -> list[MentionIn]:
        return [item for items, _, _ in self.calls for item in items]


@dataclass
class Running:
    base: str
    client: httpx.AsyncClient
    sink: RecordingSink
    store: WebSubStore
    settings: Settings


def _app(settings: Settings, sink: RecordingSink, store: WebSubStore) -> FastAPI:
    """The pieces `create_http_app` gives ingest: error body, size limit, and the router."""
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(build_webhook_router(settings, sink, store, httpx.AsyncClient()))
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_request_bytes)
    return app


@asynccontextmanager
async def _serve(app: FastAPI, port: int) -> AsyncIterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(app, host=HOST, port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started or task.done():
                break
            await asyncio.sleep(0.025)
        assert server.started, "uvicorn did not start"
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def _running(settings: Settings, **secrets: Any) -> AsyncIterator[Running]:
    port = free_port()
    configured = settings.model_copy(update={"max_request_bytes": MAX_BODY, **secrets})
    if "public_base_url" in secrets:
        configured = configured.model_copy(update={"public_base_url": f"http://{HOST}:{port}"})
    mongo = create_mongo_client(settings, "test-webhooks")
    store = WebSubStore(service_database(mongo, settings))
    sink = RecordingSink()
    try:
        async with (
            _serve(_app(configured, sink, store), port) as base,
            httpx.AsyncClient(base_url=base, timeout=10) as client,
        ):
            yield Running(base, client, sink, store, configured)
    finally:
        await mongo.close()


@pytest.fixture
async def svc(settings: Settings) -> AsyncIterator[Running]:
    async with _running(
        settings,
        meta_app_secret=SecretStr(META_SECRET),
        meta_verify_token=SecretStr(META_TOKEN),
        x_consumer_secret=SecretStr(X_SECRET),
        mastodon_webhook_secret=SecretStr(MASTODON_SECRET),
        public_base_url="set below",
    ) as running:
        yield running


def _hex(secret: str, body: bytes, method: str = "sha256") -> str:
    return hmac.new(secret.encode(), body, getattr(hashlib, method)).hexdigest()


def _b64(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


PAGE_BODY = json.dumps(
    {
        "object": "page",
        "entry": [
            {
                "id": "104729318823",
                "time": 1718003460,
                "changes": [
                    {
                        "field": "feed",
                        "value": {
                            "from": {"id": "5521339", "name": "Jana Weber"},
                            "item": "status",
                            "post_id": "104729318823_8841",
                            "verb": "add",
                            "created_time": 1718003400,
                            "message": "Bohnenglück liefert schnell - danke!",
                        },
                    },
                    {"field": "feed", "value": {"item": "reaction", "verb": "add"}},
                    {"field": "feed", "value": {"item": "comment", "verb": "add"}},
                ],
            }
        ],
    },
    ensure_ascii=False,
).encode()


# --- Meta ---------------------------------------------------------------------------------------


async def test_meta_handshake_echoes_the_challenge_only_for_our_verify_token(svc: Running) -> None:
    params = {
        "hub.mode": "subscribe",
        "hub.verify_token": META_TOKEN,
        "hub.challenge": "1158201444",
    }
    ok = await svc.client.get("/webhooks/meta", params=params)
    assert ok.status_code == 200
    assert ok.text == "1158201444"
    assert ok.headers["content-type"].startswith("text/plain")

    wrong = await svc.client.get("/webhooks/meta", params=params | {"hub.verify_token": "guess"})
    assert wrong.status_code == 403
    assert wrong.json()["error"]["code"] == "forbidden"
    other_mode = await svc.client.get("/webhooks/meta", params=params | {"hub.mode": "unsubscribe"})
    assert other_mode.status_code == 403


async def test_meta_signed_delivery_reaches_the_sink(svc: Running) -> None:
    response = await svc.client.post(
        "/webhooks/meta",
        content=PAGE_BODY,
        headers={"X-Hub-Signature-256": f"sha256={_hex(META_SECRET, PAGE_BODY)}"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 1
    assert body["ignored"] == 1
    assert [r["index"] for r in body["rejected"]] == [2]
    ((items, source, rejected),) = svc.sink.calls
    assert source == "webhook"
    assert [(m.platform, m.native_id) for m in items] == [("facebook", "104729318823_8841")]
    assert items[0].text == "Bohnenglück liefert schnell - danke!"
    assert [r.index for r in rejected] == [2]


async def test_tampered_or_unsigned_meta_body_is_401_and_nothing_reaches_the_sink(
    svc: Running,
) -> None:
    signature = f"sha256={_hex(META_SECRET, PAGE_BODY)}"
    tampered = PAGE_BODY.replace(b"schnell", b"langsam")
    for headers in ({"X-Hub-Signature-256": signature}, {}):
        response = await svc.client.post("/webhooks/meta", content=tampered, headers=headers)
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["code"] == "invalid_signature"
        assert "signature" in error["message"]
    assert svc.sink.calls == []


# --- X ------------------------------------------------------------------------------------------


async def test_x_crc_answers_the_response_token(svc: Running) -> None:
    token = "a1b2c3d4-crc-token"
    response = await svc.client.get("/webhooks/x", params={"crc_token": token})
    assert response.status_code == 200
    assert response.json() == {"response_token": "sha256=" + _b64(X_SECRET, token.encode())}
    missing = await svc.client.get("/webhooks/x")
    assert missing.status_code == 422
    assert missing.json()["error"]["code"] == "invalid_request"


async def test_x_signed_delivery_reaches_the_sink(svc: Running) -> None:
    body = json.dumps(
        {
            "for_user_id": "3001",
            "tweet_create_events": [
                {
                    "id_str": "1800000000000000002",
                    "created_at": "Mon Jun 10 09:15:30 +0200 2024",
                    "text": "@bohnenglueck Meine Bestellung ist noch nicht da.",
                    "user": {"id_str": "77", "screen_name": "kaffeeklaus", "name": "Klaus"},
                    "lang": "de",
                }
            ],
            "favorite_events": [{"id": "f1"}],
        }
    ).encode()
    bad = await svc.client.post(
        "/webhooks/x",
        content=body,
        headers={"x-twitter-webhooks-signature": f"sha256={_b64('nope', body)}"},
    )
    assert bad.status_code == 401
    response = await svc.client.post(
        "/webhooks/x",
        content=body,
        headers={"x-twitter-webhooks-signature": f"sha256={_b64(X_SECRET, body)}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    assert response.json()["ignored"] == 1
    (mention,) = svc.sink.items
    assert mention.url == "https://x.com/kaffeeklaus/status/1800000000000000002"


# --- Mastodon -----------------------------------------------------------------------------------


async def test_mastodon_signed_delivery_reaches_the_sink(svc: Running) -> None:
    body = json.dumps(
        {
            "event": "status.created",
            "created_at": "2024-06-10T07:10:01.000Z",
            "object": {
                "id": "112233",
                "uri": "https://social.example.de/users/mia/statuses/112233",
                "url": "https://social.example.de/@mia/112233",
                "created_at": "2024-06-10T07:10:00.000Z",
                "content": "<p>Lohnt sich das Bohnenglück-Abo?</p>",
                "language": "de",
                "visibility": "public",
                "account": {"id": "1", "acct": "mia", "followers_count": 320},
            },
        }
    ).encode()
    response = await svc.client.post(
        "/webhooks/mastodon",
        content=body,
        headers={"X-Hub-Signature": f"sha256={_hex(MASTODON_SECRET, body)}"},
    )
    assert response.status_code == 200, response.text
    (mention,) = svc.sink.items
    assert mention.platform == "mastodon"
    assert mention.author.id == "mia@social.example.de"
    unsigned = await svc.client.post("/webhooks/mastodon", content=body)
    assert unsigned.status_code == 401
    assert len(svc.sink.calls) == 1


# --- WebSub -------------------------------------------------------------------------------------

TOPIC = "https://blog.example.de/feed.atom"
FEED = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="de">
  <title>Kaffeeblog</title><id>tag:blog.example.de,2024:feed</id>
  <updated>2024-06-10T08:00:00Z</updated>
  <entry>
    <title>Bohnenglück im Test</title><id>tag:blog.example.de,2024:post-{n}</id>
    <link href="https://blog.example.de/2024/06/test-{n}"/>
    <published>2024-06-10T07:10:00Z</published>
    <summary>Leise Mühle, guter Kaffee.</summary>
  </entry>
</feed>
"""


CALLBACK_TOKEN = "t0k3n-" + "A" * 40


async def _pending(store: WebSubStore, sub_id: str, secret: str = HUB_SECRET) -> str:
    """A subscription we have just asked the hub for; its callback path (with the token)."""
    await store.upsert(
        sub_id,
        {
            "topic": TOPIC,
            "hub": "https://hub.example",
            "secret": secret,
            "callback_token": CALLBACK_TOKEN,
            "intent": "subscribe",
            "requested_lease_seconds": 86400,
            "requested_at": datetime.now(UTC),
        },
    )
    return f"/webhooks/websub/{sub_id}/{CALLBACK_TOKEN}"


async def test_websub_intent_verification(svc: Running) -> None:
    url = await _pending(svc.store, "sub-1")
    good = {
        "hub.mode": "subscribe",
        "hub.topic": TOPIC,
        "hub.challenge": "c-7f3a91",
        "hub.lease_seconds": "86400",
    }
    ok = await svc.client.get(url, params=good)
    assert ok.status_code == 200
    assert ok.text == "c-7f3a91"
    assert ok.headers["content-type"].startswith("text/plain")
    stored = await svc.store.get("sub-1")
    assert stored is not None
    assert stored["state"] == "subscribed"
    expected_expiry = datetime.now(UTC) + timedelta(seconds=86400)
    assert abs(stored["lease_expires_at"] - expected_expiry) < timedelta(minutes=1)

    wrong_topic = await svc.client.get(url, params=good | {"hub.topic": "https://evil.example/"})
    assert wrong_topic.status_code == 404
    assert "topic" in wrong_topic.json()["error"]["message"]
    unknown = await svc.client.get(f"/webhooks/websub/no-such-sub/{CALLBACK_TOKEN}", params=good)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_subscription"
    not_our_intent = await svc.client.get(url, params=good | {"hub.mode": "unsubscribe"})
    assert not_our_intent.status_code == 404

    denied = await svc.client.get(
        url, params={"hub.mode": "denied", "hub.topic": TOPIC, "hub.reason": "over quota"}
    )
    assert denied.status_code == 200
    stored = await svc.store.get("sub-1")
    assert stored is not None
    assert (stored["state"], stored["denied_reason"]) == ("denied", "over quota")


@pytest.mark.parametrize("method", ["sha1", "sha256"])
async def test_websub_signed_push_reaches_the_sink(svc: Running, method: str) -> None:
    url = await _pending(svc.store, "sub-2")
    body = FEED.replace("{n}", method).encode()
    response = await svc.client.post(
        url,
        content=body,
        headers={
            "X-Hub-Signature": f"{method}={_hex(HUB_SECRET, body, method)}",
            "Content-Type": "application/atom+xml",
        },
    )
    assert response.status_code == 200, response.text
    (mention,) = svc.sink.items
    assert (mention.platform, mention.native_id) == (
        "rss",
        f"tag:blog.example.de,2024:post-{method}",
    )
    assert mention.text == "Bohnenglück im Test\n\nLeise Mühle, guter Kaffee."


async def test_websub_bad_unknown_or_missing_signature_is_401(svc: Running) -> None:
    url = await _pending(svc.store, "sub-3")
    body = FEED.replace("{n}", "x").encode()
    for header in (
        {"X-Hub-Signature": f"sha256={_hex('wrong-secret', body)}"},
        {"X-Hub-Signature": f"md5={hashlib.md5(body).hexdigest()}"},  # noqa: S324
        {},
    ):
        response = await svc.client.post(url, content=body, headers=header)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_signature"
    unknown = await svc.client.post(
        f"/webhooks/websub/nobody/{CALLBACK_TOKEN}",
        content=body,
        headers={"X-Hub-Signature": f"sha256={_hex(HUB_SECRET, body)}"},
    )
    assert unknown.status_code == 404
    assert svc.sink.calls == []


async def test_subscribe_round_trip_through_a_hub(svc: Running) -> None:
    """subscribe() → the hub verifies our intent synchronously over loopback → it pushes."""
    seen: dict[str, str] = {}

    async def hub(request: httpx.Request) -> httpx.Response:
        form = {key: values[0] for key, values in parse_qs(request.content.decode()).items()}
        seen.update(form)
        async with httpx.AsyncClient(timeout=10) as callback:
            verification = await callback.get(
                form["hub.callback"],
                params={
                    "hub.mode": form["hub.mode"],
                    "hub.topic": form["hub.topic"],
                    "hub.challenge": "round-trip-challenge",
                    "hub.lease_seconds": form["hub.lease_seconds"],
                },
            )
        if verification.text != "round-trip-challenge":
            return httpx.Response(409)
        return httpx.Response(204)

    base_url = svc.settings.public_base_url
    assert base_url is not None
    async with httpx.AsyncClient(transport=httpx.MockTransport(hub)) as hub_client:
        sub_id = await subscribe(
            hub_client,
            svc.store,
            hub_url="https://hub.example/",
            topic=TOPIC,
            public_base_url=base_url,
            lease_seconds=3600,
        )
    stored = await svc.store.get(sub_id)
    assert stored is not None
    assert seen["hub.callback"] == callback_url(base_url, sub_id, stored["callback_token"])
    assert seen["hub.mode"] == "subscribe"
    assert seen["hub.lease_seconds"] == "3600"
    assert stored["state"] == "subscribed"
    assert stored["secret"] == seen["hub.secret"]

    body = FEED.replace("{n}", "pushed").encode()
    pushed = await svc.client.post(
        seen["hub.callback"],
        content=body,
        headers={"X-Hub-Signature": f"sha1={_hex(seen['hub.secret'], body, 'sha1')}"},
    )
    assert pushed.status_code == 200, pushed.text
    assert svc.sink.items[0].native_id == "tag:blog.example.de,2024:post-pushed"


# --- failures -----------------------------------------------------------------------------------


async def test_sink_failure_is_503_with_retry_after(svc: Running) -> None:
    svc.sink.fail = True
    response = await svc.client.post(
        "/webhooks/meta",
        content=PAGE_BODY,
        headers={"X-Hub-Signature-256": f"sha256={_hex(META_SECRET, PAGE_BODY)}"},
    )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"]["code"] == "broker_unavailable"


async def test_unconfigured_platforms_answer_404_webhook_disabled(settings: Settings) -> None:
    async with _running(settings) as bare:
        body = b'{"object": "page", "entry": []}'
        attempts = [
            bare.client.get("/webhooks/meta", params={"hub.mode": "subscribe"}),
            bare.client.post("/webhooks/meta", content=body),
            bare.client.get("/webhooks/x", params={"crc_token": "t"}),
            bare.client.post("/webhooks/x", content=body),
            bare.client.post("/webhooks/mastodon", content=body),
            bare.client.get("/webhooks/websub/sub-1", params={"hub.mode": "subscribe"}),
            bare.client.post("/webhooks/websub/sub-1", content=body),
        ]
        for response in await asyncio.gather(*attempts):
            assert response.status_code == 404, response.request.url
            assert response.json()["error"]["code"] == "webhook_disabled"
        assert bare.sink.calls == []


async def test_oversized_and_garbage_bodies_are_4xx(svc: Running) -> None:
    oversized = b"{" + b" " * (MAX_BODY + 1) + b"}"
    too_big = await svc.client.post(
        "/webhooks/meta",
        content=oversized,
        headers={"X-Hub-Signature-256": f"sha256={_hex(META_SECRET, oversized)}"},
    )
    assert too_big.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the stream is counted
        for _ in range(8):
            yield b"x" * (MAX_BODY // 4)

    streamed = await svc.client.post("/webhooks/x", content=chunks())
    assert streamed.status_code == 413

    signers: list[tuple[str, str, Callable[[bytes], str]]] = [
        ("/webhooks/meta", "X-Hub-Signature-256", lambda b: f"sha256={_hex(META_SECRET, b)}"),
        ("/webhooks/x", "x-twitter-webhooks-signature", lambda b: f"sha256={_b64(X_SECRET, b)}"),
        ("/webhooks/mastodon", "X-Hub-Signature", lambda b: f"sha256={_hex(MASTODON_SECRET, b)}"),
    ]
    for path, header, sign in signers:
        # `{}` is an empty but valid X delivery (200); for Meta and Mastodon it lacks the envelope.
        garbage_bodies = [b"\xff\xfe not json", b"[1, 2", b"[" * 10_000, b'["a list"]']
        for garbage in garbage_bodies + ([] if path == "/webhooks/x" else [b"{}"]):
            signed = await svc.client.post(path, content=garbage, headers={header: sign(garbage)})
            assert signed.status_code == 400, (path, garbage[:10], signed.text)
            assert signed.json()["error"]["code"] in {"bad_request", "bad_payload"}
        unsigned = await svc.client.post(path, content=b"\x00\x01garbage")
        assert unsigned.status_code == 401

    url = await _pending(svc.store, "sub-4")
    junk = b"\x00\xffnot a feed"
    feed_junk = await svc.client.post(
        url,
        content=junk,
        headers={"X-Hub-Signature": f"sha256={_hex(HUB_SECRET, junk)}"},
    )
    assert feed_junk.status_code == 400
    assert feed_junk.json()["error"]["code"] == "bad_payload"
    assert svc.sink.calls == []
