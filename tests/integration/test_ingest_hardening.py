"""Issue 16 (ingest): handshakes that must not sign or accept what an attacker chooses.

Runs the webhook router the way `test_webhooks.py` does (real uvicorn, real WebSubStore).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from urllib.parse import parse_qs

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.ingest.app import build_app
from services.ingest.sources.websub import (
    WebSubError,
    new_callback_token,
    subscribe,
    subscription_id_for,
    token_matches,
)
from services.ingest.storage import WebSubStore
from shared.events import utc_now
from shared.local.servers import free_port
from shared.mongo import create_mongo_client, service_database
from shared.settings import Settings
from tests.integration.test_ingest import ingest
from tests.integration.test_webhooks import FEED as WEBSUB_FEED
from tests.integration.test_webhooks import (
    HUB_SECRET,
    META_SECRET,
    META_TOKEN,
    TOPIC,
    X_SECRET,
    Running,
    _b64,
    _hex,
    _running,
    svc,
)
from tests.integration.test_websub_subscriptions import HUB, FakeHub, serving
from tests.integration.test_websub_subscriptions import TOPIC as SUB_TOPIC

pytestmark = pytest.mark.integration
__all__ = ["svc"]  # the fixture, imported for the tests below

#: A forged "complaint from an account with 2M followers", the body the attacker wants signed.
FORGED = json.dumps(
    {
        "for_user_id": "3001",
        "tweet_create_events": [
            {
                "id_str": "1800000000000000666",
                "created_at": "Mon Jun 10 09:15:30 +0000 2024",
                "text": "@bohnenglueck Euer Kaffee hat mich krank gemacht! Nie wieder!",
                "user": {
                    "id_str": "666",
                    "screen_name": "famous",
                    "name": "Famous",
                    "followers_count": 2_000_000,
                },
                "lang": "de",
            }
        ],
    },
    separators=(",", ":"),
)


async def test_x_crc_no_longer_signs_a_delivery_body(svc: Running) -> None:
    """The forgery: ask the CRC to sign a delivery, then post it with what the CRC answered."""
    crc = await svc.client.get("/webhooks/x", params={"crc_token": FORGED})
    answered = crc.json().get("response_token") or ""
    posted = await svc.client.post(
        "/webhooks/x",
        content=FORGED.encode(),
        headers={"x-twitter-webhooks-signature": answered},
    )
    assert posted.status_code == 401, posted.text
    assert svc.sink.calls == []
    assert crc.status_code == 400, crc.text
    assert crc.json()["error"]["code"] == "invalid_crc_token"


@pytest.mark.parametrize(
    "token",
    [
        "{}",
        '{"tweet_create_events":[]}',
        "[1]",
        '"quoted"',
        "123",
        "true",
        "a b",
        "x" * 256,
        "tok\u00e9n",
    ],
)
async def test_x_crc_refuses_tokens_not_in_x_form(svc: Running, token: str) -> None:
    response = await svc.client.get("/webhooks/x", params={"crc_token": token})
    assert response.status_code in (400, 422), (token, response.text)
    assert set(response.json()["error"]) == {"code", "message", "details"}


async def test_x_crc_still_answers_x_shaped_tokens(svc: Running) -> None:
    for token in ("a1b2c3d4-crc-token", "Kc4d5OFTbX_1ZlS9b-0tQm+W/1w=", "x" * 255):
        response = await svc.client.get("/webhooks/x", params={"crc_token": token})
        assert response.status_code == 200, (token, response.text)
        assert response.json() == {"response_token": "sha256=" + _b64(X_SECRET, token.encode())}


async def test_handshakes_are_rate_limited_with_retry_after(settings: Settings) -> None:
    limited = settings.model_copy(
        update={"ingest_handshake_rate_per_minute": 1.0, "ingest_handshake_burst": 3}
    )
    async with _running(
        limited,
        x_consumer_secret=SecretStr(X_SECRET),
        meta_app_secret=SecretStr(META_SECRET),
        meta_verify_token=SecretStr(META_TOKEN),
    ) as bare:
        crc = [
            await bare.client.get("/webhooks/x", params={"crc_token": f"{{{n}}}"}) for n in range(5)
        ]
        assert [a.status_code for a in crc] == [400, 400, 400, 429, 429]
        meta = [
            await bare.client.get("/webhooks/meta", params=_meta_handshake(f"guess-{n}"))
            for n in range(5)
        ]
        assert [a.status_code for a in meta] == [403, 403, 403, 429, 429]
        for refused in (crc[3], meta[3]):
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.json()["error"]["code"] == "rate_limited"
            assert set(refused.json()["error"]) == {"code", "message", "details"}


async def test_one_clients_handshakes_never_use_up_anothers(settings: Settings) -> None:
    """Every handshake GET is charged to its client: a stranger who uses up its own bucket
    (bad tokens, or good ones) leaves X's hourly CRC from another address untouched (X
    disables a webhook whose CRC fails). Behind an ingress, the client address is the one
    the proxy forwards (SMM_TRUSTED_PROXIES)."""
    limited = settings.model_copy(
        update={"ingest_handshake_rate_per_minute": 1.0, "ingest_handshake_burst": 3}
    )
    async with (
        _running(
            limited,
            x_consumer_secret=SecretStr(X_SECRET),
            meta_app_secret=SecretStr(META_SECRET),
            meta_verify_token=SecretStr(META_TOKEN),
        ) as service,
        httpx.AsyncClient(
            base_url=service.base,
            transport=httpx.AsyncHTTPTransport(local_address="127.0.0.2"),
        ) as platform,
    ):
        stranger = service.client
        for n in range(10):
            await stranger.get("/webhooks/x", params={"crc_token": f'{{"n":{n}}}'})
            await stranger.get("/webhooks/x", params={"crc_token": f"good-form-{n}"})
            await stranger.get("/webhooks/meta", params=_meta_handshake(f"guess-{n}"))
        for n in range(3):  # X's own checks, up to its bucket
            token = f"crc-token-{n}"
            answer = await platform.get("/webhooks/x", params={"crc_token": token})
            assert answer.status_code == 200, (n, answer.text)
            assert answer.json() == {"response_token": "sha256=" + _b64(X_SECRET, token.encode())}
        verified = await platform.get("/webhooks/meta", params=_meta_handshake(META_TOKEN))
        assert verified.status_code == 200, verified.text
        assert verified.text == "challenge-1"
        for limited_out in (
            await stranger.get("/webhooks/x", params={"crc_token": "good-form"}),
            await stranger.get("/webhooks/meta", params=_meta_handshake(META_TOKEN)),
        ):
            assert limited_out.status_code == 429  # answered ones count too: guessing is slow


def _meta_handshake(verify_token: str) -> dict[str, str]:
    return {
        "hub.mode": "subscribe",
        "hub.verify_token": verify_token,
        "hub.challenge": "challenge-1",
    }


# --- WebSub: the callback URL carries a secret; verification only as we asked -----------------


async def _requested(
    store: WebSubStore, *, ago: timedelta = timedelta(0), lease: int = 86400
) -> tuple[str, str]:
    """A subscription whose subscribe request we sent `ago`; its id and callback path."""
    sub_id = subscription_id_for(TOPIC)  # anyone can compute this one
    token = new_callback_token()
    await store.upsert(
        sub_id,
        {
            "topic": TOPIC,
            "hub": "https://hub.example",
            "secret": HUB_SECRET,
            "callback_token": token,
            "intent": "subscribe",
            "requested_lease_seconds": lease,
            "requested_at": utc_now() - ago,
            "state": "subscribed",
            "lease_expires_at": utc_now() + timedelta(days=5),
        },
    )
    return sub_id, f"/webhooks/websub/{sub_id}/{token}"


async def test_a_stranger_cannot_deny_or_verify_a_subscription(svc: Running) -> None:
    sub_id, _ = await _requested(svc.store)
    before = await svc.store.get(sub_id)
    denial = {"hub.mode": "denied", "hub.topic": TOPIC, "hub.reason": "gotcha"}
    subscribe = {
        "hub.mode": "subscribe",
        "hub.topic": TOPIC,
        "hub.challenge": "c1",
        "hub.lease_seconds": "999999999",
    }
    for path in (
        f"/webhooks/websub/{sub_id}",  # the id alone, as before
        f"/webhooks/websub/{sub_id}/{new_callback_token()}",  # a guessed token
        f"/webhooks/websub/{sub_id}/short",
    ):
        for params in (denial, subscribe):
            answer = await svc.client.get(path, params=params)
            assert answer.status_code == 404, (path, params, answer.text)
            assert answer.json()["error"]["code"] == "unknown_subscription"
    after = await svc.store.get(sub_id)
    assert after is not None
    assert before is not None
    assert (after["state"], after["lease_expires_at"]) == ("subscribed", before["lease_expires_at"])
    assert "denied_reason" not in after


async def test_verification_only_shortly_after_our_request(svc: Running) -> None:
    sub_id, url = await _requested(svc.store, ago=timedelta(minutes=11))
    params = {
        "hub.mode": "subscribe",
        "hub.topic": TOPIC,
        "hub.challenge": "late",
        "hub.lease_seconds": "3600",
    }
    late = await svc.client.get(url, params=params)
    assert late.status_code == 404, late.text
    stored = await svc.store.get(sub_id)
    assert stored is not None
    assert stored.get("verified_at") is None

    await svc.store.upsert(sub_id, {"requested_at": utc_now() - timedelta(minutes=9)})
    in_time = await svc.client.get(url, params=params)
    assert in_time.status_code == 200, in_time.text
    assert in_time.text == "late"


async def test_the_granted_lease_is_clamped_to_what_we_asked(svc: Running) -> None:
    sub_id, url = await _requested(svc.store, lease=3600)
    answer = await svc.client.get(
        url,
        params={
            "hub.mode": "subscribe",
            "hub.topic": TOPIC,
            "hub.challenge": "c2",
            "hub.lease_seconds": "999999999",
        },
    )
    assert answer.status_code == 200, answer.text
    stored = await svc.store.get(sub_id)
    assert stored is not None
    assert stored["lease_seconds"] == 3600
    assert stored["lease_expires_at"] < utc_now() + timedelta(seconds=3700)


async def test_pushes_need_the_token_unless_the_subscription_predates_tokens(
    svc: Running,
) -> None:
    sub_id, url = await _requested(svc.store)
    body = WEBSUB_FEED.replace("{n}", "tokened").encode()
    signed = {"X-Hub-Signature": f"sha256={_hex(HUB_SECRET, body)}"}
    untokened = await svc.client.post(f"/webhooks/websub/{sub_id}", content=body, headers=signed)
    assert untokened.status_code == 404
    assert svc.sink.calls == []
    assert (await svc.client.post(url, content=body, headers=signed)).status_code == 200

    # Made before callback tokens: its hub still pushes to the old URL until renewal.
    await svc.store.upsert("legacy-1", {"topic": TOPIC, "secret": HUB_SECRET, "intent": "x"})
    legacy = await svc.client.post("/webhooks/websub/legacy-1", content=body, headers=signed)
    assert legacy.status_code == 200, legacy.text
    refused = await svc.client.get(
        "/webhooks/websub/legacy-1",
        params={"hub.mode": "denied", "hub.topic": TOPIC},
    )
    assert refused.status_code == 404


async def test_subscription_api_pages_and_never_shows_the_callback_token(
    settings: Settings,
) -> None:
    hub = FakeHub()
    async with serving(settings, hub) as client:
        created = await client.post("/v1/websub/subscriptions", json={"topic": SUB_TOPIC})
        assert created.status_code == 202, created.text
        token = hub.requests[0]["hub.callback"].rsplit("/", 1)[-1]
        assert len(token) >= 32
        assert token not in created.text
        assert hub.requests[0]["hub.secret"] not in created.text

        mongo = create_mongo_client(settings, "test-websub-paging")
        store = WebSubStore(service_database(mongo, settings))
        try:
            for n in range(4):
                await store.upsert(f"{n:032x}", {"topic": f"https://feeds.example/{n}"})
        finally:
            await mongo.close()
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
            page = await client.get("/v1/websub/subscriptions", params=params)
            assert page.status_code == 200, page.text
            assert token not in page.text
            body = page.json()
            assert set(body) == {"items", "next_cursor"}
            assert len(body["items"]) <= 2
            seen += [item["id"] for item in body["items"]]
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert pages == 3
        assert len(seen) == 5 == len(set(seen))
        assert seen == sorted(seen)
        one = await client.get(f"/v1/websub/subscriptions/{created.json()['id']}")
        assert token not in one.text
        assert "callback" not in one.json()

        for bad in ({"limit": "201"}, {"limit": "0"}, {"cursor": "not-a-cursor"}):
            refused = await client.get("/v1/websub/subscriptions", params=bad)
            assert refused.status_code == 422, (bad, refused.text)
            assert refused.json()["error"]["code"] in {"invalid_request", "invalid_cursor"}


async def test_subscription_urls_must_not_carry_credentials(settings: Settings) -> None:
    async with serving(settings, FakeHub()) as client:
        for body in (
            {"topic": "https://user:pw@blog.example.de/feed.atom"},
            {"topic": SUB_TOPIC, "hub": "https://user:pw@hub.example.net/"},
        ):
            refused = await client.post("/v1/websub/subscriptions", json=body)
            assert refused.status_code == 422, refused.text


class RecordingHub:
    """Hubs behind one MockTransport: each request's form, by hub URL; answers `status`
    with `body(form)` (a hub quoting our request back)."""

    def __init__(
        self, status: int = 202, body: Callable[[dict[str, str]], str] = lambda form: ""
    ) -> None:
        self.status, self.body = status, body
        self.forms: list[tuple[str, dict[str, str]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        self.forms.append((str(request.url), form))
        return httpx.Response(self.status, text=self.body(form))


@asynccontextmanager
async def websub_store(settings: Settings) -> AsyncIterator[WebSubStore]:
    mongo = create_mongo_client(settings, "test-websub-hubs")
    try:
        yield WebSubStore(service_database(mongo, settings))
    finally:
        await mongo.close()


async def test_a_hub_error_never_passes_on_part_of_the_token_or_the_secret(
    settings: Settings,
) -> None:
    """The token straddles the cut of the quoted error: blanked out first, then cut."""

    def quoting(form: dict[str, str]) -> str:
        token = form["hub.callback"].rsplit("/", 1)[-1]
        said = f"bad request (hub.secret={form['hub.secret']}); callback "
        return said + "." * (185 - len(said)) + token + " is not allowed"

    hub = RecordingHub(400, quoting)
    async with (
        websub_store(settings) as store,
        httpx.AsyncClient(transport=httpx.MockTransport(hub)) as http,
    ):
        with pytest.raises(WebSubError) as refused:
            await subscribe(
                http, store, hub_url=HUB, topic=SUB_TOPIC, public_base_url="https://ingest.example"
            )
        stored = await store.get(subscription_id_for(SUB_TOPIC))
    assert stored is not None
    message = str(refused.value)
    assert "answered 400" in message
    assert stored["callback_token"][:8] not in message
    assert stored["secret"][:8] not in message
    assert "<callback token>" in message


async def test_a_new_hub_gets_a_new_secret_and_callback_token(settings: Settings) -> None:
    """What the old hub knows must not sign pushes or verify intents at the new one."""
    hub = RecordingHub()
    other = "https://other-hub.example.org/"
    async with (
        websub_store(settings) as store,
        httpx.AsyncClient(transport=httpx.MockTransport(hub)) as http,
    ):
        for hub_url in (HUB, HUB, other, other):
            sub_id = await subscribe(
                http, store, hub_url=hub_url, topic=SUB_TOPIC, public_base_url="https://i.example"
            )
        stored = await store.get(sub_id)
    (first_url, first), (_, renewed), (moved_url, moved), (_, again) = hub.forms
    assert (first_url, moved_url) == (HUB, other)
    assert renewed["hub.secret"] == first["hub.secret"]  # a renewal at one hub keeps them
    assert renewed["hub.callback"] == first["hub.callback"]
    assert moved["hub.secret"] != first["hub.secret"]
    assert moved["hub.callback"] != first["hub.callback"]
    assert (again["hub.secret"], again["hub.callback"]) == (
        moved["hub.secret"],
        moved["hub.callback"],
    )
    assert stored is not None
    assert stored["hub"] == other
    assert stored["secret"] == moved["hub.secret"]
    assert moved["hub.callback"].endswith("/" + stored["callback_token"])
    assert not token_matches(stored, first["hub.callback"].rsplit("/", 1)[-1])


# --- Outbound calls go through the guarded client -------------------------------------------


class LocalFeedServer:
    """A feed and a hub on loopback, counting what reaches them."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"

        async def feed(request: Request) -> Response:
            self.hits.append(request.url.path)
            return Response(FEED_DOC, headers={"Link": f'<{self.base}/hub>; rel="hub"'})

        async def big(request: Request) -> Response:
            self.hits.append(request.url.path)
            return Response(
                FEED_DOC + b"<!--" + b"x" * 200_000 + b"-->",
                headers={"Link": f'<{self.base}/hub>; rel="hub"'},
            )

        async def hub(request: Request) -> Response:
            self.hits.append(request.url.path)
            return Response(status_code=202)

        self.app = Starlette(
            routes=[
                Route("/feed", feed),
                Route("/big", big),
                Route("/hub", hub, methods=["POST"]),
            ]
        )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[LocalFeedServer]:
        server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        task = asyncio.create_task(server.serve())
        try:
            for _ in range(200):
                if server.started:
                    break
                await asyncio.sleep(0.025)
            yield self
        finally:
            server.should_exit = True
            await task


