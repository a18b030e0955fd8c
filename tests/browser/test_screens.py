"""The console's screens in Chromium, as the team uses them: sign in, read the overview, watch
mentions arrive, answer from the inbox, and the same in German; and what each role and brand
may not see or do.

The module arranges one set of data (canned reply, reply channel, mentions of three brands)
and its tests run in order on it: the inbox test answers an item, and the screenshots for the
README are taken of the overview and inbox that result (written only with SMM_SCREENSHOTS=1).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Page, expect

from services.console.domain.periods import resolve_period
from tests.browser.conftest import LIVE_TIMEOUT_MS, sign_in
from tests.console_kit import ConsoleStack, mention

pytestmark = [pytest.mark.integration, pytest.mark.browser]

T = TypeVar("T")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CANNED_ID = "acme-sorry"
CANNED_TEXT = "Hello {author}, we are sorry about this. We will write to you directly. {brand}"
CHANNEL_ID = "acme-mastodon"
#: Where each overview card's figure is in a KpiSnapshot of /v1/kpis.
KPI_PATHS: dict[str, tuple[str, ...]] = {
    "mention_volume": ("mention_volume",),
    "potential_reach": ("potential_reach",),
    "net_sentiment": ("net_sentiment",),
    "share_of_voice": ("share_of_voice",),
    "response_time_median": ("response_time_seconds", "median"),
    "response_time_avg": ("response_time_seconds", "avg"),
    "response_rate": ("response_rate",),
    "engagement_rate_by_reach": ("engagement_rate_by_reach",),
}
#: Complaints (they go to review), praise and a question: the coffee brands and the bikes.
ACME_COMPLAINTS = [
    ("acme your grinder broke after two days, this is awful, I want a refund now", "carla", 5400),
    ("acme delivery is three weeks late and nobody answers, terrible service", "dieter", 820),
    ("my acme order arrived damaged and support ignores me, really bad", "emma", 12_300),
]
ACME_OTHERS = [
    ("the new acme espresso blend is lovely, great work", "frank", 300),
    ("does acme ship to Austria? asking for a friend", "greta", 150),
]
RIVAL = [("rival roasters opened a shop near me, nice coffee", "hans", 90)]
VELO = [("velo bikes service was quick and friendly today", "ines", 410)]


def eventually(check: Callable[[], T | None], what: str, timeout: float = 60.0) -> T:
    """Ask the services until the pipeline has caught up (it is asynchronous by design)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


@dataclass(frozen=True)
class Arranged:
    api: httpx.Client
    acme_ids: list[str]
    complaint_ids: list[str]
    velo_ids: list[str]

    @property
    def acme_texts(self) -> list[str]:
        return [text for text, _, _ in ACME_COMPLAINTS + ACME_OTHERS]


def _send(stack: ConsoleStack, posts: list[tuple[str, str, int]]) -> list[str]:
    return stack.send_mentions(
        [
            mention(
                text, author=author, followers=followers, url=f"https://social.example/@{author}/1"
            )
            for text, author, followers in posts
        ]
    )


@pytest.fixture(scope="module")
def arranged(stack: ConsoleStack) -> Arranged:
    """The data the screens show, once the services have classified and counted it."""
    api = stack.api()
    moderation, metrics = stack.url("moderation"), stack.url("metrics")
    canned = {"id": CANNED_ID, "language": "en", "title": "Sorry", "text": CANNED_TEXT}
    created = api.post(f"{moderation}/v1/canned-replies", json=canned)
    assert created.status_code in (201, 409), created.text
    rules = api.put(
        f"{moderation}/v1/rules/acme",
        json={"brand": "Acme Coffee", "reply_channels": {"mastodon": CHANNEL_ID}},
    )
    assert rules.status_code == 200, rules.text
    channel = {
        "id": CHANNEL_ID,
        "platform": "mastodon",
        "account": "acme",
        "name": "Acme on Mastodon",
        "credential_ref": "env:SMM_CHANNEL_SECRET_ACME",
        "api_base_url": "http://127.0.0.1:9",  # nobody listens: the reply stays a post here
    }
    made = api.post(f"{stack.url('publisher')}/v1/channels", json=channel)
    assert made.status_code in (201, 409), made.text
    complaint_ids = _send(stack, ACME_COMPLAINTS)
    acme_ids = complaint_ids + _send(stack, ACME_OTHERS)
    _send(stack, RIVAL)
    velo_ids = _send(stack, VELO)

    def classified() -> bool | None:
        found = api.get(f"{moderation}/v1/mentions", params={"limit": 200}).json()["items"]
        ids = {item["mention_id"] for item in found}
        return True if set(acme_ids + velo_ids) <= ids else None

    def queued() -> bool | None:
        queue = api.get(f"{moderation}/v1/review", params={"tracker_id": "acme"}).json()
        ids = {item["mention_id"] for item in queue["items"]}
        return True if set(complaint_ids) <= ids else None

    def counted() -> bool | None:
        period = resolve_period("7d", datetime.now(UTC), "UTC")
        kpis = api.get(
            f"{metrics}/v1/kpis",
            params={
                "tracker_id": "acme",
                "from": period.start.isoformat(),
                "to": period.end.isoformat(),
            },
        ).json()
        return True if kpis.get("mention_volume") == len(acme_ids) else None

    eventually(classified, "moderation to classify the mentions")
    eventually(queued, "the complaints in the review queue")
    eventually(counted, "metrics to count acme's mentions")
    return Arranged(api, acme_ids, complaint_ids, velo_ids)


