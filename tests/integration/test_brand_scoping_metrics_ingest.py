"""Brand scoping over real HTTP: a console user (an `X-SMM-Actor` assertion with the console's
`act_as` token) sees only their brands in metrics (KPIs, time series, voices, alerts) and in
ingest's trackers; the admin token without the header sees all; a token without `act_as`
that sends the header is refused."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr
from pymongo import AsyncMongoClient

from services.ingest.app import build_app as build_ingest
from services.metrics.app import build_app as build_metrics
from shared.auth import ACTOR_HEADER, Actor, Role, sign_actor
from shared.local.servers import free_port
from shared.settings import Settings
from shared.topics import MENTIONS_CLASSIFIED, topic_name
from tests.integration.helpers import eventually, produce
from tests.metrics_dataset import classified

pytestmark = pytest.mark.integration

KEY = "brand-scoping-test-signing-key-0123456789"
ADMIN = {"Authorization": "Bearer test-admin-token"}
CONSOLE = {"Authorization": "Bearer console-token"}
READER = {"Authorization": "Bearer reader-token"}


def scoped(settings: Settings) -> Settings:
    """The test's settings plus a signing key, the console's token and a plain reader's."""
    return settings.model_copy(
        update={
            "actor_signing_key": SecretStr(KEY),
            "api_tokens": {
                "console-token": ["read", "act_as", "trackers:write"],
                "reader-token": ["read"],
            },
        }
    )


def as_user(role: Role, brands: set[str] | None, token: dict[str, str] = CONSOLE) -> dict[str, str]:
    """Headers of a call the console makes for a user."""
    actor = Actor(user=f"{role}@example.com", role=role, brands=_frozen(brands))
    return {**token, ACTOR_HEADER: sign_actor(actor, KEY)}


