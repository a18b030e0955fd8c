"""The overview moves while a person watches: new mentions refresh its figures (at most every
30 s), the charts are drawn again, and no swap breaks the Content-Security-Policy (the
`context` fixture fails the test on any violation)."""

from __future__ import annotations

import time
import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import sign_in
from tests.console_kit import ConsoleStack, mention

pytestmark = pytest.mark.browser
#: The refresh waits up to 30 s after the previous one, then a fragment request.
REFRESH_TIMEOUT_MS = 50_000


def test_new_mentions_refresh_the_overviews_figures_and_charts(
    page: Page, stack: ConsoleStack
) -> None:
    sign_in(page, "bikes@example.com", path="/login?next=/overview%3Fbrand%3Dvelo")
    card = page.locator('[data-kpi="mention_volume"]')
    expect(card).to_be_visible()
    expect(page.locator("#live-state")).to_have_attribute("data-live-state", "live")
    before = int(card.get_attribute("data-value") or "0")
    marker = uuid.uuid4().hex[:8]
    stack.send_mentions([mention(f"velo bikes are great {marker}", author=f"a{marker}")])
    expect(card).to_have_attribute("data-value", str(before + 1), timeout=REFRESH_TIMEOUT_MS)
    expect(page.locator('canvas[data-chart="sentiment"]')).to_be_visible()
    # A second mention soon after: it waits for the 30 s since the last refresh, and shows.
    sent = time.monotonic()
    stack.send_mentions([mention(f"velo bikes are awful {marker}", author=f"b{marker}")])
    expect(card).to_have_attribute("data-value", str(before + 2), timeout=REFRESH_TIMEOUT_MS)
    assert time.monotonic() - sent < REFRESH_TIMEOUT_MS / 1000
    expect(page.locator('canvas[data-chart="share"]')).to_be_visible()
    expect(page.locator(".updated")).to_contain_text("updated")
