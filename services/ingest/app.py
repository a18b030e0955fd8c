"""Composition root of the ingest service: the one place real dependencies are wired."""

from __future__ import annotations

from fastapi import FastAPI

from services.ingest import api, handlers, storage
from shared.http import create_http_app
from shared.service import ServiceRuntime
from shared.settings import Settings


def build_app(settings: Settings) -> FastAPI:
    runtime = ServiceRuntime(name="ingest", settings=settings, indexes=storage.INDEXES)
    publishers = handlers.register(runtime)
    return create_http_app(
        runtime,
        routers=[api.build_router(settings, publishers)],
        description="Social listening: mentions in, matched and de-duplicated, out to Kafka.",
    )
