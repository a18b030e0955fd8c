"""What the publisher's integration tests share: the fake networks, channels, a replica."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from pymongo import AsyncMongoClient

from services.publisher import storage
from services.publisher.app import build_app, build_core, build_dispatcher
from services.publisher.calendar import Calendar
from services.publisher.channels import ChannelService
from services.publisher.dispatcher import Dispatcher
from services.publisher.domain.channels import CHANNEL_SECRET_ENV_PREFIX, SELF_HOSTED
from shared.events import PostEvent
from shared.local.servers import free_port
from shared.mongo import Document, ensure_indexes
from shared.outbound import guarded_client
from shared.settings import Settings
from tests.fakes.platforms import WEBHOOK_SECRET, FakePlatform, build_fake_app
from tests.integration.helpers import running

AUTH = {"Authorization": "Bearer test-admin-token"}
#: Channel secrets live only in `SMM_CHANNEL_SECRET_*` variables (or SMM_PUBLISHER_CREDENTIALS).
TOKEN_ENV = f"{CHANNEL_SECRET_ENV_PREFIX}TEST_TOKEN"
EXPIRED_ENV = f"{CHANNEL_SECRET_ENV_PREFIX}TEST_EXPIRED"
HOOK_ENV = f"{CHANNEL_SECRET_ENV_PREFIX}TEST_HOOK"
os.environ[TOKEN_ENV] = "valid-token"
os.environ[EXPIRED_ENV] = "expired-token"
os.environ[HOOK_ENV] = WEBHOOK_SECRET

ACCOUNTS = {
    "mastodon": "brand",
    "x": "4711",
    "facebook": "page-1",
    "linkedin": "urn:li:organization:42",
    "bluesky": "did:plc:brand",
    "generic": "crm",
}


@dataclass
class FakeNetworks:
    state: FakePlatform
    base: str

    def channel(self, platform: str, channel_id: str | None = None, **extra: Any) -> dict[str, Any]:
        """A channel body for `platform` pointing at the fake.

        Networks with a fixed API host reach the fake through SMM_PUBLISHER_API_BASE_URLS
        (see `with_fake_hosts`), with a secret per network (a secret is bound to one network,
        or one server); the others name it, each with a secret of its own.
        """
        channel_id = channel_id or f"{platform}-main"
        body: dict[str, Any] = {
            "id": channel_id,
            "platform": platform,
            "account": ACCOUNTS[platform],
            "credential_ref": f"env:{TOKEN_ENV}",
            "timezone": "Europe/Berlin",
        }
        if platform not in SELF_HOSTED:
            name = f"{TOKEN_ENV}_{platform.upper()}"
            os.environ[name] = "valid-token"
            body["credential_ref"] = f"env:{name}"
        if platform in SELF_HOSTED:
            suffix = "/webhook/hook" if platform == "generic" else f"/{platform}"
            body["api_base_url"] = self.base + suffix
            name = CHANNEL_SECRET_ENV_PREFIX + channel_id.upper().replace("-", "_").replace(
                ".", "_"
            )
            os.environ[name] = "valid-token"
            body["credential_ref"] = f"env:{name}"
            if platform == "generic":
                os.environ[f"{name}_HOOK"] = WEBHOOK_SECRET
                body["signing_secret_ref"] = f"env:{name}_HOOK"
        body.update(extra)
        return body

    def fixed_hosts(self) -> dict[str, str]:
        """SMM_PUBLISHER_API_BASE_URLS for the fixed-host networks, pointing at the fake."""
        return {platform: f"{self.base}/{platform}" for platform in ("x", "facebook", "linkedin")}


#: The fake networks running in this task (set by `fake_networks`, read by `with_fake_hosts`).
_RUNNING: ContextVar[FakeNetworks | None] = ContextVar("fake_networks", default=None)


def with_fake_hosts(settings: Settings) -> Settings:
    """`settings` with X, Facebook and LinkedIn reached at the running fake (if one runs)."""
    nets = _RUNNING.get()
    if nets is None:
        return settings
    return settings.model_copy(update={"publisher_api_base_urls": nets.fixed_hosts()})


@asynccontextmanager
async def fake_networks(latency: float = 0.0) -> AsyncIterator[FakeNetworks]:
    """The fake networks on a free port, in this event loop, over real HTTP."""
    state = FakePlatform(latency=latency)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            build_fake_app(state),
            host="127.0.0.1",
            port=port,
            log_config=None,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
    )
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started or task.done():
            break
        await asyncio.sleep(0.02)
    assert server.started, "fake networks did not start"
    nets = FakeNetworks(state=state, base=f"http://127.0.0.1:{port}")
    running = _RUNNING.set(nets)
    try:
        yield nets
    finally:
        _RUNNING.reset(running)
        server.should_exit = True
        await task


@dataclass
class Replica:
    """One scheduler replica wired to the real database (events collected in memory)."""

    dispatcher: Dispatcher
    calendar: Calendar
    channels: ChannelService
    posts: storage.PostStore
    channel_store: storage.ChannelStore
    events: list[PostEvent] = field(default_factory=list)
    mentions: storage.MentionTrackers | None = None

    async def post(self, post_id: str) -> Document:
        found = await self.posts.get(post_id)
        assert found is not None, post_id
        return found

    def statuses(self, post_id: str) -> list[str]:
        return [e.status for e in self.events if e.post_id == post_id]


@asynccontextmanager
async def replica(settings: Settings, owner: str) -> AsyncIterator[Replica]:
    """A replica wired by `services.publisher.app` (guarded client, fixed hosts), with its
    events recorded instead of published."""
    settings = with_fake_hosts(settings)
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongodb_uri.get_secret_value(), tz_aware=True
    )
    db = client[settings.mongodb_database]
    await ensure_indexes(db, storage.INDEXES)
    http = guarded_client(
        settings.outbound_allowed_networks,
        timeout=httpx.Timeout(settings.publisher_send_timeout_seconds),
        follow_redirects=False,
    )
    events: list[PostEvent] = []

    async def emit(batch: Sequence[PostEvent]) -> None:
        events.extend(batch)

    core = build_core(settings, db, emit)
    dispatcher = build_dispatcher(core, settings, db, http, owner=owner)
    try:
        yield Replica(
            dispatcher,
            core.calendar,
            core.channels,
            core.posts,
            core.channel_store,
            events,
            core.mentions,
        )
    finally:
        await http.aclose()
        await client.close()


def fast(settings: Settings, **overrides: Any) -> Settings:
    """Short leases, polls and backoff so the tests stay quick."""
    values: dict[str, Any] = {
        "publisher_poll_interval_seconds": 0.05,
        "publisher_lease_seconds": 3.0,
        "publisher_send_timeout_seconds": 1.0,
        "publisher_retry_base_seconds": 0.2,
        "publisher_retry_max_seconds": 1.0,
        "publisher_max_attempts": 4,
        "publisher_claim_ahead_seconds": 0.0,
        "publisher_min_recurrence_seconds": 1,
    }
    values.update(overrides)
    return settings.model_copy(update=values)


@asynccontextmanager
async def publisher_api(
    settings: Settings, scheduler: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """The publisher app running on the fake networks' hosts, and a client of its API."""
    app = build_app(with_fake_hosts(fast(settings)), scheduler=scheduler)
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://publisher", headers=AUTH
        ) as client:
            yield client
