"""Composition root of the publisher service."""

from __future__ import annotations

from fastapi import FastAPI

from services.publisher import api, handlers, storage
from shared.http import create_http_app
from shared.service import ServiceRuntime
from shared.settings import Settings


def build_app(settings: Settings) -> FastAPI:
    runtime = ServiceRuntime(name="publisher", settings=settings, indexes=storage.INDEXES)
    inbox = storage.CommandInbox(runtime.db)
    handlers.register(runtime, inbox)
    return create_http_app(
        runtime,
        routers=[api.build_router(inbox)],
        description="The content calendar: scheduled posts and replies, sent once.",
    )
