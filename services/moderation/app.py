"""Composition root of the moderation service."""

from __future__ import annotations

from fastapi import FastAPI

from services.moderation import api, handlers, storage
from shared.http import create_http_app
from shared.service import ServiceRuntime
from shared.settings import Settings


def build_app(settings: Settings) -> FastAPI:
    runtime = ServiceRuntime(name="moderation", settings=settings, indexes=storage.INDEXES)
    store = storage.MentionStore(runtime.db)
    handlers.register(runtime, store)
    return create_http_app(
        runtime,
        routers=[api.build_router(store)],
        description="Classifies every mention, applies rules, and serves the review inbox.",
    )
