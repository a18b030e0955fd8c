"""Run one service process: structured logging, then uvicorn serving the service's app."""

from __future__ import annotations

from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from shared.logging import configure_logging
from shared.settings import ServiceName, Settings


def run_service(name: ServiceName, build_app: Callable[[Settings], FastAPI]) -> None:
    """Serve the service until SIGINT/SIGTERM; uvicorn then runs the lifespan shutdown."""
    settings = Settings()
    configure_logging(name, settings.log_level, settings.log_format)
    uvicorn.run(
        build_app(settings),
        host=settings.http_host,
        port=settings.port_of(name),
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=20,
        lifespan="on",
    )
