"""Publisher hardening (issue 16) end to end: the API refuses the secret-stealing channel,
a channel on a blocked address fails visibly without sending, four eyes, channel paging,
recurrences that cannot stall the event loop."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.publisher.app import build_app
from services.publisher.calendar import PostRequest
from services.publisher.domain.channels import ChannelIn, ChannelPatch
from services.publisher.domain.posts import PostPatch
from services.publisher.errors import DomainError
from services.publisher.storage import CommandInbox
from shared.events import (
    Author,
    CancelCommand,
    Classification,
    ClassifiedMention,
    ScheduleCommand,
    utc_now,
)
from shared.mongo import Document
from shared.settings import Settings, TokenGrant
from shared.topics import MENTIONS_CLASSIFIED, POSTS_COMMANDS, topic_name
from tests.integration.helpers import eventually, produce, running
from tests.integration.publisher_kit import (
    AUTH,
    fake_networks,
    fast,
    publisher_api,
    replica,
    with_fake_hosts,
)

pytestmark = pytest.mark.integration

APPROVER = {"Authorization": "Bearer approver-token"}
AUTHOR = {"Authorization": "Bearer author-token"}
EDITOR = {"Authorization": "Bearer editor-token"}


@asynccontextmanager
async def publisher(
    settings: Settings, scheduler: bool = False
) -> AsyncIterator[httpx.AsyncClient]:
    tokens = {
        "approver-token": TokenGrant(user="erika", scopes=["posts:approve", "read"]),
        "author-token": TokenGrant(user="anna", scopes=["posts:write", "posts:approve", "read"]),
        "editor-token": TokenGrant(user="ben", scopes=["posts:write", "posts:approve", "read"]),
    }
    named = settings.model_copy(update={"api_tokens": tokens})
    async with publisher_api(named, scheduler=scheduler) as client:
        yield client


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    return dict(body["error"])


async def test_the_secret_stealing_channel_is_refused(settings: Settings) -> None:
    """Issue 16 §2: `channels:write` pointing a channel at its server with the admin token."""
    async with fake_networks() as nets, publisher(settings) as client:
        attack = {
            "id": "evil",
            "platform": "mastodon",
            "account": "me",
            "api_base_url": "https://attacker.example",
            "credential_ref": "env:SMM_ADMIN_TOKEN",
        }
        refused = await client.post("/v1/channels", json=attack)
        assert refused.status_code == 422, refused.text
        message = _error(refused)["message"]
        assert "settings:NAME" in message
        assert "env:SMM_CHANNEL_SECRET_<NAME>" in message
        for variable in ("SMM_MONGODB_URI", "SMM_KAFKA_SASL_PASSWORD", "PATH"):
            answer = await client.post(
                "/v1/channels", json={**attack, "credential_ref": f"env:{variable}"}
            )
            assert answer.status_code == 422, variable

        # X, Facebook and LinkedIn have one API host: a channel cannot move it.
        x_attack = {**attack, "platform": "x", "credential_ref": "settings:x"}
        fixed = await client.post("/v1/channels", json=x_attack)
        assert fixed.status_code == 422
        assert "its API host is fixed" in _error(fixed)["message"]

        # A working channel moved to another server without a new secret: refused.
        brand = nets.channel("mastodon", "brand")
        assert (await client.post("/v1/channels", json=brand)).status_code == 201
        moved = await client.patch(
            "/v1/channels/brand", json={"api_base_url": "https://attacker.example"}
        )
        assert moved.status_code == 409, moved.text
        assert _error(moved)["code"] == "credential_required"
        resent = await client.patch(
            "/v1/channels/brand",
            json={
                "api_base_url": "https://attacker.example",
                "credential_ref": brand["credential_ref"],
            },
        )
        assert resent.status_code == 409
        assert (await client.get("/v1/channels/brand")).json()["api_base_url"] == brand[
            "api_base_url"
        ]

        # Nor can a new channel on another server borrow an existing channel's secret.
        borrow = {**attack, "credential_ref": brand["credential_ref"]}
        borrowed = await client.post("/v1/channels", json=borrow)
        assert borrowed.status_code == 409, borrowed.text
        assert _error(borrowed)["code"] == "secret_in_use"

        # With a secret of its own, moving is fine (the old secret stays where it was issued).
        os.environ["SMM_CHANNEL_SECRET_BRAND_NEW"] = "new-token"
        ok = await client.patch(
            "/v1/channels/brand",
            json={
                "api_base_url": "https://social.example",
                "credential_ref": "env:SMM_CHANNEL_SECRET_BRAND_NEW",
            },
        )
        assert ok.status_code == 200, ok.text


async def test_plain_http_only_to_an_allowed_network(settings: Settings) -> None:
    closed = settings.model_copy(update={"outbound_allowed_networks": []})
    async with fake_networks() as nets, publisher(closed) as client:
        body = nets.channel("mastodon")  # http://127.0.0.1:<port>/mastodon
        refused = await client.post("/v1/channels", json=body)
        assert refused.status_code == 422
        assert "https://" in _error(refused)["message"]
        with_creds = {**body, "api_base_url": "https://user:pw@social.example"}
        assert (await client.post("/v1/channels", json=with_creds)).status_code == 422
    async with fake_networks() as nets, publisher(settings) as client:  # loopback allowed
        assert (await client.post("/v1/channels", json=nets.channel("mastodon"))).status_code == 201


async def test_a_channel_on_loopback_fails_visibly_and_sends_nothing(settings: Settings) -> None:
    """Default settings allow no private address: the post fails for good, unsent."""
    closed = fast(settings, outbound_allowed_networks=[])
    async with fake_networks() as nets, replica(closed, "r1") as r:
        port = nets.base.rsplit(":", 1)[1]
        body = nets.channel("mastodon", api_base_url=f"https://127.0.0.1:{port}/mastodon")
        await r.channels.create(ChannelIn.model_validate(body), "tester")
        await r.calendar.create(_request("p1", "mastodon-main"))
        for _ in range(3):
            await r.dispatcher.run_once()
        post = await r.post("p1")
    assert post["status"] == "failed"
    assert post["error"]["code"] == "blocked_address"
    assert post["error"]["retryable"] is False
    assert "127.0.0.1" in post["error"]["message"]
    assert sum(nets.state.requests.values()) == 0
    assert r.statuses("p1")[-1] == "failed"


async def test_stored_channels_from_before_the_rules_leak_nothing(settings: Settings) -> None:
    """A channel stored with `env:SMM_ADMIN_TOKEN`, or an X channel with its own URL."""
    os.environ["SMM_ADMIN_TOKEN_FOR_TEST"] = "admin-secret"
    async with fake_networks() as nets, replica(fast(settings), "r1") as r:
        now = utc_now()
        legacy = {
            "platform": "mastodon",
            "account": "brand",
            "timezone": "UTC",
            "state": "active",
            "created_at": now,
            "updated_at": now,
        }
        await r.channel_store.create(
            {
                "_id": "old-mastodon",
                **legacy,
                "api_base_url": nets.base + "/mastodon",
                "credential_ref": "env:SMM_ADMIN_TOKEN_FOR_TEST",
            }
        )
        await r.channel_store.create(
            {
                "_id": "old-x",
                **legacy,
                "platform": "x",
                "account": "4711",
                "api_base_url": "http://127.0.0.1:9/attacker",
                "credential_ref": "env:SMM_CHANNEL_SECRET_TEST_TOKEN",
            }
        )
        await r.calendar.create(_request("m1", "old-mastodon"))
        await r.calendar.create(_request("x1", "old-x"))
        for _ in range(3):
            await r.dispatcher.run_once()
        held = await r.post("m1")
        sent = await r.post("x1")
        parked = await r.channel_store.get("old-mastodon")
    assert held["status"] == "scheduled"  # held until the channel gets a proper secret
    assert held["error"]["code"] == "auth_expired"
    assert "is not read" in held["error"]["message"]
    assert parked is not None
    assert parked["state"] == "needs_reauth"
    assert nets.state.requests.get("mastodon", 0) == 0
    assert sent["status"] == "published"  # to X's fixed host (the fake), not the stored URL
    assert [c.platform for c in nets.state.created] == ["x"]


async def test_four_eyes_on_approval(settings: Settings) -> None:
    async with fake_networks() as nets, publisher(settings) as client:
        await client.post("/v1/channels", json=nets.channel("mastodon", approval_required=True))
        await client.post(
            "/v1/channels",
            json=nets.channel("mastodon", "solo", approval_required=True, allow_self_approval=True),
        )
        soon = (utc_now() + timedelta(hours=1)).isoformat()
        for post_id, channel in (("p1", "mastodon-main"), ("p2", "solo")):
            created = await client.post(
                "/v1/posts",
                headers=AUTHOR,
                json={
                    "post_id": post_id,
                    "channel_id": channel,
                    "text": "Hallo",
                    "publish_at": soon,
                },
            )
            assert created.json()["status"] == "awaiting_approval"
        own = await client.post("/v1/posts/p1/approve", headers=AUTHOR)
        assert own.status_code == 403, own.text
        assert _error(own)["code"] == "four_eyes"
        assert (await client.get("/v1/posts/p1")).json()["status"] == "awaiting_approval"
        other = await client.post("/v1/posts/p1/approve", headers=APPROVER)
        assert other.status_code == 200
        assert other.json()["approved_by"] == "erika"
        relaxed = await client.post("/v1/posts/p2/approve", headers=AUTHOR)
        assert relaxed.status_code == 200
        assert relaxed.json()["approved_by"] == "anna"


async def test_channels_list_pages_like_the_contract(settings: Settings) -> None:
    async with fake_networks() as nets, publisher(settings) as client:
        for channel_id in ("c-a", "c-b", "c-c"):
            await client.post("/v1/channels", json=nets.channel("mastodon", channel_id))
        first = (await client.get("/v1/channels", params={"limit": 2})).json()
        assert set(first) == {"items", "next_cursor"}
        assert [c["id"] for c in first["items"]] == ["c-a", "c-b"]
        rest = await client.get("/v1/channels", params={"limit": 2, "cursor": first["next_cursor"]})
        assert [c["id"] for c in rest.json()["items"]] == ["c-c"]
        assert rest.json()["next_cursor"] is None
        assert (await client.get("/v1/channels", params={"limit": 201})).status_code == 422
        bad = await client.get("/v1/channels", params={"cursor": "bm9wZQ=="})
        assert bad.status_code == 422
        assert _error(bad)["code"] == "invalid_cursor"


async def test_a_posts_commands_page_too(settings: Settings) -> None:
    client_db: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongodb_uri.get_secret_value(), tz_aware=True
    )
    inbox = CommandInbox(client_db[settings.mongodb_database])
    start = utc_now() - timedelta(minutes=5)
    for minute in range(3):
        await inbox.add(CancelCommand(post_id="p1", occurred_at=start + timedelta(minutes=minute)))
    await inbox.add(CancelCommand(post_id="other"))
    await client_db.close()
    async with publisher(settings) as client:
        first = (await client.get("/v1/posts/p1/commands", params={"limit": 2})).json()
        assert set(first) == {"items", "next_cursor"}
        assert len(first["items"]) == 2
        rest = await client.get(
            "/v1/posts/p1/commands", params={"limit": 2, "cursor": first["next_cursor"]}
        )
        assert len(rest.json()["items"]) == 1
        assert rest.json()["next_cursor"] is None
        seen = [c["_id"] for c in first["items"] + rest.json()["items"]]
        assert len(set(seen)) == 3
        too_many = await client.get("/v1/posts/p1/commands", params={"limit": 201})
        assert too_many.status_code == 422


async def test_a_recurrence_from_long_ago_answers_fast(settings: Settings) -> None:
    """Issue 16 §5: DTSTART a month back with FREQ=SECONDLY stalled the loop for ~14 s."""
    async with fake_networks() as nets, publisher(settings) as client:
        await client.post("/v1/channels", json=nets.channel("mastodon"))
        month_back = (utc_now() - timedelta(days=31)).strftime("%Y%m%dT%H%M%S")
        year_back = (utc_now() - timedelta(days=365)).strftime("%Y%m%dT%H%M%S")
        started = time.perf_counter()
        # The test settings allow a 1 s gap, so the rule itself is accepted and computed.
        created = await client.post(
            "/v1/posts",
            json={
                "channel_id": "mastodon-main",
                "text": "jede Sekunde",
                "rrule": f"DTSTART:{month_back}\nRRULE:FREQ=SECONDLY",
                "timezone": "UTC",
            },
        )
        assert created.status_code == 201, created.text
        minutely = await client.post(
            "/v1/posts",
            json={
                "channel_id": "mastodon-main",
                "text": "jede Minute",
                "rrule": f"DTSTART:{year_back}\nRRULE:FREQ=MINUTELY",
                "timezone": "UTC",
            },
        )
        assert minutely.status_code == 201, minutely.text
        assert time.perf_counter() - started < 2.0
        assert (await client.get("/healthz")).status_code == 200


async def test_the_default_minimum_gap_refuses_secondly_posts(settings: Settings) -> None:
    default_gap = settings.model_copy(update={"publisher_min_recurrence_seconds": 60})
    async with fake_networks() as nets:
        app = build_app(with_fake_hosts(default_gap), scheduler=False)
        async with running(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://publisher", headers=AUTH
            ) as client:
                await client.post("/v1/channels", json=nets.channel("mastodon"))
                refused = await client.post(
                    "/v1/posts",
                    json={
                        "channel_id": "mastodon-main",
                        "text": "jede Sekunde",
                        "rrule": "FREQ=SECONDLY",
                    },
                )
    assert refused.status_code == 422
    assert _error(refused)["code"] == "invalid_recurrence"
    assert "60 s" in _error(refused)["message"]


def _mention(native_id: str, trackers: list[str], action: str = "review") -> ClassifiedMention:
    return ClassifiedMention(
        mention_id=f"mastodon:{native_id}",
        platform="mastodon",
        native_id=native_id,
        text="Mein Kaffee kam kalt an",
        author=Author(id="kundin"),
        created_at=utc_now(),
        ingested_at=utc_now(),
        source="api",
        tracker_ids=trackers,
        classification=Classification(
            language="de",
            sentiment="negative",
            sentiment_score=-0.6,
            toxicity=0.0,
            spam=0.0,
            intent="complaint",
            model_version="test",
        ),
        action=action,
        priority="normal",
    )


async def test_a_reply_goes_out_only_on_a_channel_of_the_mentions_tracker(
    settings: Settings,
) -> None:
    """Issue 16 §6: a reviewer of brand B cannot answer a brand A mention on B's account."""
    mapped = settings.model_copy(update={"metrics_channel_trackers": {"brand-b": ["brand-b"]}})
    mentions = [
        _mention("1", ["brand-a"]),
        _mention("2", ["brand-a"], action="approve"),  # never in the inbox
        _mention("3", ["brand-b", "brand-c"]),
    ]
    async with fake_networks() as nets, publisher(mapped) as client:
        for channel_id, extra in (
            ("brand-a", {"tracker_ids": ["brand-a"]}),
            ("brand-b", {}),
            ("any", {}),
        ):
            created = await client.post(
                "/v1/channels", json=nets.channel("mastodon", channel_id, **extra)
            )
            assert created.status_code == 201, created.text
        await produce(
            settings.kafka_bootstrap_servers,
            topic_name(MENTIONS_CLASSIFIED, settings),
            [(m.mention_id.encode(), m.to_bytes()) for m in mentions],
        )

        async def reply(channel_id: str, mention_id: str) -> httpx.Response:
            return await client.post(
                "/v1/posts",
                json={
                    "channel_id": channel_id,
                    "text": "Das tut uns leid!",
                    "in_reply_to_mention_id": mention_id,
                    "draft": True,
                },
            )

        # The publisher learns the trackers from the topic; then the right channel answers.
        first = await eventually(
            lambda: reply("brand-a", "mastodon:1"), lambda r: r.status_code == 201, timeout=45
        )
        assert first.json()["in_reply_to_mention_id"] == "mastodon:1"
        assert (await reply("brand-b", "mastodon:3")).status_code == 201
        assert (await reply("any", "mastodon:1")).status_code == 201  # unmapped: any mention
        for channel_id, mention_id in (
            ("brand-b", "mastodon:1"),  # another brand's channel
            ("brand-a", "mastodon:3"),
            ("brand-a", "mastodon:2"),  # not routed to review: unknown here
            ("brand-a", "mastodon:999"),
        ):
            refused = await reply(channel_id, mention_id)
            assert refused.status_code == 422, (channel_id, mention_id, refused.text)
            assert _error(refused)["code"] == "reply_channel_not_mapped"


