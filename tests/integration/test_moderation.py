"""Moderation on the real broker and database: mentions in, classified mentions, decisions,
alerts and replies out; the review inbox with leases; redelivery changes nothing.

The texts are ones any sensible classifier gets right (a plain complaint, obvious spam, plain
praise); the assertions are about routing, never about exact scores.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.ingest.storage import TrackerStore
from services.moderation.app import build_app
from services.moderation.domain.review import reply_post_id
from services.moderation.storage import REVIEW
from shared.events import Mention
from shared.settings import Settings, TokenGrant
from shared.topics import (
    ALERTS,
    MENTIONS_CLASSIFIED,
    MENTIONS_RAW,
    MODERATION_DECISIONS,
    POSTS_COMMANDS,
    topic_name,
)
from tests.integration.helpers import consume, eventually, produce, running

pytestmark = pytest.mark.integration

ALICE = {"Authorization": "Bearer reviewer-alice-token"}
BOB = {"Authorization": "Bearer reviewer-bob-token-"}
ADMIN = {"Authorization": "Bearer test-admin-token"}

COMPLAINT = (
    "Das ist wirklich schlecht: meine Bestellung kam kaputt an und keiner antwortet. "
    "Sehr enttäuscht!"
)
SPAM = (
    "GRATIS GEWINNEN!!! Klick jetzt http://win-prizes.example/free und "
    "http://bit.example/x gewinnen"
)
PRAISE = "Great coffee, I love it, thanks!"
CRISIS = "Rückruf? In meinem Müsli waren Glassplitter, mein Kind ist verletzt. Schrecklich!"


def mention(native_id: str, text: str, followers: int = 120, lang: str | None = None) -> Mention:
    now = datetime.now(UTC)
    return Mention(
        mention_id=f"x:{native_id}",
        platform="x",
        native_id=native_id,
        url=f"https://x.com/someone/status/{native_id}",
        text=text,
        lang=lang,
        author={"id": f"author-{native_id}", "handle": "kundin", "followers": followers},
        created_at=now - timedelta(minutes=int(native_id) % 50),
        ingested_at=now,
        source="api",
        tracker_ids=["roestwerk"],
    )


@pytest.fixture
def moderation_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "moderation_lease_seconds": 5.0,
            "api_tokens": {
                "reviewer-alice-token": TokenGrant(user="alice", scopes=["review:write"]),
                "reviewer-bob-token-": TokenGrant(user="bob", scopes=["review:write"]),
            },
        }
    )


async def create_tracker(settings: Settings, tracker_id: str) -> None:
    """A tracker as ingest stores it (rules are accepted only for trackers that exist)."""
    db: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri.get_secret_value())
    try:
        tracker = {"id": tracker_id, "name": tracker_id, "query": tracker_id, "group": "g"}
        await TrackerStore(db[settings.mongodb_database]).create(tracker | {"languages": []})
    finally:
        await db.close()


@pytest.fixture
async def client(moderation_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(moderation_settings)
    await create_tracker(moderation_settings, "roestwerk")
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://moderation") as http:
            yield http


async def _send(settings: Settings, mentions: list[Mention]) -> None:
    await produce(
        settings.kafka_bootstrap_servers,
        topic_name(MENTIONS_RAW, settings),
        [(m.mention_id.encode(), m.to_bytes()) for m in mentions],
    )


async def _classified(client: httpx.AsyncClient, mention_id: str) -> dict[str, Any]:
    response = await eventually(
        lambda: client.get(f"/v1/mentions/{mention_id}", headers=ADMIN),
        lambda r: r.status_code == 200,
        timeout=45,
    )
    body: dict[str, Any] = response.json()
    return body


async def _records(settings: Settings, topic: str, count: int) -> list[dict[str, Any]]:
    records = await consume(settings.kafka_bootstrap_servers, topic_name(topic, settings), count)
    return [json.loads(record.value) for record in records]


async def test_mentions_are_routed_and_redelivery_changes_nothing(
    moderation_settings: Settings, client: httpx.AsyncClient
) -> None:
    settings = moderation_settings
    # Hide whatever the classifiers label spam (≥ 0.5), so the test holds for any of them.
    rules = {"thresholds": {"spam_hide": 0.5, "spam_review": 0.5}}
    assert (await client.put("/v1/rules/roestwerk", json=rules, headers=ADMIN)).status_code == 200
    batch = [
        mention("1", COMPLAINT, lang="de"),
        mention("2", SPAM, lang="de"),
        mention("3", PRAISE, lang="en"),
        mention("4", CRISIS, followers=80_000, lang="de"),
    ]
    await _send(settings, batch)
    routed = {m.mention_id: await _classified(client, m.mention_id) for m in batch}
    assert routed["x:1"]["action"] == "review"
    assert routed["x:1"]["classification"]["sentiment"] == "negative"
    assert routed["x:2"]["action"] == "hide"
    assert routed["x:3"]["action"] == "approve"
    assert routed["x:4"]["action"] == "review"
    assert routed["x:4"]["priority"] == "urgent"
    assert routed["x:4"]["review"]["status"] == "open"

    classified = await _records(settings, MENTIONS_CLASSIFIED, 4)
    assert {event["mention_id"]: event["action"] for event in classified} == {
        "x:1": "review",
        "x:2": "hide",
        "x:3": "approve",
        "x:4": "review",
    }
    decisions = await _records(settings, MODERATION_DECISIONS, 2)
    assert sorted((d["mention_id"], d["action"], d["actor"]) for d in decisions) == [
        ("x:2", "hide", "auto"),
        ("x:3", "approve", "auto"),
    ]
    alerts = await _records(settings, ALERTS, 1)
    assert alerts[0]["kind"] == "urgent_mention"
    assert alerts[0]["mention_id"] == "x:4"
    assert alerts[0]["tracker_id"] == "roestwerk"

    queue = (await client.get("/v1/review", headers=ADMIN)).json()["items"]
    assert [item["mention_id"] for item in queue] == ["x:4", "x:1"]  # urgent before normal
    first_page = (await client.get("/v1/review?limit=1", headers=ADMIN)).json()
    assert [item["mention_id"] for item in first_page["items"]] == ["x:4"]
    second_page = (
        await client.get(
            "/v1/review", params={"limit": 1, "cursor": first_page["next_cursor"]}, headers=ADMIN
        )
    ).json()
    assert [item["mention_id"] for item in second_page["items"]] == ["x:1"]
    assert second_page["next_cursor"] is None
    urgent = (
        await client.get("/v1/review?priority=urgent&platform=x&language=de", headers=ADMIN)
    ).json()
    assert [item["mention_id"] for item in urgent["items"]] == ["x:4"]
    assert (await client.get("/v1/review?tracker_id=other", headers=ADMIN)).json()["items"] == []

    # Redelivery: the same four again, then one new mention as a marker that all were consumed.
    await _send(settings, [*batch, mention("5", COMPLAINT, lang="de")])
    await _classified(client, "x:5")
    again = await _records(settings, MENTIONS_CLASSIFIED, 9)
    first_ids = {e["mention_id"]: e["event_id"] for e in classified}
    for event in again:  # republished events are the stored ones: same id, same content
        if event["mention_id"] in first_ids:
            assert event["event_id"] == first_ids[event["mention_id"]]
    db: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri.get_secret_value())
    try:
        items = await db[settings.mongodb_database][REVIEW].distinct("_id")
    finally:
        await db.close()
    assert sorted(items) == ["x:1", "x:4", "x:5"]
    decisions_again = await _records(settings, MODERATION_DECISIONS, 4)
    assert {d["event_id"] for d in decisions_again} == {d["event_id"] for d in decisions}


async def test_claims_leases_decisions_and_replies(
    moderation_settings: Settings, client: httpx.AsyncClient
) -> None:
    settings = moderation_settings
    await _send(settings, [mention("11", COMPLAINT, lang="de"), mention("12", COMPLAINT)])
    await _classified(client, "x:11")
    await _classified(client, "x:12")

    # Two reviewers race for one item: exactly one wins, the other learns who holds it.
    first, second = await asyncio.gather(
        client.post("/v1/review/x:11/claim", headers=ALICE),
        client.post("/v1/review/x:11/claim", headers=BOB),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    winner, loser = (ALICE, BOB) if first.status_code == 200 else (BOB, ALICE)
    lost = second if first.status_code == 200 else first
    assert lost.json()["error"]["code"] == "claimed_by_other"

    reply = {"action": "reply", "reason": "apologise", "reply": {"text": "Sorry!"}}
    refused = await client.post("/v1/review/x:11/decision", json=reply, headers=loser)
    assert refused.status_code == 409
    no_channel = await client.post("/v1/review/x:11/decision", json=reply, headers=winner)
    assert no_channel.status_code == 422
    assert no_channel.json()["error"]["code"] == "no_reply_channel"

    # Canned reply in German, channel from the tracker's rules.
    rules = {"brand": "Röstwerk", "reply_channels": {"x": "roestwerk-x"}}
    assert (await client.put("/v1/rules/roestwerk", json=rules, headers=ADMIN)).status_code == 200
    canned = {
        "id": "entschuldigung",
        "language": "de",
        "title": "Entschuldigung",
        "text": "Hallo {author}, das tut uns leid. Wir melden uns per DM. Ihr {brand}-Team",
    }
    created = await client.post("/v1/canned-replies", json=canned, headers=ADMIN)
    assert created.status_code == 201, created.text
    decision = {
        "action": "reply",
        "reason": "Ware beschädigt",
        "reply": {"canned_reply_id": "entschuldigung"},
    }
    done = await client.post("/v1/review/x:11/decision", json=decision, headers=winner)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "done"
    retried = await client.post("/v1/review/x:11/decision", json=decision, headers=winner)
    assert retried.status_code == 200  # a retried request is answered, nothing new happens
    commands = await _records(settings, POSTS_COMMANDS, 2)
    assert len(commands) == 2
    assert {c["post_id"] for c in commands} == {reply_post_id("x:11")}
    assert len({c["event_id"] for c in commands}) == 1
    command = commands[0]
    assert command["command"] == "schedule"
    assert command["in_reply_to_mention_id"] == "x:11"
    assert command["channel_id"] == "roestwerk-x"
    assert (
        command["text"]
        == "Hallo kundin, das tut uns leid. Wir melden uns per DM. Ihr Röstwerk-Team"
    )
    replies = [
        d for d in await _records(settings, MODERATION_DECISIONS, 2) if d["action"] == "reply"
    ]
    assert replies[0]["reply_post_id"] == reply_post_id("x:11")
    assert replies[0]["actor"] in ("alice", "bob")

    # Lease expiry: a claim abandoned for longer than the lease can be taken over.
    assert (await client.post("/v1/review/x:12/claim", headers=ALICE)).status_code == 200
    assert (await client.post("/v1/review/x:12/claim", headers=BOB)).status_code == 409
    await asyncio.sleep(settings.moderation_lease_seconds + 0.5)
    assert (await client.post("/v1/review/x:12/claim", headers=BOB)).status_code == 200
    expired = await client.post(
        "/v1/review/x:12/decision", json={"action": "hide", "reason": "x"}, headers=ALICE
    )
    assert expired.status_code == 409
    escalate = {"action": "escalate", "reason": "legal should look"}
    escalated, double_click = await asyncio.gather(  # the same request twice at once
        client.post("/v1/review/x:12/decision", json=escalate, headers=BOB),
        client.post("/v1/review/x:12/decision", json=escalate, headers=BOB),
    )
    assert (escalated.status_code, double_click.status_code) == (200, 200), double_click.text
    assert escalated.json()["status"] == "escalated"
    assert escalated.json()["priority"] in ("high", "urgent")

    decided = await consume(
        settings.kafka_bootstrap_servers,
        topic_name(MODERATION_DECISIONS, settings),
        count=4,
        timeout=5,
    )  # the reply, its retry (the same event again) and one escalation: never a fourth
    assert sorted(json.loads(r.value)["action"] for r in decided) == ["escalate", "reply", "reply"]

    audit = (await client.get("/v1/review/x:11/audit", headers=ADMIN)).json()["entries"]
    assert [entry["action"] for entry in audit] == ["review", "claim", "reply"]
    assert audit[-1]["reason"] == "Ware beschädigt"
    assert audit[-1]["actor"] in ("alice", "bob")


async def test_inbox_rejects_bad_input_clearly(client: httpx.AsyncClient) -> None:
    cases: list[tuple[str, str, dict[str, Any] | None, int]] = [
        ("GET", "/v1/review?priority=extreme", None, 422),
        ("GET", "/v1/review?status=deleted", None, 422),
        ("GET", "/v1/review?tracker_id=$ne", None, 422),
        ("GET", "/v1/review?cursor=not-a-cursor", None, 422),
        ("GET", "/v1/review?limit=0", None, 422),
        ("GET", "/v1/mentions/$where", None, 422),
        ("POST", "/v1/review/x:404/claim", None, 404),
        ("POST", "/v1/review/x:1/decision", {"action": "delete", "reason": "x"}, 422),
        ("POST", "/v1/review/x:1/decision", {"action": "hide", "reason": " "}, 422),
        ("POST", "/v1/review/x:1/decision", {"action": "reply", "reason": "r"}, 422),
        ("PUT", "/v1/rules/roestwerk", {"patterns": [{"pattern": r"(a)\1"}]}, 422),
        ("PUT", "/v1/rules/roestwerk", {"patterns": [{"pattern": "([a-z"}]}, 422),
        ("PUT", "/v1/rules/roestwerk", {"block_word": ["x"]}, 422),
        (
            "POST",
            "/v1/canned-replies",
            {"id": "a", "language": "de", "title": "t", "text": "Hi {nme}"},
            422,
        ),
        ("POST", "/v1/classify", {"items": []}, 422),
    ]
    for method, url, body, status in cases:
        response = await client.request(method, url, json=body, headers=ADMIN)
        assert response.status_code == status, (method, url, response.text)
        error = response.json()["error"]
        assert error["code"], (method, url, error)
        assert error["message"], (method, url, error)
    unauthorised = await client.post("/v1/review/x:1/claim")
    assert unauthorised.status_code == 401
    lookahead = await client.put(
        "/v1/rules/roestwerk", json={"patterns": [{"pattern": "a(?=b)"}]}, headers=ADMIN
    )
    assert "RE2" in lookahead.json()["error"]["message"]
    classified = await client.post(
        "/v1/classify",
        json={"items": [{"text": PRAISE, "lang": "en"}, {"text": SPAM}]},
        headers=ADMIN,
    )
    assert classified.status_code == 200
    results = classified.json()["results"]
    assert len(results) == 2
    assert results[0]["sentiment"] == "positive"
    assert "spam" in results[1]["labels"]


async def test_mention_ids_with_slashes_work_in_every_route(
    moderation_settings: Settings, client: httpx.AsyncClient
) -> None:
    """Mastodon and feed mentions are keyed by their URI, so their ids contain slashes."""
    uri = "https://social.example.de/users/jana/statuses/4711"
    now = datetime.now(UTC)
    toot = Mention(
        mention_id=f"mastodon:{uri}",
        platform="mastodon",
        native_id=uri,
        url="https://social.example.de/@jana/4711",
        text=COMPLAINT,
        lang="de",
        author={"id": "jana@social.example.de", "followers": 80},
        created_at=now - timedelta(minutes=2),
        ingested_at=now,
        source="webhook",
        tracker_ids=["roestwerk"],
    )
    await _send(moderation_settings, [toot])
    await _classified(client, toot.mention_id)
    claim = await client.post(f"/v1/review/{toot.mention_id}/claim", headers=ALICE)
    assert claim.status_code == 200, claim.text
    assert claim.json()["mention_id"] == toot.mention_id
    decided = await client.post(
        f"/v1/review/{toot.mention_id}/decision",
        json={"action": "escalate", "reason": "needs the delivery team"},
        headers=ALICE,
    )
    assert decided.status_code == 200, decided.text
    audit = await client.get(f"/v1/review/{toot.mention_id}/audit", headers=ADMIN)
    assert [entry["action"] for entry in audit.json()["entries"]][-1] == "escalate"