def _dig(document: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        document = document.get(key) if isinstance(document, dict) else None
    return document


def test_sign_in_through_the_form_lands_on_the_overview(
    page: Page, stack: ConsoleStack, arranged: Arranged
) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))  # no session: the sign-in form first
    page.get_by_label("E-mail").fill("reviewer@example.com")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("E-mail or password is wrong.")
    sign_in(page, "reviewer@example.com")
    expect(page).to_have_url(f"{stack.console_url}/overview")
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview · Acme Coffee")
    expect(page.get_by_role("link", name="Overview")).to_have_attribute("aria-current", "page")
    expect(page.locator('[data-kpi="mention_volume"]')).to_have_attribute(
        "data-value", str(len(arranged.acme_ids))
    )


def test_the_overview_shows_the_figures_of_the_kpi_api(
    page: Page, stack: ConsoleStack, arranged: Arranged
) -> None:
    sign_in(page, "manager@example.com", path="/login?next=/overview%3Fbrand%3Dacme")
    cards = page.locator("[data-kpi]")
    expect(cards.first).to_be_visible()
    # The page's period: the last 7 days up to the next whole minute (in UTC, whatever the zone).
    period = resolve_period("7d", datetime.now(UTC), "Europe/Berlin")
    kpis = arranged.api.get(
        f"{stack.url('metrics')}/v1/kpis",
        params={
            "tracker_id": "acme",
            "from": period.start.isoformat(),
            "to": period.end.isoformat(),
        },
    ).json()
    shown: dict[str, str] = {}
    for index in range(cards.count()):
        card = cards.nth(index)
        key = card.get_attribute("data-kpi")
        assert key is not None
        shown[key] = card.get_attribute("data-value") or ""
    assert set(shown) == set(KPI_PATHS), shown
    for key, path in KPI_PATHS.items():
        expected = _dig(kpis, path)
        if expected is None:
            assert shown[key] == "", (key, shown[key])
        else:
            assert float(shown[key]) == pytest.approx(float(expected), abs=1e-9), (key, kpis)
    assert shown["mention_volume"] == str(len(arranged.acme_ids))
    volume = page.locator('[data-kpi="mention_volume"] .value')
    expect(volume).to_have_text(str(len(arranged.acme_ids)))


def test_a_new_mention_appears_on_the_open_mentions_page(
    page: Page, stack: ConsoleStack, arranged: Arranged
) -> None:
    sign_in(page, "reviewer@example.com", path="/login?next=/mentions%3Fbrand%3Dacme")
    expect(page.get_by_role("heading", level=1)).to_have_text("Mentions · Acme Coffee")
    rows = page.locator("#mention-rows")
    expect(rows).to_contain_text(ACME_OTHERS[0][0])
    # The stream is open before the mention is sent, so its announcement cannot be missed.
    expect(page.locator("#live-state")).to_have_attribute("data-live-state", "live")
    text = f"acme cold brew number {uuid.uuid4().hex[:8]} tastes great"
    stack.send_mentions([mention(text, author="jonas", url="https://social.example/@jonas/2")])
    bar = page.get_by_role("button", name=re.compile(r"\b1 new\b"))
    expect(bar).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(rows).not_to_contain_text(text)  # not pushed into the list under the reader's eyes
    bar.click()
    expect(rows.locator("li").first).to_contain_text(text)
    expect(bar).to_be_hidden()


def test_a_user_without_the_brand_sees_none_of_its_mentions(
    page: Page, stack: ConsoleStack, arranged: Arranged
) -> None:
    sign_in(page, "bikes@example.com", path="/login?next=/mentions")
    expect(page.get_by_role("heading", level=1)).to_have_text("Mentions · Velo Bikes")
    expect(page.locator("#mention-rows")).to_contain_text(VELO[0][0])
    for text in arranged.acme_texts:
        expect(page.locator("body")).not_to_contain_text(text)
    switcher = page.get_by_label("Brand")
    expect(switcher.locator("option")).to_have_text(["Velo Bikes (bikes)"])
    for path in ("/mentions?brand=acme", "/inbox?brand=acme", "/overview?brand=acme"):
        answer = page.goto(path)
        assert answer is not None
        assert answer.status == 404, path
        expect(page.get_by_role("alert")).to_contain_text("Not found.")
        for text in arranged.acme_texts:
            expect(page.locator("body")).not_to_contain_text(text)


def test_the_console_speaks_german_after_switching_in_the_header(
    page: Page, stack: ConsoleStack, arranged: Arranged
) -> None:
    page.goto("/login?lang=de")
    expect(page.get_by_role("button", name="Anmelden")).to_be_visible()
    sign_in(page, "editor@example.com", path="/login?next=/overview%3Fbrand%3Dacme")
    expect(page.get_by_role("link", name="Inbox")).to_be_visible()
    with page.expect_navigation():
        page.get_by_label("Language").select_option(label="Deutsch")
    try:
        expect(page.locator("html")).to_have_attribute("lang", "de")
        expect(page).to_have_url(f"{stack.console_url}/overview?brand=acme")  # same page
        nav = page.get_by_role("navigation", name="Bereiche")
        expect(nav.get_by_role("link", name="Übersicht")).to_be_visible()
        expect(nav.get_by_role("link", name="Posteingang")).to_be_visible()
        expect(nav.get_by_role("link", name="Erwähnungen")).to_be_visible()
        expect(page.get_by_role("heading", level=1)).to_have_text("Übersicht · Acme Coffee")
        expect(page.get_by_role("button", name="Abmelden")).to_be_visible()
        page.goto("/alerts")
        expect(page.get_by_role("heading", level=1)).to_have_text("Warnungen")
    finally:
        with page.expect_navigation():
            page.locator("#language-switch").select_option("en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
