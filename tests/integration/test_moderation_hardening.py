"""Issue 16 for moderation on the real broker and database: rules only for trackers that
exist, `/v1/rules` pages like every list, and many long hide patterns no longer stall the
partition (the decision's reason fits its field)."""

from __future__ import annotations

import json

import httpx
import pytest

from shared.settings import Settings
from shared.topics import MODERATION_DECISIONS, topic_name
from tests.integration.helpers import consume
from tests.integration.test_moderation import (
    ADMIN,
    _classified,
    _send,
    client,
    create_tracker,
    mention,
    moderation_settings,
)

pytestmark = pytest.mark.integration

__all__ = ["client", "moderation_settings"]  # fixtures, used by name


async def test_rules_only_for_trackers_that_exist_and_the_list_pages(
    moderation_settings: Settings, client: httpx.AsyncClient
) -> None:
    unknown = await client.put("/v1/rules/nobody", json={}, headers=ADMIN)
    assert unknown.status_code == 404, unknown.text
    error = unknown.json()["error"]
    assert error["code"] == "unknown_tracker"
    assert "'nobody'" in error["message"]
    assert error["details"] == {"tracker_id": "nobody"}
    assert (await client.get("/v1/rules/nobody", headers=ADMIN)).json()["default"] is True

    for tracker_id in ("b-tracker", "a-tracker", "c-tracker"):
        await create_tracker(moderation_settings, tracker_id)
        stored = await client.put(
            f"/v1/rules/{tracker_id}", json={"brand": tracker_id}, headers=ADMIN
        )
        assert stored.status_code == 200, stored.text

    first = (await client.get("/v1/rules?limit=2", headers=ADMIN)).json()
    assert [item["tracker_id"] for item in first["items"]] == ["a-tracker", "b-tracker"]
    assert first["items"][0]["brand"] == "a-tracker"
    assert first["next_cursor"]
    assert "defaults" in first
    second = (
        await client.get(
            "/v1/rules", params={"limit": 2, "cursor": first["next_cursor"]}, headers=ADMIN
        )
    ).json()
    assert [item["tracker_id"] for item in second["items"]] == ["c-tracker"]
    assert second["next_cursor"] is None
    too_many = await client.get("/v1/rules?limit=201", headers=ADMIN)
    assert too_many.status_code == 422


async def test_many_long_hide_patterns_do_not_stall_the_partition(
    moderation_settings: Settings, client: httpx.AsyncClient
) -> None:
    """50 matching 200-character hide patterns made a reason of 10,000 characters: the
    decision failed validation and the batch was retried for ever."""
    patterns = [
        {"pattern": f"(?:x{i:04d}|gratis)" + "q?" * 92, "action": "hide"} for i in range(50)
    ]
    assert all(len(p["pattern"]) == 200 for p in patterns)
    saved = await client.put("/v1/rules/roestwerk", json={"patterns": patterns}, headers=ADMIN)
    assert saved.status_code == 200, saved.text

    await _send(moderation_settings, [mention("1", "Alles gratis hier, Röstwerk")])
    stored = await _classified(client, "x:1")
    assert stored["action"] == "hide"
    records = await consume(
        moderation_settings.kafka_bootstrap_servers,
        topic_name(MODERATION_DECISIONS, moderation_settings),
        count=1,
    )
    decision = json.loads(records[0].value)
    assert decision["action"] == "hide"
    assert len(decision["reason"]) <= 2_000
    assert decision["reason"].endswith(" more")
