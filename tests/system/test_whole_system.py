"""The four services together, as separate processes on the real broker and database.

`test_end_to_end` runs the marketing afternoon of `scenario.py` undisturbed. `test_chaos` runs
the same afternoon on a broker whose data survives restarts (Tansu on a local S3 server) while
moderation, metrics, one of two publisher replicas and the broker itself are killed at random
moments and restarted: the final KPIs, review items and published posts must be exactly what
the undisturbed run gives (the expectation is computed, not recorded), nothing lost, nothing
counted or posted twice, and the malformed message must sit in its `.dlq` topic with a reason.

`SMM_CHAOS_KILLS` sets how many kills the chaos test makes (default 4; the long CI run more).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.kafka import create_missing_topics
from shared.local.servers import (
    ManagedProcess,
    create_bucket,
    durable_kafka_process,
    free_port,
    s3_process,
)
from shared.topics import ENGAGEMENT, topic_name
from tests.conftest import LocalServers, isolated_settings
from tests.integration.helpers import consume, eventually
from tests.processes import TOKEN, ServiceProcesses, service_processes
from tests.system.scenario import (
    CHANNEL,
    CHANNEL_TOKEN_NAME,
    MASTODON_WEBHOOK_SECRET,
    TRACKERS,
    Scenario,
    Urls,
    differences,
)

pytestmark = pytest.mark.integration

SERVICES = ["ingest", "moderation", "publisher", "publisher#2", "metrics"]
KILLS = int(os.environ.get("SMM_CHAOS_KILLS", "4"))


def _env() -> dict[str, str]:
    return {
        "SMM_MASTODON_WEBHOOK_SECRET": MASTODON_WEBHOOK_SECRET,
        "SMM_PUBLISHER_CREDENTIALS": json.dumps({CHANNEL_TOKEN_NAME: "e2e-mastodon-token"}),
        "SMM_PUBLISHER_LEASE_SECONDS": "20",
        "SMM_PUBLISHER_SEND_TIMEOUT_SECONDS": "5",
        "SMM_METRICS_CHANNEL_TRACKERS": json.dumps({CHANNEL: ["roestwerk"]}),
        "SMM_MODERATION_LEASE_SECONDS": "60",
    }


@contextmanager
def fake_networks(logs: Path) -> Iterator[str]:
    """The publisher's fake networks (tests/fakes/platforms.py) as a process of their own."""
    port = free_port()
    argv = [sys.executable, "-m", "tests.fakes.platforms", "--port", str(port)]
    process = ManagedProcess("fake networks", argv, "127.0.0.1", port, logs / "fake-networks.log")
    process.start()
    try:
        process.wait_port(30)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


def _urls(group: ServiceProcesses) -> Urls:
    return Urls(
        ingest=group.url("ingest"),
        moderation=group.url("moderation"),
        publisher=group.url("publisher"),
        metrics=group.url("metrics"),
    )


async def _run_afternoon(scenario: Scenario, client: httpx.AsyncClient) -> None:
    await scenario.configure(client)
    accepted = await scenario.send_mentions(client)
    assert len(accepted) == 15, accepted
    await scenario.await_classified(client, accepted)
    await scenario.answer_one_complaint(client)
    await scenario.schedule_posts(client)
    await scenario.await_published(client)
    await scenario.send_engagement()


