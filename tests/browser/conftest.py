"""Fixtures of the browser tests: the console stack once for the package, Debian's Chromium.

Every page a test opens records the requests the browser makes; when the test ends, each of
them must have gone to this machine (no font, script or image from a CDN, no tracker), and no
Content-Security-Policy violation nor uncaught script error may have been reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    ViewportSize,
    sync_playwright,
)
from playwright.sync_api import expect as pw_expect

from tests.conftest import LocalServers, isolated_settings
from tests.console_kit import PASSWORD, ConsoleStack, console_stack

CHROMIUM = Path("/usr/bin/chromium")
#: Headless Chromium that never calls Google's hosts (refused here, and none of our business).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1440, "height": 900}
#: How long a live update may take to show (the stream, then a fragment request).
LIVE_TIMEOUT_MS = 30_000
LOCAL_HOSTS = frozenset({"127.0.0.1"})
_CSP = re.compile(r"content security policy", re.IGNORECASE)


@dataclass
class Traffic:
    """What the browser asked for and complained about while a test ran."""

    requests: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    script_errors: list[str] = field(default_factory=list)

    def off_machine(self) -> list[str]:
        """Requests to any host but this machine (data: and blob: URLs stay in the page)."""
        return [
            url
            for url in self.requests
            if urlsplit(url).scheme not in ("data", "blob", "about")
            and urlsplit(url).hostname not in LOCAL_HOSTS
        ]

    def check(self) -> None:
        assert not self.off_machine(), f"requests off the machine: {self.off_machine()}"
        assert not self.csp_violations, f"CSP violations: {self.csp_violations}"
        assert not self.script_errors, f"uncaught script errors: {self.script_errors}"


def watch(context: BrowserContext, traffic: Traffic) -> None:
    """Record every request of the context's pages, their CSP reports and script errors."""
    context.on("request", lambda request: traffic.requests.append(request.url))

    def on_page(page: Page) -> None:
        page.on(
            "console",
            lambda message: (
                traffic.csp_violations.append(message.text) if _CSP.search(message.text) else None
            ),
        )
        page.on("pageerror", lambda error: traffic.script_errors.append(str(error)))

    context.on("page", on_page)


@pytest.fixture(scope="package")
def stack(
    servers: LocalServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConsoleStack]:
    """The five services and the team of users, shared by every browser test."""
    settings = isolated_settings(servers)
    with console_stack(settings, tmp_path_factory.mktemp("browser-stack")) as running:
        yield running


@pytest.fixture(scope="package")
def playwright(stack: ConsoleStack) -> Iterator[Playwright]:
    """Playwright's driver; after the stack, whose setup runs its own event loop (Playwright's
    sync API keeps one running in this thread while it is started)."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `./smm test` installs Debian's chromium package "
            "(or run: apt-get install -y --no-install-recommends chromium)"
        )
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.fixture
def traffic() -> Traffic:
    return Traffic()


@pytest.fixture
def context(browser: Browser, stack: ConsoleStack, traffic: Traffic) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) on the console; checks its traffic at the end."""
    opened = browser.new_context(
        base_url=stack.console_url,
        viewport=VIEWPORT,
        locale="en-GB",
        timezone_id="UTC",
        reduced_motion="reduce",
    )
    opened.set_default_timeout(15_000)
    watch(opened, traffic)
    yield opened
    opened.close()
    traffic.check()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def sign_in(page: Page, email: str, password: str = PASSWORD, path: str = "/login") -> None:
    """Sign in through the form, as a person does (fill, submit, wait for the next page)."""
    page.goto(path)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    pw_expect(page).not_to_have_url(re.compile(r"/login(\?|$)"))
