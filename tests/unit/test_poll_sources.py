"""Poll source configuration, rate-limit header parsing, backoff, and the pure mappers.

No server and no network: the mappers get realistic payloads written for these tests.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from services.ingest.sources.bluesky import (
    at_uri_to_native_id,
    jetstream_event_to_mention,
    matches_keywords,
    subscribe_url,
)
from services.ingest.sources.polling import (
    BlueskySource,
    MastodonSource,
    PollSourceError,
    RedditSource,
    RssSource,
    full_jitter_backoff,
    parse_poll_sources,
    quota_exhausted_delay,
    retry_after_delay,
)
from services.ingest.sources.reddit import thing_to_mention
from services.ingest.sources.rss import as_identifier, entry_to_mention, parse_feed

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

# --- configuration -----------------------------------------------------------------------


def test_parse_all_kinds_with_defaults_and_stable_keys() -> None:
    sources = parse_poll_sources(
        [
            {"kind": "rss", "url": "https://blog.example.de/feed.xml"},
            {
                "kind": "mastodon",
                "instance_url": "https://Social.Example.de/",
                "hashtag": "#Kaffee",
            },
            {
                "kind": "mastodon",
                "instance_url": "https://social.example.de",
                "query": "Kaffeemaschine",
                "access_token": "s3cret",
            },
            {"kind": "reddit", "subreddit": "r/de", "user_agent": "web:smm-test:0.1 (by /u/x)"},
            {"kind": "reddit", "query": "espresso", "user_agent": "web:smm-test:0.1 (by /u/x)"},
            {"kind": "bluesky", "keywords": [" Kaffee ", "ESPRESSO"]},
        ]
    )
    rss, tag, search, sub, reddit_search, bluesky = sources
    assert isinstance(rss, RssSource)
    assert rss.interval_seconds == 300
    assert rss.key == "rss:https://blog.example.de/feed.xml"
    assert isinstance(tag, MastodonSource)
    assert tag.interval_seconds == 60
    assert tag.key == "mastodon:social.example.de:tag:kaffee"
    assert tag.instance_url == "https://Social.Example.de"
    assert isinstance(search, MastodonSource)
    assert search.key == "mastodon:social.example.de:search:Kaffeemaschine"
    assert "s3cret" not in repr(search)
    assert isinstance(sub, RedditSource)
    assert sub.interval_seconds == 120
    assert sub.key == "reddit:r/de:new"
    assert reddit_search.key == "reddit:search:all:espresso"
    assert isinstance(bluesky, BlueskySource)
    assert bluesky.jetstream_url == "wss://jetstream2.us-east.bsky.network/subscribe"
    assert bluesky.wanted_collections == ["app.bsky.feed.post"]
    assert bluesky.keywords == ["kaffee", "espresso"]
    assert bluesky.key == "bluesky:jetstream2.us-east.bsky.network/subscribe"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"url": "https://x.example/feed"}, "'kind' must be one of rss, mastodon, reddit, bluesky"),
        ({"kind": "twitter"}, "got 'twitter'"),
        ({"kind": "rss", "url": "ftp://x.example/feed"}, "poll_sources[0] (rss): url:"),
        ({"kind": "rss", "url": "https://x.example/f", "intervall": 5}, "intervall: Extra inputs"),
        (
            {"kind": "mastodon", "instance_url": "https://m.example", "hashtag": "a", "query": "b"},
            "set exactly one of 'hashtag' or 'query'",
        ),
        ({"kind": "mastodon", "instance_url": "https://m.example"}, "exactly one of"),
        (
            {"kind": "mastodon", "instance_url": "https://m.example", "query": "kaffee"},
            "needs an 'access_token'",
        ),
        (
            {"kind": "mastodon", "instance_url": "https://m.example", "hashtag": "zwei worte"},
            "hashtag: Value error, a hashtag is",
        ),
        ({"kind": "reddit", "subreddit": "de"}, "poll_sources[0] (reddit): user_agent: Field req"),
        ({"kind": "reddit", "user_agent": "web:smm:1 (by /u/x)"}, "set 'subreddit', 'query'"),
        (
            {"kind": "reddit", "subreddit": "a b", "user_agent": "web:smm:1 (by /u/x)"},
            "a subreddit name is",
        ),
        ({"kind": "bluesky", "jetstream_url": "https://x.example"}, "jetstream_url:"),
        ({"kind": "bluesky", "keywords": ["ok", " "]}, "keywords must not be empty"),
    ],
)
def test_invalid_sources_are_reported_clearly(item: dict[str, object], message: str) -> None:
    with pytest.raises(PollSourceError) as caught:
        parse_poll_sources([item])
    assert message in str(caught.value)


def test_all_problems_at_once_duplicates_and_no_secret_echo() -> None:
    with pytest.raises(PollSourceError) as caught:
        parse_poll_sources(
            [
                {"kind": "rss", "url": "https://x.example/feed"},
                {"kind": "rss", "url": "https://x.example/feed"},
                {
                    "kind": "mastodon",
                    "instance_url": "not a url",
                    "hashtag": "kaffee",
                    "access_token": "very-secret-token",
                },
            ]
        )
    text = str(caught.value)
    assert "'rss:https://x.example/feed' is configured twice" in text
    assert "poll_sources[2] (mastodon): instance_url" in text
    assert "very-secret-token" not in text


# --- rate limits and backoff -------------------------------------------------------------


def test_retry_after_seconds_http_date_and_reset_headers() -> None:
    assert retry_after_delay({"retry-after": "1"}, NOW) == 1.0
    http_date = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    assert retry_after_delay({"retry-after": http_date}, NOW) == pytest.approx(90)
    # Mastodon: 429 with only X-RateLimit-Reset as an ISO 8601 time.
    mastodon = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "2024-05-01T12:04:30.000Z"}
    assert retry_after_delay(mastodon, NOW) == pytest.approx(270)
    # Reddit: the reset is seconds from now; some APIs send a Unix time.
    assert retry_after_delay({"x-ratelimit-reset": "42"}, NOW) == 42
    epoch = str(int((NOW + timedelta(seconds=30)).timestamp()))
    assert retry_after_delay({"x-ratelimit-reset": epoch}, NOW) == pytest.approx(30)
    assert retry_after_delay({}, NOW) is None
    assert retry_after_delay({"retry-after": "in a bit"}, NOW) is None
    assert retry_after_delay({"retry-after": "999999"}, NOW) == 3600  # capped
    past = format_datetime(NOW - timedelta(seconds=5), usegmt=True)
    assert retry_after_delay({"retry-after": past}, NOW) == 0


def test_quota_exhausted_only_when_remaining_is_zero() -> None:
    reddit = {"x-ratelimit-remaining": "0.0", "x-ratelimit-used": "100", "x-ratelimit-reset": "7"}
    assert quota_exhausted_delay(reddit, NOW) == 7
    assert quota_exhausted_delay({**reddit, "x-ratelimit-remaining": "12.0"}, NOW) is None
    assert quota_exhausted_delay({"x-ratelimit-remaining": "0"}, NOW) is None


def test_full_jitter_backoff_grows_and_is_capped() -> None:
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    ceilings = [full_jitter_backoff(n, 2.0, 900.0, Top()) for n in range(1, 12)]
    assert ceilings[:5] == [2, 4, 8, 16, 32]
    assert ceilings[-1] == 900
    rng = random.Random(3)
    samples = [full_jitter_backoff(4, 2.0, 900.0, rng) for _ in range(200)]
    assert all(0 <= s <= 16 for s in samples)
    assert len(set(samples)) > 100


# --- RSS / Atom --------------------------------------------------------------------------

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="de-DE">
  <title>Röstwerk Blog</title>
  <id>tag:roestwerk.example.de,2024:blog</id>
  <updated>2024-05-01T10:15:00+02:00</updated>
  <entry>
    <title>Unsere neue Siebträgermaschine ist da</title>
    <id>tag:roestwerk.example.de,2024:post-17</id>
    <link rel="alternate" href="https://roestwerk.example.de/blog/siebtraeger"/>
    <published>2024-05-01T10:15:00+02:00</published>
    <author><name>Jana Köhler</name></author>
    <content type="html">&lt;p&gt;Nach drei Monaten Tests: die &lt;b&gt;Kaffeemaschine&lt;/b&gt;
      schafft 40 Tassen pro Stunde.&lt;/p&gt;&lt;p&gt;Preise ab Juni.&lt;/p&gt;</content>
  </entry>
</feed>""".encode()

RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel>
  <title>Coffee Trade Weekly</title><link>https://coffee.example.com/</link>
  <language>en-us</language>
  <item>
    <title>Bean prices &amp; the new harvest</title>
    <guid isPermaLink="false">4711 at https://coffee.example.com</guid>
    <description>&lt;p&gt;Arabica futures rose again.&lt;/p&gt;</description>
  </item>
</channel></rss>"""


def test_atom_entry_mapping() -> None:
    feed = parse_feed(ATOM, "application/atom+xml; charset=utf-8", "https://roestwerk.example.de/f")
    item = entry_to_mention(feed.entries[0], feed.feed, "https://roestwerk.example.de/f", NOW)
    assert item.platform == "rss"
    assert item.native_id == "tag:roestwerk.example.de,2024:post-17"
    assert item.url == "https://roestwerk.example.de/blog/siebtraeger"
    assert item.text.startswith("Unsere neue Siebträgermaschine ist da\n\nNach drei Monaten")
    assert "<b>" not in item.text
    assert "Preise ab Juni." in item.text
    assert item.lang == "de"
    assert item.created_at == datetime(2024, 5, 1, 8, 15, tzinfo=UTC)
    assert item.author.id == "feed:roestwerk.example.de"
    assert item.author.display_name == "Jana Köhler"


def test_rss_entry_without_date_or_uri_guid() -> None:
    feed = parse_feed(RSS, "application/rss+xml", "https://coffee.example.com/rss")
    item = entry_to_mention(feed.entries[0], feed.feed, "https://coffee.example.com/rss", NOW)
    # A bare guid is not globally unique: it is scoped by the feed URL and made space-free.
    assert item.native_id == "https://coffee.example.com/rss#4711%20at%20https://coffee.example.com"
    assert item.url is None
    assert item.text == "Bean prices & the new harvest\n\nArabica futures rose again."
    assert item.lang == "en"
    assert item.created_at == NOW  # no date in the feed: the fetch time
    assert item.author.display_name == "Coffee Trade Weekly"


def test_identifiers_always_fit_the_contract() -> None:
    assert as_identifier("$where 1") == "%24where%201"
    long_id = as_identifier("https://x.example/" + "a" * 300)
    assert long_id.startswith("sha256:")
    assert len(long_id) <= 256


# --- Reddit ------------------------------------------------------------------------------


def test_reddit_post_comment_and_deleted_author() -> None:
    post = {
        "kind": "t3",
        "data": {
            "name": "t3_1cfx2ab",
            "id": "1cfx2ab",
            "subreddit": "de",
            "title": "Welche Kaffeemühle für Espresso?",
            "selftext": "Budget ca. 300 €, Siebträger vorhanden.",
            "author": "bohnenfan",
            "permalink": "/r/de/comments/1cfx2ab/welche_kaffeemuhle_fur_espresso/",
            "created_utc": 1714557600.0,
            "score": 17,
            "num_comments": 4,
        },
    }
    item = thing_to_mention(post)
    assert item.native_id == "t3_1cfx2ab"
    assert (
        item.text == "Welche Kaffeemühle für Espresso?\n\nBudget ca. 300 €, Siebträger vorhanden."
    )
    assert (
        item.url == "https://www.reddit.com/r/de/comments/1cfx2ab/welche_kaffeemuhle_fur_espresso/"
    )
    assert item.author.id == "bohnenfan"
    assert item.author.handle == "u/bohnenfan"
    assert item.created_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert (item.metrics.likes, item.metrics.comments) == (17, 4)

    comment = {
        "kind": "t1",
        "data": {
            "name": "t1_l2k9x0q",
            "body": "Take a look at flat burr grinders, they are worth it.",
            "author": "[deleted]",
            "parent_id": "t3_1cfx2ab",
            "permalink": "/r/de/comments/1cfx2ab/x/l2k9x0q/",
            "created_utc": 1714557900,
            "score": -3,
        },
    }
    reply = thing_to_mention(comment)
    assert reply.author.id == "deleted"
    assert reply.author.handle is None
    assert reply.in_reply_to == "t3_1cfx2ab"
    assert reply.metrics.likes == 0
    assert reply.metrics.comments is None
    with pytest.raises(ValueError, match="unsupported"):
        thing_to_mention({"kind": "t5", "data": {"name": "t5_2qh1i"}})


# --- Bluesky -----------------------------------------------------------------------------

DID = "did:plc:4x7kq2mzbf3wz6hqm2y7nv5d"


def _jetstream_post(text: str, **record: object) -> dict[str, object]:
    return {
        "did": DID,
        "time_us": 1714557600123456,
        "kind": "commit",
        "commit": {
            "rev": "3kreyd4jzfs2b",
            "operation": "create",
            "collection": "app.bsky.feed.post",
            "rkey": "3kreyd4iuvc2x",
            "record": {"$type": "app.bsky.feed.post", "text": text, **record},
            "cid": "bafyreib2rxk3rybk3aobmv5cjuql3bm2twh4jo5uxgf5xqnw3gxbtalvcq",
        },
    }


def test_jetstream_post_mapping_and_reply() -> None:
    parent = f"at://{DID}/app.bsky.feed.post/3kreaaaaaaa2x"
    event = _jetstream_post(
        "Neue Kaffeemaschine im Büro!",
        createdAt="2024-05-01T10:00:00.102Z",
        langs=["de-DE"],
        reply={"parent": {"uri": parent, "cid": "x"}, "root": {"uri": parent, "cid": "x"}},
    )
    item = jetstream_event_to_mention(event)
    assert item is not None
    assert item.native_id == f"{DID}/3kreyd4iuvc2x"
    assert item.url == f"https://bsky.app/profile/{DID}/post/3kreyd4iuvc2x"
    assert item.author.id == DID
    assert item.lang == "de"
    assert item.created_at == datetime(2024, 5, 1, 10, 0, 0, 102000, tzinfo=UTC)
    assert item.in_reply_to == f"{DID}/3kreaaaaaaa2x"

    no_date = jetstream_event_to_mention(_jetstream_post("hello", langs=["und"]))
    assert no_date is not None
    assert no_date.lang is None
    assert no_date.created_at == datetime.fromtimestamp(1714557600.123456, tz=UTC)

    delete = {"did": DID, "time_us": 1, "kind": "commit", "commit": {"operation": "delete"}}
    identity = {"did": DID, "time_us": 2, "kind": "identity", "identity": {"handle": "a.b"}}
    like = _jetstream_post("x")
    like["commit"] = {**like["commit"], "collection": "app.bsky.feed.like"}  # type: ignore[dict-item]
    assert all(jetstream_event_to_mention(e) is None for e in (delete, identity, like))


def test_prefilter_subscribe_url_and_at_uris() -> None:
    assert matches_keywords("Die neue KAFFEEMASCHINE", ["kaffeemaschine"])
    assert not matches_keywords("Tee ist auch gut", ["kaffee", "espresso"])
    assert matches_keywords("anything", [])
    url = subscribe_url("wss://js.example/subscribe?compress=false", ["app.bsky.feed.post"], 42)
    assert (
        url
        == "wss://js.example/subscribe?compress=false&wantedCollections=app.bsky.feed.post&cursor=42"
    )
    assert "cursor" not in subscribe_url("wss://js.example/subscribe", ["a.b.c"], None)
    assert at_uri_to_native_id(f"at://{DID}/app.bsky.feed.like/3k") is None
