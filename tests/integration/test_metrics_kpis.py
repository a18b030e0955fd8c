"""Done-when test of the metrics service: every KPI equals an independent computation.

The metrics service runs as a separate process on the real broker and database. It is killed
(SIGKILL) while it consumes, restarted, and fed the rest (with redeliveries of what it saw);
then every KPI for several trackers and windows (day-aligned, hour-aligned, unaligned, short)
must equal the values computed in plain Python from the raw events.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from shared.events import Event
from shared.local.servers import LOCAL_SERVICE_ENV, free_port
from shared.settings import Settings
from shared.topics import (
    ENGAGEMENT,
    MENTIONS_CLASSIFIED,
    MODERATION_DECISIONS,
    POSTS_EVENTS,
    topic_name,
)
from tests.integration.helpers import produce
from tests.metrics_dataset import (
    CHANNEL_TRACKERS,
    GROUPS,
    comparable,
    expected_kpis,
    generate,
    rounded,
)

pytestmark = pytest.mark.integration

#: The `settings` fixture's admin token: reads need one (SMM_PROTECT_READS is on by default).
AUTH = {"Authorization": "Bearer test-admin-token"}


class MetricsProcess:
    """`python -m services.metrics` with the test's settings; can be killed and restarted."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._logs = logs
        self._process: subprocess.Popen[bytes] | None = None
        self._runs = 0
        self._env = {
            **os.environ,
            "SMM_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "SMM_MONGODB_URI": settings.mongodb_uri.get_secret_value(),
            "SMM_MONGODB_DATABASE": settings.mongodb_database,
            "SMM_TOPIC_PREFIX": settings.topic_prefix,
            "SMM_TOPIC_PARTITIONS": "2",
            **LOCAL_SERVICE_ENV,
            "SMM_METRICS_PORT": str(self.port),
            "SMM_ADMIN_TOKEN": AUTH["Authorization"].removeprefix("Bearer "),
            "SMM_METRICS_BATCH_SIZE": "40",
            "SMM_METRICS_CHANNEL_TRACKERS": json.dumps(CHANNEL_TRACKERS),
            "SMM_METRICS_KPI_INTERVAL_SECONDS": "3600",
            "SMM_METRICS_ALERT_INTERVAL_SECONDS": "3600",
            "SMM_LOG_FORMAT": "json",
        }

    def start(self) -> None:
        self._runs += 1
        log = (self._logs / f"metrics-{self._runs}.log").open("wb")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "services.metrics"], env=self._env, stdout=log, stderr=log
        )
        deadline = time.monotonic() + 90
        while True:
            if self._process.poll() is not None:
                raise AssertionError(self.log_tail())
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("metrics not ready: " + self.log_tail())
            time.sleep(0.3)

    def kill(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        self._process.wait(timeout=10)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            self._process.wait(timeout=30)

    def log_tail(self) -> str:
        return (self._logs / f"metrics-{self._runs}.log").read_text()[-3000:]


@pytest.fixture
def metrics_process(settings: Settings, tmp_path: Path) -> Iterator[MetricsProcess]:
    process = MetricsProcess(settings, tmp_path)
    try:
        yield process
    finally:
        process.stop()


def _messages(events: list[Any], key: str) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    for event in events:
        assert isinstance(event, Event)
        k = getattr(event, key) or getattr(event, "mention_id", None) or ""
        out.append((k.encode(), event.to_bytes()))
    return out


async def _trackers(settings: Settings) -> None:
    """The trackers and groups, as ingest stores them (metrics reads `ingest_trackers`)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongodb_uri.get_secret_value()
    )
    try:
        await client[settings.mongodb_database]["ingest_trackers"].insert_many(
            [{"_id": t, "id": t, "name": t, "query": t, "group": g} for t, g in GROUPS.items()]
        )
    finally:
        await client.close()


async def _aggregated_count(settings: Settings) -> int:
    """Mentions aggregated so far (each new one is listed in the directory)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongodb_uri.get_secret_value()
    )
    try:
        db = client[settings.mongodb_database]
        return len({i async for doc in db["metrics_directory"].find({}) for i in doc["ids"]})
    finally:
        await client.close()


