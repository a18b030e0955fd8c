"""What every page module uses: the signed-in viewer, CSRF, brands, and rendering.

A page module is as thin as an API module: it takes a `Viewer` (which checks the session, the
user's standing and, on every state change, the CSRF token), asks `viewer.brand(id)` for the
brand it shows (another brand's id answers "not found"), calls the service clients with
`viewer.actor` and renders with `render`, which answers the whole page or, for htmx, only the
named fragment.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.console.clients import ServiceClients, ServiceError
from services.console.domain.roles import Action, may, role_needed
from services.console.i18n import LANGUAGES, Locale, best_language
from services.console.storage import LoginThrottle, Session, SessionStore, User, UserStore
from shared.auth import Actor
from shared.logging import get_logger
from shared.settings import Settings

log = get_logger(__name__)

SESSION_COOKIE = "smm_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TEMPLATES = Path(__file__).parent / "templates"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Brand:
    """A tracker the team watches: its id, name and the group its share of voice is in."""

    id: str
    name: str
    #: None for a tracker in no group: only admins see it (no grant can name "no group").
    group: str | None


class BrandDirectory:
    """The trackers of each brand group, read from ingest as the console (cached briefly).

    Users are granted groups; the services are told tracker ids. A tracker added to a group
    reaches its users within `ttl` seconds.
    """

    def __init__(self, clients: ServiceClients, ttl: float = 30.0) -> None:
        self._clients = clients
        self._ttl = ttl
        self._brands: list[Brand] = []
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def all(self) -> list[Brand]:
        if time.monotonic() - self._loaded_at < self._ttl:
            return self._brands
        async with self._lock:
            if time.monotonic() - self._loaded_at >= self._ttl:
                trackers = await self._clients.ingest.trackers(None)
                self._brands = sorted(
                    (
                        Brand(
                            str(t["id"]),
                            str(t.get("name") or t["id"]),
                            str(t["group"]) if t.get("group") else None,
                        )
                        for t in trackers
                    ),
                    key=lambda brand: (brand.group or "", brand.name.lower()),
                )
                self._loaded_at = time.monotonic()
        return self._brands

    async def of(self, user: User) -> list[Brand]:
        brands = await self.all()
        if user.all_brands:
            return brands
        return [b for b in brands if b.group is not None and b.group in user.groups]

    def forget(self) -> None:
        self._loaded_at = float("-inf")


@dataclass
class Console:
    """The console's wiring, kept on `app.state.console`."""

    settings: Settings
    users: UserStore
    sessions: SessionStore
    throttle: LoginThrottle
    clients: ServiceClients
    brands: BrandDirectory
    templates: Environment = field(init=False)

    def __post_init__(self) -> None:
        self.templates = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


class SignInRequiredError(Exception):
    """No valid session: pages redirect to the sign-in page, fragments ask htmx to."""


class PageError(Exception):
    """A page or action that cannot be answered: status and a message for the person."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Viewer:
    """The signed-in person on this request, with what pages need to act for them."""

    request: Request
    user: User
    session: Session
    session_id: str
    brands: list[Brand]
    locale: Locale

    @property
    def actor(self) -> Actor:
        return self.user.actor(frozenset(brand.id for brand in self.brands))

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token

    def may(self, action: Action) -> bool:
        return may(self.user.role, action)

    def require(self, action: Action) -> None:
        """Refuse an action the user's role does not allow, naming the role it needs."""
        if not self.may(action):
            needed = role_needed(action)
            raise PageError(
                403, self.locale.format("This needs the {role} role.", role=self.t(needed))
            )

    def brand(self, brand_id: str | None) -> Brand:
        """The brand a page shows: the one asked for if granted, else the first granted.

        Another brand's id is "not found", as if it did not exist.
        """
        if not brand_id:
            if not self.brands:
                raise PageError(404, self.t("You have no brand yet. Ask an admin to grant one."))
            return self.brands[0]
        for brand in self.brands:
            if brand.id == brand_id:
                return brand
        raise PageError(404, self.t("Not found."))

    def t(self, message: str) -> str:
        return self.locale.gettext(message)


async def _csrf_ok(request: Request, expected: str) -> bool:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    return sent is not None and hmac.compare_digest(sent.encode(), expected.encode())


async def signed_in(request: Request) -> Viewer:
    """The viewer of a request with a live session of an enabled user.

    Every state-changing request must carry the session's CSRF token (header or form field):
    a page on another site cannot make a signed-in browser act.
    """
    console = console_of(request)
    session_id = request.cookies.get(SESSION_COOKIE)
    now = utc_now()
    session = await console.sessions.find(session_id, now) if session_id else None
    if session is None or session_id is None:
        raise SignInRequiredError
    user = await console.users.get(session.user)
    if user is None or user.disabled:
        await console.sessions.close(session_id)
        raise SignInRequiredError
    if request.method not in _SAFE_METHODS and not await _csrf_ok(request, session.csrf_token):
        raise PageError(403, "The form is out of date (CSRF token missing or wrong). Reload.")
    try:
        brands = await console.brands.of(user)
    except ServiceError as exc:
        log.warning("brands unavailable", error=str(exc))
        brands = []
    return Viewer(
        request=request,
        user=user,
        session=session,
        session_id=session_id,
        brands=brands,
        locale=Locale(user.language, user.time_zone),
    )


SignedIn = Annotated[Viewer, Depends(signed_in)]


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def page_url(request: Request, **changes: Any) -> str:
    """This page's URL with some query parameters changed (None removes one)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    query = "&".join(f"{quote(k)}={quote(v)}" for k, v in params.items())
    return request.url.path + (f"?{query}" if query else "")


def render(
    viewer: Viewer | None,
    request: Request,
    template: str,
    context: dict[str, Any],
    block: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The page, or with htmx (or when `block` is forced) only the named block.

    The same URL answers both, so responses vary on `HX-Request`.
    """
    console = console_of(request)
    locale = viewer.locale if viewer else Locale(best_language_of(request), "UTC")
    values: dict[str, Any] = {
        "request": request,
        "viewer": viewer,
        "locale": locale,
        "languages": LANGUAGES,
        "csrf_token": viewer.csrf_token if viewer else "",
        "page_url": lambda **changes: page_url(request, **changes),
        **locale.functions(),
        **context,
    }
    compiled = console.templates.get_template(template)
    if block is not None and is_htmx(request):
        render_block = compiled.blocks[block]
        body = "".join(render_block(compiled.new_context(values)))
    else:
        body = compiled.render(values)
    response = HTMLResponse(body, status_code=status, headers=headers)
    response.headers["Vary"] = "HX-Request, Cookie"
    response.headers["Cache-Control"] = "no-store"
    return response


def best_language_of(request: Request) -> str:
    chosen = request.query_params.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return best_language(request.headers.get("accept-language"))
