"""Issue 16 (ingest), pure rules: which CRC tokens are signed, which proxies are believed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from pydantic import ValidationError

from services.ingest.domain.handshakes import crc_token_problem
from services.ingest.sources.engagement import EngagementFetcher
from services.ingest.sources.meta import map_meta_delivery
from services.ingest.sources.websub import judge_intent, new_callback_token, token_matches
from shared import run
from shared.settings import Settings


@pytest.mark.parametrize(
    "token",
    ["a1b2c3d4-crc-token", "Kc4d5OFTbX_1ZlS9b-0tQm+W/1w=", "A" * 255, "abc123"],
)
def test_x_shaped_crc_tokens_are_signed(token: str) -> None:
    assert crc_token_problem(token) is None


@pytest.mark.parametrize(
    "token",
    [
        json.dumps({"tweet_create_events": []}),
        "{}",
        "[]",
        "123",
        "-1",
        "1e5",
        "true",
        "null",
        "",
        "A" * 256,
        "a b",
        "a\nb",
        "tok\u00e9n",
    ],
)
def test_anything_that_could_be_a_delivery_is_refused(token: str) -> None:
    assert crc_token_problem(token)


NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TOKEN = "T" * 43
ASKED: dict[str, Any] = {
    "topic": "https://blog.example/feed",
    "callback_token": TOKEN,
    "intent": "subscribe",
    "requested_at": NOW - timedelta(minutes=1),
    "requested_lease_seconds": 86400,
}
VERIFY = {
    "hub.mode": "subscribe",
    "hub.topic": "https://blog.example/feed",
    "hub.challenge": "abc",
    "hub.lease_seconds": "86400",
}


def test_intent_is_confirmed_for_our_token_mode_and_window() -> None:
    answer = judge_intent(ASKED, TOKEN, VERIFY, NOW)
    assert (answer.status, answer.body) == (200, "abc")
    assert answer.fields["lease_seconds"] == 86400


@pytest.mark.parametrize(
    ("subscription", "token", "params"),
    [
        (None, TOKEN, VERIFY),
        (ASKED, None, VERIFY),
        (ASKED, "U" * 43, VERIFY),
        ({**ASKED, "callback_token": None}, TOKEN, VERIFY),
        (ASKED, TOKEN, VERIFY | {"hub.mode": "unsubscribe"}),
        (ASKED, TOKEN, VERIFY | {"hub.topic": "https://evil.example/"}),
        ({**ASKED, "requested_at": NOW - timedelta(minutes=11)}, TOKEN, VERIFY),
        ({**ASKED, "requested_at": NOW + timedelta(minutes=5)}, TOKEN, VERIFY),
        ({**ASKED, "requested_at": None}, TOKEN, VERIFY),
        ({**ASKED, "intent": "unsubscribe"}, TOKEN, {**VERIFY, "hub.mode": "denied"}),
    ],
)
def test_anything_else_is_404_and_changes_nothing(
    subscription: dict[str, Any] | None, token: str | None, params: dict[str, str]
) -> None:
    answer = judge_intent(subscription, token, params, NOW)
    assert answer.status == 404
    assert answer.fields == {}


def test_granted_lease_is_never_longer_than_asked_and_defaults_to_it() -> None:
    longer = judge_intent(ASKED, TOKEN, VERIFY | {"hub.lease_seconds": "99999999"}, NOW)
    assert longer.fields["lease_seconds"] == 86400
    shorter = judge_intent(ASKED, TOKEN, VERIFY | {"hub.lease_seconds": "600"}, NOW)
    assert shorter.fields["lease_seconds"] == 600
    unnamed = judge_intent(ASKED, TOKEN, {k: v for k, v in VERIFY.items() if "lease" not in k}, NOW)
    assert unnamed.fields["lease_expires_at"] == NOW + timedelta(seconds=86400)


def test_the_hub_may_deny_with_the_token() -> None:
    denied = judge_intent(
        ASKED,
        TOKEN,
        {"hub.mode": "denied", "hub.topic": VERIFY["hub.topic"], "hub.reason": "no"},
        NOW,
    )
    assert denied.status == 200
    assert denied.fields["state"] == "denied"


def test_callback_tokens_are_long_and_compared_whole() -> None:
    token = new_callback_token()
    assert len(token) >= 43
    assert token_matches({"callback_token": token}, token)
    assert not token_matches({"callback_token": token}, token[:-1])
    assert not token_matches({}, token)


async def test_engagement_status_id_never_becomes_a_path_of_its_own() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(200, json={"favourites_count": 1})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        post = {
            "platform": "mastodon",
            "url": "https://social.example/@us/1",
            "native_post_id": "../../admin/accounts?x=1",
        }
        await EngagementFetcher(http).fetch(post)
    assert seen == ["/api/v1/statuses/..%2F..%2Fadmin%2Faccounts%3Fx%3D1"]


@pytest.mark.parametrize(
    ("value", "entry_id"),
    [
        ({"media_id": "1789){id}&x=(", "comment_id": None}, "1784"),
        ({"media_id": "1789", "comment_id": "../../me"}, "1784"),
        ({"media_id": "1789"}, "1784/accounts?"),
    ],
)
def test_instagram_lookup_ids_must_be_graph_ids(value: dict[str, Any], entry_id: str) -> None:
    """They become the path and field expression of a Graph API call with our token."""
    delivery = {
        "object": "instagram",
        "entry": [
            {
                "id": entry_id,
                "time": 1718003460,
                "changes": [{"field": "mentions", "value": value}],
            }
        ],
    }
    mapped = map_meta_delivery(delivery)
    assert mapped.lookups == []
    assert mapped.items == []
    assert len(mapped.rejected) == 1
    assert "Graph API id" in mapped.rejected[0].reason


# --- Behind an ingress: the client is the address the trusted proxy saw ----------------------


async def _client_seen(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, peer: str, forwarded_for: str
) -> str:
    """The client address an app started by `run_service` sees for a request from `peer`
    carrying `X-Forwarded-For: forwarded_for` (uvicorn's own middleware, no socket)."""
    started: dict[str, Any] = {}

    def fake_run(app: FastAPI, **options: Any) -> None:
        started.update(app=app, options=options)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.setattr(run, "Settings", lambda: settings)
    monkeypatch.setattr(run, "configure_logging", lambda *args: None)
    monkeypatch.setattr(run, "tune_garbage_collector", lambda: None)
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    app = FastAPI()

    @app.get("/who")
    async def who(request: Request) -> dict[str, str | None]:
        return {"client": request.client.host if request.client else None}

    run.run_service("ingest", lambda _settings: app)
    config = uvicorn.Config(started["app"], **started["options"])
    config.load()
    transport = httpx.ASGITransport(app=config.loaded_app, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        answer = await client.get("/who", headers={"X-Forwarded-For": forwarded_for})
    client_host: str = answer.json()["client"]
    return client_host


async def test_the_client_behind_a_trusted_proxy_is_the_forwarded_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Else every client behind the ingress is the ingress (one handshake rate limit)."""
    behind = Settings(trusted_proxies=["10.20.0.0/16"])
    seen = await _client_seen(monkeypatch, behind, "10.20.3.4", "198.51.100.7, 203.0.113.9")
    assert seen == "203.0.113.9"  # the address the proxy saw, not what the client claimed


async def test_forwarding_headers_are_believed_only_from_loopback_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert await _client_seen(monkeypatch, Settings(), "10.20.3.4", "203.0.113.9") == "10.20.3.4"
    assert await _client_seen(monkeypatch, Settings(), "127.0.0.1", "203.0.113.9") == "203.0.113.9"
    behind = Settings(trusted_proxies=["10.20.0.0/16"])
    assert await _client_seen(monkeypatch, behind, "10.30.0.1", "203.0.113.9") == "10.30.0.1"


def test_trusted_proxies_are_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMM_TRUSTED_PROXIES", '["10.20.0.1/16", "fd00::1", "192.0.2.10"]')
    assert Settings().trusted_proxies == ["10.20.0.0/16", "fd00::1/128", "192.0.2.10/32"]
    assert Settings(trusted_proxies=[]).trusted_proxies == []
    for bad in ("*", "ingress.internal", "10.0.0.0/33"):
        with pytest.raises(ValidationError, match="trusted_proxies"):
            Settings(trusted_proxies=[bad])
