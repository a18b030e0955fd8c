"""Sign-in, sign-out and the user's own language.

The sign-in form is protected like every other form: before a session exists, the CSRF token
is a random value in a short-lived cookie that the form must repeat (double submit). Failed
sign-ins are counted per account and per client address; past the limit, sign-in waits.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.console.i18n import LANGUAGES, Locale
from services.console.passwords import BusyError, verify_password_off_loop
from services.console.web import (
    CSRF_FIELD,
    SESSION_COOKIE,
    PageError,
    SignedIn,
    best_language_of,
    console_of,
    render,
    utc_now,
)
from shared.logging import get_logger

log = get_logger(__name__)
router = APIRouter(include_in_schema=False)

LOGIN_CSRF_COOKIE = "smm_login_csrf"


def _secure(request: Request) -> bool:
    """Cookies are Secure behind TLS (uvicorn takes the scheme from trusted proxies)."""
    return console_of(request).settings.console_secure_cookies or request.url.scheme == "https"


def client_key(address: str) -> str:
    """The throttle's key of a client address: an IPv6 client by its /64 (one host's
    share of addresses), an IPv4 client by its address."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def _safe_next(target: str | None) -> str:
    """Only a path on this console: never `//host` or a URL off the machine."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/overview"


def _login_page(request: Request, error: str | None = None, status: int = 200) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = render(
        None,
        request,
        "login.html",
        {
            "login_csrf": token,
            "error": error,
            "next": _safe_next(request.query_params.get("next")),
            "lang": best_language_of(request),
        },
        status=status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/login",
    )
    return response


@router.get("/", response_class=RedirectResponse)
async def home() -> RedirectResponse:
    return RedirectResponse("/overview", status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> HTMLResponse:
    return _login_page(request)


@router.post("/login", response_class=HTMLResponse, response_model=None)
async def login(
    request: Request,
    email: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=128)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/overview",
) -> Response:
    console = console_of(request)
    locale = Locale(best_language_of(request), "UTC")
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf_token.encode()):
        raise PageError(403, locale.gettext("The form is out of date. Reload the page."))
    account = email.strip().lower()
    client = request.client.host if request.client else "unknown"
    keys = [f"user:{account}", f"ip:{client_key(client)}"]
    now = utc_now()
    allowed, attempt = await console.throttle.attempt(keys, now)
    if not allowed:
        log.warning("sign-in throttled", client=client)
        message = locale.gettext("Too many failed sign-ins. Wait 15 minutes and try again.")
        return _login_page(request, message, status=429)
    stored = await console.users.password_hash(account)
    user = await console.users.get(account) if stored else None
    try:
        matches = await verify_password_off_loop(stored, password)
    except BusyError:
        message = locale.gettext("Many people are signing in right now. Try again in a moment.")
        return _login_page(request, message, status=503)
    if not matches or user is None or user.disabled:
        log.info("sign-in refused", client=client)
        return _login_page(request, locale.gettext("E-mail or password is wrong."), status=401)
    await console.throttle.succeeded(keys[0], attempt)
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:  # a session of whoever used this browser before ends here
        await console.sessions.close(previous)
    session_id, _ = await console.sessions.open(account, now)
    log.info("signed in", user=account)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=console.settings.console_session_max_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout", response_class=RedirectResponse)
async def logout(viewer: SignedIn) -> RedirectResponse:
    await console_of(viewer.request).sessions.close(viewer.session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/account/language", response_class=RedirectResponse)
async def set_language(
    viewer: SignedIn,
    language: Annotated[str, Form(max_length=8)],
    back: Annotated[str, Form(max_length=2000)] = "/overview",
) -> RedirectResponse:
    if language not in LANGUAGES:
        raise PageError(422, viewer.t("Unknown language."))
    await console_of(viewer.request).users.update(viewer.user.email, utc_now(), language=language)
    return RedirectResponse(_safe_next(back), status_code=303)
