"""Composition root of the publisher service: the one place real dependencies are wired."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.publisher import api, handlers, storage
from services.publisher.adapters.registry import build_adapters
from services.publisher.calendar import Calendar
from services.publisher.channels import ChannelService
from services.publisher.credentials import CredentialResolver
from services.publisher.dispatcher import Dispatcher, refresh_post_gauge
from shared import __version__
from shared.http import create_http_app
from shared.outbound import guarded_client
from shared.service import ServiceRuntime
from shared.settings import Settings


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

    posts = storage.PostStore(runtime.db)
    channel_store = storage.ChannelStore(runtime.db)
    channels = ChannelService(
        channel_store,
        CredentialResolver(settings),
        bindings=storage.SecretBindings(runtime.db),
        allowed_networks=settings.outbound_allowed_networks,
        api_base_urls=settings.publisher_api_base_urls,
    )
    # Channels stored before secret bindings existed get theirs before the API serves.
    runtime.on_start(channels.bind_existing)
    mentions = storage.MentionTrackers(runtime.db)
    calendar = Calendar(
        posts,
        channel_store,
        out.emit,
        min_recurrence_seconds=settings.publisher_min_recurrence_seconds,
        mentions=mentions,
        channel_trackers=settings.metrics_channel_trackers,
    )
    inbox = storage.CommandInbox(runtime.db)
    handlers.register(runtime, inbox, calendar)
    handlers.register_mentions(runtime, mentions)

    if scheduler:
        dispatcher = Dispatcher(
            posts=posts,
            channel_store=channel_store,
            channels=channels,
            calendar=calendar,
            adapters=build_adapters(client),
            rate_windows=storage.RateWindows(runtime.db),
            settings=settings,
        )
        runtime.add_background_task("scheduler", dispatcher.run)
    runtime.add_background_task("post-gauge", lambda: refresh_post_gauge(posts))
    return create_http_app(
        runtime,
        routers=[api.build_router(calendar, channels, posts, inbox)],
        description="The content calendar: scheduled posts and replies, sent once.",
    )
