"""The mentions stream on the real stack: filters in the URL (a sentiment shows only that
sentiment, a search that finds nothing offers to clear the filters), links to the original
only for http(s), and the "n new" fragment counting a mention that arrives after the page
was loaded, then handing over exactly the new rows."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import LocalServers, isolated_settings
from tests.console_kit import ConsoleStack, console_stack, eventually, mention

pytestmark = pytest.mark.integration

NEGATIVE = "acme coffee is awful, terrible and broken, I hate it"
POSITIVE = "acme coffee is great, I love it, thanks so much"
RIVAL = "rival roasters tasted fine today"


def ago(minutes: int) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


@pytest.fixture(scope="module")
def stack(
    servers: LocalServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConsoleStack]:
    settings = isolated_settings(servers)
    with console_stack(settings, tmp_path_factory.mktemp("console-mentions")) as running:
        running.send_mentions(
            [
                mention(
                    NEGATIVE, author="bob", url="https://social.example/@bob/1", created_at=ago(3)
                ),
                mention(
                    POSITIVE, author="cleo", url="https://social.example/@cleo/2", created_at=ago(2)
                ),
                mention(RIVAL, author="dan"),
            ]
        )
        running.send_mentions(
            [mention(f"rival roasters cup number {n}", created_at=ago(60 + n)) for n in range(52)]
        )
        listed(running, "acme", count=2)
        listed(running, "rival", count=53, limit="100")
        yield running


def listed(running: ConsoleStack, tracker: str, count: int, **filters: str) -> list[dict[str, Any]]:
    """The tracker's mentions in moderation, once there are `count` of them."""
    api = running.api()

    def found() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = api.get(
            running.url("moderation") + "/v1/mentions",
            params={"tracker_id": tracker, **filters},
        ).json()["items"]
        return items if len(items) >= count else None

    result: list[dict[str, Any]] = eventually(found)
    return result


def _texts(page: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r'<p class="mention-text">([^<]*)</p>', page)]


def _url(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*hx-get="([^"]+)"', page)
    assert found, page
    return html.unescape(found.group(1))


def test_the_list_shows_the_brand_newest_first_and_filters(stack: ConsoleStack) -> None:
    viewer = stack.sign_in("viewer@example.com")
    page = viewer.get("/mentions", params={"brand": "acme"})
    assert page.status_code == 200, page.text
    assert _texts(page.text) == [POSITIVE, NEGATIVE]  # newest first; rival's is not here
    assert 'href="https://social.example/@bob/1" rel="noopener noreferrer nofollow"' in page.text
    assert "Sentiment: " in page.text

    negatives = {m["text"] for m in listed(stack, "acme", 1, sentiment="negative")}
    assert NEGATIVE in negatives
    assert POSITIVE not in negatives
    filtered = viewer.get("/mentions", params={"brand": "acme", "sentiment": "negative"})
    assert filtered.status_code == 200
    assert _texts(filtered.text) == [NEGATIVE]
    assert "Clear filters" in filtered.text

    nothing = viewer.get("/mentions", params={"brand": "acme", "q": "zeppelin"})
    assert _texts(nothing.text) == []
    assert "No mention matches these filters." in nothing.text
    assert 'href="/mentions?brand=acme"' in nothing.text

    by_author = viewer.get("/mentions", params={"brand": "acme", "author": "@cleo"})
    assert _texts(by_author.text) == [POSITIVE]
    # As the voices screen links it: moderation filters by network and author id.
    by_voice = viewer.get("/mentions", params={"brand": "acme", "author": "mastodon:cleo"})
    assert _texts(by_voice.text) == [POSITIVE]
    voice = stack.api().get(
        stack.url("moderation") + "/v1/mentions",
        params={"tracker_id": "acme", "platform": "mastodon", "author_id": "cleo"},
    )
    assert [m["author"]["id"] for m in voice.json()["items"]] == ["cleo"]

    bad = viewer.get("/mentions", params={"brand": "acme", "sentiment": "furious"})
    assert bad.status_code == 422
    assert "Unknown sentiment: furious" in bad.text
    assert viewer.get("/mentions", params={"brand": "velo"}).status_code == 404


def test_n_new_counts_a_mention_posted_after_the_page_loaded(stack: ConsoleStack) -> None:
    reviewer = stack.sign_in("reviewer@example.com")
    page = reviewer.get("/mentions", params={"brand": "acme", "sentiment": "negative"})
    news_url = _url(page.text, "mention-news")
    assert 'hx-trigger="sse:mention, smm:poll"' in page.text
    quiet = reviewer.htmx("GET", news_url)
    assert quiet.status_code == 200
    assert "new-bar" not in quiet.text

    later = "acme coffee broke again, awful and terrible service"
    stack.send_mentions(
        [
            mention(later, author="eve"),
            mention("acme coffee is lovely, great, thanks", author="fay"),  # not negative
        ]
    )
    listed(stack, "acme", 4)
    news = reviewer.htmx("GET", news_url)
    assert news.status_code == 200
    assert 'data-count="1"' in news.text, news.text
    assert "1 new" in news.text
    fresh_url = html.unescape(re.findall(r'hx-get="([^"]+)"', news.text)[0])
    fresh = reviewer.htmx("GET", fresh_url)
    assert _texts(fresh.text) == [later]
    assert 'hx-swap-oob="true"' in fresh.text  # the bar anchored anew at the new newest
    renewed = _url(fresh.text, "mention-news")
    assert "new-bar" not in reviewer.htmx("GET", renewed).text


def test_load_more_appends_the_next_page(stack: ConsoleStack) -> None:
    viewer = stack.sign_in("viewer@example.com")
    page = viewer.get("/mentions", params={"brand": "rival"})
    first = _texts(page.text)
    assert len(first) == 50
    assert first[0] == RIVAL  # the newest; the numbered ones are an hour old and older
    more = re.search(r'<div id="mention-more"[^>]*>\s*<button[^>]*hx-get="([^"]+)"', page.text)
    assert more, page.text
    rest = viewer.htmx("GET", html.unescape(more.group(1)))
    assert rest.status_code == 200
    second = _texts(rest.text)
    assert len(second) == 3
    assert not set(first) & set(second)
    assert second[-1] == "rival roasters cup number 51"
    assert '<div id="mention-more" class="more" hx-swap-oob="true">' in rest.text
    assert "Load more" not in rest.text  # the last page: no button any more
    assert 'id="mention-rows"' not in rest.text  # rows only, appended to the list
