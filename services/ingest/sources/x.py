"""X Account Activity API: `tweet_create_events` of one delivery to MentionIn.

A delivery is `{"for_user_id": "...", "tweet_create_events": [<v1.1 tweet>, ...]}` or one of
many other event kinds (favorites, follows, DMs, …); only tweets are mentions, the rest is
counted as ignored. A retweet is mapped as the tweet it retweets, so a hundred retweets are one
mention (the intake de-duplicates them). Tweets by the subscribed account itself (our own
posts and replies) are ignored: they are tracked as posts, not mentions.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import ValidationError

from services.ingest.domain.batch import BadPayloadError, Mapped, RejectedItem, reason_of
from services.ingest.domain.normalise import MentionIn

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}


def parse_x_time(value: str) -> datetime:
    """`Wed Oct 10 20:19:24 +0000 2018`, parsed without the locale (strptime's %b is not)."""
    try:
        _, month, day, clock, offset, year = value.split()
        hour, minute, second = (int(part) for part in clock.split(":"))
        sign = -1 if offset[0] == "-" else 1
        if offset[0] not in "+-" or len(offset) != 5:
            raise ValueError("bad offset")
        delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
        tz = timezone(sign * delta)
        return datetime(int(year), _MONTHS[month], int(day), hour, minute, second, tzinfo=tz)
    except (ValueError, KeyError, IndexError, AttributeError) as exc:
        raise ValueError(f"unrecognised created_at {str(value)[:40]!r}") from exc


def _lang(code: Any) -> str | None:
    """X's `lang` is BCP 47 or `und`; the contract wants ISO 639-1 or null."""
    if isinstance(code, str) and len(code) >= 2 and code[:2].isalpha() and code != "und":
        primary = code.split("-")[0].lower()
        return primary if len(primary) == 2 else None
    return None


def _text(tweet: dict[str, Any]) -> str:
    extended = tweet.get("extended_tweet")
    if isinstance(extended, dict) and extended.get("full_text"):
        return str(extended["full_text"])
    return str(tweet.get("full_text") or tweet.get("text") or "")


def tweet_to_mention(tweet: dict[str, Any]) -> MentionIn:
    """One v1.1 tweet object; a retweet becomes the original tweet."""
    original = tweet.get("retweeted_status")
    if isinstance(original, dict):
        tweet = original
    user = tweet.get("user")
    if not isinstance(user, dict):
        raise ValueError("missing 'user'")
    tweet_id = str(tweet["id_str"])
    screen_name = user.get("screen_name")
    return MentionIn.model_validate(
        {
            "platform": "x",
            "native_id": tweet_id,
            "url": f"https://x.com/{screen_name}/status/{tweet_id}" if screen_name else None,
            "text": _text(tweet),
            "lang": _lang(tweet.get("lang")),
            "author": {
                "id": str(user["id_str"]),
                "handle": f"@{screen_name}" if screen_name else None,
                "display_name": user.get("name"),
                "followers": user.get("followers_count"),
            },
            "created_at": parse_x_time(tweet["created_at"]),
            "in_reply_to": tweet.get("in_reply_to_status_id_str"),
            "metrics": {
                "likes": tweet.get("favorite_count"),
                "shares": tweet.get("retweet_count"),
                "comments": tweet.get("reply_count"),
            },
        }
    )


def map_x_delivery(payload: Any) -> Mapped:
    """Map one Account Activity delivery; `BadPayloadError` when it is not a JSON object."""
    if not isinstance(payload, dict):
        raise BadPayloadError("body must be a JSON object")
    result = Mapped()
    for key, events in payload.items():
        if key != "tweet_create_events" and isinstance(events, list):
            result.ignored += len(events)  # favorite_events, follow_events, …
    tweets = payload.get("tweet_create_events")
    if tweets is None:
        return result
    if not isinstance(tweets, list):
        raise BadPayloadError("'tweet_create_events' must be a list")
    for_user_id = str(payload.get("for_user_id") or "")
    for index, tweet in enumerate(tweets):
        try:
            if not isinstance(tweet, dict):
                raise ValueError("tweet must be an object")
            own = isinstance(tweet.get("user"), dict) and tweet["user"].get("id_str") == for_user_id
            mention = None if own and for_user_id else tweet_to_mention(tweet)
        except (ValidationError, KeyError, ValueError, TypeError) as exc:
            result.rejected.append(RejectedItem(index=index, reason=reason_of(exc)))
            continue
        if mention is None:
            result.ignored += 1
        else:
            result.items.append(mention)
    return result
