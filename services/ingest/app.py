"""Composition root of the ingest service: the one place real dependencies are wired."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from fastapi import FastAPI

from services.ingest import api, handlers, storage
from services.ingest.engagement import EngagementTracker
from services.ingest.intake import Intake, TrackerRegistry
from services.ingest.sources.engagement import EngagementFetcher
from services.ingest.sources.instagram import InstagramMentionResolver
from services.ingest.sources.polling import PollTiming, build_pollers, parse_poll_sources
from services.ingest.sources.reddit import RedditApp
from services.ingest.sources.websub import renew_expiring
from services.ingest.webhooks import build_webhook_router
from shared import __version__
from shared.http import create_http_app
from shared.language import LanguageDetector
from shared.outbound import guarded_client
from shared.service import ServiceRuntime
from shared.settings import Settings

#: How often WebSub leases are checked; each is renewed a day (or a tenth of it) before it ends.
WEBSUB_RENEWAL_INTERVAL = 600.0


def outbound_client(settings: Settings) -> httpx.AsyncClient:
    """The client for every call ingest makes: feeds, hubs, platform APIs, engagement.

    Feed, hub and instance URLs come from users and remote servers, so it is the guarded
    client: no private, loopback or link-local address (after DNS, on every redirect) unless
    in `SMM_OUTBOUND_ALLOWED_NETWORKS`, and no response larger than
    `SMM_INGEST_MAX_RESPONSE_BYTES`.
    """
    return guarded_client(
        settings.outbound_allowed_networks,
        timeout=httpx.Timeout(20.0, connect=10.0),
        headers={"User-Agent": f"smm-ingest/{__version__} (social listening)"},
        follow_redirects=True,
        max_response_bytes=settings.ingest_max_response_bytes,
    )


def build_app(settings: Settings, http: httpx.AsyncClient | None = None) -> FastAPI:
    """The ingest app; `http` (for pollers, webhooks' hubs, engagement) is built if not given
    (tests give one whose transport plays the outside world)."""
    runtime = ServiceRuntime(name="ingest", settings=settings, indexes=storage.indexes())
    client = http or outbound_client(settings)
    runtime.on_stop(client.aclose)
    out = handlers.publishers(runtime)

    tracker_store = storage.TrackerStore(runtime.db)
    trackers = TrackerRegistry(tracker_store)
    seen = storage.SeenStore(runtime.db, dedup_days=settings.ingest_dedup_days)
    intake = Intake(
        trackers=trackers,
        seen=seen,
        publisher=out.raw_mentions,
        detector=LanguageDetector(settings.languages),
        publish_timeout=settings.publish_timeout_seconds,
    )
    runtime.on_start(lambda: trackers.refresh(force=True))
    runtime.on_stop(intake.drain)
    runtime.add_background_task("tracker-refresh", trackers.keep_fresh)
    runtime.add_background_task("dedup-housekeeping", seen.keep_tidy)

    engagement = EngagementTracker(
        schedule=storage.EngagementSchedule(runtime.db),
        fetcher=EngagementFetcher(client),
        publisher=out.engagement,
        window=timedelta(days=settings.engagement_poll_days),
    )
    handlers.subscribe_post_events(runtime, engagement.on_post_event)
    runtime.add_background_task("engagement-poller", engagement.run)

    cursors = storage.CursorStore(runtime.db)
    reddit_app = None
    if settings.reddit_client_id and settings.reddit_client_secret:
        reddit_app = RedditApp(
            settings.reddit_client_id, settings.reddit_client_secret.get_secret_value()
        )
    for poller in build_pollers(
        parse_poll_sources(settings.poll_sources),
        cursors,
        intake.submit,
        client,
        timing=PollTiming(max_body_bytes=settings.ingest_max_response_bytes),
        reddit_app=reddit_app,
    ):
        runtime.add_background_task(f"poller:{poller.key}", poller.run)

    websub = storage.WebSubStore(runtime.db)
    lookups = None
    if settings.meta_access_token:
        lookups = storage.LookupQueue(runtime.db)
        resolver = InstagramMentionResolver(
            lookups,
            client,
            intake.submit,
            settings.meta_access_token.get_secret_value(),
            settings.meta_graph_url,
        )
        runtime.add_background_task("instagram-mention-lookups", resolver.run)
    if settings.public_base_url:
        base_url = settings.public_base_url

        async def renew_websub_leases() -> None:
            while True:
                await renew_expiring(client, websub, base_url)
                await asyncio.sleep(WEBSUB_RENEWAL_INTERVAL)

        runtime.add_background_task("websub-renewal", renew_websub_leases)

    return create_http_app(
        runtime,
        routers=[
            api.build_router(settings, intake, trackers, tracker_store),
            build_webhook_router(settings, intake.submit, websub, client, lookups),
            api.build_websub_router(settings, websub, client),
        ],
        description="Social listening: mentions in, matched and de-duplicated, out to Kafka.",
    )
