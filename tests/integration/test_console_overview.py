"""The overview and voices screens on the real stack: every card equals metrics' /v1/kpis for
the same window, the charts add up to it, voices list the authors sent with their counts, the
crisis banner links to the spike's mentions, German labels, and other brands are not found.

One stack for the module (five processes take ~20 s to start); mentions are sent once.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.conftest import isolated_settings
from tests.console_kit import ConsoleStack, console_stack, mention

pytestmark = pytest.mark.integration

ZONE = ZoneInfo("Europe/Berlin")  # every kit user's time zone
_CARD = re.compile(r'data-kpi="([a-z_]+)" data-value="([^"]*)"')
_ROW = re.compile(
    r'<tr data-author="([^"]+)" data-mentions="(\d+)" data-reach="(\d*)"\s+'
    r'data-positive="(\d+)" data-neutral="(\d+)" data-negative="(\d+)">'
)
_DATA = re.compile(r'<script type="application/json" id="overview-data">(.*?)</script>', re.S)


def _days() -> tuple[date, date, datetime, datetime]:
    """Yesterday and today in Berlin, and that custom period's window in UTC."""
    today = datetime.now(ZONE).date()
    first = today - timedelta(days=1)
    start = datetime.combine(first, clock.min, ZONE).astimezone(UTC)
    end = datetime.combine(today + timedelta(days=1), clock.min, ZONE).astimezone(UTC)
    return first, today, start, end