async def test_a_reply_command_may_overtake_its_mention(settings: Settings) -> None:
    """The command and the mention come on two topics: the reply waits for its mention."""
    waiting = settings.model_copy(update={"publisher_reply_mention_wait_seconds": 20.0})
    commands = topic_name(POSTS_COMMANDS, settings)
    async with fake_networks() as nets, publisher(waiting) as client:
        await client.post("/v1/channels", json=nets.channel("mastodon", "any"))
        await client.post(
            "/v1/channels", json=nets.channel("mastodon", "brand-a", tracker_ids=["brand-a"])
        )
        probe = ScheduleCommand(post_id="probe", channel_id="any", text="Hallo")
        await produce(settings.kafka_bootstrap_servers, commands, [(b"probe", probe.to_bytes())])
        await eventually(
            lambda: client.get("/v1/posts/probe"), lambda r: r.status_code == 200, timeout=45
        )
        reply = ScheduleCommand(
            post_id="reply-7",
            channel_id="brand-a",
            text="Das tut uns leid!",
            in_reply_to_mention_id="mastodon:7",
            requires_approval=True,
            actor="reviewer",
        )
        await produce(settings.kafka_bootstrap_servers, commands, [(b"reply-7", reply.to_bytes())])
        await asyncio.sleep(2)  # the command is being handled before its mention exists
        mention = _mention("7", ["brand-a"])
        await produce(
            settings.kafka_bootstrap_servers,
            topic_name(MENTIONS_CLASSIFIED, settings),
            [(b"mastodon:7", mention.to_bytes())],
        )
        post = await eventually(
            lambda: client.get("/v1/posts/reply-7"), lambda r: r.status_code == 200, timeout=30
        )
    assert post.json()["status"] == "awaiting_approval", post.text


