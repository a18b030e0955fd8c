"""The demo corpus: deterministic, well-formed, and mixed the way the pipeline needs."""

from __future__ import annotations

import importlib
import importlib.util
import json
import random
import re
import sys
import time
import unicodedata
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


def _load() -> ModuleType:
    """The module under test; by file path when the repo root is not importable yet."""
    try:
        return importlib.import_module("shared.local.demo_corpus")
    except ImportError:
        path = Path(__file__).resolve().parents[2] / "shared" / "local" / "demo_corpus.py"
        spec = importlib.util.spec_from_file_location("demo_corpus_under_test", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module


dc = _load()

NOW = datetime(2026, 5, 1, 12, 0, 0, 123_456, tzinfo=UTC)
N = 1000
PLATFORMS = {
    "x",
    "facebook",
    "instagram",
    "mastodon",
    "bluesky",
    "reddit",
    "rss",
    "review",
    "forum",
}
BRAND_RE = re.compile(r"röstwerk|roestwerk|bohnenblitz|velora", re.IGNORECASE)
HEX16_RE = re.compile(r"^[0-9a-f]{16}$")


@pytest.fixture(scope="module")
def mentions() -> list[dict[str, Any]]:
    return dc.generate_mentions(random.Random(1), NOW, N)  # type: ignore[no-any-return]


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _mentions_a_brand(text: str) -> bool:
    return BRAND_RE.search(unicodedata.normalize("NFC", text)) is not None


def test_deterministic_for_seed_and_now(mentions: list[dict[str, Any]]) -> None:
    again = dc.generate_mentions(random.Random(1), NOW, N)
    assert json.dumps(again, sort_keys=True) == json.dumps(mentions, sort_keys=True)
    other = dc.generate_mentions(random.Random(2), NOW, N)
    assert json.dumps(other) != json.dumps(mentions)


def test_count(mentions: list[dict[str, Any]]) -> None:
    assert len(mentions) == N
    assert dc.generate_mentions(random.Random(3), NOW, 0) == []
    assert len(dc.generate_mentions(random.Random(3), NOW, 1)) == 1
    assert len(dc.generate_mentions(random.Random(3), NOW, 7)) == 7
    with pytest.raises(ValueError, match="count"):
        dc.generate_mentions(random.Random(3), NOW, -1)


def test_fast_enough() -> None:
    start = time.perf_counter()
    dc.generate_mentions(random.Random(1), NOW, N)
    assert time.perf_counter() - start < 1.0


def test_every_item_has_the_ingest_shape(mentions: list[dict[str, Any]]) -> None:
    json.dumps(mentions)  # JSON-serialisable as is
    for m in mentions:
        assert set(m) == {
            "platform",
            "native_id",
            "url",
            "text",
            "lang",
            "author",
            "created_at",
            "in_reply_to",
            "metrics",
        }
        assert m["platform"] in PLATFORMS
        assert HEX16_RE.match(m["native_id"])
        assert m["url"].startswith("https://")
        assert " " not in m["url"]
        assert isinstance(m["text"], str)
        assert m["text"].strip()
        assert m["lang"] in ("de", "en", None)

        author = m["author"]
        assert set(author) == {"id", "handle", "display_name", "followers"}
        assert isinstance(author["id"], str)
        assert author["id"]
        assert not re.search(r"\s", author["id"])
        assert isinstance(author["handle"], str)
        assert isinstance(author["display_name"], str)
        assert author["followers"] is None or (
            isinstance(author["followers"], int) and author["followers"] >= 0
        )

        created = _parse(m["created_at"])
        assert created.tzinfo is not None
        assert created.utcoffset() == timedelta(0)
        assert NOW - timedelta(minutes=10) <= created <= NOW

        assert m["in_reply_to"] is None or isinstance(m["in_reply_to"], str)
        metrics = m["metrics"]
        assert set(metrics) == {"likes", "shares", "comments", "views"}
        for key in ("likes", "shares", "comments"):
            assert isinstance(metrics[key], int)
            assert metrics[key] >= 0
        assert metrics["views"] is None or metrics["views"] >= 0


def test_naive_now_is_taken_as_utc() -> None:
    naive = NOW.replace(tzinfo=None)
    assert dc.generate_mentions(random.Random(4), naive, 50) == dc.generate_mentions(
        random.Random(4), NOW, 50
    )


def test_both_languages_in_sizeable_shares(mentions: list[dict[str, Any]]) -> None:
    langs = Counter(m["lang"] for m in mentions)
    tagged = langs["de"] + langs["en"]
    assert 0.45 < langs["de"] / tagged < 0.65
    assert 0.35 < langs["en"] / tagged < 0.55


def test_some_items_leave_lang_empty(mentions: list[dict[str, Any]]) -> None:
    share = sum(m["lang"] is None for m in mentions) / N
    assert 0.12 < share < 0.28


def test_duplicates_repeat_an_earlier_item_unchanged(mentions: list[dict[str, Any]]) -> None:
    first: dict[tuple[str, str], dict[str, Any]] = {}
    duplicates = 0
    for m in mentions:
        key = (m["platform"], m["native_id"])
        if key in first:
            duplicates += 1
            assert m == first[key]
            assert m is not first[key]
        else:
            first[key] = m
    assert 0.01 * N <= duplicates <= 0.06 * N


def test_native_ids_unique_apart_from_duplicates(mentions: list[dict[str, Any]]) -> None:
    by_id: dict[str, str] = {}
    for m in mentions:
        text = json.dumps(m, sort_keys=True)
        assert by_id.setdefault(m["native_id"], text) == text


def test_some_items_mention_no_brand(mentions: list[dict[str, Any]]) -> None:
    share = sum(not _mentions_a_brand(m["text"]) for m in mentions) / N
    assert 0.05 < share < 0.16


def test_umlaut_variants_of_the_brand(mentions: list[dict[str, Any]]) -> None:
    texts = [unicodedata.normalize("NFC", m["text"]) for m in mentions]
    assert any("Röstwerk" in t for t in texts)
    assert any("Roestwerk" in t for t in texts)
    assert any("ROESTWERK" in t for t in texts)
    assert any("o\u0308" in m["text"] for m in mentions)  # decomposed "ö", normalised by ingest


def test_mastodon_items_include_html(mentions: list[dict[str, Any]]) -> None:
    mastodon = [m["text"] for m in mentions if m["platform"] == "mastodon"]
    assert mastodon
    html_items = [t for t in mastodon if t.startswith("<p>") and t.endswith("</p>")]
    assert html_items
    assert any('class="mention hashtag"' in t for t in html_items)
    assert len(html_items) < len(mastodon)  # some plain text too


def test_categories_show_up(mentions: list[dict[str, Any]]) -> None:
    texts = " ".join(m["text"] for m in mentions)
    assert re.search(r"iPhone|Krypto|Crypto|Follower", texts)  # spam
    assert re.search(r"Idioten|Vollpfosten|idiots|clowns|Saftladen|jerk", texts)  # toxic
    assert re.search(r"Ausbildung|beworben|Stellenangebot|applied|apprenticeships", texts)
    assert re.search(r"nicht gut|not bad at all|nicht schlecht|not good", texts)
    assert re.search(r"Wo kann ich|Where can I buy|thinking about buying", texts)


def test_influencers_and_long_tailed_followers(mentions: list[dict[str, Any]]) -> None:
    followers = [m["author"]["followers"] for m in mentions]
    known = [f for f in followers if f is not None]
    assert any(f is None for f in followers)
    assert any(50_000 <= f <= 500_000 for f in known)
    assert sum(10 <= f <= 2_000 for f in known) / len(known) > 0.6
    assert len({m["author"]["id"] for m in mentions}) > 150


def test_texts_are_varied() -> None:
    texts = {m["text"] for m in dc.generate_mentions(random.Random(5), NOW, 3000)}
    assert len(texts) > 2000


def test_demo_trackers() -> None:
    trackers = {t["id"]: t for t in dc.DEMO_TRACKERS}
    assert set(trackers) == {"roestwerk", "bohnenblitz", "velora"}
    assert trackers["roestwerk"]["group"] == "kaffee"
    assert trackers["bohnenblitz"]["group"] == "kaffee"
    assert trackers["velora"]["group"] == "bikes"
    assert trackers["roestwerk"]["name"] == "Röstwerk"
    for tracker in trackers.values():
        assert tracker["languages"] == ["de", "en"]
        assert " NOT " in tracker["query"]
        assert tracker["query"].count("(") == tracker["query"].count(")")


def test_custom_author_pool_is_used() -> None:
    pool = dc.build_author_pool(random.Random(9), size=60)
    ids = {a.id for a in pool}
    assert len(pool) == 60
    assert len(ids) == 60
    produced = dc.generate_mentions(random.Random(1), NOW, 200, authors=pool)
    assert {m["author"]["id"] for m in produced} <= ids
    assert dc.default_author_pool() == dc.default_author_pool()
    assert len(dc.default_author_pool()) == 300


def test_corpus_version() -> None:
    assert dc.CORPUS_VERSION == "1"