@pytest.fixture(scope="module")
def stack(servers: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    settings = isolated_settings(servers)  # type: ignore[arg-type]
    with pytest.MonkeyPatch.context() as patch:
        # The service processes inherit the environment: check for spikes every 2 s.
        patch.setenv("SMM_METRICS_ALERT_INTERVAL_SECONDS", "2")
        with console_stack(settings, tmp_path_factory.mktemp("console")) as running:
            yield running


def _kpis(stack: ConsoleStack, tracker: str, start: datetime, end: datetime) -> dict[str, Any]:
    answer = stack.api().get(
        stack.url("metrics") + "/v1/kpis",
        params={"tracker_id": tracker, "from": start.isoformat(), "to": end.isoformat()},
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


@pytest.fixture(scope="module")
def sent(stack: ConsoleStack) -> dict[str, int]:
    """Mentions of acme (ann twice, bob once) and rival (cid), counted by metrics."""
    stack.send_mentions(
        [
            mention("acme is wonderful, I love it", author="ann", followers=100),
            mention("acme coffee is great and lovely", author="ann", followers=120),
            mention("acme is awful, terrible and broken", author="bob", followers=5000),
            mention("rival coffee is excellent, love it", author="cid", followers=40),
        ]
    )
    _, _, start, end = _days()
    wanted = {"acme": 3, "rival": 1}
    deadline = time.monotonic() + 60
    while True:
        counted = {t: _kpis(stack, t, start, end)["mention_volume"] for t in wanted}
        if counted == wanted:
            return counted
        assert time.monotonic() < deadline, f"metrics counted {counted}, not {wanted}"
        time.sleep(0.5)


def _custom(brand: str) -> str:
    first, last, _, _ = _days()
    return f"brand={brand}&period=custom&from={first.isoformat()}&to={last.isoformat()}"


def _fragment(client: httpx.Client, url: str) -> str:
    answer = client.get(url, headers={"HX-Request": "true"})
    assert answer.status_code == 200, answer.text[:500]
    assert "HX-Request" in answer.headers["vary"]
    return answer.text


def _same(shown: str, expected: Any) -> bool:
    if expected is None:
        return shown == ""
    return float(shown) == float(expected)


def test_every_card_equals_the_kpi_api_for_the_same_window(
    stack: ConsoleStack, sent: dict[str, int]
) -> None:
    client = stack.sign_in("viewer@example.com")
    page = client.get("/overview?" + _custom("acme"))
    assert page.status_code == 200
    assert 'hx-trigger="load, smm:poll, smm:refresh"' in page.text  # figures come as a fragment
    assert "data-kpi=" not in page.text  # the first answer is skeletons, at once
    assert " style=" not in page.text
    assert "<script>" not in page.text

    fragment = _fragment(client, "/overview?" + _custom("acme"))
    _, _, start, end = _days()
    now, before = (
        _kpis(stack, "acme", start, end),
        _kpis(stack, "acme", start - (end - start), start),
    )
    expected = {
        "mention_volume": now["mention_volume"],
        "potential_reach": now["potential_reach"],
        "net_sentiment": now["net_sentiment"],
        "share_of_voice": now["share_of_voice"],
        "response_time_median": now["response_time_seconds"]["median"],
        "response_time_avg": now["response_time_seconds"]["avg"],
        "response_rate": now["response_rate"],
        "engagement_rate_by_reach": now["engagement_rate_by_reach"],
    }
    shown = dict(_CARD.findall(fragment))
    assert set(shown) == set(expected), shown
    for key, value in expected.items():
        assert _same(shown[key], value), (key, shown[key], value)
    assert now["mention_volume"] == 3
    assert now["potential_reach"] == 5120
    assert before["mention_volume"] == 0
    assert "new: none in the previous period" in fragment
    # The tooltip names the formula and the sample.
    sentiment = now["sentiment"]
    rated = sentiment["positive"] + sentiment["negative"]
    assert f"100 \u00d7 (positive \u2212 negative) / (positive + negative); {rated} mentions" in (
        html.unescape(fragment)
    )
    assert "updated just now" in fragment or "min ago" in fragment

    # The charts' data add up to the same snapshot, and every chart has its table.
    found = _DATA.search(fragment)
    assert found, fragment[:2000]
    chart = json.loads(
        html.unescape(found.group(1)) if "&#34;" in found.group(1) else found.group(1)
    )
    for name in ("positive", "neutral", "negative"):
        assert sum(chart["sentiment"][name]) == sentiment[name], name
    assert [s["name"] for s in chart["share"]] == ["Acme Coffee", "Rival Roasters"]
    for i, total in enumerate(
        a + b for a, b in zip(*(s["values"] for s in chart["share"]), strict=True) if a is not None
    ):
        assert total == pytest.approx(100.0, abs=0.11), i
    assert fragment.count("<table>") == 2
    # The platform mix is the snapshot's, in the chart and in its table.
    assert {row["platform"]: row["mentions"] for row in chart["platforms"]} == now["platforms"]
    assert sum(now["platforms"].values()) == now["mention_volume"]
    table = dict(re.findall(r'data-platform="([a-z]+)" data-value="(\d+)"', fragment))
    assert {k: int(v) for k, v in table.items()} == now["platforms"]


def test_the_german_overview_and_voices_show_german_labels(
    stack: ConsoleStack, sent: dict[str, int]
) -> None:
    client = stack.sign_in("manager@example.com")
    switched = client.post(
        "/account/language", data={"language": "de", "csrf_token": client.csrf_token}
    )
    assert switched.status_code == 303
    page = client.get("/overview?" + _custom("acme"))
    assert "Zeitraum" in page.text
    assert "letzte 7 Tage" in page.text
    fragment = _fragment(client, "/overview?" + _custom("acme"))
    for label in ("Erwähnungen", "Potenzielle Reichweite", "Stimmenanteil", "Antwortzeit"):
        assert label in fragment, label
    assert "Mentions over time" not in fragment
    voices = client.get("/voices?" + _custom("acme")).text
    assert "Größte Reichweite" in voices
    assert "Meiste Erwähnungen" in voices


def test_another_brands_overview_and_voices_are_not_found(
    stack: ConsoleStack, sent: dict[str, int]
) -> None:
    client = stack.sign_in("bikes@example.com")
    for url in ("/overview?brand=acme", "/voices?brand=acme", "/overview?brand=nope"):
        assert client.get(url).status_code == 404, url
        assert client.get(url, headers={"HX-Request": "true"}).status_code == 404, url
    # Their own brand has no mention yet: the overview says so and what to do.
    velo = _fragment(client, "/overview?brand=velo&period=7d")
    assert "No mentions of Velo Bikes in this period yet." in velo
    assert 'href="/overview?brand=velo&amp;period=30d"' in velo
    # A period that makes no sense is refused in words.
    for screen in ("overview", "voices"):
        url = f"/{screen}?brand=velo&period=custom&from=2026-02-30&to=2026-03-01"
        for headers in ({}, {"HX-Request": "true"}):  # the page and its fragment
            refused = client.get(url, headers=headers)
            assert refused.status_code == 422, (url, headers)
            assert "2026-02-30 is not a day (YYYY-MM-DD)" in refused.text, (url, headers)


def test_voices_list_the_authors_sent_with_their_counts(
    stack: ConsoleStack, sent: dict[str, int]
) -> None:
    client = stack.sign_in("viewer@example.com")
    page = client.get("/voices?" + _custom("acme"))
    assert page.status_code == 200
    rows = _ROW.findall(page.text)
    by_reach = rows[: len(rows) // 2]
    assert [(r[0], int(r[1]), r[2]) for r in by_reach] == [
        ("mastodon:bob", 1, "5000"),
        ("mastodon:ann", 2, "120"),
    ]
    _, _, start, end = _days()
    answer = stack.api().get(
        stack.url("metrics") + "/v1/voices",
        params={"tracker_id": "acme", "from": start.isoformat(), "to": end.isoformat()},
    )
    assert answer.status_code == 200, answer.text
    api = {f"{v['platform']}:{v['author_id']}": v for v in answer.json()["by_mentions"]}
    for author, mentions, _, positive, neutral, negative in rows:
        voice = api[author]
        assert int(mentions) == voice["mentions"]
        assert (int(positive), int(neutral), int(negative)) == (
            voice["sentiment"]["positive"],
            voice["sentiment"]["neutral"],
            voice["sentiment"]["negative"],
        )
    assert 'href="/mentions?brand=acme&amp;author=mastodon%3Abob"' in page.text
    assert " positive, " in page.text  # the mix in words, not colour alone


def test_a_negative_spike_puts_a_crisis_banner_linking_to_its_mentions(
    stack: ConsoleStack, sent: dict[str, int]
) -> None:
    stack.send_mentions(
        [mention(f"rival is awful and terrible {i}", author=f"angry{i}") for i in range(12)]
    )
    client = stack.sign_in("viewer@example.com")
    deadline = time.monotonic() + 90
    while True:
        fragment = _fragment(client, "/overview?brand=rival&period=24h")
        if "Negative spike" in fragment:
            break
        assert time.monotonic() < deadline, "no crisis banner"
        time.sleep(1)
    link = re.search(
        r'href="(/mentions\?brand=rival&amp;sentiment=negative&amp;from=[^"]+)"', fragment
    )
    assert link, fragment[:3000]
    assert "&amp;to=" in link.group(1)
    # Acme's overview has no crisis of its own.
    assert "Negative spike" not in _fragment(client, "/overview?" + _custom("acme"))


def test_when_metrics_is_away_the_region_says_so_with_a_retry_and_the_page_still_works(
    stack: ConsoleStack, sent: dict[str, int]
) -> None:
    client = stack.sign_in("viewer@example.com")
    metrics = stack.processes["metrics"]
    metrics.stop()
    try:
        page = client.get("/overview?brand=acme")
        assert page.status_code == 200  # the header and the skeletons need no figure
        assert 'id="brand-switch"' in page.text
        fragment = _fragment(client, "/overview?brand=acme")
        assert "The figures could not be loaded." in fragment
        assert "The metrics service failed" in fragment
        assert 'hx-get="/overview?brand=acme"' in fragment  # the retry
        assert "data-kpi=" not in fragment
        voices = client.get("/voices?brand=acme")
        assert voices.status_code == 200
        assert "The voices could not be loaded." in voices.text
    finally:
        metrics.start()
        stack.processes.wait_ready(["metrics"])
    assert "data-kpi=" in _fragment(client, "/overview?brand=acme")
