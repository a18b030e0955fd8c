"""The scheduler on the real database against fake networks over real HTTP.

Each network answers success, 400, 401, 429 with Retry-After, 5xx and timeouts; the tests
prove no double post when a replica dies mid-send, that a cancel wins over a due post, and
that a 401 parks the channel and keeps its posts.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.publisher.calendar import PostRequest
from services.publisher.domain.channels import ChannelIn
from services.publisher.errors import DomainError
from shared.events import utc_now
from shared.settings import Settings
from tests.integration.helpers import eventually
from tests.integration.publisher_kit import (
    EXPIRED_ENV,
    TOKEN_ENV,
    FakeNetworks,
    Replica,
    fake_networks,
    fast,
    replica,
)

pytestmark = pytest.mark.integration
PLATFORMS = ["mastodon", "x", "facebook", "linkedin", "bluesky", "generic"]


def request(post_id: str, channel_id: str, **extra: Any) -> PostRequest:
    values: dict[str, Any] = {
        "post_id": post_id,
        "channel_id": channel_id,
        "text": f"Frische Röstung, heute im Laden ({post_id})",
        "media": [],
        "publish_at": utc_now(),
        "rrule": None,
        "cron": None,
        "timezone": None,
        "in_reply_to_mention_id": None,
        "requires_approval": False,
        "idempotency_key": None,
        "draft": False,
        "actor": "tester",
    }
    values.update(extra)
    return PostRequest(**values)


async def add_channel(r: Replica, nets: FakeNetworks, platform: str, **extra: Any) -> str:
    body = ChannelIn.model_validate(nets.channel(platform, **extra))
    await r.channels.create(body, "tester")
    return body.id


async def drain(r: Replica, rounds: int = 3) -> None:
    for _ in range(rounds):
        await r.dispatcher.run_once()


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_each_network_success_and_permanent_rejection(
    settings: Settings, platform: str
) -> None:
    async with fake_networks() as nets, replica(fast(settings), "r1") as r:
        channel = await add_channel(r, nets, platform)
        await r.calendar.create(request("ok-1", channel))
        await drain(r)
        await r.calendar.create(request("bad-1", channel, text="Wird abgelehnt (bad-1)"))
        nets.state.script(platform, {"status": 400, "body": {"error": "Invalid status"}})
        await drain(r)
        ok, bad = await r.post("ok-1"), await r.post("bad-1")
    assert ok["status"] == "published"
    assert ok["native_post_id"]
    assert r.statuses("ok-1") == ["scheduled", "publishing", "published"]
    published_event = [e for e in r.events if e.post_id == "ok-1"][-1]
    assert published_event.scheduled_for is not None
    assert published_event.published_at is not None
    assert bad["status"] == "failed"
    assert bad["error"]["retryable"] is False
    assert "400" in bad["error"]["message"]
    assert len(nets.state.created_on(platform)) == 1


@pytest.mark.parametrize("platform", ["mastodon", "x", "bluesky"])
async def test_429_pauses_the_channel_and_5xx_retries_with_backoff(
    settings: Settings, platform: str
) -> None:
    async with fake_networks() as nets, replica(fast(settings), "r1") as r:
        channel = await add_channel(r, nets, platform)
        await r.calendar.create(request("p-429", channel))
        nets.state.script(platform, {"status": 429, "headers": {"Retry-After": "1"}})
        await r.dispatcher.run_once()
        held = await r.post("p-429")
        assert held["status"] == "scheduled"
        assert held["error"]["code"] == "rate_limited"
        assert held["due_at"] >= utc_now() + timedelta(seconds=0.5)
        assert (await r.channel_store.get(channel) or {})["paused_until"] > utc_now()
        assert await r.dispatcher.run_once() == 0  # paused: nothing claimed
        nets.state.script(platform, {"status": 503}, {"status": 502})
        await eventually(
            lambda: _run_and_get(r, "p-429"), lambda p: p["status"] == "published", timeout=20
        )
        post = await r.post("p-429")
    assert post["attempt"] == 3  # 503, 502, success (the 429 did not count)
    assert len(nets.state.created_on(platform)) == 1


async def _run_and_get(r: Replica, post_id: str) -> dict[str, Any]:
    await r.dispatcher.run_once()
    return await r.post(post_id)


@pytest.mark.parametrize(
    "platform", ["x", "mastodon", "bluesky", "facebook", "linkedin", "generic"]
)
async def test_timeout_after_create_is_reconciled_not_posted_twice(
    settings: Settings, platform: str
) -> None:
    async with fake_networks() as nets, replica(fast(settings), "r1") as r:
        channel = await add_channel(r, nets, platform)
        await r.calendar.create(request("slow-1", channel))
        nets.state.script(platform, {"hang_after_create": 2})  # created, but we time out
        await r.dispatcher.run_once()
        first = await r.post("slow-1")
        assert first["status"] == "scheduled"
        assert first["uncertain"] is True
        assert first["error"]["code"] == "timeout"
        await eventually(
            lambda: _run_and_get(r, "slow-1"), lambda p: p["status"] == "published", timeout=20
        )
    assert len(nets.state.created_on(platform)) == 1


async def test_a_replica_that_dies_mid_send_never_causes_a_double_post(settings: Settings) -> None:
    quick = fast(settings, publisher_lease_seconds=2.0, publisher_send_timeout_seconds=0.5)
    async with (
        fake_networks() as nets,
        replica(quick, "doomed") as doomed,
        replica(quick, "survivor") as survivor,
    ):
        channels = [await add_channel(doomed, nets, p) for p in ("x", "mastodon", "bluesky")]
        ids = [f"crash-{c}-{i}" for c in channels for i in range(3)]
        for post_id in ids:
            await doomed.calendar.create(
                request(post_id, post_id.split("-", 1)[1].rsplit("-", 1)[0])
            )
        for platform in ("x", "mastodon", "bluesky"):
            nets.state.script(platform, *[{"hang_after_create": 30}] * 3)
        dying = asyncio.create_task(doomed.dispatcher.run_once())
        await eventually(lambda: _created_count(nets), lambda n: n == len(ids), timeout=10)
        dying.cancel()  # the replica dies after the networks created the posts
        await asyncio.gather(dying, return_exceptions=True)
        stuck = [await survivor.post(i) for i in ids]
        assert {p["status"] for p in stuck} == {"publishing"}
        assert await survivor.dispatcher.run_once() == 0  # the lease still holds
        await asyncio.sleep(2.1)  # the lease expires
        await eventually(lambda: _all_published(survivor, ids), lambda done: done, timeout=20)
        by_key = nets.state.by_key()
        reconciled = [await survivor.post(i) for i in ids]
    assert len(nets.state.created) == len(ids)
    assert all(count == 1 for count in by_key.values())
    assert {p["status"] for p in reconciled} == {"published"}
    assert {p["native_post_id"] for p in reconciled} >= {
        c.native_id for c in nets.state.created_on("x")
    }


async def _created_count(nets: FakeNetworks) -> int:
    return len(nets.state.created)


async def _all_published(r: Replica, ids: list[str]) -> bool:
    await r.dispatcher.run_once()
    statuses = [(await r.post(i))["status"] for i in ids]
    return all(status == "published" for status in statuses)


async def test_cancel_wins_over_a_due_post_and_a_cancelled_post_is_never_sent(
    settings: Settings,
) -> None:
    async with fake_networks(latency=0.01) as nets, replica(fast(settings), "r1") as r:
        channel = await add_channel(r, nets, "mastodon")
        await r.calendar.create(request("due-cancel", channel))
        await r.calendar.cancel("due-cancel", "Produkt zurückgerufen", "tester")
        await drain(r)
        assert (await r.post("due-cancel"))["status"] == "cancelled"
        assert nets.state.created == []
        # A race: cancels and a scheduler round on 30 due posts at the same time.
        ids = [f"race-{i}" for i in range(30)]
        for post_id in ids:
            await r.calendar.create(request(post_id, channel))

        async def cancel(post_id: str) -> str:
            try:
                return str((await r.calendar.cancel(post_id, "", "tester"))["status"])
            except DomainError as exc:
                return "too-late" if exc.status == 409 else f"error {exc.status}"

        _, *answers = await asyncio.gather(r.dispatcher.run_once(), *(cancel(i) for i in ids))
        await drain(r)
        sent = {c.key for c in nets.state.created}
        final = {i: (await r.post(i))["status"] for i in ids}
    for post_id, answer in zip(ids, answers, strict=True):
        assert answer == ("cancelled" if final[post_id] == "cancelled" else "too-late")
    for post_id, status in final.items():
        if status == "cancelled":
            assert post_id not in sent
        else:
            assert status == "published"
            assert post_id in sent
    assert "cancelled" in r.statuses(ids[0]) or "published" in r.statuses(ids[0])


async def test_401_parks_the_channel_keeps_its_posts_and_resumes_after_reauth(
    settings: Settings,
) -> None:
    async with fake_networks() as nets, replica(fast(settings), "r1") as r:
        channel = await add_channel(r, nets, "x", credential_ref=f"env:{EXPIRED_ENV}")
        for i in range(3):
            await r.calendar.create(request(f"held-{i}", channel))
        await drain(r)
        parked = await r.channel_store.get(channel)
        assert parked is not None
        assert parked["state"] == "needs_reauth"
        held = [await r.post(f"held-{i}") for i in range(3)]
        assert {p["status"] for p in held} == {"scheduled"}  # not failed, not lost
        assert {p["error"]["code"] for p in held} == {"auth_expired"}
        assert await r.dispatcher.run_once() == 0  # a parked channel is skipped
        assert nets.state.created == []
        with pytest.raises(DomainError) as missing:
            await r.channels.reauthorise(channel, "env:SMM_CHANNEL_SECRET_TEST_NOT_SET")
        assert missing.value.code == "credential_missing"
        await r.channels.reauthorise(channel, f"env:{TOKEN_ENV}")
        await drain(r)
        resumed = [await r.post(f"held-{i}") for i in range(3)]
    assert {p["status"] for p in resumed} == {"published"}
    assert len(nets.state.created_on("x")) == 3


async def test_retryable_failures_end_in_a_clear_failure_after_max_attempts(
    settings: Settings,
) -> None:
    async with (
        fake_networks() as nets,
        replica(fast(settings, publisher_max_attempts=2), "r1") as r,
    ):
        channel = await add_channel(r, nets, "linkedin")
        await r.calendar.create(request("down-1", channel))
        nets.state.script("linkedin", {"status": 500}, {"status": 500})
        await eventually(
            lambda: _run_and_get(r, "down-1"), lambda p: p["status"] == "failed", timeout=20
        )
        post = await r.post("down-1")
    assert post["error"]["code"] == "http_500"
    assert "gave up after 2 attempts" in post["error"]["message"]
    assert r.statuses("down-1")[-1] == "failed"


async def test_channel_rate_limit_spreads_sends_over_windows(settings: Settings) -> None:
    async with fake_networks() as nets, replica(fast(settings), "r1") as r:
        channel = await add_channel(
            r, nets, "mastodon", rate_limit={"max_posts": 2, "per_seconds": 2}
        )
        for i in range(5):
            await r.calendar.create(request(f"rl-{i}", channel))
        await r.dispatcher.run_once()
        assert len(nets.state.created) == 2
        released = [await r.post(f"rl-{i}") for i in range(5)]
        assert sorted(p["status"] for p in released).count("scheduled") == 3
        await eventually(lambda: _published_count(r, 5), lambda n: n == 5, timeout=20)
        times = sorted(c.received_at for c in nets.state.created)
    assert times[4] - times[0] >= 2.0  # five posts at two per two seconds need three windows


async def _published_count(r: Replica, n: int) -> int:
    await r.dispatcher.run_once()
    statuses = [(await r.post(f"rl-{i}"))["status"] for i in range(n)]
    return statuses.count("published")


async def test_replies_go_to_the_mentioned_post(settings: Settings) -> None:
    async with fake_networks() as nets, replica(fast(settings), "r1") as r:
        for platform, mention in (
            ("mastodon", "mastodon:110"),
            ("x", "x:220"),
            ("bluesky", "bluesky:did:plc:fan/parent1"),
            ("facebook", "facebook:330_1"),
        ):
            channel = await add_channel(r, nets, platform)
            await r.calendar.create(
                request(
                    f"reply-{platform}", channel, publish_at=None, in_reply_to_mention_id=mention
                )
            )
        with pytest.raises(DomainError) as mismatch:
            await r.calendar.create(
                request(
                    "reply-wrong", "x-main", publish_at=None, in_reply_to_mention_id="mastodon:1"
                )
            )
        assert mismatch.value.code == "reply_platform_mismatch"
        await drain(r)
    replies = {c.platform: c.reply_to for c in nets.state.created}
    assert replies == {
        "mastodon": "110",
        "x": "220",
        "bluesky": "at://did:plc:fan/app.bsky.feed.post/parent1",
        "facebook": "330_1",
    }


async def test_recurring_series_creates_instances_with_deterministic_ids(
    settings: Settings,
) -> None:
    async with fake_networks() as nets, replica(fast(settings), "r1") as r:
        channel = await add_channel(r, nets, "generic")
        await r.calendar.create(
            request(
                "tipps",
                channel,
                publish_at=None,
                rrule="FREQ=SECONDLY;INTERVAL=1;COUNT=3",
                timezone="Europe/Berlin",
            )
        )
        await eventually(lambda: _series_done(r, "tipps"), lambda n: n == 3, timeout=20)
        instances = await r.posts.search({"series_id": "tipps"}, None, 10)
        series = await r.post("tipps")
    assert [p["_id"].split("@")[0] for p in instances] == ["tipps"] * 3
    assert all(
        p["_id"] == f"tipps@{p['scheduled_for'].strftime('%Y%m%dT%H%M%SZ')}" for p in instances
    )
    assert series["status"] == "published"
    assert series["ended"] is True
    assert len(nets.state.created) == 3


async def _series_done(r: Replica, series_id: str) -> int:
    await r.dispatcher.run_once()
    found = await r.posts.search({"series_id": series_id, "status": "published"}, None, 10)
    return len(found)


async def test_add_to_queue_takes_the_next_free_slot_in_the_channels_timezone(
    settings: Settings,
) -> None:
    async with fake_networks() as nets, replica(fast(settings), "r1") as r:
        slots = [{"weekday": day, "time": "09:30"} for day in ("mon", "wed", "fri")]
        channel = await add_channel(r, nets, "mastodon", slots=slots)
        queued = []
        for i in range(4):
            post, _ = await r.calendar.create(request(f"q-{i}", channel, publish_at=None))
            queued.append(post["scheduled_for"])
        await r.calendar.cancel("q-1", "", "tester")
        refill, _ = await r.calendar.create(request("q-4", channel, publish_at=None))
    berlin = [t.astimezone(ZoneInfo("Europe/Berlin")) for t in queued]
    assert all((t.hour, t.minute) == (9, 30) for t in berlin)
    assert [t.strftime("%a") for t in berlin][:3] in (
        ["Mon", "Wed", "Fri"],
        ["Wed", "Fri", "Mon"],
        ["Fri", "Mon", "Wed"],
    )
    assert len(set(queued)) == 4
    assert queued == sorted(queued)
    assert refill["scheduled_for"] == queued[1]  # the cancelled post's slot is free again