def _frozen(brands: set[str] | None) -> frozenset[str] | None:
    return None if brands is None else frozenset(brands)


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app behind uvicorn on a free port (lifespan and all), and a client for it."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:

            async def ready() -> bool:
                try:
                    return (await client.get("/readyz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(ready, bool, timeout=60)
            yield client
    finally:
        server.should_exit = True
        await task


def assert_not_found(response: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"


async def add_trackers(settings: Settings, groups: dict[str, str]) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongodb_uri.get_secret_value()
    )
    try:
        await client[settings.mongodb_database]["ingest_trackers"].insert_many(
            [{"_id": t, "id": t, "name": t, "query": t, "group": g} for t, g in groups.items()]
        )
    finally:
        await client.close()


async def test_metrics_answers_a_console_user_for_their_brands_only(settings: Settings) -> None:
    settings = scoped(settings).model_copy(
        update={"metrics_alert_interval_seconds": 0.3, "metrics_kpi_interval_seconds": 3600}
    )
    await add_trackers(settings, {"brand": "coffee", "rival": "coffee"})
    rng = random.Random(7)
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    version = now - timedelta(days=2)
    mentions = [  # ten negative mentions in this hour for each: a spike alert for each
        classified(
            rng,
            number,
            hour + (now - hour) * rng.random(),
            [tracker],
            ("x", f"{tracker}-fan", 50),
            version,
            "negative",
            "review",
        )
        for number, tracker in enumerate(["brand"] * 10 + ["rival"] * 15)
    ]
    await produce(
        settings.kafka_bootstrap_servers,
        topic_name(MENTIONS_CLASSIFIED, settings),
        [(m.mention_id.encode(), m.to_bytes()) for m in mentions],
    )
    start, end = hour - timedelta(days=1), hour + timedelta(hours=1)
    window = {"from": start.isoformat(), "to": end.isoformat()}
    viewer = as_user("viewer", {"brand"})

    async with serving(build_metrics(settings)) as client:

        async def alerted() -> list[str]:
            answer = await client.get("/v1/alerts", headers=ADMIN)
            return sorted(a["tracker_id"] for a in answer.json()["alerts"])

        assert await eventually(alerted, lambda t: t == ["brand", "rival"]) == ["brand", "rival"]

        async def brand_volume() -> int:
            answer = await client.get(
                "/v1/kpis", params={"tracker_id": "brand", **window}, headers=ADMIN
            )
            return int(answer.json()["mention_volume"]) if answer.status_code == 200 else -1

        await eventually(brand_volume, lambda v: v == 10)

        # the viewer's own brand: its KPIs, share of voice over the whole group
        mine = await client.get(
            "/v1/kpis", params={"tracker_id": "brand", **window}, headers=viewer
        )
        assert mine.status_code == 200, mine.text
        assert mine.json()["share_of_voice"] == pytest.approx(100 * 10 / 25)
        series = {"tracker_id": "brand", "bucket": "hour", **window}
        assert (await client.get("/v1/kpis/timeseries", params=series, headers=viewer)).is_success
        voices = await client.get(
            "/v1/voices", params={"tracker_id": "brand", **window}, headers=viewer
        )
        assert [v["author_id"] for v in voices.json()["by_reach"]] == ["brand-fan"]

        # another brand, and a tracker that does not exist, answer alike: not found
        for tracker in ("rival", "ghost"):
            params = {"tracker_id": tracker, **window}
            assert_not_found(await client.get("/v1/kpis", params=params, headers=viewer))
            assert_not_found(await client.get("/v1/voices", params=params, headers=viewer))
            assert_not_found(
                await client.get(
                    "/v1/kpis/timeseries", params={**params, "bucket": "hour"}, headers=viewer
                )
            )
            refused = await client.get("/v1/kpis", params=params, headers=viewer)
            assert refused.json()["error"]["message"] == "no such tracker"

        async def alerts_of(headers: dict[str, str], **params: str) -> list[str]:
            answer = await client.get("/v1/alerts", params=params, headers=headers)
            assert answer.status_code == 200, answer.text
            return [a["tracker_id"] for a in answer.json()["alerts"]]

        assert await alerts_of(viewer) == ["brand"]
        assert await alerts_of(viewer, tracker_id="brand") == ["brand"]
        assert await alerts_of(viewer, tracker_id="rival") == []
        assert await alerts_of(as_user("viewer", set())) == []
        assert_not_found(
            await client.get(
                "/v1/kpis",
                params={"tracker_id": "brand", **window},
                headers=as_user("viewer", set()),
            )
        )

        # the admin token without the header, and an admin user, see every brand
        assert sorted(await alerts_of(ADMIN)) == ["brand", "rival"]
        assert sorted(await alerts_of(as_user("admin", None))) == ["brand", "rival"]
        for headers in (ADMIN, as_user("admin", None), as_user("viewer", {"brand", "rival"})):
            rival = await client.get(
                "/v1/kpis", params={"tracker_id": "rival", **window}, headers=headers
            )
            assert rival.status_code == 200, rival.text
            assert rival.json()["mention_volume"] == 15

        # a token that may not act for users cannot claim to be one
        claimed = as_user("admin", None, token=READER)
        for path in ("/v1/alerts", "/v1/kpis"):
            answer = await client.get(
                path, params={"tracker_id": "rival", **window}, headers=claimed
            )
            assert answer.status_code == 403, answer.text
            assert answer.json()["error"]["code"] == "forbidden"
        forged = {**CONSOLE, ACTOR_HEADER: sign_actor(Actor("eve", "admin", None), "x" * 40)}
        assert (await client.get("/v1/alerts", headers=forged)).status_code == 401


TRACKERS = [
    {"id": tracker, "name": tracker.title(), "query": tracker, "languages": ["de"], "group": "g"}
    for tracker in ("acme", "brand", "rival")
]


async def test_ingest_lists_and_changes_a_console_users_trackers_only(settings: Settings) -> None:
    settings = scoped(settings)
    async with serving(build_ingest(settings)) as client:
        for tracker in TRACKERS:
            created = await client.post("/v1/trackers", json=tracker, headers=ADMIN)
            assert created.status_code == 201, created.text

        async def ids(headers: dict[str, str], limit: int = 50) -> list[str]:
            found: list[str] = []
            params: dict[str, Any] = {"limit": limit}
            while True:
                page = await client.get("/v1/trackers", params=params, headers=headers)
                assert page.status_code == 200, page.text
                found += [t["id"] for t in page.json()["items"]]
                if page.json()["next_cursor"] is None:
                    return found
                params["cursor"] = page.json()["next_cursor"]

        viewer = as_user("viewer", {"acme", "rival", "gone"})
        assert await ids(viewer) == ["acme", "rival"]
        assert await ids(viewer, limit=1) == ["acme", "rival"]
        assert await ids(as_user("viewer", set())) == []
        assert await ids(ADMIN) == ["acme", "brand", "rival"]
        assert await ids(as_user("admin", None)) == ["acme", "brand", "rival"]

        assert (await client.get("/v1/trackers/acme", headers=viewer)).json()["name"] == "Acme"
        assert_not_found(await client.get("/v1/trackers/brand", headers=viewer))
        assert_not_found(await client.get("/v1/trackers/gone", headers=viewer))
        assert (await client.get("/v1/trackers/brand", headers=ADMIN)).status_code == 200

        # a manager changes their own brand's trackers, and cannot touch (or find) another's
        manager = as_user("manager", {"acme"})
        changed = {**TRACKERS[1], "name": "Taken over"}
        assert_not_found(await client.put("/v1/trackers/brand", json=changed, headers=manager))
        assert_not_found(await client.delete("/v1/trackers/brand", headers=manager))
        brand = await client.get("/v1/trackers/brand", headers=ADMIN)
        assert brand.json()["name"] == "Brand"
        renamed = {**TRACKERS[0], "name": "Acme Coffee"}
        answer = await client.put("/v1/trackers/acme", json=renamed, headers=manager)
        assert answer.status_code == 200, answer.text
        assert answer.json()["name"] == "Acme Coffee"
        assert (await client.delete("/v1/trackers/acme", headers=manager)).status_code == 204
        assert await ids(ADMIN) == ["brand", "rival"]

        # a viewer's role may not write, even on their own brand
        denied = await client.put("/v1/trackers/rival", json=TRACKERS[2], headers=viewer)
        assert denied.status_code == 403, denied.text

        # a token that may not act for users cannot claim to be one
        claimed = await client.get("/v1/trackers", headers=as_user("admin", None, token=READER))
        assert claimed.status_code == 403, claimed.text
        assert claimed.json()["error"]["code"] == "forbidden"
