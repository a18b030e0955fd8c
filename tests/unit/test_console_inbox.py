"""The console's inbox and mentions rules without a server: tabs, moving through the queue,
what a decision needs, placeholders left in a reply, its count on the network, URL filters,
safe links and which mentions are new."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.console.domain.inbox import (
    InboxInputError,
    chosen_action,
    excerpt,
    holding,
    neighbours,
    next_after,
    parse_decision,
    parse_labels,
    parse_tab,
)
from services.console.domain.mentions import (
    FilterError,
    by_author,
    newer_than,
    newest_mark,
    notable_scores,
    parse_filters,
    parse_since,
    safe_link,
)
from services.console.domain.replies import (
    ReplyCount,
    placeholders_left,
    reply_count,
    reply_network,
    reply_problems,
)
from services.console.i18n import Locale
from services.publisher.domain.text_rules import count_text

NOW = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)


def test_tabs_default_to_unclaimed_and_refuse_others() -> None:
    assert parse_tab(None) == "unclaimed"
    assert parse_tab("mine") == "mine"
    with pytest.raises(InboxInputError):
        parse_tab("$where")


def test_neighbours_and_the_next_item_after_a_decision() -> None:
    queue = ["a", "b", "c"]
    assert neighbours(queue, "b") == ("a", "c")
    assert neighbours(queue, "a") == (None, "b")
    assert neighbours(queue, "c") == ("b", None)
    assert neighbours(queue, "gone") == (None, "a")
    assert neighbours([], None) == (None, None)
    # "b" was decided: the one after it that still waits, not the top of the queue.
    assert next_after(["a", "b", "c", "d"], "b", ["a", "d", "e"]) == "d"
    # Nothing after it waits any more: the top of the queue as it is now.
    assert next_after(["a", "b"], "b", ["a", "e"]) == "a"
    assert next_after(["b"], "b", ["b"]) is None
    assert next_after([], "b", []) is None


def test_a_decision_needs_a_known_action_and_a_reason_to_hide_or_escalate() -> None:
    assert parse_decision("approve", "").reason == "approved"
    assert parse_decision("reply", None).reason == "replied"
    assert parse_decision("hide", "  spam   link ").reason == "spam link"
    for action in ("hide", "escalate"):
        with pytest.raises(InboxInputError, match="reason"):
            parse_decision(action, "   ")
    with pytest.raises(InboxInputError):
        parse_decision("delete", "x")
    with pytest.raises(InboxInputError):
        parse_decision(None, "x")
    with pytest.raises(InboxInputError, match="too long"):
        parse_decision("hide", "x" * 2_001)


def test_the_action_of_a_form() -> None:
    assert chosen_action("hide", "approve", "text") == "hide"  # the button pressed
    assert chosen_action(None, "escalate", "text") == "escalate"  # picked for submit and next
    assert chosen_action(None, "", "a reply") == "reply"  # Ctrl+Enter in the reply box
    assert chosen_action(None, None, "   ") is None


def test_holding_an_item() -> None:
    assert holding({"status": "open"}, "me") == "free"
    assert holding({"status": "claimed", "lease_owner": "me"}, "me") == "mine"
    assert holding({"status": "claimed", "lease_owner": "rita"}, "me") == "other"
    assert holding({"status": "done", "lease_owner": "me"}, "me") == "done"


def test_excerpt_and_labels() -> None:
    assert excerpt("short  text\n") == "short text"
    long = "word " * 60
    cut = excerpt(long, 20)
    assert cut.endswith("…")
    assert len(cut) <= 21
    assert "  " not in cut
    assert excerpt(None) == ""
    assert parse_labels("Toxic, spam  toxic,,recall") == ["toxic", "spam", "recall"]
    assert parse_labels("") == []


def test_placeholders_left_in_a_reply() -> None:
    assert placeholders_left("Hi {author}, {brand} thanks {author}") == ["author", "brand"]
    assert placeholders_left("braces {{author}} are literal") == []
    assert placeholders_left("no {1} {} here") == []


def test_the_publishers_count_follows_the_network() -> None:
    """The count the console shows is the publisher's (`POST /v1/text/count`)."""
    assert count_text("x", "a" * 280).over is False
    assert count_text("x", "é" * 281).over is True
    emoji = count_text("x", "👍🏽")
    assert emoji.length == 2
    assert emoji.unit == "weighted characters"
    link = count_text("x", "see https://example.com/" + "p" * 100)
    assert link.length == len("see ") + 23  # a URL weighs 23 on X
    assert count_text("mastodon", "ü" * 500).over is False
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one grapheme, 18 bytes
    assert count_text("bluesky", family * 300).length == 300  # graphemes: within 300
    assert count_text("bluesky", family * 300).over is True  # but over 3,000 bytes
    answer = {"platform": "x", "length": 3, "limit": 280, "unit": "weighted characters"}
    assert reply_count(answer).left == 277


def _x(length: int) -> ReplyCount:
    return ReplyCount("x", length, 280, "weighted characters")


