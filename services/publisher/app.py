"""Composition root of the publisher service: the one place real dependencies are wired."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from services.publisher import api, handlers, storage
from services.publisher.adapters.registry import build_adapters
from services.publisher.calendar import Calendar, EmitEvents
from services.publisher.channels import ChannelService
from services.publisher.credentials import CredentialResolver
from services.publisher.dispatcher import Dispatcher, refresh_post_gauge
from shared import __version__
from shared.http import create_http_app
from shared.mongo import Document
from shared.outbound import guarded_client
from shared.service import ServiceRuntime
from shared.settings import Settings


@dataclass(frozen=True)
class PublisherCore:
    """The stores and services every publisher replica is made of (the API, the command
    consumer and the scheduler share them)."""

    posts: storage.PostStore
    channel_store: storage.ChannelStore
    channels: ChannelService
    mentions: storage.MentionTrackers
    calendar: Calendar


def build_core(settings: Settings, db: AsyncDatabase[Document], emit: EmitEvents) -> PublisherCore:
    """Wire the publisher's stores and services on `db`; the tests' replicas use it too."""
    posts = storage.PostStore(db)
    channel_store = storage.ChannelStore(db)
    channels = ChannelService(
        channel_store,
        CredentialResolver(settings),
        bindings=storage.SecretBindings(db),
        allowed_networks=settings.outbound_allowed_networks,
        api_base_urls=settings.publisher_api_base_urls,
    )
    mentions = storage.MentionTrackers(db)
    calendar = Calendar(
        posts,
        channel_store,
        emit,
        min_recurrence_seconds=settings.publisher_min_recurrence_seconds,
        mentions=mentions,
        channel_trackers=settings.metrics_channel_trackers,
    )
    return PublisherCore(posts, channel_store, channels, mentions, calendar)


def build_dispatcher(
    core: PublisherCore,
    settings: Settings,
    db: AsyncDatabase[Document],
    http: httpx.AsyncClient,
    owner: str | None = None,
) -> Dispatcher:
    """The scheduler of one replica: sends what is due through `http`."""
    return Dispatcher(
        posts=core.posts,
        channel_store=core.channel_store,
        channels=core.channels,
        calendar=core.calendar,
        adapters=build_adapters(http),
        rate_windows=storage.RateWindows(db),
        settings=settings,
        owner=owner,
    )


def build_app(
    settings: Settings, http: httpx.AsyncClient | None = None, *, scheduler: bool = True
) -> FastAPI:
    """The publisher app; `scheduler=False` serves the API and commands without sending."""
    runtime = ServiceRuntime(name="publisher", settings=settings, indexes=storage.INDEXES)
    timeout = settings.publisher_send_timeout_seconds
    # Guarded: a channel's server (or a redirect) on loopback, a private network or the
    # metadata address is refused, unless SMM_OUTBOUND_ALLOWED_NETWORKS allows it.
    client = http or guarded_client(
        settings.outbound_allowed_networks,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        headers={"User-Agent": f"smm-publisher/{__version__}"},
        max_connections=settings.publisher_send_concurrency * 2,
        follow_redirects=False,
        # The whole send within the send timeout, or a lease could end mid-send (a duplicate).
        total_timeout=timeout,
    )
    runtime.on_stop(client.aclose)
    out = handlers.publishers(runtime)

    core = build_core(settings, runtime.db, out.emit)
    # Channels stored before secret bindings existed get theirs before the API serves.
    runtime.on_start(core.channels.bind_existing)
    inbox = storage.CommandInbox(runtime.db)
    handlers.register(runtime, inbox, core.calendar)
    handlers.register_mentions(runtime, core.mentions)

    if scheduler:
        dispatcher = build_dispatcher(core, settings, runtime.db, client)
        runtime.add_background_task("scheduler", dispatcher.run)
    runtime.add_background_task("post-gauge", lambda: refresh_post_gauge(core.posts))
    return create_http_app(
        runtime,
        routers=[api.build_router(core.calendar, core.channels, core.posts, inbox)],
        description="The content calendar: scheduled posts and replies, sent once.",
    )