# --- review of the hardening ---------------------------------------------------------------


async def test_a_secret_stays_bound_to_where_it_was_first_used(settings: Settings) -> None:
    """Review §1: moving a secret off its channel, then naming it for another server."""
    os.environ["SMM_CHANNEL_SECRET_M"] = "the-real-mastodon-token"
    os.environ["SMM_CHANNEL_SECRET_X"] = "the-real-x-token"
    async with publisher(settings) as client:
        legit = {
            "id": "m",
            "platform": "mastodon",
            "account": "brand",
            "api_base_url": "https://legit.social",
            "credential_ref": "env:SMM_CHANNEL_SECRET_M",
        }
        assert (await client.post("/v1/channels", json=legit)).status_code == 201
        # Variant A: to the attacker's server with a dummy secret (allowed: a new secret for
        # a new server), then the real secret named again, by PATCH or by reauth.
        moved = await client.patch(
            "/v1/channels/m",
            json={"api_base_url": "https://evil.example", "credential_ref": "settings:DUMMY"},
        )
        assert moved.status_code == 200, moved.text
        for again in (
            client.patch("/v1/channels/m", json={"credential_ref": "env:SMM_CHANNEL_SECRET_M"}),
            client.post("/v1/channels/m/reauth", json={"credential_ref": legit["credential_ref"]}),
        ):
            refused = await again
            assert refused.status_code == 409, refused.text
            error = _error(refused)
            assert error["code"] == "secret_in_use"
            assert "mastodon at https://legit.social" in error["message"]
            assert "settings:NAME" in error["message"]
        assert (await client.get("/v1/channels/m")).json()["credential_ref"] == "settings:DUMMY"
        home = await client.patch(
            "/v1/channels/m",
            json={"api_base_url": legit["api_base_url"], "credential_ref": legit["credential_ref"]},
        )
        assert home.status_code == 200, home.text  # back where it was issued: fine

        # Two X channels may share a secret (one fixed host); no other network may use it.
        x = {"platform": "x", "account": "4711", "credential_ref": "env:SMM_CHANNEL_SECRET_X"}
        for channel_id in ("x1", "x2"):
            created = await client.post("/v1/channels", json={**x, "id": channel_id})
            assert created.status_code == 201, created.text
        # Variant B: the X secret freed from every channel, then named for another server.
        for channel_id in ("x1", "x2"):
            freed = await client.patch(
                f"/v1/channels/{channel_id}", json={"credential_ref": "settings:NOPE"}
            )
            assert freed.status_code == 200, freed.text
        for borrower in (
            {**legit, "id": "evil", "api_base_url": "https://evil.example"},
            {"id": "fb", "platform": "facebook", "account": "page-1"},
        ):
            borrowed = await client.post(
                "/v1/channels", json={**borrower, "credential_ref": x["credential_ref"]}
            )
            assert borrowed.status_code == 409, borrowed.text
            assert _error(borrowed)["code"] == "secret_in_use"
            assert "bound to x " in _error(borrowed)["message"]
        back = await client.patch("/v1/channels/x1", json={"credential_ref": x["credential_ref"]})
        assert back.status_code == 200, back.text


