"""The four backend services as processes (`python -m services.<name>`) on the real servers.

Each must come up, report ready, export metrics and its AsyncAPI document; a mention accepted
by ingest must reach moderation through Kafka. SIGTERM must stop each one cleanly.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from shared.settings import BACKEND_NAMES, Settings
from tests.processes import TOKEN, service_processes

pytestmark = pytest.mark.integration

#: The console (the fifth of SERVICE_NAMES) is not started here: it documents no AsyncAPI
#: channels of its own and needs the backends' URLs and its act_as token. Run it here too once
#: its process test is written (tests/integration for the console), and switch to SERVICE_NAMES.
SERVICES = BACKEND_NAMES


@pytest.fixture
def service_urls(settings: Settings, tmp_path: Path) -> Iterator[dict[str, str]]:
    with service_processes(settings, tmp_path, SERVICES) as group:
        yield {name: group.url(name) for name in SERVICES}
        codes = {name: group[name].stop() for name in SERVICES}
    for name, code in codes.items():
        # uvicorn re-raises SIGTERM after a graceful shutdown, so -15 is a clean exit too.
        assert code in (0, -signal.SIGTERM), group[name].tail()
        assert '"service stopped"' in group[name].tail(), group[name].tail()


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
    headers = {"Authorization": f"Bearer {TOKEN}"}
    tracker = {"id": "velora", "name": "Velora", "query": 'velora OR "velora cargo"'}
    created = httpx.post(service_urls["ingest"] + "/v1/trackers", json=tracker, headers=headers)
    assert created.status_code == 201, created.text
    accepted = httpx.post(
        service_urls["ingest"] + "/v1/mentions", json=[mention], headers=headers
    ).json()
    assert accepted["mention_ids"] == ["bluesky:3kq2"]

    deadline = time.monotonic() + 45
    while True:
        response = httpx.get(
            service_urls["moderation"] + "/v1/mentions/bluesky:3kq2", headers=headers
        )
        if response.status_code == 200:
            break
        assert time.monotonic() < deadline, response.text
        time.sleep(0.3)
    assert response.json()["text"] == mention["text"]
    assert response.json()["source"] == "api"
    assert response.json()["tracker_ids"] == ["velora"]
