"""Composition root of the moderation service: the one place real dependencies are wired."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from fastapi import FastAPI

from services.moderation import api, handlers, storage
from services.moderation.domain.classifiers import ClassifierSuite, load_suite
from services.moderation.inbox import Inbox
from services.moderation.pipeline import Moderator, RulesRegistry, track_queue_depth
from shared.http import create_http_app
from shared.service import ServiceRuntime
from shared.settings import Settings


def build_app(settings: Settings, suite: ClassifierSuite | None = None) -> FastAPI:
    """The moderation app; `suite` (the classifiers) is loaded from the package if not given."""
    runtime = ServiceRuntime(name="moderation", settings=settings, indexes=storage.INDEXES)
    classifiers = suite or load_suite(settings.languages)
    out = handlers.publishers(runtime)

    mentions = storage.MentionStore(runtime.db)
    review = storage.ReviewStore(runtime.db)
    rules = RulesRegistry(storage.RulesStore(runtime.db))
    runtime.on_start(lambda: rules.refresh(force=True))
    runtime.add_background_task(
        "rules-refresh", lambda: rules.keep_fresh(settings.moderation_rules_refresh_seconds)
    )

    # Classifying and routing are CPU work: each in one thread of its own, off the event loop
    # (health checks and the inbox stay answered), and the API's cannot starve the consumer.
    consumer_cpu = ThreadPoolExecutor(max_workers=1, thread_name_prefix="moderation-consumer")
    classify_cpu = ThreadPoolExecutor(max_workers=1, thread_name_prefix="moderation-classify")

    async def stop_executors() -> None:
        for executor in (consumer_cpu, classify_cpu):
            executor.shutdown(wait=False, cancel_futures=True)

    runtime.on_stop(stop_executors)

    moderator = Moderator(
        suite=classifiers,
        rules=rules,
        store=mentions,
        out=out,
        pattern_budget_seconds=settings.moderation_pattern_budget_ms / 1000,
        executor=consumer_cpu,
    )
    handlers.subscribe_raw_mentions(runtime, moderator.process)

    inbox = Inbox(
        review=review,
        mentions=mentions,
        audit=storage.AuditLog(runtime.db),
        outbox=storage.DecisionOutbox(runtime.db),
        canned=storage.CannedReplyStore(runtime.db),
        rules=rules,
        out=out,
        lease=timedelta(seconds=settings.moderation_lease_seconds),
        publish_timeout=settings.publish_timeout_seconds,
    )
    runtime.add_background_task("decision-outbox", inbox.sweep_outbox)
    runtime.add_background_task("queue-depth", lambda: track_queue_depth(review))

    return create_http_app(
        runtime,
        routers=[
            api.build_router(
                settings,
                classifiers,
                inbox,
                rules,
                storage.TrackerDirectory(runtime.db),
                classify_cpu,
            )
        ],
        description="Classifies every mention, applies rules, and serves the review inbox.",
    )