def _windows(now: datetime, around: datetime) -> list[tuple[datetime, datetime]]:
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    hour = now.replace(minute=0, second=0, microsecond=0)
    return [
        (now - timedelta(days=11), now + timedelta(hours=1)),  # everything
        (day - timedelta(days=6), day - timedelta(days=1)),  # whole days
        (hour - timedelta(hours=40), hour - timedelta(hours=3)),  # whole hours across days
        (now - timedelta(days=4, minutes=17), now - timedelta(days=1, seconds=-41)),  # unaligned
        (around - timedelta(minutes=13), around + timedelta(minutes=31)),  # < 1 hour
        (day - timedelta(days=8, hours=5), day - timedelta(days=7)),
    ]


def _kpis(url: str, tracker: str, start: datetime, end: datetime) -> dict[str, Any]:
    response = httpx.get(
        url + "/v1/kpis",
        params={"tracker_id": tracker, "from": start.isoformat(), "to": end.isoformat()},
        headers=AUTH,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_every_kpi_matches_an_independent_computation_across_a_kill(
    settings: Settings, metrics_process: MetricsProcess
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    data = generate(now)
    await _trackers(settings)
    half = len(data.mentions) // 2

    async def send_mentions(part: list[Any]) -> None:
        await produce(
            settings.kafka_bootstrap_servers,
            topic_name(MENTIONS_CLASSIFIED, settings),
            _messages(part, "mention_id"),
        )

    metrics_process.start()
    await send_mentions(data.mentions[:half])
    # Kill it while it is consuming: some batches are done, others are not.
    deadline = time.monotonic() + 60
    while await _aggregated_count(settings) == 0:
        assert time.monotonic() < deadline, metrics_process.log_tail()
        await asyncio.sleep(0.05)
    metrics_process.kill()
    assert await _aggregated_count(settings) < len({m.mention_id for m in data.mentions})

    metrics_process.start()
    # The rest, plus a redelivery of a slice it has already seen.
    await send_mentions(data.mentions[half:] + data.mentions[: half // 3])
    bootstrap = settings.kafka_bootstrap_servers
    await produce(bootstrap, topic_name(POSTS_EVENTS, settings), _messages(data.posts, "post_id"))
    await produce(
        bootstrap,
        topic_name(MODERATION_DECISIONS, settings),
        _messages(data.decisions, "mention_id"),
    )
    await produce(
        bootstrap, topic_name(ENGAGEMENT, settings), _messages(data.engagement, "post_id")
    )

    brand_mention = next(m for m in data.mentions if m.tracker_ids == ["brand"])
    windows = _windows(now, brand_mention.created_at)
    whole = windows[0]
    expected_whole = {t: rounded(expected_kpis(data, t, *whole)) for t in GROUPS}
    deadline = time.monotonic() + 120
    while True:
        actual = {t: comparable(_kpis(metrics_process.url, t, *whole)) for t in GROUPS}
        if actual == expected_whole:
            break
        if time.monotonic() > deadline:
            assert actual == expected_whole, metrics_process.log_tail()
        await asyncio.sleep(0.5)

    for start, end in windows[1:]:
        for tracker in GROUPS:
            expected = rounded(expected_kpis(data, tracker, start, end))
            actual_kpis = comparable(_kpis(metrics_process.url, tracker, start, end))
            assert actual_kpis == expected, (tracker, start, end)

    # The daily series adds up to the whole-days window.
    first, last = windows[1]
    series = httpx.get(  # noqa: ASYNC210 (the service is another process)
        metrics_process.url + "/v1/kpis/timeseries",
        params={
            "tracker_id": "brand",
            "from": first.isoformat(),
            "to": last.isoformat(),
            "bucket": "day",
        },
        headers=AUTH,
        timeout=30,
    ).json()
    assert len(series["points"]) == 5
    for point in series["points"]:
        start = datetime.fromisoformat(point["start"])
        expected = expected_kpis(data, "brand", start, start + timedelta(days=1))
        assert point["mention_volume"] == expected["mention_volume"]
        assert point["potential_reach"] == expected["potential_reach"]
        assert point["sentiment"] == expected["sentiment"]