FEED_DOC = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Lokal</title><id>tag:lokal,2024:feed</id>
<updated>2024-06-10T08:00:00Z</updated></feed>"""


@asynccontextmanager
async def ingest_api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(settings.model_copy(update={"public_base_url": "https://smm.example/ingest"}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://ingest",
            headers={"Authorization": "Bearer test-admin-token"},
        ) as client,
    ):
        yield client


async def test_ingest_refuses_loopback_unless_allowed(settings: Settings) -> None:
    async with LocalFeedServer().running() as local:
        closed = settings.model_copy(update={"outbound_allowed_networks": []})
        async with ingest_api(closed) as client:
            refused = await client.post(
                "/v1/websub/subscriptions", json={"topic": f"{local.base}/feed"}
            )
        assert refused.status_code == 502, refused.text
        assert local.hits == []

        async with ingest_api(settings) as client:  # loopback allowed (the test settings)
            allowed = await client.post(
                "/v1/websub/subscriptions", json={"topic": f"{local.base}/feed"}
            )
        assert allowed.status_code == 202, allowed.text
        assert local.hits == ["/feed", "/hub"]


async def test_ingest_reads_no_response_larger_than_its_cap(settings: Settings) -> None:
    async with LocalFeedServer().running() as local:
        capped = settings.model_copy(update={"ingest_max_response_bytes": 64 * 1024})
        async with ingest_api(capped) as client:
            refused = await client.post(
                "/v1/websub/subscriptions", json={"topic": f"{local.base}/big"}
            )
        assert refused.status_code == 502, refused.text
        assert local.hits == ["/big"]


async def test_the_tracker_list_pages_like_every_list(settings: Settings) -> None:
    async with ingest(settings) as client:
        for n in range(5):
            tracker = {"id": f"brand-{n}", "name": f"Brand {n}", "query": f"brand{n}"}
            assert (await client.post("/v1/trackers", json=tracker)).status_code == 201
        seen: list[str] = []
        cursor: str | None = None
        for _ in range(10):
            params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
            body = (await client.get("/v1/trackers", params=params)).json()
            assert set(body) == {"items", "next_cursor"}
            seen += [tracker["id"] for tracker in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == [f"brand-{n}" for n in range(5)]
        assert (await client.get("/v1/trackers", params={"limit": "201"})).status_code == 422
        bad = await client.get("/v1/trackers", params={"cursor": "%%%"})
        assert bad.status_code == 422
        assert bad.json()["error"]["code"] == "invalid_cursor"


async def test_a_hub_may_verify_many_subscriptions_at_once(settings: Settings) -> None:
    """WebSub verifications are not rate-limited (the token guards them): a hub renewing
    fifty feeds verifies them in one burst from one address."""
    limited = settings.model_copy(
        update={"ingest_handshake_rate_per_minute": 1.0, "ingest_handshake_burst": 1}
    )
    async with _running(limited, public_base_url="set below") as running:
        paths = []
        for n in range(3):
            await running.store.upsert(
                f"sub-{n}",
                {
                    "topic": TOPIC,
                    "secret": HUB_SECRET,
                    "callback_token": f"token-{n}-" + "A" * 40,
                    "intent": "subscribe",
                    "requested_at": utc_now(),
                },
            )
            paths.append(f"/webhooks/websub/sub-{n}/token-{n}-" + "A" * 40)
        for path in paths:
            answer = await running.client.get(
                path,
                params={"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.challenge": "c"},
            )
            assert answer.status_code == 200, answer.text
