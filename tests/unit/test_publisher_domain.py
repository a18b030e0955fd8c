"""Publisher domain: per-network text rules, DST-correct slots and recurrence, backoff, keys."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from services.publisher.adapters.base import retry_after_seconds
from services.publisher.adapters.bluesky import record_key
from services.publisher.adapters.webhook import signature
from services.publisher.dispatcher import backoff_seconds
from services.publisher.domain.text_rules import (
    PostRuleError,
    check_post,
    grapheme_length,
    x_weighted_length,
)
from services.publisher.domain.timing import (
    Slot,
    TimingError,
    local_to_utc,
    next_free_slot,
    next_occurrence,
    validate_recurrence,
)

BERLIN = ZoneInfo("Europe/Berlin")


# --- text rules ----------------------------------------------------------------------------


def test_x_weighs_urls_cjk_and_emoji_like_twitter_text() -> None:
    assert x_weighted_length("Hallo") == 5
    assert x_weighted_length("Neu im Shop: https://example.com/a/very/long/path?x=1") == 13 + 23
    assert x_weighted_length("日本語") == 6
    assert x_weighted_length("👍🏽") == 2  # one emoji with skin tone
    assert x_weighted_length("👨‍👩‍👧") == 2  # a ZWJ family is one emoji
    assert x_weighted_length("é") == x_weighted_length("e\u0301") == 1  # NFC first


def test_x_limit_is_280_weighted() -> None:
    check_post("x", "a" * 280, [])
    with pytest.raises(PostRuleError) as too_long:
        check_post("x", "日" * 141, [])
    assert too_long.value.code == "text_too_long"
    assert "280 weighted characters" in too_long.value.message
    check_post("x", "x " * 120 + "https://example.com/" + "y" * 200, [])  # URL counts 23


def test_bluesky_counts_graphemes_and_mastodon_counts_urls_as_23() -> None:
    family = "👨‍👩‍👧"
    assert grapheme_length(family * 3) == 3
    decomposed = "e\u0301"  # one grapheme, two code points
    check_post("bluesky", decomposed * 300, [])  # 300 graphemes although 600 code points
    with pytest.raises(PostRuleError, match="300 graphemes"):
        check_post("bluesky", "ä" * 301, [])
    check_post("mastodon", "a" * 470 + " https://example.com/" + "p" * 300, [])
    with pytest.raises(PostRuleError, match="500 characters"):
        check_post("mastodon", "a" * 501, [])
    with pytest.raises(PostRuleError, match="3000 characters"):
        check_post("linkedin", "a" * 3001, [])


def test_media_limits_and_urls() -> None:
    check_post("facebook", "Neue Bohnen", ["https://cdn.example.com/a.jpg"])
    with pytest.raises(PostRuleError) as many:
        check_post("generic", "x", [f"https://cdn.example.com/{i}.jpg" for i in range(21)])
    assert many.value.code == "too_many_media"
    with pytest.raises(PostRuleError) as bad:
        check_post("facebook", "x", ["ftp://cdn.example.com/a.jpg"])
    assert bad.value.code == "invalid_media_url"
    with pytest.raises(PostRuleError) as unsupported:
        check_post("x", "x", ["https://cdn.example.com/a.jpg"])
    assert unsupported.value.code == "media_not_supported"
    with pytest.raises(PostRuleError, match="empty"):
        check_post("mastodon", "   ", [])


# --- time ----------------------------------------------------------------------------------


def test_local_times_in_the_dst_gap_move_forward_and_overlap_takes_the_first() -> None:
    # 2027-03-28: Berlin jumps from 02:00 CET to 03:00 CEST; 02:30 does not exist.
    assert local_to_utc(datetime(2027, 3, 28, 2, 30), BERLIN) == datetime(
        2027, 3, 28, 1, 30, tzinfo=UTC
    )
    assert local_to_utc(datetime(2027, 3, 28, 3, 30), BERLIN) == datetime(
        2027, 3, 28, 1, 30, tzinfo=UTC
    )
    # 2027-10-31: 02:30 happens twice (CEST, then CET); the first one counts.
    assert local_to_utc(datetime(2027, 10, 31, 2, 30), BERLIN) == datetime(
        2027, 10, 31, 0, 30, tzinfo=UTC
    )
    # Ordinary days: 09:00 is 08:00 UTC in winter, 07:00 UTC in summer.
    assert local_to_utc(datetime(2027, 3, 27, 9), BERLIN) == datetime(2027, 3, 27, 8, tzinfo=UTC)
    assert local_to_utc(datetime(2027, 3, 29, 9), BERLIN) == datetime(2027, 3, 29, 7, tzinfo=UTC)


def test_queue_slots_keep_local_time_across_spring_forward() -> None:
    slots = [Slot(weekday="sun", time="09:00"), Slot(weekday="sun", time="02:30")]
    after = datetime(2027, 3, 27, 12, tzinfo=UTC)  # Saturday before the change
    first = next_free_slot(slots, BERLIN, after, set())
    assert first == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)  # 02:30 → 03:30 CEST
    second = next_free_slot(slots, BERLIN, after, {first})
    assert second == datetime(2027, 3, 28, 7, tzinfo=UTC)  # 09:00 CEST
    third = next_free_slot(slots, BERLIN, after, {first, second})
    assert third == datetime(2027, 4, 4, 0, 30, tzinfo=UTC)  # next Sunday 02:30 CEST


def test_daily_cron_and_rrule_stay_at_local_nine_across_both_transitions() -> None:
    anchor = datetime(2027, 3, 26, 12, tzinfo=UTC)
    for rule in (
        {"cron": "0 9 * * *", "rrule_text": None},
        {"cron": None, "rrule_text": "FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0"},
    ):
        times = []
        after = anchor
        for _ in range(4):
            nxt = next_occurrence(zone=BERLIN, anchor=anchor, after=after, **rule)
            assert nxt is not None
            times.append(nxt)
            after = nxt
        assert [t.astimezone(BERLIN).hour for t in times] == [9, 9, 9, 9]
        assert [t.hour for t in times] == [8, 7, 7, 7]  # UTC shifts with the clocks (28 March)


def test_daily_nine_oclock_after_fall_back_moves_to_eight_utc() -> None:
    anchor = datetime(2027, 10, 29, 12, tzinfo=UTC)
    first = next_occurrence(
        rrule_text=None, cron="0 9 * * *", zone=BERLIN, anchor=anchor, after=anchor
    )
    assert first is not None
    second = next_occurrence(
        rrule_text=None, cron="0 9 * * *", zone=BERLIN, anchor=anchor, after=first
    )
    assert second is not None
    assert first == datetime(2027, 10, 30, 7, tzinfo=UTC)  # 09:00 CEST
    assert second == datetime(2027, 10, 31, 8, tzinfo=UTC)  # 09:00 CET, hours after fall-back
    third = next_occurrence(
        rrule_text=None, cron="0 9 * * *", zone=BERLIN, anchor=anchor, after=second
    )
    assert third is not None
    assert third == datetime(2027, 11, 1, 8, tzinfo=UTC)  # CET after 31 October


def test_hourly_cron_over_the_fall_back_night_never_repeats_an_instant() -> None:
    after = datetime(2027, 10, 30, 23, 30, tzinfo=UTC)  # 01:30 CEST on the 31st
    seen = []
    for _ in range(4):
        nxt = next_occurrence(
            rrule_text=None, cron="0 * * * *", zone=BERLIN, anchor=after, after=after
        )
        assert nxt is not None
        seen.append(nxt)
        after = nxt
    assert len(set(seen)) == 4
    assert all(b > a for a, b in itertools.pairwise(seen))


def test_rrule_count_ends_and_bad_rules_are_refused() -> None:
    anchor = datetime(2027, 1, 4, 8, tzinfo=UTC)
    last = next_occurrence(
        rrule_text="FREQ=DAILY;COUNT=2", cron=None, zone=BERLIN, anchor=anchor, after=anchor
    )
    assert last == anchor + timedelta(days=1)
    assert (
        next_occurrence(
            rrule_text="FREQ=DAILY;COUNT=2", cron=None, zone=BERLIN, anchor=anchor, after=last
        )
        is None
    )
    with pytest.raises(TimingError, match="RRULE"):
        validate_recurrence("FREQ=SOMETIMES", None, BERLIN, anchor)
    with pytest.raises(TimingError, match="cron"):
        validate_recurrence(None, "99 * * *", BERLIN, anchor)


# --- retries, keys, signatures -------------------------------------------------------------


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    for attempt, ceiling in ((1, 5), (2, 10), (3, 20), (10, 900)):
        values = [backoff_seconds(attempt, 5, 900) for _ in range(50)]
        assert all(ceiling / 2 <= v <= ceiling for v in values)
        assert len(set(values)) > 1


def test_retry_after_from_seconds_date_and_reset_headers() -> None:
    now = 1_800_000_000.0
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "7"}), now) == 7
    date = "Fri, 15 Jan 2027 08:00:30 GMT"
    at = datetime(2027, 1, 15, 8, 0, 30, tzinfo=UTC).timestamp()
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": date}), at - 30) == 30
    reset = httpx.Response(429, headers={"x-rate-limit-reset": str(int(now) + 90)})
    assert retry_after_seconds(reset, now) == 90
    assert retry_after_seconds(httpx.Response(429, headers={"ratelimit-reset": "12"}), now) == 12


def test_bluesky_record_key_is_a_deterministic_tid() -> None:
    due = datetime(2027, 5, 1, 9, tzinfo=UTC)
    key = record_key("post-1", due)
    assert key == record_key("post-1", due)
    assert key != record_key("post-2", due)
    assert len(key) == 13
    assert key[0] in "234567abcdefghij"
    assert set(key) <= set("234567abcdefghijklmnopqrstuvwxyz")


def test_webhook_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    sig = signature("geheim", "1800000000", b'{"a":1}')
    assert sig == signature("geheim", "1800000000", b'{"a":1}')
    assert sig.startswith("sha256=")
    assert len(sig) == 7 + 64
    assert sig != signature("geheim", "1800000001", b'{"a":1}')
