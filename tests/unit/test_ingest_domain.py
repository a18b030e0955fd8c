"""Ingest's pure pieces: text normalisation, engagement schedule, import rows, tracker model."""

from __future__ import annotations

import io
import itertools
import unicodedata
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.ingest.domain.engagement import POLL_STEPS, next_poll_at
from services.ingest.domain.normalise import MentionIn, html_to_text, normalise_text, to_mention
from services.ingest.domain.trackers import Tracker
from services.ingest.importer import csv_row_to_item, read_rows
from shared.events import Mention

PUBLISHED = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # the night clocks go forward in Berlin


def test_html_becomes_text_with_paragraphs_and_no_source_line_breaks() -> None:
    html = (
        '<p>Neue <a href="https://x">#Velora</a>\n  Cargo&nbsp;ist da</p><p>Probefahrt?<br>Ja!</p>'
    )
    assert normalise_text(html) == "Neue #Velora Cargo ist da\nProbefahrt?\nJa!"
    assert html_to_text("plain < text & no tags") == "plain < text & no tags"
    assert normalise_text("<script>alert(1)</script>Hallo") == "Hallo"


def test_text_is_nfc_so_two_spellings_of_an_umlaut_are_equal() -> None:
    decomposed = unicodedata.normalize("NFD", "Röstwerk")
    assert decomposed != "Röstwerk"
    assert normalise_text(decomposed) == "Röstwerk"


def test_the_unvalidated_mention_is_exactly_what_validation_would_build() -> None:
    item = MentionIn.model_validate(
        {
            "platform": "mastodon",
            "native_id": "109",
            "url": "https://social.example/@kim/109",
            "text": "<p>Röstwerk   liefert</p><p>wieder pünktlich</p>",
            "author": {"id": "kim", "followers": 12},
            "created_at": "2026-11-20T10:00:00+01:00",
            "metrics": {"likes": 3},
        }
    )
    built = to_mention(
        item,
        source="webhook",
        ingested_at=datetime(2026, 11, 20, 9, 5, tzinfo=UTC),
        tracker_ids=["roestwerk"],
        lang="de",
    )
    validated = Mention.model_validate(built.model_dump())
    assert validated == built
    assert Mention.model_validate_json(built.to_bytes()) == built
    assert built.mention_id == "mastodon:109"
    assert built.text == "Röstwerk liefert\nwieder pünktlich"
    assert (
        built.event_id
        != to_mention(item, source="api", ingested_at=built.ingested_at, tracker_ids=[]).event_id
    )


def test_engagement_is_polled_often_first_then_rarely_until_the_window_ends() -> None:
    window = timedelta(days=7)
    first = next_poll_at(PUBLISHED, 0, PUBLISHED, window)
    assert first == PUBLISHED + POLL_STEPS[0]
    times = [first]
    now = first
    polls = 1
    while (due := next_poll_at(PUBLISHED, polls, now, window)) is not None:
        times.append(due)
        now, polls = due, polls + 1
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == sorted(gaps)  # never more often than before
    assert gaps[-1] == timedelta(days=1)
    assert times[-1] <= PUBLISHED + window
    assert next_poll_at(PUBLISHED, 3, PUBLISHED + window, window) is None


def test_a_late_poll_is_scheduled_from_now_not_from_the_missed_time() -> None:
    late = PUBLISHED + timedelta(hours=5)
    assert next_poll_at(PUBLISHED, 2, late, timedelta(days=7)) == late + POLL_STEPS[2]


def test_csv_rows_become_nested_items_and_bad_jsonl_lines_are_reported() -> None:
    row = {
        "platform": "review",
        "native_id": "r9",
        "text": "Gute Bohnen",
        "created_at": "2026-11-01T10:00:00Z",
        "author_id": "k1",
        "author_followers": "",
        "likes": "4",
        "url": "",
    }
    item = csv_row_to_item(row)
    assert item["author"] == {"id": "k1"}  # empty cells are left out: the model reads None
    assert item["metrics"]["likes"] == 4
    assert "url" not in item
    rows = list(read_rows(io.StringIO('{"a": 1}\n\n[1]\n{oops\n'), "jsonl"))
    assert rows[0] == (1, {"a": 1})
    assert rows[1] == (3, "not a JSON object")
    assert rows[2][0] == 4
    assert str(rows[2][1]).startswith("not JSON")


def test_tracker_model_checks_id_query_and_languages() -> None:
    tracker = Tracker(
        id="velora", name="Velora", query="velora OR #velora", languages=["en", "de", "de"]
    )
    assert tracker.languages == ["de", "en"]
    with pytest.raises(ValidationError, match="query does not parse at position"):
        Tracker(id="velora", name="Velora", query="velora AND")
    with pytest.raises(ValidationError):
        Tracker(id="Velora Bikes", name="Velora", query="velora")
    with pytest.raises(ValidationError):
        Tracker(id="velora", name="Velora", query="velora", languages=["deu"])


def test_a_slow_tracker_refresh_never_installs_an_older_matcher_last() -> None:
    """keep_fresh's refresh read the trackers before one was created and is slow to finish;
    the API's refresh after the creation must still be what stays (before: the stale matcher
    won, and the new tracker's mentions were dropped as unmatched until the next refresh)."""
    import asyncio
    from typing import Any

    from services.ingest.intake import TrackerRegistry

    class Store:
        """The stored trackers; the first read of them is slow (a busy database)."""

        def __init__(self) -> None:
            self.trackers: list[dict[str, Any]] = []
            self.reads = 0

        async def revision(self) -> object:
            return len(self.trackers)

        async def all(self) -> list[dict[str, Any]]:
            self.reads += 1
            seen = list(self.trackers)
            if self.reads == 1:
                await asyncio.sleep(0.2)
            return seen

    async def scenario() -> list[str]:
        store = Store()
        registry = TrackerRegistry(store)  # type: ignore[arg-type]
        background = asyncio.create_task(registry.refresh())  # keep_fresh, before the create
        await asyncio.sleep(0.05)
        store.trackers.append({"_id": "velora", "query": "velora", "languages": []})
        await registry.refresh()  # the API, after storing the tracker
        await background
        return registry.matcher.match("Velora e-bikes are great", "en")

    assert asyncio.run(scenario()) == ["velora"]
