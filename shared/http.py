"""The HTTP side of every service: health, readiness, metrics, AsyncAPI, errors, limits.

`create_http_app` gives each service the same operational endpoints and the contract's error
body, so a service's `api.py` only holds its own routes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from faststream.specification import AsyncAPI, get_asyncapi_html
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import __version__
from shared.auth import TokenAuthority
from shared.errors import ApiError, error_body
from shared.logging import get_logger
from shared.metrics import HTTP_LATENCY, HTTP_REQUESTS, registry
from shared.service import ServiceRuntime
from shared.tracing import use_traceparent

log = get_logger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
}


class _BodyTooLargeError(Exception):
    pass


class RequestGuard:
    """ASGI middleware: body size limit, trace context, request metrics.

    Pure ASGI (no BaseHTTPMiddleware) so it costs little on the ingest hot path.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await self._too_large(send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLargeError
            return message

        status = 500

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        traceparent = headers.get(b"traceparent", b"").decode("latin-1") or None
        try:
            with use_traceparent(traceparent):
                await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLargeError:
            status = 413
            await self._too_large(send)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            method = scope.get("method", "GET")
            HTTP_REQUESTS.labels(method, path, str(status)).inc()
            HTTP_LATENCY.labels(method, path).observe(time.perf_counter() - started)

    async def _too_large(self, send: Send) -> None:
        body = JSONResponse(
            error_body("payload_too_large", f"request body exceeds {self.max_body_bytes} bytes"),
            status_code=413,
        )
        await send({"type": "http.response.start", "status": 413, "headers": body.raw_headers})
        await send({"type": "http.response.body", "body": body.body})


def install_error_handlers(app: FastAPI) -> None:
    """The contract's error body for every error a FastAPI app can raise."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {
                "loc": [str(part) for part in err.get("loc", ())],
                "msg": err.get("msg", ""),
                "type": err.get("type", ""),
            }
            for err in exc.errors()[:50]
        ]
        return JSONResponse(
            error_body("invalid_request", "the request does not match the schema", details),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return JSONResponse(
            error_body("internal_error", "an unexpected error occurred; it has been logged"),
            status_code=500,
        )


def _operations_router(runtime: ServiceRuntime, asyncapi: AsyncAPI) -> APIRouter:
    router = APIRouter(tags=["operations"])
    cache: dict[str, Any] = {}

    def spec() -> Any:
        if "spec" not in cache:
            cache["spec"] = asyncapi.to_specification()
        return cache["spec"]

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": runtime.name, "version": __version__}

    @router.get("/readyz", summary="Kafka and MongoDB are reachable", response_model=None)
    async def readyz() -> dict[str, Any] | JSONResponse:
        checks = await runtime.readiness()
        if all(state == "ok" for state in checks.values()):
            return {"status": "ready", "checks": checks}
        return JSONResponse(
            error_body("not_ready", "a dependency is unreachable", checks), status_code=503
        )

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @router.get("/asyncapi.json", summary="AsyncAPI document of the topics")
    async def asyncapi_json() -> Response:
        return Response(spec().to_json(), media_type="application/json")

    @router.get("/asyncapi", summary="AsyncAPI document, rendered", response_class=HTMLResponse)
    async def asyncapi_html() -> HTMLResponse:
        return HTMLResponse(get_asyncapi_html(spec(), try_it_out_path=None))

    return router


def create_http_app(
    runtime: ServiceRuntime,
    routers: Sequence[APIRouter] = (),
    description: str = "",
    api_docs: bool = True,
) -> FastAPI:
    """The service's ASGI app; its lifespan starts and stops the runtime.

    `api_docs=False` leaves out the OpenAPI document and its pages (the console has no JSON
    API to describe)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title=f"smm {runtime.name}",
        version=__version__,
        description=description,
        lifespan=lifespan,
        openapi_url="/openapi.json" if api_docs else None,
        docs_url="/docs" if api_docs else None,
        redoc_url="/redoc" if api_docs else None,
    )
    app.state.runtime = runtime
    app.state.token_authority = TokenAuthority(runtime.settings)
    install_error_handlers(app)
    asyncapi = AsyncAPI(runtime.broker, title=f"smm {runtime.name}", version=__version__)
    app.include_router(_operations_router(runtime, asyncapi))
    for router in routers:
        app.include_router(router)
    app.add_middleware(RequestGuard, max_body_bytes=runtime.settings.max_request_bytes)
    return app