def test_reply_problems_name_what_blocks_sending() -> None:
    assert reply_problems("Thanks!", "x", _x(7)) == []
    [empty] = reply_problems("  ", "x", _x(0))
    assert empty.message == "Write a reply first."
    [unfilled] = reply_problems("Hi {author}", "x", _x(11))
    assert unfilled.values == {"placeholders": "{author}"}
    [long] = reply_problems("é" * 300, "x", _x(300))
    assert long.values["network"] == "x"
    assert long.values["length"] == 300
    [channel] = reply_problems("Thanks", None, None)
    assert channel.message == "No reply channel for this network."
    [uncounted] = reply_problems("Thanks", "reddit", None)
    assert uncounted.message == "No reply channel for this network."
    assert reply_network("x") == "x"
    assert reply_network(None) is None


def test_filters_from_the_url() -> None:
    filters = parse_filters(
        {"platform": "x", "sentiment": "negative", "q": "  broken   cup ", "author": "@bob"},
        NOW,
        "Europe/Berlin",
    )
    assert filters.active
    assert filters.api_params("acme") == {
        "tracker_id": "acme",
        "platform": "x",
        "sentiment": "negative",
        "q": "broken cup",
    }
    assert not parse_filters({}, NOW, "UTC").active
    week = parse_filters({"period": "7d"}, NOW, "UTC")
    assert week.end is not None
    assert week.start == week.end - timedelta(days=7)
    day = parse_filters({"from": "2026-03-29", "to": "2026-03-29"}, NOW, "Europe/Berlin")
    assert day.start == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)  # Berlin midnight, CET
    assert day.end == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)  # after the change to CEST
    alert = parse_filters({"from": "2026-03-29T10:00:00+00:00"}, NOW, "UTC")
    assert alert.start == datetime(2026, 3, 29, 10, 0, tzinfo=UTC)
    for bad in (
        {"sentiment": "furious"},
        {"platform": "myspace"},
        {"language": "deu"},
        {"label": "$gt"},
        {"period": "1y"},
        {"from": "yesterday"},
        {"from": "2026-03-29T10:00:00"},  # no offset
        {"from": "2026-03-29", "to": "2026-03-01"},
        {"q": "x" * 201},
        {"author": "two words"},
    ):
        with pytest.raises(FilterError):
            parse_filters(bad, NOW, "UTC")


def test_author_matching() -> None:
    mention = {"author": {"id": "123", "handle": "Bob"}}
    assert by_author(mention, "@bob")
    assert by_author(mention, "123")
    assert by_author(mention, None)
    assert not by_author(mention, "rob")
    assert not by_author({}, "bob")


def test_only_http_links_are_links() -> None:
    assert safe_link("https://social.example/@ann/1") == "https://social.example/@ann/1"
    assert safe_link("HTTP://example.com") == "HTTP://example.com"
    for bad in ("javascript:alert(1)", "data:text/html,x", "//example.com", "https://", None, 3):
        assert safe_link(bad) is None


def test_notable_scores() -> None:
    assert notable_scores({"toxicity": 0.8, "spam": 0.1}) == [("toxicity", 0.8)]
    assert notable_scores({"toxicity": 0.5, "spam": 0.9}) == [("toxicity", 0.5), ("spam", 0.9)]
    assert notable_scores(None) == []


def test_what_is_new_since_the_newest_shown() -> None:
    at = NOW.isoformat()
    shown = [
        {"mention_id": "x:1", "created_at": at},
        {"mention_id": "x:0", "created_at": "2026-03-29T11:00:00+00:00"},
    ]
    newest, ids = newest_mark(shown)
    assert newest == NOW
    assert ids == ["x:1"]
    listed = [
        {"mention_id": "x:3", "created_at": (NOW + timedelta(seconds=5)).isoformat()},
        {"mention_id": "x:2", "created_at": at},  # as new as the newest shown, not shown
        {"mention_id": "x:1", "created_at": at},  # shown
        {"mention_id": "x:0", "created_at": "2026-03-29T11:00:00+00:00"},
    ]
    assert [m["mention_id"] for m in newer_than(listed, NOW, {"x:1"})] == ["x:3", "x:2"]
    assert [m["mention_id"] for m in newer_than(listed, None, {"x:1"})] == ["x:3", "x:2", "x:0"]
    assert newest_mark([]) == (None, [])
    assert parse_since(at) == NOW
    assert parse_since("not a time") is None
    assert parse_since(None) is None


def test_every_text_of_the_two_screens_has_a_german_translation() -> None:
    """A text added to the mentions or inbox templates without its German shows English."""
    console = Path(__file__).parents[2] / "services" / "console"
    german = Locale("de", "Europe/Berlin")
    untranslated: list[str] = []
    for name in ("mentions", "mentions_rows", "mentions_bar", "inbox"):
        template = (console / "templates" / f"{name}.html").read_text()
        for found in re.finditer(r"""_\(\s*(?:"([^"]*)"|'([^']*)')""", template):
            message = found.group(1) if found.group(1) is not None else found.group(2)
            if german.gettext(message) == message and message not in ("Label", "neutral"):
                untranslated.append(message)
    assert untranslated == []
