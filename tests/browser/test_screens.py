"""The console's screens in Chromium, as the team uses them: sign in, read the overview, watch
mentions arrive, answer from the inbox, and the same in German; and what each role and brand
may not see or do.

The module arranges one set of data (canned reply, reply channel, mentions of three brands)
and its tests run in order on it: the inbox test answers an item, and the screenshots for the
README are taken of the overview and inbox that result (written only with SMM_SCREENSHOTS=1).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Page, expect

from services.console.domain.periods import resolve_period
from tests.browser.conftest import LIVE_TIMEOUT_MS, VIEWPORT, sign_in
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
#: A week of talk about the coffee brands, so the charts have a shape (hours ago, text, author).
_SAYINGS = [
    "{b} flat white this morning was excellent",
    "tried the {b} single origin, nice and fruity",
    "{b} app keeps logging me out, annoying",
    "{b} baristas are always friendly",
    "the {b} oat latte is too sweet for me",
    "{b} beans arrived fresh, love it",
    "why is {b} so expensive now",
    "great chat with the {b} team at the market",
]
_WHEN = ["", " today", " again", " this week"]
_PEOPLE = [
    "anna",
    "ben",
    "chloe",
    "david",
    "elif",
    "finn",
    "gina",
    "henrik",
    "isa",
    "jan",
    "katja",
    "lars",
    "mia",
    "nils",
    "olga",
    "paul",
    "quinn",
    "rosa",
    "sven",
    "tara",
    "ulf",
    "vera",
    "wim",
    "xenia",
    "yusuf",
    "zoe",
    "arne",
    "bea",
    "cem",
    "dora",
    "egon",
    "fritzi",
]
HISTORY = [
    (
        int(hours),
        _SAYINGS[n % len(_SAYINGS)].format(b=brand) + _WHEN[n // len(_SAYINGS)],
        _PEOPLE[n],
    )
    for n, (brand, hours) in enumerate(
        [("acme", 6 + n * 7.3) for n in range(20)] + [("rival", 9 + n * 11.1) for n in range(12)]
    )
]


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
    #: Every mention sent, by its text.
    ids_by_text: dict[str, str]

    @property
    def acme_texts(self) -> list[str]:
        return [
            text for text, mention_id in self.ids_by_text.items() if mention_id in self.acme_ids
        ]


def _send(
    stack: ConsoleStack, posts: list[tuple[str, str, int]], hours_ago: list[int] | None = None
) -> dict[str, str]:
    """Mentions through ingest; their ids by text."""
    now = datetime.now(UTC)
    items = [
        mention(
            text,
            author=author,
            followers=followers,
            url=f"https://social.example/@{author}/{n}",
            created_at=(now - timedelta(hours=hours_ago[n] if hours_ago else 0)).isoformat(),
        )
        for n, (text, author, followers) in enumerate(posts)
    ]
    return dict(zip([text for text, _, _ in posts], stack.send_mentions(items), strict=True))


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
    history = _send(
        stack,
        [(text, author, 40 + 37 * n) for n, (_, text, author) in enumerate(HISTORY)],
        hours_ago=[hours for hours, _, _ in HISTORY],
    )
    complaints = _send(stack, ACME_COMPLAINTS)
    others = _send(stack, ACME_OTHERS) | _send(stack, RIVAL)
    velo = _send(stack, VELO)
    ids_by_text = history | complaints | others | velo
    complaint_ids = list(complaints.values())
    acme_ids = [i for t, i in ids_by_text.items() if "acme" in t]
    velo_ids = list(velo.values())

    def classified() -> bool | None:
        found = api.get(f"{moderation}/v1/mentions", params={"limit": 200}).json()["items"]
        ids = {item["mention_id"] for item in found}
        return True if set(ids_by_text.values()) <= ids else None

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
    return Arranged(api, acme_ids, complaint_ids, velo_ids, ids_by_text)


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


def save_screenshot(page: Page, name: str, tmp_path: Path) -> Path:
    """A full-page screenshot at the desktop size; into docs/ only with SMM_SCREENSHOTS=1."""
    shot = tmp_path / name
    # Nothing injected (the caret and animation options would add a style the CSP refuses).
    page.screenshot(path=str(shot), full_page=True, caret="initial", animations="allow")
    width, height = struct.unpack(">II", shot.read_bytes()[16:24])  # the PNG's IHDR
    assert width == VIEWPORT["width"], width
    assert height >= VIEWPORT["height"], height
    if os.environ.get("SMM_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOTS / name)
    return shot


def _shown_mention(page: Page, arranged: Arranged) -> str:
    """The id of the mention the inbox shows (by its text)."""
    text = page.locator("#inbox-item blockquote.mention-text").inner_text().strip()
    assert text in arranged.ids_by_text, text
    return arranged.ids_by_text[text]


def test_a_reviewer_claims_answers_with_a_canned_reply_and_moves_on(
    page: Page, stack: ConsoleStack, arranged: Arranged, tmp_path: Path
) -> None:
    sign_in(page, "reviewer@example.com", path="/login?next=/inbox%3Fbrand%3Dacme")
    expect(page.get_by_role("heading", level=1)).to_have_text("Inbox · Acme Coffee")
    expect(page.get_by_role("heading", name=re.compile(r"^Mention by "))).to_be_visible()
    first = _shown_mention(page, arranged)
    page.get_by_role("button", name=re.compile(r"^Claim")).click()
    expect(page.get_by_role("status").filter(has_text="Claimed.")).to_be_visible()
    expect(page.locator("#inbox-item")).to_contain_text("Claimed by you until")
    assert _shown_mention(page, arranged) == first

    rendered = arranged.api.post(
        f"{stack.url('moderation')}/v1/canned-replies/{CANNED_ID}/render",
        json={"mention_id": first},
    )
    assert rendered.status_code == 200, rendered.text
    expected = rendered.json()["text"]
    assert "{" not in expected
    assert "Acme Coffee" in expected
    page.get_by_label("Canned replies", exact=True).select_option(CANNED_ID)
    reply = page.get_by_label(re.compile(r"^Reply"))
    expect(reply).to_have_value(expected)
    expect(page.locator("#reply-count")).to_contain_text("on mastodon")
    save_screenshot(page, "inbox.png", tmp_path)

    page.get_by_role("heading", name=re.compile(r"^Mention by ")).focus()  # out of the fields
    page.keyboard.press("n")  # submit and next
    expect(
        page.get_by_role("status").filter(has_text="Reply sent to the publisher.")
    ).to_be_visible()
    first_text = next(t for t, i in arranged.ids_by_text.items() if i == first)
    expect(page.locator("#inbox-item blockquote.mention-text")).not_to_have_text(first_text)
    following = _shown_mention(page, arranged)
    assert following != first
    expect(page).to_have_url(re.compile(r"mention=" + re.escape(following)))
    expect(page.get_by_label(re.compile(r"^Reply"))).to_have_value("")  # a fresh form

    def published() -> dict[str, Any] | None:
        posts = arranged.api.get(f"{stack.url('publisher')}/v1/posts").json()["posts"]
        return next((p for p in posts if p.get("in_reply_to_mention_id") == first), None)

    post = eventually(published, "the reply on the publisher")
    assert post["text"] == expected
    assert post["channel_id"] == CHANNEL_ID
    audit = arranged.api.get(f"{stack.url('moderation')}/v1/review/{first}/audit").json()
    decided = audit["entries"][-1]
    assert decided["action"] == "reply"
    assert decided["actor"] == "reviewer@example.com"
    claimed = [e for e in audit["entries"] if e["action"] == "claim"]
    assert [e["actor"] for e in claimed] == ["reviewer@example.com"]


def test_a_viewer_reads_the_inbox_but_cannot_decide(
    page: Page, stack: ConsoleStack, arranged: Arranged
) -> None:
    sign_in(page, "viewer@example.com", path="/login?next=/inbox%3Fbrand%3Dacme")
    expect(page.get_by_role("heading", name=re.compile(r"^Mention by "))).to_be_visible()
    shown = _shown_mention(page, arranged)
    expect(
        page.get_by_text("Read only: claiming and deciding need the reviewer role.")
    ).to_be_visible()
    for name in ("Claim", "Send reply", "Approve", "Hide", "Escalate", "Submit and next"):
        expect(page.get_by_role("button", name=re.compile(rf"^{name}"))).to_have_count(0)
    expect(page.get_by_label("Canned replies", exact=True)).to_have_count(0)
    before = arranged.api.get(f"{stack.url('moderation')}/v1/review/{shown}/audit").json()
    # A hand-made request with the page's CSRF token: the server refuses it, not only the page.
    for what, form in (
        ("claim", {"brand": "acme"}),
        ("decision", {"brand": "acme", "action": "approve", "reason": "forged"}),
        ("decision", {"brand": "acme", "action": "reply", "reply": "forged reply"}),
    ):
        status: int = page.evaluate(
            """async ([url, form]) => (await fetch(url, {
                method: "POST",
                headers: {
                    "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content,
                    "HX-Request": "true",
                },
                body: new URLSearchParams(form),
            })).status""",
            [f"/inbox/{shown}/{what}", form],
        )
        assert status == 403, (what, form, status)
    after = arranged.api.get(f"{stack.url('moderation')}/v1/review/{shown}/audit").json()
    assert after == before  # nothing was claimed or decided


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


def test_the_overview_after_a_day_of_work_for_the_readme(
    page: Page, stack: ConsoleStack, arranged: Arranged, tmp_path: Path
) -> None:
    sign_in(page, "manager@example.com", path="/login?next=/overview%3Fbrand%3Dacme")
    expect(page.locator('[data-kpi="response_rate"]')).to_be_visible()
    expect(page.get_by_role("img", name=re.compile(r"^Mentions over time"))).to_be_visible()
    expect(page.get_by_role("img", name=re.compile(r"^Share of voice over time"))).to_be_visible()
    save_screenshot(page, "overview.png", tmp_path)