async def test_two_writers_cannot_bind_one_secret_to_two_servers(settings: Settings) -> None:
    """The insert of the binding is the check: of two racing creates, one wins."""
    async with replica(fast(settings), "r1") as r:
        for round_ in range(5):
            reference = f"settings:RACE_{round_}"
            bodies = [
                ChannelIn.model_validate(
                    {
                        "id": f"race-{round_}-{server}",
                        "platform": "mastodon",
                        "account": "brand",
                        "api_base_url": f"https://{server}.example",
                        "credential_ref": reference,
                    }
                )
                for server in ("one", "two")
            ]
            results = await asyncio.gather(
                *(r.channels.create(body, "tester") for body in bodies), return_exceptions=True
            )
            refused = [e for e in results if isinstance(e, DomainError)]
            assert len(refused) == 1, results
            assert refused[0].code == "secret_in_use"


async def test_channels_from_before_bindings_are_bound_at_start(settings: Settings) -> None:
    """Stored channels' secrets are bound (oldest first); a second destination is parked."""
    async with replica(fast(settings), "r1") as r:
        now = utc_now()
        base = {"platform": "mastodon", "account": "brand", "state": "active", "timezone": "UTC"}
        for channel_id, server, age in (("old-a", "legit.social", 2), ("old-b", "evil.example", 1)):
            await r.channel_store.create(
                {
                    "_id": channel_id,
                    **base,
                    "api_base_url": f"https://{server}",
                    "credential_ref": "env:SMM_CHANNEL_SECRET_OLD",
                    "created_at": now - timedelta(days=age),
                    "updated_at": now,
                }
            )
        await r.channels.bind_existing()
        await r.channels.bind_existing()  # every replica runs it at start: idempotent
        first = await r.channel_store.get("old-a")
        second = await r.channel_store.get("old-b")
        assert first is not None
        assert first["state"] == "active"
        assert second is not None
        assert second["state"] == "needs_reauth"
        assert "legit.social" in second["state_reason"]
        # Variant A on the stored channel: its secret was bound before it could be moved.
        await r.channels.change(
            "old-a",
            ChannelPatch(api_base_url="https://evil.example", credential_ref="settings:DUMMY"),
        )
        with pytest.raises(DomainError) as refused:
            await r.channels.change(
                "old-a", ChannelPatch(credential_ref="env:SMM_CHANNEL_SECRET_OLD")
            )
        assert refused.value.code == "secret_in_use"


