"""The four services as separate processes (`python -m services.<name>`) on the real servers.

Each must come up, report ready, export metrics and its AsyncAPI document; a mention accepted
by ingest must reach moderation through Kafka. SIGTERM must stop each one cleanly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from shared.local.servers import free_port
from shared.settings import SERVICE_NAMES, Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def service_urls(settings: Settings, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "SMM_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "SMM_MONGODB_URI": settings.mongodb_uri.get_secret_value(),
        "SMM_MONGODB_DATABASE": settings.mongodb_database,
        "SMM_TOPIC_PREFIX": settings.topic_prefix,
        "SMM_TOPIC_PARTITIONS": "2",
        "SMM_ADMIN_TOKEN": "process-test-token",
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}
    urls: dict[str, str] = {}
    for name in SERVICE_NAMES:
        port = free_port()
        env[f"SMM_{name.upper()}_PORT"] = str(port)
        urls[name] = f"http://127.0.0.1:{port}"
    for name in SERVICE_NAMES:
        log = (tmp_path / f"{name}.log").open("wb")
        processes[name] = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"], env=env, stdout=log, stderr=log
        )
    try:
        _wait_ready(urls, processes, tmp_path)
        yield urls
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for service, process in processes.items():
            # uvicorn re-raises SIGTERM after a graceful shutdown, so -15 is a clean exit too.
            code = process.wait(timeout=30)
            log_text = (tmp_path / f"{service}.log").read_text()
            assert code in (0, -signal.SIGTERM), log_text[-3000:]
            assert '"service stopped"' in log_text, log_text[-3000:]


def _wait_ready(
    urls: dict[str, str], processes: dict[str, subprocess.Popen[bytes]], logs: Path
) -> None:
    deadline = time.monotonic() + 90
    pending = set(urls)
    while pending:
        for name in list(pending):
            if processes[name].poll() is not None:
                raise AssertionError((logs / f"{name}.log").read_text()[-3000:])
            try:
                if httpx.get(urls[name] + "/readyz", timeout=2).status_code == 200:
                    pending.discard(name)
            except httpx.HTTPError:
                pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not ready: {pending}")
        time.sleep(0.3)


def test_services_run_as_processes_and_talk_through_kafka(service_urls: dict[str, str]) -> None:
    for name, url in service_urls.items():
        assert httpx.get(url + "/healthz").json()["service"] == name
        ready = httpx.get(url + "/readyz").json()
        assert ready["checks"] == {"mongodb": "ok", "kafka": "ok"}
        metrics = httpx.get(url + "/metrics").text
        assert f'smm_build_info{{service="{name}",version=' in metrics
        spec = httpx.get(url + "/asyncapi.json").json()
        assert spec["channels"], f"{name} documents no channels"

    mention = {
        "platform": "bluesky",
        "native_id": "3kq2",
        "text": "Mein Velora Cargo hat heute 80 km geschafft",
        "author": {"id": "did:plc:abc", "handle": "rad.example", "followers": 310},
        "created_at": datetime.now(UTC).isoformat(),
    }
    headers = {"Authorization": "Bearer process-test-token"}
    tracker = {"id": "velora", "name": "Velora", "query": 'velora OR "velora cargo"'}
    created = httpx.post(service_urls["ingest"] + "/v1/trackers", json=tracker, headers=headers)
    assert created.status_code == 201, created.text
    accepted = httpx.post(
        service_urls["ingest"] + "/v1/mentions", json=[mention], headers=headers
    ).json()
    assert accepted["mention_ids"] == ["bluesky:3kq2"]

    deadline = time.monotonic() + 45
    while True:
        response = httpx.get(service_urls["moderation"] + "/v1/mentions/bluesky:3kq2")
        if response.status_code == 200:
            break
        assert time.monotonic() < deadline, response.text
        time.sleep(0.3)
    assert response.json()["text"] == mention["text"]
    assert response.json()["source"] == "api"
    assert response.json()["tracker_ids"] == ["velora"]