async def _assert_outcome(scenario: Scenario, client: httpx.AsyncClient, fake: str) -> None:
    """KPIs equal the computed expectation; each post sent once; review items complete."""
    brand = scenario.expected("roestwerk")  # the comparison below must not be a trivial one
    assert brand["mention_volume"] >= 7, brand
    assert brand["engagements"] > 0, brand
    assert brand["response_time_seconds"]["avg"] is not None, brand
    assert brand["follower_growth"]["absolute"] == 15, brand
    assert 0 < brand["share_of_voice"] < 100, brand
    for tracker in TRACKERS:
        expected = scenario.expected(tracker["id"])

        async def probe(tracker_id: str = tracker["id"]) -> dict[str, Any] | None:
            return await scenario.kpis(client, tracker_id)

        def matches(served: dict[str, Any] | None, want: dict[str, Any] = expected) -> bool:
            return not differences(served, want)

        await eventually(probe, matches, timeout=120)
    created = (await client.get(f"{fake}/_fake/created")).json()["items"]
    keys = [key for platform, key, _ in created if platform == "mastodon"]
    assert len(keys) == len(set(keys)) == 3, created
    routed = [m for m in scenario.observed.mentions.values() if m["action"] == "review"]
    queue = await client.get(
        f"{scenario.urls.moderation}/v1/review", params={"status": "all", "limit": 200}
    )
    queued = [item["mention_id"] for item in queue.json()["items"]]
    assert sorted(queued) == sorted(m["mention_id"] for m in routed)
    hidden = [m for m in scenario.observed.mentions.values() if m["action"] == "hide"]
    assert all(m["classification"]["sentiment"] != "negative" for m in hidden)
    dead = await consume(
        scenario.settings.kafka_bootstrap_servers,
        topic_name(ENGAGEMENT, scenario.settings) + ".dlq",
        1,
        timeout=30,
    )
    assert dead, "the malformed engagement message is not in the dead-letter topic"
    headers = dict(dead[0].headers)
    assert b"likes" in headers["x-error"], headers


@asynccontextmanager
async def _client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


async def test_end_to_end(servers: LocalServers, tmp_path: Path) -> None:
    settings = isolated_settings(servers)
    with (
        fake_networks(tmp_path) as fake,
        service_processes(settings, tmp_path, SERVICES, _env()) as group,
    ):
        scenario = Scenario(_urls(group), settings, TOKEN, fake)
        async with _client() as client:
            await _run_afternoon(scenario, client)
            await _assert_outcome(scenario, client, fake)


@contextmanager
def durable_broker(logs: Path) -> Iterator[tuple[ManagedProcess, ManagedProcess]]:
    s3_port, kafka_port = free_port(), free_port()
    s3 = s3_process("127.0.0.1", s3_port, logs / "s3.log")
    s3.start()
    s3.wait_port(60)
    create_bucket("127.0.0.1", s3_port)
    kafka = durable_kafka_process("127.0.0.1", kafka_port, s3_port, logs / "kafka.log")
    kafka.start()
    kafka.wait_port(30)
    try:
        yield s3, kafka
    finally:
        kafka.stop()
        s3.stop()


async def test_chaos(servers: LocalServers, tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("SMM_CHAOS_SEED", "20261122")))
    with durable_broker(tmp_path) as (_, kafka):
        settings = isolated_settings(servers).model_copy(
            update={"kafka_bootstrap_servers": f"127.0.0.1:{kafka.port}"}
        )
        await create_missing_topics(settings)
        with (
            fake_networks(tmp_path) as fake,
            service_processes(settings, tmp_path, SERVICES, _env()) as group,
        ):
            scenario = Scenario(_urls(group), settings, TOKEN, fake)
            stop = asyncio.Event()
            kills: list[str] = []

            async def killer() -> None:
                victims = ["moderation", "metrics", rng.choice(["publisher", "publisher#2"])]
                plan = [victims[n % len(victims)] for n in range(KILLS)] + ["broker"]
                rng.shuffle(plan)
                for victim in plan:
                    await asyncio.sleep(rng.uniform(2.0, 6.0))
                    if stop.is_set():
                        return
                    kills.append(victim)
                    if victim == "broker":
                        kafka.stop(timeout=0.1)
                        await asyncio.sleep(1)
                        kafka.start()
                        await asyncio.to_thread(kafka.wait_port, 30)
                    else:
                        await asyncio.to_thread(group.restart, victim)

            chaos = asyncio.create_task(killer())
            try:
                async with _client() as client:
                    await _run_afternoon(scenario, client)
                    await chaos  # every planned kill happens, even if the afternoon was quick
                    await _assert_outcome(scenario, client, fake)
            finally:
                stop.set()
                chaos.cancel()
            assert len(kills) == KILLS + 1, kills
