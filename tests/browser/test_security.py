"""The console's protections as a browser meets them: CSRF, the session cookie, a disabled user,
and no page that loads anything from another machine.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from bs4 import BeautifulSoup
from playwright.sync_api import Browser, Page, expect

from shared.settings import Settings
from tests.browser.conftest import LOCAL_HOSTS, VIEWPORT, Traffic, sign_in, watch
from tests.conftest import LocalServers, isolated_settings
from tests.console_kit import PASSWORD, ConsoleStack, mention
from tests.processes import process_env, service_processes

pytestmark = [pytest.mark.integration, pytest.mark.browser]

#: Every screen of the navigation; each must answer its page (not an error) to a reviewer.
SCREENS = ["/overview", "/voices", "/mentions", "/inbox", "/alerts"]
#: Attributes that make a browser fetch something by themselves (an <a href> does not).
_FETCHING = ("src", "href", "srcset", "action", "data", "poster", "formaction", "sse-connect")


def smm_users(settings: Settings, *args: str, stdin: str | None = None) -> str:
    """`smm users ...` as an operator runs it, on the stack's database."""
    done = subprocess.run(
        [sys.executable, "-m", "shared.cli", "users", *args],
        env=process_env(settings),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def post_from_page(page: Page, url: str, form: dict[str, str], csrf: bool) -> int:
    """A same-origin fetch POST from the signed-in page, with or without the CSRF header."""
    status: int = page.evaluate(
        """async ([url, form, csrf]) => {
            const headers = {"Content-Type": "application/x-www-form-urlencoded"};
            if (csrf) headers["X-CSRF-Token"] =
                document.querySelector('meta[name="csrf-token"]').content;
            const answer = await fetch(url, {
                method: "POST", headers, body: new URLSearchParams(form), redirect: "manual",
            });
            return answer.type === "opaqueredirect" ? 303 : answer.status;
        }""",
        [url, form, csrf],
    )
    return status


def fetching_urls(html: str, page_url: str) -> list[tuple[str, str]]:
    """(tag, absolute URL) of everything in the HTML a browser would load or send to."""
    found: list[tuple[str, str]] = []
    for element in BeautifulSoup(html, "html.parser").find_all(True):
        if element.name == "a":
            continue  # a link to an original post is followed only when clicked
        for attribute in _FETCHING:
            value = element.get(attribute)
            if not isinstance(value, str) or not value.strip():
                continue
            candidates = (
                [part.split()[0] for part in value.split(",") if part.strip()]
                if attribute == "srcset"
                else [value]
            )
            found.extend((element.name, urljoin(page_url, c.strip())) for c in candidates)
    return found


def test_a_post_without_the_csrf_token_is_refused_from_the_page(
    page: Page, stack: ConsoleStack
) -> None:
    sign_in(page, "viewer@example.com", path="/login?next=/alerts")
    expect(page).to_have_url(f"{stack.console_url}/alerts")
    refused = post_from_page(page, "/account/language", {"language": "de"}, csrf=False)
    assert refused == 403
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Alerts")  # nothing changed
    accepted = post_from_page(page, "/account/language", {"language": "en"}, csrf=True)
    assert accepted == 303  # the same request with the page's token goes through


def test_the_session_cookie_is_http_only_same_site_lax_for_the_whole_console(
    page: Page, stack: ConsoleStack
) -> None:
    sign_in(page, "viewer@example.com", path="/login?next=/alerts")
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["smm_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"
    assert session["path"] == "/"
    assert session["secure"] is False  # plain HTTP in this test; see the next test for TLS
    assert page.evaluate("document.cookie") == ""  # no script of the page can read it


@pytest.fixture(scope="module")
def secure_console(
    servers: LocalServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A console alone with SMM_CONSOLE_SECURE_COOKIES=true (as behind a TLS ingress)."""
    settings = isolated_settings(servers)
    extra = {"SMM_CONSOLE_SECURE_COOKIES": "true"}
    logs = tmp_path_factory.mktemp("secure-console")
    with service_processes(settings, logs, ["console"], extra_env=extra) as group:
        smm_users(
            settings,
            "create",
            "tls@example.com",
            "--role",
            "viewer",
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
        yield group.url("console")


def test_behind_tls_the_session_cookie_is_secure(secure_console: str) -> None:
    with httpx.Client(base_url=secure_console, timeout=30) as client:
        form = client.get("/login")
        login_cookie = form.headers["set-cookie"]
        marker = 'name="csrf_token" value="'
        start = form.text.index(marker) + len(marker)
        token = form.text[start : form.text.index('"', start)]
        # httpx, like a browser, keeps a Secure cookie off plain HTTP: send it by hand.
        answer = client.post(
            "/login",
            data={"email": "tls@example.com", "password": PASSWORD, "csrf_token": token},
            headers={"Cookie": f"smm_login_csrf={form.cookies['smm_login_csrf']}"},
        )
    assert answer.status_code == 303, answer.text[:300]
    cookie = next(c for c in answer.headers.get_list("set-cookie") if "smm_session=" in c)
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"secure", "httponly", "samesite=lax", "path=/"} <= flags
    login_flags = {part.strip().lower() for part in login_cookie.split(";")}
    assert {"secure", "httponly", "samesite=strict"} <= login_flags  # the form's CSRF cookie


def test_a_disabled_user_is_out_at_the_next_page_load(page: Page, stack: ConsoleStack) -> None:
    sign_in(page, "editor@example.com", path="/login?next=/alerts")
    expect(page).to_have_url(f"{stack.console_url}/alerts")
    smm_users(stack.settings, "disable", "editor@example.com")
    try:
        page.reload()
        expect(page).to_have_url(f"{stack.console_url}/login?next=/alerts")
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        page.get_by_label("E-mail").fill("editor@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_have_text("E-mail or password is wrong.")
    finally:
        smm_users(stack.settings, "enable", "editor@example.com")


def test_no_screen_loads_anything_from_another_machine(
    browser: Browser, stack: ConsoleStack, tmp_path: Path
) -> None:
    stack.send_mentions(
        [mention("acme's flat white is lovely", url="https://social.example/@ann/42")]
    )
    traffic = Traffic()
    context = browser.new_context(base_url=stack.console_url, viewport=VIEWPORT)
    watch(context, traffic)
    try:
        page = context.new_page()
        page.goto("/login")
        pages = {"/login": page.content()}
        sign_in(page, "reviewer@example.com", path="/login?next=/alerts")
        for screen in SCREENS:
            answer = page.goto(f"{screen}?brand=acme")
            assert answer is not None
            assert answer.status == 200, f"{screen}: {answer.status}"
            page.wait_for_load_state("load")
            pages[screen] = page.content()
    finally:
        context.close()
    assert traffic.requests, "the browser made no request at all"
    traffic.check()
    for screen, html in pages.items():
        elsewhere = [
            (tag, url)
            for tag, url in fetching_urls(html, stack.console_url + screen)
            if urlsplit(url).scheme in ("http", "https", "ws", "wss", "")
            and urlsplit(url).hostname not in LOCAL_HOSTS
        ]
        assert not elsewhere, f"{screen} embeds {elsewhere}"


def test_the_checks_tell_an_embed_from_a_link() -> None:
    """The two off-machine checks above, on a page made to fail them."""
    html = """<html><head><link rel="stylesheet" href="https://cdn.example/x.css">
      <script src="/static/app.js"></script></head><body>
      <a href="https://social.example/@ann/1">the original</a>
      <img srcset="/static/a.png 1x, https://img.example/b.png 2x">
      <form action="https://collect.example/"></form></body></html>"""
    found = fetching_urls(html, "http://127.0.0.1:8000/mentions")
    elsewhere = sorted(url for _, url in found if urlsplit(url).hostname not in LOCAL_HOSTS)
    assert elsewhere == [
        "https://cdn.example/x.css",
        "https://collect.example/",
        "https://img.example/b.png",
    ]
    assert ("script", "http://127.0.0.1:8000/static/app.js") in found
    traffic = Traffic(
        ["http://127.0.0.1:8000/", "data:image/png;base64,AA", "https://fonts.example/f"]
    )
    assert traffic.off_machine() == ["https://fonts.example/f"]
