"""The publisher service end to end: HTTP API, command topic, events topic, fake networks.

Runs the real app (broker, database, scheduler) and talks to it over HTTP and Kafka.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest

from shared.events import CancelCommand, PostEvent, ScheduleCommand, utc_now
from shared.settings import Settings, TokenGrant
from shared.topics import POSTS_COMMANDS, POSTS_EVENTS, topic_name
from tests.integration.helpers import consume, eventually, produce
from tests.integration.publisher_kit import (
    fake_networks,
    publisher_api,
)

pytestmark = pytest.mark.integration


#: A second person: four eyes means the author of a post cannot approve it.
APPROVER = {"Authorization": "Bearer approver-token"}


def with_approver(settings: Settings) -> Settings:
    grant = TokenGrant(user="erika", scopes=["posts:approve", "read"])
    return settings.model_copy(update={"api_tokens": {"approver-token": grant}})


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["message"], body
    return dict(body["error"])


async def test_channels_api_validates_and_never_shows_secrets(settings: Settings) -> None:
    async with fake_networks() as nets, publisher_api(settings, scheduler=False) as client:
        body = nets.channel(
            "mastodon",
            slots=[{"weekday": "mon", "time": "09:00"}, {"weekday": "mon", "time": "09:00"}],
            rate_limit={"max_posts": 30, "per_seconds": 3600},
        )
        created = await client.post("/v1/channels", json=body)
        assert created.status_code == 201, created.text
        channel = created.json()
        assert channel["state"] == "active"
        assert channel["credential_ref"] == "env:SMM_CHANNEL_SECRET_MASTODON_MAIN"
        assert "valid-token" not in created.text
        assert channel["slots"] == [{"weekday": "mon", "time": "09:00"}]
        assert (await client.post("/v1/channels", json=body)).status_code == 409

        bad_cases = [
            ({**body, "id": "c2", "timezone": "Europe/Atlantis"}, "unknown IANA timezone"),
            ({**body, "id": "c3", "slots": [{"weekday": "mon", "time": "25:00"}]}, "slots"),
            ({**body, "id": "c4", "credential_ref": "plain-secret-token"}, "credential_ref"),
            ({**body, "id": "c5", "platform": "myspace"}, "platform"),
            ({k: v for k, v in body.items() if k != "api_base_url"} | {"id": "c6"}, "instance URL"),
            ({**body, "id": "Bad Id"}, "id"),
        ]
        for bad, reason in bad_cases:
            answer = await client.post("/v1/channels", json=bad)
            assert answer.status_code == 422, (bad, answer.text)
            assert reason in _error(answer)["message"]
        assert (await client.post("/v1/channels", content=b"{nope")).status_code == 400
        unauthorised = await client.post("/v1/channels", json=body, headers={"Authorization": ""})
        assert unauthorised.status_code == 401

        unset = await client.post(
            "/v1/channels",
            json={**body, "id": "later", "credential_ref": "env:SMM_CHANNEL_SECRET_UNSET"},
        )
        assert unset.json()["state"] == "needs_reauth"
        assert "not set" in unset.json()["state_reason"]
        reauth = await client.post("/v1/channels/later/reauth", json={})
        assert reauth.status_code == 422
        assert _error(reauth)["code"] == "credential_missing"
        renewed = nets.channel("mastodon", "later")["credential_ref"]  # sets the variable
        fixed = await client.post("/v1/channels/later/reauth", json={"credential_ref": renewed})
        assert fixed.json()["state"] == "active"

        patched = await client.patch(
            "/v1/channels/mastodon-main", json={"approval_required": True, "timezone": "Asia/Tokyo"}
        )
        assert patched.json()["approval_required"] is True
        assert patched.json()["timezone"] == "Asia/Tokyo"
        bad_patch = await client.patch("/v1/channels/mastodon-main", json={"timezone": "Mars/Base"})
        assert bad_patch.status_code == 422
        assert (await client.patch("/v1/channels/nope", json={})).status_code == 404
        assert (await client.get("/v1/channels/nope")).status_code == 404
        listed = await client.get("/v1/channels")
        assert [c["id"] for c in listed.json()["items"]] == ["later", "mastodon-main"]


async def test_posts_api_gives_a_clear_4xx_for_bad_input(settings: Settings) -> None:
    async with fake_networks() as nets, publisher_api(settings, scheduler=False) as client:
        await client.post("/v1/channels", json=nets.channel("x"))
        await client.post("/v1/channels", json=nets.channel("bluesky"))
        soon = (utc_now() + timedelta(hours=1)).isoformat()
        ok = {"channel_id": "x-main", "text": "Neue Sorte ab heute", "publish_at": soon}
        cases: list[tuple[dict[str, Any], int, str]] = [
            ({**ok, "text": "日" * 141}, 422, "text_too_long"),
            ({**ok, "channel_id": "bluesky-main", "text": "ä" * 301}, 422, "text_too_long"),
            ({**ok, "channel_id": "nope"}, 422, "unknown_channel"),
            ({**ok, "cron": "0 9 * * *"}, 422, "invalid_request"),
            ({**ok, "publish_at": "2026-01-01T09:00:00"}, 422, "invalid_request"),
            ({**ok, "publish_at": "2020-01-01T09:00:00Z"}, 422, "publish_at_in_past"),
            ({**ok, "publish_at": None}, 422, "no_free_slot"),
            ({**ok, "publish_at": None, "rrule": "FREQ=NEVER"}, 422, "invalid_recurrence"),
            ({**ok, "media": ["https://cdn.example.com/a.jpg"]}, 422, "media_not_supported"),
            ({**ok, "media": ["not a url"]}, 422, "invalid_request"),
            ({**ok, "in_reply_to_mention_id": "mastodon:1"}, 422, "reply_platform_mismatch"),
            ({"text": "ohne Kanal"}, 422, "invalid_request"),
        ]
        for body, status, code in cases:
            answer = await client.post("/v1/posts", json=body)
            assert answer.status_code == status, (body, answer.text)
            assert _error(answer)["code"] == code, (body, answer.text)
        assert (await client.post("/v1/posts", content=b"[1,")).status_code == 400
        assert (await client.post("/v1/posts", json=[ok])).status_code == 422

        created = await client.post("/v1/posts", json={**ok, "post_id": "p1"})
        assert created.status_code == 201, created.text
        again = await client.post("/v1/posts", json={**ok, "post_id": "p1"})
        assert again.status_code == 200
        clash = await client.post("/v1/posts", json={**ok, "post_id": "p1", "text": "anders"})
        assert clash.status_code == 409

        assert (await client.get("/v1/posts/nope")).status_code == 404
        assert (await client.get("/v1/posts", params={"status": "lost"})).status_code == 422
        assert (await client.get("/v1/posts", params={"cursor": "%%%"})).status_code == 422
        assert (await client.get("/v1/posts", params={"limit": 0})).status_code == 422
        naive = await client.get("/v1/posts", params={"scheduled_from": "2027-01-01T00:00:00"})
        assert naive.status_code == 422
        assert (await client.patch("/v1/posts/nope", json={"text": "x"})).status_code == 404
        too_long = await client.patch("/v1/posts/p1", json={"text": "a" * 281})
        assert _error(too_long)["code"] == "text_too_long"
        stale = await client.patch("/v1/posts/p1", json={"text": "b", "expected_version": 99})
        assert stale.status_code == 409
        assert _error(stale)["code"] == "version_conflict"
        assert (await client.patch("/v1/posts/p1", json={"colour": "red"})).status_code == 200
        assert (await client.delete("/v1/posts/nope")).status_code == 404
        assert (await client.post("/v1/posts/p1/approve")).status_code == 200  # already scheduled
        assert (await client.delete("/v1/posts/p1")).json()["status"] == "cancelled"
        approve_cancelled = await client.post("/v1/posts/p1/approve")
        assert approve_cancelled.status_code == 409
        assert "cancelled" in _error(approve_cancelled)["message"]
        edit_cancelled = await client.patch("/v1/posts/p1", json={"text": "zu spät"})
        assert edit_cancelled.status_code == 409
        assert (await client.post("/v1/posts/nope/approve")).status_code == 404
        no_token = await client.post("/v1/posts", json=ok, headers={"Authorization": ""})
        assert no_token.status_code == 401


async def test_post_life_over_http_with_approval_events_and_listing(settings: Settings) -> None:
    events_topic = topic_name(POSTS_EVENTS, settings)
    settings = with_approver(settings)
    async with fake_networks() as nets, publisher_api(settings) as client:
        await client.post("/v1/channels", json=nets.channel("mastodon", approval_required=True))
        due = utc_now().isoformat()
        created = await client.post(
            "/v1/posts",
            json={
                "post_id": "launch",
                "channel_id": "mastodon-main",
                "text": "Wir sind live!",
                "publish_at": due,
            },
        )
        assert created.json()["status"] == "awaiting_approval"
        for i in range(3):
            await client.post(
                "/v1/posts",
                json={
                    "post_id": f"draft-{i}",
                    "channel_id": "mastodon-main",
                    "text": f"Entwurf {i}",
                    "draft": True,
                    "publish_at": (utc_now() + timedelta(days=1)).isoformat(),
                },
            )
        edited = await client.patch("/v1/posts/launch", json={"text": "Wir sind jetzt live!"})
        assert edited.json()["status"] == "awaiting_approval"
        assert nets.state.created == []
        approved = await client.post("/v1/posts/launch/approve", headers=APPROVER)
        assert approved.json()["approved_by"] == "erika"
        post = await eventually(
            lambda: _get(client, "launch"), lambda p: p["status"] == "published", timeout=20
        )
        assert post["url"].startswith("https://social.example/")
        assert nets.state.created[0].text == "Wir sind jetzt live!"
        late = await client.patch("/v1/posts/launch", json={"text": "zu spät"})
        assert late.status_code == 409
        gone = await client.delete("/v1/posts/launch")
        assert gone.status_code == 409

        drafts = await client.get("/v1/posts", params={"status": "draft", "limit": 2})
        page = drafts.json()
        assert [p["id"] for p in page["posts"]] == ["draft-0", "draft-1"]
        rest = await client.get(
            "/v1/posts", params={"status": "draft", "limit": 2, "cursor": page["next_cursor"]}
        )
        assert [p["id"] for p in rest.json()["posts"]] == ["draft-2"]
        assert rest.json()["next_cursor"] is None
        submitted = await client.patch("/v1/posts/draft-0", json={"draft": False})
        assert submitted.json()["status"] == "awaiting_approval"
        metrics = (await client.get("/metrics")).text
        assert 'smm_publisher_dispatch_lateness_seconds_count{platform="mastodon"}' in metrics
        assert (
            'smm_publisher_post_transitions_total{platform="mastodon",status="published"}'
            in metrics
        )
    records = await consume(settings.kafka_bootstrap_servers, events_topic, count=8, timeout=20)
    events = [PostEvent.model_validate_json(r.value) for r in records]
    launch = [e for e in events if e.post_id == "launch"]
    assert [e.status for e in launch] == [
        "awaiting_approval",
        "awaiting_approval",
        "scheduled",
        "publishing",
        "published",
    ]
    assert all(e.scheduled_for is not None for e in launch)
    assert launch[-1].native_post_id == nets.state.created[0].native_id
    assert {r.key for r in records if json.loads(r.value)["post_id"] == "launch"} == {b"launch"}


async def _get(client: httpx.AsyncClient, post_id: str) -> dict[str, Any]:
    return dict((await client.get(f"/v1/posts/{post_id}")).json())


async def test_commands_topic_schedules_replies_and_dead_letters_refusals(
    settings: Settings,
) -> None:
    commands = topic_name(POSTS_COMMANDS, settings)
    async with fake_networks() as nets, publisher_api(settings) as client:
        await client.post("/v1/channels", json=nets.channel("x"))
        reply = ScheduleCommand(
            post_id="reply-1",
            channel_id="x-main",
            text="Danke für den Hinweis, wir melden uns per DM.",
            in_reply_to_mention_id="x:98765",
            actor="moderator-7",
        )
        too_long = ScheduleCommand(post_id="reply-2", channel_id="x-main", text="ü" * 400)
        cancel_unknown = CancelCommand(post_id="ghost")
        await produce(
            settings.kafka_bootstrap_servers,
            commands,
            [
                (b"reply-1", reply.to_bytes()),
                (b"reply-1", reply.to_bytes()),  # redelivered: one post
                (b"reply-2", too_long.to_bytes()),
                (b"ghost", cancel_unknown.to_bytes()),
            ],
        )
        post = await eventually(
            lambda: _get(client, "reply-1"), lambda p: p.get("status") == "published", timeout=45
        )
        assert post["created_by"] == "kafka:moderator-7"  # a claim, not an authenticated user
        refused = await eventually(
            lambda: _get(client, "reply-2"), lambda p: p.get("status") == "failed", timeout=20
        )
        assert refused["error"]["code"] == "text_too_long"
        dead = await consume(settings.kafka_bootstrap_servers, commands + ".dlq", count=1)
    assert [c.reply_to for c in nets.state.created] == ["98765"]
    assert dead[0].value == cancel_unknown.to_bytes()
    assert "no post 'ghost'" in dict(dead[0].headers)["x-error"].decode()


async def test_text_count_is_the_count_posts_are_refused_by(settings: Settings) -> None:
    async with publisher_api(settings, scheduler=False) as client:
        fits = await client.post("/v1/text/count", json={"platform": "x", "text": "日" * 140})
        over = await client.post("/v1/text/count", json={"platform": "x", "text": "日" * 141})
        unknown = await client.post("/v1/text/count", json={"platform": "myspace", "text": "hi"})
        misspelt = await client.post("/v1/text/count", json={"platfrom": "x", "text": "hi"})
    assert fits.json() == {
        "platform": "x",
        "length": 280,
        "limit": 280,
        "unit": "weighted characters",
        "over": False,
        "too_many_bytes": False,
    }
    assert over.json()["over"] is True  # and a post of it is refused `text_too_long` (above)
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "unsupported_platform"
    assert misspelt.status_code == 422
