"""Webhook payloads → MentionIn for Meta, X, Mastodon and WebSub feeds.

The fixtures are shaped like the platforms' documented deliveries, with texts of our own in
German and English; each test names what the mapping must keep, ignore or reject.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.ingest.domain.batch import BadPayloadError
from services.ingest.sources.instagram import PermanentLookupError
from services.ingest.sources.instagram import to_mention as graph_to_mention
from services.ingest.sources.mastodon import map_mastodon_event
from services.ingest.sources.meta import map_meta_delivery, unix_time
from services.ingest.sources.websub import map_feed
from services.ingest.sources.x import map_x_delivery, parse_x_time

PAGE_ID = "104729318823"
T_2024 = 1718003400  # 2024-06-10 07:10:00 UTC


def _feed(value: dict[str, Any]) -> dict[str, Any]:
    return {"field": "feed", "value": value}


PAGE_DELIVERY: dict[str, Any] = {
    "object": "page",
    "entry": [
        {
            "id": PAGE_ID,
            "time": T_2024 + 60,
            "changes": [
                _feed(  # 0: a visitor post
                    {
                        "from": {"id": "5521339", "name": "Jana Weber"},
                        "item": "status",
                        "post_id": f"{PAGE_ID}_8841",
                        "verb": "add",
                        "published": 1,
                        "created_time": T_2024,
                        "message": "Die neue Kaffeemaschine von Bohnenglück ist großartig!",
                    }
                ),
                _feed(  # 1: a comment replying to that post
                    {
                        "from": {"id": "7781002", "name": "Tom Baker"},
                        "item": "comment",
                        "comment_id": "8841_9001",
                        "post_id": f"{PAGE_ID}_8841",
                        "parent_id": f"{PAGE_ID}_8841",
                        "verb": "add",
                        "created_time": T_2024 + 30,
                        "message": "Mine broke after two weeks, support never answered.",
                    }
                ),
                _feed(  # 2: a reaction: ignored
                    {
                        "from": {"id": "7781002", "name": "Tom Baker"},
                        "item": "reaction",
                        "reaction_type": "like",
                        "post_id": f"{PAGE_ID}_8841",
                        "verb": "add",
                        "created_time": T_2024 + 40,
                    }
                ),
                _feed(  # 3: a removed comment: ignored
                    {
                        "from": {"id": "7781002", "name": "Tom Baker"},
                        "item": "comment",
                        "comment_id": "8841_9001",
                        "post_id": f"{PAGE_ID}_8841",
                        "verb": "remove",
                        "created_time": T_2024 + 50,
                    }
                ),
                _feed(  # 4: malformed: a comment without comment_id → rejected
                    {
                        "from": {"id": "7781002", "name": "Tom Baker"},
                        "item": "comment",
                        "post_id": f"{PAGE_ID}_8841",
                        "verb": "add",
                        "message": "kaputt",
                    }
                ),
                _feed(  # 5: our page answering: our own words, ignored
                    {
                        "from": {"id": PAGE_ID, "name": "Bohnenglück"},
                        "item": "comment",
                        "comment_id": "8841_9002",
                        "post_id": f"{PAGE_ID}_8841",
                        "parent_id": "8841_9001",
                        "verb": "add",
                        "created_time": T_2024 + 70,
                        "message": "Das tut uns leid, Tom! Wir melden uns per DM.",
                    }
                ),
                _feed(  # 6: an edited post without created_time: entry time is used
                    {
                        "from": {"id": "5521339", "name": "Jana Weber"},
                        "item": "post",
                        "post_id": f"{PAGE_ID}_8850",
                        "verb": "edited",
                        "message": "Nachtrag: der <b>Milchschäumer</b> ist auch top.",
                    }
                ),
                {"field": "ratings", "value": {"item": "rating"}},  # 7: other field: ignored
            ],
        }
    ],
}


def test_page_feed_posts_and_comments_become_facebook_mentions() -> None:
    mapped = map_meta_delivery(PAGE_DELIVERY)
    by_id = {item.native_id: item for item in mapped.items}
    assert set(by_id) == {f"{PAGE_ID}_8841", "8841_9001", f"{PAGE_ID}_8850"}

    post = by_id[f"{PAGE_ID}_8841"]
    assert post.platform == "facebook"
    assert post.text.startswith("Die neue Kaffeemaschine")
    assert post.author.id == "5521339"
    assert post.author.display_name == "Jana Weber"
    assert post.created_at == datetime(2024, 6, 10, 7, 10, tzinfo=UTC)
    assert post.url == f"https://www.facebook.com/{PAGE_ID}_8841"
    assert post.in_reply_to is None

    comment = by_id["8841_9001"]
    assert comment.in_reply_to == f"{PAGE_ID}_8841"
    assert comment.created_at == datetime(2024, 6, 10, 7, 10, 30, tzinfo=UTC)

    edited = by_id[f"{PAGE_ID}_8850"]
    assert edited.created_at == datetime(2024, 6, 10, 7, 11, tzinfo=UTC)


def test_page_feed_ignores_reactions_removals_own_posts_and_other_fields() -> None:
    mapped = map_meta_delivery(PAGE_DELIVERY)
    assert mapped.ignored == 4  # reaction, remove, our own reply, ratings


def test_one_malformed_change_is_rejected_with_its_position() -> None:
    mapped = map_meta_delivery(PAGE_DELIVERY)
    assert len(mapped.rejected) == 1
    reject = mapped.rejected[0]
    assert reject.index == 4
    assert reject.reason.startswith("entry[0].changes[4]")
    assert "comment_id" in reject.reason
    assert len(mapped.items) == 3  # the others still made it


def test_reject_index_counts_across_entries() -> None:
    delivery = copy.deepcopy(PAGE_DELIVERY)
    value = {"item": "status", "verb": "add", "post_id": "1_2", "from": {"id": "9"}}
    second = {"id": PAGE_ID, "time": "yesterday", "changes": [_feed(value)]}
    delivery["entry"].append(second)
    mapped = map_meta_delivery(delivery)
    assert [r.index for r in mapped.rejected] == [4, 8]
    assert "unix time" in mapped.rejected[1].reason


INSTAGRAM_DELIVERY: dict[str, Any] = {
    "object": "instagram",
    "entry": [
        {
            "id": "17841400000000001",
            "time": T_2024,
            "changes": [
                {  # 0: a comment on our media
                    "field": "comments",
                    "value": {
                        "from": {"id": "17841455512345678", "username": "lena.kocht"},
                        "media": {"id": "18031234567890123", "media_product_type": "FEED"},
                        "id": "17990011223344556",
                        "text": "Wo kann man die Tasse kaufen? 😍",
                    },
                },
                {  # 1: a mention as Meta sends it: ids only, no text → a Graph API lookup
                    "field": "mentions",
                    "value": {"media_id": "17887498072083520", "comment_id": "17894227972186120"},
                },
                {  # 2: a caption mention that carries its text
                    "field": "mentions",
                    "value": {
                        "media_id": "17887498072083999",
                        "caption": "Best latte in town @bohnenglueck",
                        "from": {"id": "17841400000000777", "username": "coffee.critic"},
                    },
                },
                {"field": "story_insights", "value": {"media_id": "1", "reach": 12}},  # 3
            ],
        }
    ],
}


def test_instagram_comments_and_mentions() -> None:
    mapped = map_meta_delivery(INSTAGRAM_DELIVERY)
    comment, mention = mapped.items
    assert comment.platform == "instagram"
    assert comment.native_id == "17990011223344556"
    assert comment.author.handle == "@lena.kocht"
    assert comment.in_reply_to == "18031234567890123"
    assert comment.created_at == datetime(2024, 6, 10, 7, 10, tzinfo=UTC)  # entry time
    assert mention.native_id == "17887498072083999"
    assert mention.text == "Best latte in town @bohnenglueck"
    assert mapped.rejected == []
    (lookup,) = mapped.lookups
    assert lookup.index == 1
    assert lookup.native_id == "17887498072083520_17894227972186120"
    assert lookup.account_id == "17841400000000001"  # the mentioned account: ours
    assert (lookup.media_id, lookup.comment_id) == ("17887498072083520", "17894227972186120")
    assert lookup.announced_at == datetime(2024, 6, 10, 7, 10, tzinfo=UTC)
    assert mapped.ignored == 1


def test_instagram_comment_mention_id_joins_media_and_comment() -> None:
    delivery = copy.deepcopy(INSTAGRAM_DELIVERY)
    delivery["entry"][0]["changes"][1]["value"] |= {
        "text": "@bohnenglueck schaut euch das an",
        "from": {"id": "178", "username": "max"},
    }
    mapped = map_meta_delivery(delivery)
    ids = [item.native_id for item in mapped.items]
    assert "17887498072083520_17894227972186120" in ids


@pytest.mark.parametrize(
    "payload", [[], "page", {"object": "page"}, {"object": "page", "entry": {}}]
)
def test_meta_envelope_errors_are_bad_payloads(payload: Any) -> None:
    with pytest.raises(BadPayloadError):
        map_meta_delivery(payload)


def test_other_meta_objects_and_messaging_entries_are_ignored() -> None:
    users = {"object": "user", "entry": [{"id": "1", "changes": [{"field": "feed", "value": {}}]}]}
    assert map_meta_delivery(users).ignored == 1
    messenger = {"object": "page", "entry": [{"id": PAGE_ID, "messaging": [{"message": {}}]}]}
    mapped = map_meta_delivery(messenger)
    assert (mapped.items, mapped.rejected, mapped.ignored) == ([], [], 1)


def test_unix_time_accepts_seconds_and_milliseconds_only() -> None:
    assert unix_time(T_2024) == unix_time(T_2024 * 1000) == unix_time(str(T_2024))
    for bad in (True, None, "soon", 1e300, float("nan")):
        with pytest.raises(ValueError, match="unix time"):
            unix_time(bad)


# --- X ----------------------------------------------------------------------------------------

OUR_X_ID = "3001"


def _user(uid: str, screen: str, name: str, followers: int) -> dict[str, Any]:
    return {"id_str": uid, "screen_name": screen, "name": name, "followers_count": followers}


ORIGINAL_TWEET: dict[str, Any] = {
    "id_str": "1800000000000000001",
    "created_at": "Mon Jun 10 07:10:00 +0000 2024",
    "text": "Long review of the Bohnenglück grinder, thread 1/3 …",
    "truncated": True,
    "extended_tweet": {
        "full_text": "Long review of the Bohnenglück grinder, thread 1/3: quiet, precise, pricey."
    },
    "user": _user("42", "espressoqueen", "Espresso Queen", 12_500),
    "lang": "en",
    "favorite_count": 17,
    "retweet_count": 3,
    "reply_count": 2,
}

X_DELIVERY: dict[str, Any] = {
    "for_user_id": OUR_X_ID,
    "user_has_blocked": False,
    "tweet_create_events": [
        ORIGINAL_TWEET,  # 0
        {  # 1: a German reply
            "id_str": "1800000000000000002",
            "created_at": "Mon Jun 10 09:15:30 +0200 2024",
            "text": "@bohnenglueck Meine Bestellung ist seit einer Woche nicht da.",
            "user": _user("77", "kaffeeklaus", "Klaus", 210),
            "lang": "de",
            "in_reply_to_status_id_str": "1799999999999999999",
        },
        {  # 2: a retweet: becomes the original
            "id_str": "1800000000000000003",
            "created_at": "Mon Jun 10 10:00:00 +0000 2024",
            "text": "RT @espressoqueen: Long review of the Bohnenglück grinder …",
            "user": _user("88", "fan_account", "Fan", 5),
            "lang": "en",
            "retweeted_status": ORIGINAL_TWEET,
        },
        {  # 3: our own reply: ignored
            "id_str": "1800000000000000004",
            "created_at": "Mon Jun 10 10:05:00 +0000 2024",
            "text": "@kaffeeklaus Das prüfen wir sofort!",
            "user": _user(OUR_X_ID, "bohnenglueck", "Bohnenglück", 40_000),
            "lang": "und",
        },
        {  # 4: malformed date → rejected
            "id_str": "1800000000000000005",
            "created_at": "2024-06-10T10:00:00Z",
            "text": "broken",
            "user": _user("99", "x", "X", 1),
        },
        "not a tweet",  # 5: rejected
    ],
}


def test_tweets_become_x_mentions() -> None:
    mapped = map_x_delivery(X_DELIVERY)
    first, reply, retweet = mapped.items
    assert first.platform == "x"
    assert first.native_id == "1800000000000000001"
    assert first.text.endswith("quiet, precise, pricey.")  # the full text, not the truncated
    assert first.url == "https://x.com/espressoqueen/status/1800000000000000001"
    assert first.author.handle == "@espressoqueen"
    assert first.author.followers == 12_500
    assert first.metrics.likes == 17
    assert first.metrics.shares == 3
    assert first.metrics.comments == 2
    assert first.lang == "en"
    assert reply.created_at == datetime(2024, 6, 10, 7, 15, 30, tzinfo=UTC)
    assert reply.in_reply_to == "1799999999999999999"
    assert reply.lang == "de"
    assert retweet == first  # same native id, author and text: the intake sees a duplicate


def test_x_ignores_own_tweets_and_other_event_kinds_and_rejects_bad_items() -> None:
    delivery = dict(X_DELIVERY, favorite_events=[{"id": "a"}, {"id": "b"}])
    mapped = map_x_delivery(delivery)
    assert mapped.ignored == 3  # our reply + two favorites
    assert [r.index for r in mapped.rejected] == [4, 5]
    assert "created_at" in mapped.rejected[0].reason


def test_x_delivery_without_tweets() -> None:
    follows = {"for_user_id": OUR_X_ID, "follow_events": [{"type": "follow"}]}
    mapped = map_x_delivery(follows)
    assert (mapped.items, mapped.rejected, mapped.ignored) == ([], [], 1)
    with pytest.raises(BadPayloadError):
        map_x_delivery({"tweet_create_events": {"id_str": "1"}})
    with pytest.raises(BadPayloadError):
        map_x_delivery([ORIGINAL_TWEET])


def test_x_time_is_parsed_without_the_locale() -> None:
    assert parse_x_time("Wed Oct 10 20:19:24 +0000 2018") == datetime(
        2018, 10, 10, 20, 19, 24, tzinfo=UTC
    )
    parsed = parse_x_time("Wed Oct 10 20:19:24 -0130 2018")
    assert parsed.utcoffset() == -timedelta(hours=1, minutes=30)
    assert parsed.astimezone(UTC).hour == 21
    for bad in ("Wed Okt 10 20:19:24 +0000 2018", "Wed Oct 10 20:19 +0000 2018", ""):
        with pytest.raises(ValueError, match="created_at"):
            parse_x_time(bad)


# --- Mastodon ---------------------------------------------------------------------------------


def _status(**overrides: Any) -> dict[str, Any]:
    status: dict[str, Any] = {
        "id": "112233",
        "uri": "https://social.example.de/users/mia/statuses/112233",
        "url": "https://social.example.de/@mia/112233",
        "created_at": "2024-06-10T07:10:00.000Z",
        "content": (
            '<p>Hat jemand Erfahrung mit <a href="#">#Bohnenglück</a>? Lohnt sich das Abo?</p>'
        ),
        "language": "de",
        "visibility": "public",
        "in_reply_to_id": None,
        "favourites_count": 4,
        "reblogs_count": 1,
        "replies_count": 0,
        "account": {"id": "1", "acct": "mia", "display_name": "Mia", "followers_count": 320},
    }
    return status | overrides


def test_mastodon_status_created_is_a_mention_with_the_instance_host() -> None:
    event = {"event": "status.created", "created_at": "2024-06-10T07:10:01Z", "object": _status()}
    mapped = map_mastodon_event(event)
    (mention,) = mapped.items
    assert mention.platform == "mastodon"
    assert mention.native_id == "https://social.example.de/users/mia/statuses/112233"
    assert mention.author.id == "mia@social.example.de"  # local acct completed with the host
    assert mention.author.followers == 320
    assert mention.metrics.likes == 4


def test_mastodon_updated_remote_and_private_statuses() -> None:
    remote = _status(account={"id": "9", "acct": "bob@mastodon.social", "followers_count": 2})
    mapped = map_mastodon_event({"event": "status.updated", "object": remote})
    assert mapped.items[0].author.id == "bob@mastodon.social"
    for visibility in ("private", "direct"):
        hidden = map_mastodon_event(
            {"event": "status.created", "object": _status(visibility=visibility)}
        )
        assert (hidden.items, hidden.ignored) == ([], 1)


def test_mastodon_other_events_are_ignored_and_bad_statuses_rejected() -> None:
    account = map_mastodon_event({"event": "account.created", "object": {"id": "5"}})
    assert (account.items, account.rejected, account.ignored) == ([], [], 1)
    no_uri = map_mastodon_event({"event": "status.created", "object": _status(uri=None, url=None)})
    assert no_uri.rejected[0].index == 0
    assert "uri" in no_uri.rejected[0].reason
    no_date = _status()
    del no_date["created_at"]
    assert (
        "created_at"
        in map_mastodon_event({"event": "status.created", "object": no_date}).rejected[0].reason
    )
    with pytest.raises(BadPayloadError):
        map_mastodon_event({"object": _status()})


# --- WebSub feeds -----------------------------------------------------------------------------

TOPIC = "https://blog.example.de/feed.atom"
ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="de-DE">
  <title>Kaffeeblog</title>
  <id>tag:blog.example.de,2024:feed</id>
  <updated>2024-06-10T08:00:00Z</updated>
  <entry>
    <title>Test: Bohnenglück Mühle im Alltag</title>
    <id>tag:blog.example.de,2024:post-17</id>
    <link href="https://blog.example.de/2024/06/muehle"/>
    <published>2024-06-10T07:10:00+02:00</published>
    <author><name>Eva Schmidt</name></author>
    <summary type="html">
      &lt;p&gt;Nach vier Wochen: &lt;b&gt;leise&lt;/b&gt; und präzise.&lt;/p&gt;
    </summary>
  </entry>
  <entry>
    <title>Relative link, no id</title>
    <link href="/2024/06/relative"/>
    <updated>2024-06-09T12:00:00Z</updated>
    <content type="html">&lt;p&gt;Only content, no summary.&lt;/p&gt;</content>
  </entry>
  <entry>
    <title>Neither id nor link</title>
    <summary>lost</summary>
  </entry>
</feed>
""".encode()