@pytest.mark.parametrize("retry_after", ["1000000000000", "9" * 400])
async def test_a_hostile_retry_after_loses_no_other_post(
    settings: Settings, retry_after: str
) -> None:
    """Review §2: the 429's header overflowed the pause and failed the whole batch."""
    async with fake_networks() as nets, replica(fast(settings), "r1") as r:
        for platform in ("mastodon", "x"):
            await r.channels.create(ChannelIn.model_validate(nets.channel(platform)), "tester")
            await r.calendar.create(_request(f"p-{platform}", f"{platform}-main"))
        nets.state.script("mastodon", {"status": 429, "headers": {"Retry-After": retry_after}})
        assert await r.dispatcher.run_once() == 2
        limited = await r.post("p-mastodon")
        sent = await r.post("p-x")
        channel = await r.channel_store.get("mastodon-main")
    assert sent["status"] == "published"
    assert limited["status"] == "scheduled"
    assert limited["error"]["code"] == "rate_limited"
    assert channel is not None
    assert utc_now() < channel["paused_until"] <= utc_now() + timedelta(days=1)
    assert limited["due_at"] <= utc_now() + timedelta(days=1)


async def test_an_unexpected_error_is_that_posts_failed_attempt_only(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error escaping one send (here: pausing its channel) does not lose the others."""

    async def unavailable(channel_id: str, until: object) -> None:
        raise RuntimeError("database unavailable")

    async with fake_networks() as nets, replica(fast(settings), "r1") as r:
        for platform in ("mastodon", "x"):
            await r.channels.create(ChannelIn.model_validate(nets.channel(platform)), "tester")
            await r.calendar.create(_request(f"p-{platform}", f"{platform}-main"))
        monkeypatch.setattr(r.channels, "pause", unavailable)
        nets.state.script("mastodon", {"status": 429, "headers": {"Retry-After": "1"}})
        assert await r.dispatcher.run_once() == 2
        failed = await r.post("p-mastodon")
        sent = await r.post("p-x")
    assert sent["status"] == "published"
    assert failed["status"] == "scheduled"  # retried, reconciled first
    assert failed["uncertain"] is True
    assert failed["error"]["code"] == "internal_error"
    assert failed["error"]["retryable"] is True
    assert "database unavailable" in failed["error"]["message"]
    assert "claim_token" not in failed
    assert r.statuses("p-x")[-1] == "published"


async def test_four_eyes_counts_every_author_of_the_content(settings: Settings) -> None:
    """Review §3a: A creates, B edits the text, A reschedules: B may not approve B's text."""
    async with fake_networks() as nets, publisher(settings) as client:
        await client.post("/v1/channels", json=nets.channel("mastodon", approval_required=True))
        created = await client.post(
            "/v1/posts",
            headers=AUTHOR,
            json={
                "post_id": "p1",
                "channel_id": "mastodon-main",
                "text": "Hallo",
                "publish_at": (utc_now() + timedelta(hours=1)).isoformat(),
            },
        )
        assert created.status_code == 201, created.text
        edited = await client.patch("/v1/posts/p1", headers=EDITOR, json={"text": "Hallo von Ben"})
        assert edited.status_code == 200, edited.text
        later = (utc_now() + timedelta(hours=2)).isoformat()
        moved = await client.patch("/v1/posts/p1", headers=AUTHOR, json={"publish_at": later})
        assert moved.json()["updated_by"] == "anna"
        for author in (EDITOR, AUTHOR):
            own = await client.post("/v1/posts/p1/approve", headers=author)
            assert own.status_code == 403, own.text
            assert _error(own)["code"] == "four_eyes"
        approved = await client.post("/v1/posts/p1/approve", headers=APPROVER)
        assert approved.status_code == 200, approved.text
        assert approved.json()["approved_by"] == "erika"


async def test_an_approval_covers_only_the_version_it_checked(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review §3b: an edit between the four-eyes check and the update is not approved."""
    async with fake_networks() as nets, replica(fast(settings), "r1") as r:
        body = nets.channel("mastodon", approval_required=True)
        await r.channels.create(ChannelIn.model_validate(body), "tester")
        request = _request("p1", "mastodon-main")
        await r.calendar.create(
            PostRequest(**{**request.__dict__, "publish_at": utc_now() + timedelta(hours=1)})
        )
        read_channel = r.channel_store.get

        async def edited_meanwhile(channel_id: str) -> Document | None:
            await r.calendar.edit("p1", PostPatch(text="Unseen text"), "ben")
            return await read_channel(channel_id)

        monkeypatch.setattr(r.channel_store, "get", edited_meanwhile)
        with pytest.raises(DomainError) as refused:
            await r.calendar.approve("p1", "erika")
        post = await r.post("p1")
    assert refused.value.code == "version_conflict"
    assert refused.value.status == 409
    assert post["status"] == "awaiting_approval"
    assert post["text"] == "Unseen text"
    assert "approved_by" not in post


async def test_an_rrule_dateutil_rejects_is_422(settings: Settings) -> None:
    """Review §4: dateutil's plain ValueError while iterating was an HTTP 500."""
    async with fake_networks() as nets, publisher(settings) as client:
        await client.post("/v1/channels", json=nets.channel("mastodon"))
        for rule in (
            "FREQ=MINUTELY;INTERVAL=1440;BYHOUR=1",
            "FREQ=SECONDLY;INTERVAL=86400;BYMINUTE=1",
        ):
            refused = await client.post(
                "/v1/posts", json={"channel_id": "mastodon-main", "text": "Hallo", "rrule": rule}
            )
            assert refused.status_code == 422, refused.text
            assert _error(refused)["code"] == "invalid_recurrence"
            assert "Invalid combination of interval" in _error(refused)["message"]


def _request(post_id: str, channel_id: str) -> PostRequest:
    return PostRequest(
        post_id=post_id,
        channel_id=channel_id,
        text=f"Frisch geröstet ({post_id})",
        media=[],
        publish_at=utc_now(),
        rrule=None,
        cron=None,
        timezone=None,
        in_reply_to_mention_id=None,
        requires_approval=False,
        idempotency_key=None,
        draft=False,
        actor="tester",
    )
