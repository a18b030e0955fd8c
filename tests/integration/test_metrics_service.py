"""The metrics service in-process on the real broker and database: API validation, spike
alerts emitted once across a restart, scheduled KPI snapshots, Prometheus gauges."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.metrics.app import build_app
from shared.events import Alert, KpiSnapshot
from shared.metrics import registry
from shared.settings import Settings
from shared.topics import ALERTS, KPI, MENTIONS_CLASSIFIED, topic_name
from tests.integration.helpers import consume, eventually, produce, running
from tests.metrics_dataset import classified

pytestmark = pytest.mark.integration

#: Reads need a token with the `read` scope (SMM_PROTECT_READS is on by default).
ADMIN = {"Authorization": "Bearer test-admin-token"}


@asynccontextmanager
async def metrics(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(settings)
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://metrics", headers=ADMIN
        ) as client:
            yield client


async def add_tracker(settings: Settings, tracker_id: str, group: str | None) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongodb_uri.get_secret_value()
    )
    try:
        await client[settings.mongodb_database]["ingest_trackers"].insert_one(
            {"_id": tracker_id, "id": tracker_id, "name": tracker_id, "group": group}
        )
    finally:
        await client.close()


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert "details" in error


async def test_kpi_api_validates_window_tracker_and_bucket(settings: Settings) -> None:
    await add_tracker(settings, "brand", "coffee")
    async with metrics(settings) as client:
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        ok = {"tracker_id": "brand", "from": (now - timedelta(days=1)).isoformat()}
        ok["to"] = now.isoformat()
        answer = await client.get("/v1/kpis", params=ok)
        assert answer.status_code == 200, answer.text
        assert answer.json()["from"] == ok["from"].replace("+00:00", "Z")
        assert answer.json()["mention_volume"] == 0
        assert answer.json()["share_of_voice"] is None

        reversed_window = {**ok, "from": ok["to"], "to": ok["from"]}
        assert_error(await client.get("/v1/kpis", params=reversed_window), 422, "invalid_window")
        assert_error(
            await client.get("/v1/kpis", params={**ok, "from": ok["to"]}), 422, "invalid_window"
        )
        naive = {**ok, "from": "2026-01-01T00:00:00"}
        assert_error(await client.get("/v1/kpis", params=naive), 422, "invalid_request")
        too_long = {**ok, "from": (now - timedelta(days=401)).isoformat()}
        assert_error(await client.get("/v1/kpis", params=too_long), 422, "window_too_long")
        assert_error(
            await client.get("/v1/kpis", params={**ok, "tracker_id": "nobody"}),
            404,
            "unknown_tracker",
        )
        assert_error(
            await client.get("/v1/kpis", params={**ok, "tracker_id": "$where"}),
            422,
            "invalid_request",
        )
        assert_error(
            await client.get("/v1/kpis", params={"tracker_id": "brand"}), 422, "invalid_request"
        )

        series = await client.get("/v1/kpis/timeseries", params={**ok, "bucket": "hour"})
        assert series.status_code == 200
        assert len(series.json()["points"]) == 24
        assert_error(
            await client.get("/v1/kpis/timeseries", params={**ok, "bucket": "week"}),
            422,
            "invalid_request",
        )
        unaligned = {**ok, "from": (now - timedelta(hours=5, minutes=3)).isoformat()}
        assert_error(
            await client.get("/v1/kpis/timeseries", params=unaligned), 422, "unaligned_window"
        )
        assert_error(await client.get("/v1/alerts", params={"limit": 0}), 422, "invalid_request")


async def test_negative_spike_alert_once_per_tracker_and_hour_across_a_restart(
    settings: Settings,
) -> None:
    settings = settings.model_copy(
        update={"metrics_alert_interval_seconds": 0.3, "metrics_kpi_interval_seconds": 0.5}
    )
    # The registry is this process's: other tests' services may have counted alerts already.
    spikes = {"kind": "negative_spike", "tracker": "brand"}
    spikes_before = registry.get_sample_value("smm_alerts_emitted_total", spikes) or 0.0
    await add_tracker(settings, "brand", "coffee")
    await add_tracker(settings, "rival", "coffee")
    rng = random.Random(3)
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    version = now - timedelta(days=9)
    mentions = []
    number = 0
    for back in range(1, 169):  # a quiet week: 0 to 2 negative mentions an hour
        for _ in range(back % 3):
            number += 1
            created = hour - timedelta(hours=back) + timedelta(minutes=rng.randint(0, 59))
            mentions.append(
                classified(rng, number, created, ["brand"], ("x", "a", 5), version, "negative")
            )
    for _ in range(12):  # then twelve in the current hour
        number += 1
        created = hour + (now - hour) * rng.random()
        mentions.append(
            classified(rng, number, created, ["brand"], ("x", "b", 9), version, "negative")
        )
    for _ in range(4):  # and a competitor, calm
        number += 1
        mentions.append(
            classified(rng, number, now - timedelta(hours=2), ["rival"], ("x", "c", 1), version)
        )
    topic = topic_name(MENTIONS_CLASSIFIED, settings)
    await produce(
        settings.kafka_bootstrap_servers,
        topic,
        [(m.mention_id.encode(), m.to_bytes()) for m in mentions],
    )
    alerts_topic = topic_name(ALERTS, settings)
    async with metrics(settings) as client:
        records = await consume(settings.kafka_bootstrap_servers, alerts_topic, 1, timeout=60)
        assert len(records) == 1
        alert = Alert.model_validate_json(records[0].value)
        assert alert.tracker_id == "brand"
        assert alert.kind == "negative_spike"
        assert alert.observed == 12
        assert alert.threshold == 10
        assert alert.window_start == hour

        listed = (await client.get("/v1/alerts", params={"tracker_id": "brand"})).json()
        assert [a["event_id"] for a in listed["alerts"]] == [str(alert.event_id)]

        async def latest_snapshots() -> dict[str, KpiSnapshot]:
            records = await consume(
                settings.kafka_bootstrap_servers, topic_name(KPI, settings), 10_000, timeout=1
            )
            snapshots = (KpiSnapshot.model_validate_json(r.value) for r in records)
            return {s.tracker_id: s for s in snapshots}  # the latest per tracker

        def volume_in(snapshot: KpiSnapshot, tracker_id: str) -> int:
            return sum(
                1
                for m in mentions
                if tracker_id in m.tracker_ids
                and snapshot.window_from <= m.created_at < snapshot.window_to
            )

        by_tracker = await eventually(
            latest_snapshots,
            lambda s: all(
                t in s and s[t].mention_volume == volume_in(s[t], t) for t in ("brand", "rival")
            ),
        )
        brand, rival = by_tracker["brand"], by_tracker["rival"]
        assert rival.mention_volume == 4
        assert rival.share_of_voice == pytest.approx(100 * 4 / (4 + brand.mention_volume))
        assert brand.group == "coffee"

        async def scrape() -> str:
            return (await client.get("/metrics")).text

        text = await eventually(scrape, lambda t: 'smm_kpi_mention_volume{tracker="brand"}' in t)
        line = 'smm_alerts_emitted_total{kind="negative_spike",tracker="brand"} '
        assert f"{line}{spikes_before + 1}" in text
        assert "smm_consumer_lag_messages{" in text
        assert 'smm_mentions_total{sentiment="negative",tracker="brand"}' in text
        await asyncio.sleep(1.0)  # several more checks in this hour

    async with metrics(settings):  # a restart (or a second replica) must not emit it again
        await asyncio.sleep(1.5)
    records = await consume(settings.kafka_bootstrap_servers, alerts_topic, 2, timeout=3)
    assert len(records) == 1
