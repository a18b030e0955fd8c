"""The local stack twice on the same data folder: nothing posted after the restart is lost.

The local Kafka (Tansu in memory) starts empty every time, while MongoDB keeps its data in the
folder: the topics begin again at offset 0, below the offsets the metrics service had applied.
Each KPI after each run is compared with values computed here from what moderation stored
for every mention posted (its action, sentiment and author), not from the metrics service.
"""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.local.demo_corpus import DEMO_TRACKERS, generate_mentions
from shared.local.servers import free_port
from tests.integration.test_local_stack import _smm

pytestmark = pytest.mark.integration

TRACKER_GROUPS = {tracker["id"]: tracker.get("group") for tracker in DEMO_TRACKERS}


def _expected(classified: list[dict[str, Any]], tracker_id: str) -> dict[str, Any]:
    """The contract's mention KPIs of one tracker, from the classified mentions."""
    counted = [m for m in classified if tracker_id in m["tracker_ids"] and m["action"] != "hide"]
    reach: dict[tuple[str, str], int] = {}
    for mention in counted:
        author = (mention["platform"], mention["author"]["id"])
        reach[author] = max(reach.get(author, 0), mention["author"].get("followers") or 0)
    sentiment = {name: 0 for name in ("positive", "neutral", "negative")}
    for mention in counted:
        sentiment[mention["classification"]["sentiment"]] += 1
    polar = sentiment["positive"] + sentiment["negative"]
    group = TRACKER_GROUPS[tracker_id]  # every demo tracker has one
    group_volume = sum(  # the volumes of the group's trackers, added up
        1
        for m in classified
        if m["action"] != "hide"
        for other in set(m["tracker_ids"])
        if TRACKER_GROUPS.get(other) == group
    )
    reviewed = sum(1 for m in counted if m["action"] == "review")
    return {
        "mention_volume": len(counted),
        "potential_reach": sum(reach.values()),
        "sentiment": sentiment,
        "net_sentiment": (
            100 * (sentiment["positive"] - sentiment["negative"]) / polar if polar else None
        ),
        "share_of_voice": 100 * len(counted) / group_volume if group_volume else None,
        "response_rate": 0.0 if reviewed else None,
        "engagements": 0,
    }


def _kpis(client: httpx.Client, url: str, tracker_id: str, since: datetime) -> dict[str, Any]:
    answer = client.get(
        url + "/v1/kpis",
        params={
            "tracker_id": tracker_id,
            "from": since.isoformat(),
            "to": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        },
    )
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return {key: body[key] for key in _expected([], tracker_id)}


def _run_once(
    data: Path, env: dict[str, str], seed: int, posted: list[str], since: datetime
) -> None:
    """Start the stack, post a batch of new mentions, check every KPI, stop the stack."""
    up = _smm(["local", "up", "--detach", "--no-demo", "--data-dir", str(data)], env)
    assert up.returncode == 0, up.stdout + up.stderr
    token = (data / "admin-token").read_text().strip()
    services = {
        name: f"http://127.0.0.1:{env[f'SMM_{name.upper()}_PORT']}"
        for name in ("ingest", "moderation", "metrics")
    }
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(timeout=15, headers=headers) as client:
            for tracker in DEMO_TRACKERS:
                created = client.post(services["ingest"] + "/v1/trackers", json=tracker)
                assert created.status_code in (201, 409), created.text
            batch = generate_mentions(random.Random(seed), datetime.now(UTC), 60)
            answer = client.post(services["ingest"] + "/v1/mentions", json=batch)
            assert answer.status_code == 202, answer.text
            accepted = answer.json()["mention_ids"]  # the others matched no tracker
            assert len(accepted) > 20, answer.text
            posted.extend(accepted)
            classified = _classified(client, services["moderation"], posted)
            for tracker_id in TRACKER_GROUPS:
                expected = _expected(classified, tracker_id)
                deadline = time.monotonic() + 90
                while (got := _kpis(client, services["metrics"], tracker_id, since)) != expected:
                    assert time.monotonic() < deadline, (tracker_id, got, expected)
                    time.sleep(1)
    finally:
        down = _smm(["local", "down", "--data-dir", str(data)], env, timeout=90)
        assert down.returncode == 0, down.stdout + down.stderr


def _classified(client: httpx.Client, moderation: str, ids: list[str]) -> list[dict[str, Any]]:
    """Every posted mention as moderation stored it (waiting until each is classified)."""
    found: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 90
    while len(found) < len(ids):
        for mention_id in ids:
            if mention_id not in found:
                answer = client.get(f"{moderation}/v1/mentions/{mention_id}")
                if answer.status_code == 200:
                    found[mention_id] = answer.json()
        assert time.monotonic() < deadline, f"not classified: {sorted(set(ids) - set(found))}"
        time.sleep(0.5)
    return list(found.values())


def test_kpis_count_what_was_posted_before_and_after_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "stack"
    env = {key: value for key, value in os.environ.items() if not key.startswith("SMM_")}
    env.update(
        {
            "SMM_LOCAL_KAFKA_PORT": str(free_port()),
            "SMM_LOCAL_MONGO_PORT": str(free_port()),
            **{
                f"SMM_{name}_PORT": str(free_port())
                for name in ("INGEST", "MODERATION", "PUBLISHER", "METRICS")
            },
        }
    )
    since = datetime.now(UTC) - timedelta(hours=1)
    posted: list[str] = []
    _run_once(data, env, seed=11, posted=posted, since=since)
    first = len(posted)
    _run_once(data, env, seed=12, posted=posted, since=since)  # new mentions, same folder
    assert len(posted) > first
