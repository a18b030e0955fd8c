"""Composition root of the console: the one place its real dependencies are wired."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.console import handlers, storage
from services.console.clients import ServiceClients, ServiceError
from services.console.live import LiveHub
from services.console.pages import alerts, inbox, live, login, mentions, overview, voices
from services.console.passwords import hash_password
from services.console.web import (
    BrandDirectory,
    Console,
    PageError,
    SignInRequiredError,
    is_htmx,
    render,
    utc_now,
)
from shared import __version__
from shared.http import create_http_app
from shared.logging import get_logger
from shared.service import ServiceRuntime
from shared.settings import Settings

log = get_logger(__name__)
STATIC = Path(__file__).parent / "static"
VENDOR = STATIC / "node_modules"
#: The front-end packages the pages load (package.json pins them).
VENDOR_PACKAGES = ("htmx.org", "htmx-ext-sse", "chart.js")

#: No script, style, font or image from anywhere but this console; no framing; no plugins.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


class SecurityHeaders:
    """ASGI middleware: the same protective headers on every answer, static files too."""

    def __init__(self, app: ASGIApp, always_tls: bool = False) -> None:
        self.app = app
        self.always_tls = always_tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = list(_SECURITY_HEADERS)
        if self.always_tls or scope.get("scheme") == "https":
            headers.append((b"strict-transport-security", b"max-age=31536000"))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, with_headers)


def _install_page_errors(app: FastAPI) -> None:
    @app.exception_handler(SignInRequiredError)
    async def sign_in(request: Request, _: SignInRequiredError) -> Response:
        target = "/login"
        if request.method == "GET" and request.url.path not in ("/", "/login"):
            target += "?next=" + request.url.path
        if is_htmx(request):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(PageError)
    async def page_error(request: Request, exc: PageError) -> HTMLResponse:
        return render(
            None,
            request,
            "error.html",
            {"status": exc.status, "message": exc.message},
            block="error",
            status=exc.status,
        )

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> HTMLResponse:
        status = 404 if exc.status == 404 else 502
        message = "Not found." if exc.status == 404 else f"{exc.service} failed: {exc.message}"
        return render(
            None,
            request,
            "error.html",
            {"status": status, "message": message, "retry": True},
            block="error",
            status=status,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        message = "Not found." if exc.status_code == 404 else str(exc.detail)
        return render(
            None,
            request,
            "error.html",
            {"status": exc.status_code, "message": message},
            block="error",
            status=exc.status_code,
        )


async def create_first_admin(settings: Settings, users: storage.UserStore) -> None:
    """The first admin, while the console has no user (`SMM_CONSOLE_FIRST_ADMIN_*`)."""
    password = settings.console_first_admin_password
    if password is None or await users.count() > 0:
        return
    email = settings.console_first_admin_email.strip().lower()
    with contextlib.suppress(storage.UserExistsError):  # another replica was first
        await users.create(
            email, hash_password(password.get_secret_value()), "admin", [], utc_now(), "Admin"
        )
        log.info("first console admin created", user=email)


def build_app(settings: Settings, http: httpx.AsyncClient | None = None) -> FastAPI:
    """The console app; `http` (to the four services) is built if not given."""
    runtime = ServiceRuntime(name="console", settings=settings, indexes=storage.indexes())
    client = http or httpx.AsyncClient(
        timeout=httpx.Timeout(10.0, connect=3.0),
        headers={"User-Agent": f"smm-console/{__version__}"},
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
    )
    runtime.on_stop(client.aclose)
    clients = ServiceClients.build(settings, client)
    hub = LiveHub()
    handlers.register(runtime, hub)
    console = Console(
        settings=settings,
        users=storage.UserStore(runtime.db),
        sessions=storage.SessionStore(
            runtime.db,
            idle=timedelta(minutes=settings.console_session_idle_minutes),
            lifetime=timedelta(hours=settings.console_session_max_hours),
        ),
        throttle=storage.LoginThrottle(runtime.db, settings.console_login_failures),
        clients=clients,
        brands=BrandDirectory(clients),
    )
    runtime.on_start(lambda: create_first_admin(settings, console.users))
    app = create_http_app(
        runtime,
        routers=[
            login.router,
            overview.router,
            voices.router,
            mentions.router,
            inbox.router,
            alerts.router,
            live.router,
        ],
        description="The web console of the platform.",
        api_docs=False,
    )
    app.state.console = console
    app.state.live = hub
    _install_page_errors(app)
    for package in VENDOR_PACKAGES:  # only their built files, not all of node_modules
        folder = VENDOR / package / "dist"
        if folder.is_dir():
            app.mount(f"/static/vendor/{package}/dist", StaticFiles(directory=folder))
    app.mount("/static", StaticFiles(directory=STATIC / "app"), name="static")
    app.add_middleware(SecurityHeaders, always_tls=settings.console_secure_cookies)
    return app
