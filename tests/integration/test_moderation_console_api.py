"""Moderation's API for the console on the real broker and database: console users (a signed
`X-SMM-Actor` through a token with `act_as`) see and act on their brands only and are named
in claims, decisions, audit trails and replies; the mentions list filters, searches and pages;
the inbox tabs count on the server; corrections are stored, audited and published once;
canned replies render for a mention and an unfilled placeholder blocks the reply."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from services.moderation.app import build_app
from shared.auth import Actor, Role, sign_actor
from shared.events import Author, Mention
from shared.settings import Settings, TokenGrant
from shared.topics import MODERATION_CORRECTIONS, POSTS_COMMANDS, topic_name
from tests.integration.helpers import consume, eventually, running
from tests.integration.test_moderation import (
    ADMIN,
    COMPLAINT,
    CRISIS,
    PRAISE,
    _send,
    create_tracker,
    mention,
)

pytestmark = pytest.mark.integration

SIGNING_KEY = "a-signing-key-of-the-tests-that-is-long-enough"
CONSOLE_TOKEN = "console-service-token-of-the-tests"
RITA = "rita@example.com"
PAUL = "paul@example.com"


def as_user(user: str, role: Role, brands: set[str]) -> dict[str, str]:
    """The headers the console sends when `user` acts."""
    actor = Actor(user=user, role=role, brands=frozenset(brands))
    return {
        "Authorization": f"Bearer {CONSOLE_TOKEN}",
        "X-SMM-Actor": sign_actor(actor, SIGNING_KEY),
    }


def of(native_id: str, text: str, tracker: str, **changes: Any) -> Mention:
    return mention(native_id, text, lang="de").model_copy(
        update={"tracker_ids": [tracker], **changes}
    )


@pytest.fixture
def console_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "moderation_lease_seconds": 30.0,
            "actor_signing_key": SecretStr(SIGNING_KEY),
            "api_tokens": {
                CONSOLE_TOKEN: TokenGrant(
                    user="console",
                    scopes=["read", "review:write", "rules:write", "act_as"],
                )
            },
        }
    )


@pytest.fixture
async def client(console_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(console_settings)
    for tracker in ("t1", "t2"):
        await create_tracker(console_settings, tracker)
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://moderation") as http:
            yield http


async def _stored(client: httpx.AsyncClient, *mention_ids: str) -> None:
    for mention_id in mention_ids:
        await eventually(
            lambda m=mention_id: client.get(f"/v1/mentions/{m}", headers=ADMIN),  # type: ignore[misc]
            lambda r: r.status_code == 200,
            timeout=45,
        )


def _ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["mention_id"] for item in response.json()["items"]]


async def test_a_console_user_sees_and_acts_on_their_brands_only(
    console_settings: Settings, client: httpx.AsyncClient
) -> None:
    await _send(console_settings, [of("1", COMPLAINT, "t1"), of("2", COMPLAINT, "t2")])
    await _stored(client, "x:1", "x:2")
    rita = as_user(RITA, "reviewer", {"t1"})
    paul = as_user(PAUL, "reviewer", {"t1", "t2"})
    vera = as_user("vera@example.com", "viewer", {"t1"})

    assert _ids(await client.get("/v1/review?status=waiting", headers=rita)) == ["x:1"]
    assert set(_ids(await client.get("/v1/review?status=waiting", headers=paul))) == {
        "x:1",
        "x:2",
    }
    assert _ids(await client.get("/v1/review?tracker_id=t2&status=all", headers=rita)) == []
    assert _ids(await client.get("/v1/mentions", headers=rita)) == ["x:1"]
    assert _ids(await client.get("/v1/mentions?tracker_id=t2", headers=rita)) == []
    other_brand = [
        ("GET", "/v1/mentions/x:2", None),
        ("GET", "/v1/review/x:2/audit", None),
        ("POST", "/v1/review/x:2/claim", None),
        ("DELETE", "/v1/review/x:2/claim", None),
        ("POST", "/v1/review/x:2/decision", {"action": "hide", "reason": "spam"}),
        ("POST", "/v1/review/x:2/correction", {"sentiment": "positive"}),
        ("GET", "/v1/rules/t2", None),
    ]
    for method, url, body in other_brand:
        response = await client.request(method, url, json=body, headers=rita)
        assert response.status_code == 404, (method, url, response.text)
        assert response.json()["error"]["code"] in ("not_found", "unknown_tracker")

    # A viewer reads but may not claim, decide or correct.
    assert (await client.get("/v1/review/x:1/audit", headers=vera)).status_code == 200
    for url, body in (
        ("/v1/review/x:1/claim", None),
        ("/v1/review/x:1/decision", {"action": "hide", "reason": "spam"}),
        ("/v1/review/x:1/correction", {"sentiment": "positive"}),
    ):
        refused = await client.post(url, json=body, headers=vera)
        assert refused.status_code == 403, (url, refused.text)

    claimed = await client.post("/v1/review/x:1/claim", headers=rita)
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["lease_owner"] == RITA
    assert claimed.json()["tracker_ids"] == ["t1"]
    taken = await client.post("/v1/review/x:1/claim", headers=paul)
    assert taken.status_code == 409, taken.text
    assert taken.json()["error"]["code"] == "claimed_by_other"
    assert taken.json()["error"]["details"]["lease_owner"] == RITA
    assert RITA in taken.json()["error"]["message"]

    counts = await client.get("/v1/review/counts", headers=rita)
    assert counts.json() == {"mine": 1, "unclaimed": 0, "all": 1}, counts.text
    assert (await client.get("/v1/review/counts", headers=paul)).json() == {
        "mine": 0,
        "unclaimed": 1,
        "all": 2,
    }
    assert (await client.get("/v1/review/counts?tracker_id=t2", headers=rita)).json() == {
        "mine": 0,
        "unclaimed": 0,
        "all": 0,
    }
    assert _ids(await client.get("/v1/review?status=mine", headers=rita)) == ["x:1"]
    assert _ids(await client.get("/v1/review?status=mine", headers=paul)) == []
    assert _ids(await client.get("/v1/review?status=open", headers=paul)) == ["x:2"]

    reply = {
        "action": "reply",
        "reason": "answered",
        "reply": {"text": "Das tut uns leid, wir melden uns.", "channel_id": "t1-x"},
    }
    # A console user may answer only from their brands' reply channels (tracker rules).
    refused = await client.post("/v1/review/x:1/decision", json=reply, headers=rita)
    assert refused.status_code == 404, refused.text
    rules = {"brand": "Röstwerk", "reply_channels": {"x": "t1-x"}}
    assert (await client.put("/v1/rules/t1", json=rules, headers=ADMIN)).status_code == 200
    other = {"brand": "Bohnenblitz", "reply_channels": {"x": "t2-x"}}
    assert (await client.put("/v1/rules/t2", json=other, headers=ADMIN)).status_code == 200
    foreign = {**reply, "reply": {**reply["reply"], "channel_id": "t2-x"}}  # type: ignore[dict-item]
    wrong = await client.post("/v1/review/x:1/decision", json=foreign, headers=rita)
    assert wrong.status_code == 404, wrong.text
    decided = await client.post("/v1/review/x:1/decision", json=reply, headers=rita)
    assert decided.status_code == 200, decided.text
    assert decided.json()["decision"]["actor"] == RITA
    commands = await consume(
        console_settings.kafka_bootstrap_servers, topic_name(POSTS_COMMANDS, console_settings), 1
    )
    assert json.loads(commands[0].value)["actor"] == RITA
    audit = (await client.get("/v1/review/x:1/audit", headers=rita)).json()["entries"]
    assert [(e["action"], e["actor"]) for e in audit] == [
        ("review", "auto"),
        ("claim", RITA),
        ("reply", RITA),
    ]

    # Rules and canned replies of another brand are not there for her.
    for tracker in ("t1", "t2"):
        saved = await client.put(f"/v1/rules/{tracker}", json={"brand": tracker}, headers=ADMIN)
        assert saved.status_code == 200, saved.text
    rules = (await client.get("/v1/rules", headers=rita)).json()
    assert [item["tracker_id"] for item in rules["items"]] == ["t1"]
    replies: list[dict[str, Any]] = [
        {"id": "for-t2", "language": "de", "title": "t2", "text": "Hallo", "tracker_ids": ["t2"]},
        {"id": "for-all", "language": "de", "title": "all", "text": "Hallo {author}"},
    ]
    for canned in replies:
        created = await client.post("/v1/canned-replies", json=canned, headers=ADMIN)
        assert created.status_code == 201, created.text
    listed = (await client.get("/v1/canned-replies", headers=rita)).json()["canned_replies"]
    assert [reply["id"] for reply in listed] == ["for-all"]
    assert (await client.get("/v1/canned-replies/for-t2", headers=rita)).status_code == 404
    manager = as_user("mia@example.com", "manager", {"t1"})
    everybody = {"id": "mine-all", "language": "de", "title": "x", "text": "Hallo"}
    assert (
        await client.post("/v1/canned-replies", json=everybody, headers=manager)
    ).status_code == 403
    theirs = everybody | {"tracker_ids": ["t2"]}
    assert (
        await client.post("/v1/canned-replies", json=theirs, headers=manager)
    ).status_code == 404
    assert (await client.delete("/v1/canned-replies/for-t2", headers=manager)).status_code == 404
    ours = everybody | {"id": "mine-t1", "tracker_ids": ["t1"]}
    assert (await client.post("/v1/canned-replies", json=ours, headers=manager)).status_code == 201
    assert (await client.put("/v1/rules/t2", json={}, headers=manager)).status_code == 404
    assert (await client.delete("/v1/rules/t2", headers=manager)).status_code == 404
    assert (await client.put("/v1/rules/t1", json={}, headers=manager)).json()["updated_by"] == (
        "mia@example.com"
    )
    assert (await client.put("/v1/rules/t1", json={}, headers=rita)).status_code == 403


async def test_the_mentions_list_filters_searches_and_pages(
    console_settings: Settings, client: httpx.AsyncClient
) -> None:
    batch = [
        of("11", COMPLAINT, "t1"),  # created 11 minutes ago
        of("12", CRISIS, "t1", lang="de"),  # 12
        of("13", PRAISE, "t1", lang="en"),  # 13
        of("14", "Grüße aus Köln, die Bestellung kam heute an.", "t1"),  # 14
        of("15", COMPLAINT, "t2"),  # 15: another brand
    ]
    await _send(console_settings, batch)
    await _stored(client, *(m.mention_id for m in batch))
    rita = as_user(RITA, "reviewer", {"t1"})

    first = await client.get("/v1/mentions?limit=3", headers=rita)
    assert _ids(first) == ["x:11", "x:12", "x:13"]
    page = first.json()
    item = page["items"][0]
    assert item["url"] == "https://x.com/someone/status/11"
    assert item["classification"]["sentiment"] == "negative"
    assert item["action"] == "review"
    assert item["priority"] in ("normal", "high", "urgent")
    assert item["review"]["status"] == "open"
    second = await client.get(
        "/v1/mentions", params={"limit": 3, "cursor": page["next_cursor"]}, headers=rita
    )
    assert _ids(second) == ["x:14"]
    assert second.json()["next_cursor"] is None

    def found(**params: str) -> Any:
        return client.get("/v1/mentions", params=params, headers=rita)

    assert _ids(await found(q="glassplitter")) == ["x:12"]
    assert _ids(await found(q="BESTELLUNG kaputt")) == ["x:11"]
    assert set(_ids(await found(q="bestellung"))) == {"x:11", "x:14"}
    assert _ids(await found(q="GRÜSSE")) == ["x:14"]
    assert _ids(await found(q="nirgendwo")) == []
    assert _ids(await found(language="en")) == ["x:13"]
    assert _ids(await found(sentiment="positive", intent="praise")) == ["x:13"]
    assert _ids(await found(platform="mastodon")) == []
    assert "x:13" not in _ids(await found(action="review"))
    complaint = (await client.get("/v1/mentions/x:11", headers=ADMIN)).json()
    assert _ids(await found(priority=complaint["priority"], q="kaputt")) == ["x:11"]
    created = complaint["created_at"]
    assert _ids(await found(to=created)) == ["x:12", "x:13", "x:14"]
    assert _ids(await found(**{"from": created})) == ["x:11"]
    labelled = await found(label="shouting")
    assert all("shouting" in i["classification"]["labels"] for i in labelled.json()["items"])
    admin = await client.get("/v1/mentions?tracker_id=t2", headers=ADMIN)
    assert _ids(admin) == ["x:15"]

    for params in (
        {"sentiment": "angry"},
        {"platform": "myspace"},
        {"label": "$gt"},
        {"tracker_id": "$ne"},
        {"q": "!!"},
        {"q": "x" * 201},
        {"from": "2026-01-01T00:00:00"},
        {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        {"cursor": "not-a-cursor"},
        {"limit": "201"},
    ):
        refused = await client.get("/v1/mentions", params=params, headers=rita)
        assert refused.status_code == 422, (params, refused.text)
        assert refused.json()["error"]["message"]


async def test_corrections_are_stored_audited_and_published_once(
    console_settings: Settings, client: httpx.AsyncClient
) -> None:
    await _send(console_settings, [of("21", COMPLAINT, "t1")])
    await _stored(client, "x:21")
    rita = as_user(RITA, "reviewer", {"t1"})
    paul = as_user(PAUL, "reviewer", {"t1"})
    url = "/v1/review/x:21/correction"

    for body in (
        {},
        {"note": "only a note"},
        {"sentiment": "angry"},
        {"labels": ["$gt"]},
        {"intent": "complaint", "colour": "red"},
    ):
        refused = await client.post(url, json=body, headers=rita)
        assert refused.status_code == 422, (body, refused.text)

    assert (await client.post("/v1/review/x:21/claim", headers=paul)).status_code == 200
    held = await client.post(url, json={"sentiment": "positive"}, headers=rita)
    assert held.status_code == 409, held.text
    assert held.json()["error"]["details"]["lease_owner"] == PAUL
    assert (await client.delete("/v1/review/x:21/claim", headers=paul)).status_code == 200

    correction = {"sentiment": "positive", "labels": ["irony", "irony"], "note": "Ironie"}
    first = await client.post(url, json=correction, headers=rita)
    assert first.status_code == 200, first.text
    stored = first.json()["correction"]
    assert stored["actor"] == RITA
    assert stored["sentiment"] == "positive"
    assert stored["labels"] == ["irony"]
    assert stored["intent"] is None
    assert stored["original"]["sentiment"] == "negative"
    assert stored["model_version"]
    again = await client.post(url, json=correction, headers=rita)
    assert again.status_code == 200
    assert again.json()["correction"] == stored  # nothing changed

    more = await client.post(url, json={"intent": "question"}, headers=rita)
    assert more.status_code == 200, more.text
    assert more.json()["correction"]["sentiment"] == "positive"  # kept
    assert more.json()["correction"]["intent"] == "question"

    records = await consume(
        console_settings.kafka_bootstrap_servers,
        topic_name(MODERATION_CORRECTIONS, console_settings),
        count=3,
        timeout=8,
    )
    events = [json.loads(record.value) for record in records]
    assert len(events) == 2  # the repeated correction published nothing
    assert {record.key for record in records} == {b"x:21"}
    assert events[0]["sentiment"] == "positive"
    assert events[0]["intent"] is None
    assert events[1]["intent"] == "question"
    assert events[1]["sentiment"] == "positive"
    for event in events:
        assert event["actor"] == RITA
        assert event["tracker_ids"] == ["t1"]
        assert event["original_sentiment"] == "negative"
        assert event["model_version"] == stored["model_version"]
        assert event["corrected_at"]

    audit = (await client.get("/v1/review/x:21/audit", headers=rita)).json()["entries"]
    corrections = [e for e in audit if e["action"] == "correct"]
    assert [(e["actor"], e["reason"]) for e in corrections] == [(RITA, "Ironie"), (RITA, "Ironie")]
    assert corrections[0]["details"]["corrected"] == {"sentiment": "positive", "labels": ["irony"]}
    queue = (await client.get("/v1/review?status=all", headers=rita)).json()["items"]
    assert queue[0]["correction"]["intent"] == "question"
    listed = (await client.get("/v1/mentions", headers=rita)).json()["items"]
    assert listed[0]["review"]["correction"]["actor"] == RITA


async def test_canned_replies_render_for_a_mention_and_unfilled_ones_block_the_reply(
    console_settings: Settings, client: httpx.AsyncClient
) -> None:
    nameless = of("32", COMPLAINT, "t1", author=Author(id="author-32"))
    await _send(console_settings, [of("31", COMPLAINT, "t1"), nameless, of("33", COMPLAINT, "t2")])
    await _stored(client, "x:31", "x:32", "x:33")
    rules = {"brand": "Röstwerk", "reply_channels": {"x": "t1-x"}}
    assert (await client.put("/v1/rules/t1", json=rules, headers=ADMIN)).status_code == 200
    canned = {
        "id": "sorry",
        "language": "de",
        "title": "Entschuldigung",
        "text": "Hallo {author}, das tut uns leid. Ihr {brand}-Team ({reviewer})",
    }
    assert (await client.post("/v1/canned-replies", json=canned, headers=ADMIN)).status_code == 201
    rita = as_user(RITA, "reviewer", {"t1"})

    rendered = await client.post(
        "/v1/canned-replies/sorry/render", json={"mention_id": "x:31"}, headers=rita
    )
    assert rendered.status_code == 200, rendered.text
    assert rendered.json() == {
        "text": f"Hallo kundin, das tut uns leid. Ihr Röstwerk-Team ({RITA})",
        "missing": [],
    }
    unfilled = await client.post(
        "/v1/canned-replies/sorry/render", json={"mention_id": "x:32"}, headers=rita
    )
    assert unfilled.json()["missing"] == ["author"]
    assert unfilled.json()["text"].startswith("Hallo, das tut uns leid.")
    for body, status in (
        ({"mention_id": "x:33"}, 404),  # another brand's mention
        ({"mention_id": "x:404"}, 404),
        ({"mention_id": "$where"}, 422),
        ({}, 422),
    ):
        response = await client.post("/v1/canned-replies/sorry/render", json=body, headers=rita)
        assert response.status_code == status, (body, response.text)
    missing_reply = await client.post(
        "/v1/canned-replies/nope/render", json={"mention_id": "x:31"}, headers=rita
    )
    assert missing_reply.status_code == 404

    assert (await client.post("/v1/review/x:32/claim", headers=rita)).status_code == 200
    decision = {"action": "reply", "reason": "r", "reply": {"canned_reply_id": "sorry"}}
    refused = await client.post("/v1/review/x:32/decision", json=decision, headers=rita)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "unfilled_placeholder"
    assert refused.json()["error"]["details"] == {"missing": ["author"]}
    assert (await client.post("/v1/review/x:31/claim", headers=rita)).status_code == 200
    sent = await client.post("/v1/review/x:31/decision", json=decision, headers=rita)
    assert sent.status_code == 200, sent.text
