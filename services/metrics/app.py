"""Composition root of the metrics service."""

from __future__ import annotations

from fastapi import FastAPI

from services.metrics import api, handlers, storage
from shared.http import create_http_app
from shared.service import ServiceRuntime
from shared.settings import Settings


def build_app(settings: Settings) -> FastAPI:
    runtime = ServiceRuntime(name="metrics", settings=settings, indexes=storage.INDEXES)
    facts = storage.MentionFacts(runtime.db)
    handlers.register(runtime, facts)
    return create_http_app(
        runtime,
        routers=[api.build_router(facts)],
        description="KPIs by event time: volume, reach, sentiment, share of voice, engagement.",
    )