def test_atom_entries_become_rss_mentions() -> None:
    mapped = map_feed(ATOM, TOPIC, "application/atom+xml")
    first, second, third = mapped.items
    assert first.platform == "rss"
    assert first.native_id == "tag:blog.example.de,2024:post-17"
    assert first.url == "https://blog.example.de/2024/06/muehle"
    assert first.text == "Test: Bohnenglück Mühle im Alltag\n\nNach vier Wochen: leise und präzise."
    assert first.created_at == datetime(2024, 6, 10, 5, 10, tzinfo=UTC)
    assert first.lang == "de"
    assert first.author.id == "feed:blog.example.de"  # as the RSS poller names feed authors
    assert first.author.display_name == "Eva Schmidt"
    # No id: the link (resolved against the topic) is the native id; updated is the time.
    assert second.native_id == "https://blog.example.de/2024/06/relative"
    assert second.created_at == datetime(2024, 6, 9, 12, tzinfo=UTC)
    assert "Only content" in second.text
    assert second.author.display_name == "Kaffeeblog"
    # Neither id nor link: a feed-scoped hash of its content, exactly as the poller does it,
    # so the same entry pushed and polled is one mention.
    assert third.native_id.startswith(TOPIC + "#sha256:")
    assert not mapped.rejected


def test_rss_entry_without_date_gets_the_arrival_time() -> None:
    rss = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>News</title>
    <language>en-us</language><item><title>Coffee prices up</title>
    <link>https://news.example.com/a/1</link><description>Beans cost more.</description>
    </item></channel></rss>"""
    before = datetime.now(UTC)
    (item,) = map_feed(rss, "https://news.example.com/rss").items
    assert item.native_id == "https://news.example.com/a/1"
    assert item.lang == "en"
    assert before <= item.created_at <= datetime.now(UTC)


@pytest.mark.parametrize("body", [b"", b"hello", b'{"entries": []}', b"\x00\xff\xfe"])
def test_non_feed_bodies_are_bad_payloads(body: bytes) -> None:
    with pytest.raises(BadPayloadError):
        map_feed(body, TOPIC)


def test_a_body_that_names_a_file_is_not_read_from_disk(tmp_path: Path) -> None:
    """`feedparser.parse(bytes)` would open a file of that name; pushed bytes never do."""
    feed_file = tmp_path / "feed.atom"
    feed_file.write_bytes(ATOM)
    with pytest.raises(BadPayloadError):
        map_feed(str(feed_file).encode(), TOPIC)


def test_graph_api_answers_become_the_announced_mentions() -> None:
    announced = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    media_lookup = {
        "_id": "1789",
        "media_id": "1789",
        "comment_id": None,
        "announced_at": announced,
    }
    media = graph_to_mention(
        media_lookup,
        {
            "caption": "Sonntagsfrühstück mit @bohnenglueck ☕",
            "timestamp": "2026-11-20T08:55:12+0000",
            "permalink": "https://www.instagram.com/p/Cx1/",
            "username": "fruehstuecksliebe",
            "like_count": 41,
            "comments_count": 3,
            "id": "1789",
        },
    )
    assert media.native_id == "1789"
    assert media.author.handle == "@fruehstuecksliebe"
    assert media.created_at == datetime(2026, 11, 20, 8, 55, 12, tzinfo=UTC)
    assert (media.metrics.likes, media.metrics.comments) == (41, 3)
    assert media.in_reply_to is None

    comment_lookup = {**media_lookup, "_id": "1789_555", "comment_id": "555"}
    comment = graph_to_mention(
        comment_lookup,
        {
            "text": "@bohnenglueck liefert ihr auch nach Graz?",
            "username": "anna",
            "id": "555",
            "media": {"id": "1789", "permalink": "https://www.instagram.com/p/Cx1/"},
        },
    )
    assert comment.text.startswith("@bohnenglueck liefert")
    assert comment.in_reply_to == "1789"
    assert comment.created_at == announced  # no timestamp: the notification's time
    assert comment.url == "https://www.instagram.com/p/Cx1/"
    with pytest.raises(PermanentLookupError):
        graph_to_mention(comment_lookup, {"username": "anna", "id": "555"})
