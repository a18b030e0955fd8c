"""A generated data set for the metrics service, and the KPIs computed from it independently.

The expected values are plain Python over the raw events, written straight from the contract's
formulas (no code shared with the service), so the service's aggregates are checked against
something that could disagree with them.
"""

from __future__ import annotations

import collections
import random
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.events import (
    Author,
    Classification,
    ClassifiedMention,
    EngagementObservation,
    ModerationDecision,
    PostError,
    PostEvent,
)

PLATFORMS = ("x", "mastodon", "reddit", "instagram")
GROUPS = {"brand": "coffee", "rival-a": "coffee", "rival-b": "coffee", "solo": None}
CHANNEL_TRACKERS = {"ch-brand": ["brand"], "ch-solo": ["solo"]}


@dataclass
class DataSet:
    mentions: list[ClassifiedMention] = field(default_factory=list)
    decisions: list[ModerationDecision] = field(default_factory=list)
    posts: list[PostEvent] = field(default_factory=list)
    engagement: list[EngagementObservation] = field(default_factory=list)


def classified(
    rng: random.Random,
    number: int,
    created_at: datetime,
    trackers: list[str],
    author: tuple[str, str, int],
    version: datetime,
    sentiment: str | None = None,
    action: str | None = None,
) -> ClassifiedMention:
    platform, author_id, followers = author
    sentiment = sentiment or rng.choice(("positive", "neutral", "negative"))
    if action is None:
        if sentiment == "negative":
            action = "review"
        else:
            action = rng.choices(("approve", "review", "hide"), (6, 2, 2))[0]
    native = f"n{number}"
    return ClassifiedMention(
        mention_id=f"{platform}:{native}",
        platform=platform,
        native_id=native,
        text=f"Beitrag {number} über Kaffee",
        author=Author(id=author_id, followers=followers),
        created_at=created_at,
        ingested_at=version,
        occurred_at=version,
        source="api",
        tracker_ids=trackers,
        classification=Classification(
            language="de",
            sentiment=sentiment,
            sentiment_score={"positive": 0.7, "neutral": 0.0, "negative": -0.7}[sentiment],
            toxicity=0.0,
            spam=0.9 if action == "hide" else 0.05,
            intent="other",
            model_version="test",
        ),
        action=action,
        priority="normal",
    )


def generate(now: datetime, seed: int = 7, mentions: int = 500) -> DataSet:
    """Mentions over ten days (duplicates, reclassifications, spam, late arrivals), our posts,
    replies, decisions and several engagement observations per post."""
    rng = random.Random(seed)
    data = DataSet()
    start = now - timedelta(days=10)
    authors: list[tuple[str, str, int]] = [
        (rng.choice(PLATFORMS), f"author{i}", rng.randint(0, 5_000)) for i in range(60)
    ]
    base_version = now - timedelta(days=11)
    for number in range(mentions):
        created = start + timedelta(seconds=rng.randint(0, 10 * 86_400 - 1))
        trackers = rng.sample(list(GROUPS), rng.choice((1, 1, 2, 3)))
        platform, author_id, followers = rng.choice(authors)
        # The same author's follower count changes between mentions: reach takes the largest.
        author = (platform, author_id, max(0, followers + rng.randint(-50, 50)))
        data.mentions.append(classified(rng, number, created, trackers, author, base_version))
    # Redeliveries (identical) and reclassifications (later, different).
    data.mentions += rng.sample(data.mentions, mentions // 6)
    for original in rng.sample(data.mentions[:mentions], mentions // 12):
        later = original.occurred_at + timedelta(hours=1)
        sentiment = rng.choice(("positive", "neutral"))
        changed = original.model_copy(
            update={
                "occurred_at": later,
                "classification": original.classification.model_copy(
                    update={"sentiment": sentiment}
                ),
                "action": rng.choice(("approve", "hide")),
            }
        )
        data.mentions.append(changed)
    rng.shuffle(data.mentions)  # late events: old created_at after new ones

    reviewable = [m for m in data.mentions if m.action == "review" and "brand" in m.tracker_ids]
    post_number = 0
    for channel, platform in (("ch-brand", "instagram"), ("ch-solo", "x"), ("ch-other", "x")):
        for _ in range(5):
            post_number += 1
            post_id = f"post{post_number}"
            published = start + timedelta(hours=rng.randint(1, 230), minutes=rng.randint(0, 59))
            data.posts += [
                PostEvent(post_id=post_id, status="scheduled", channel_id=channel),
                PostEvent(
                    post_id=post_id,
                    status="published",
                    channel_id=channel,
                    platform=platform,
                    published_at=published,
                    attempt=1,
                ),
            ]
            for step in range(rng.randint(2, 4)):
                data.engagement.append(
                    EngagementObservation(
                        post_id=post_id,
                        channel_id=channel if step % 2 == 0 else None,
                        observed_at=published + timedelta(hours=3 * step + 1),
                        likes=rng.randint(0, 50) * (step + 1),
                        comments=rng.randint(0, 10),
                        shares=rng.randint(0, 5),
                        saves=rng.randint(0, 5),
                        impressions=rng.randint(500, 900) * (step + 1),
                        reach=rng.randint(300, 500) * (step + 1),
                        followers=_followers(channel, published + timedelta(hours=3 * step + 1)),
                    )
                )
    data.posts.append(
        PostEvent(
            post_id="post-failed",
            status="failed",
            channel_id="ch-brand",
            platform="instagram",
            attempt=3,
            error=PostError(code="rate_limited", message="too many requests", retryable=False),
        )
    )
    # Replies: some name their mention in the post event, some only in a decision.
    for index, mention in enumerate(rng.sample(reviewable, min(10, len(reviewable)))):
        reply_id = f"reply{index}"
        published = mention.created_at + timedelta(minutes=rng.randint(5, 600))
        named = index % 2 == 0
        data.posts.append(
            PostEvent(
                post_id=reply_id,
                status="published",
                channel_id="ch-replies",
                platform=mention.platform,
                published_at=published,
                in_reply_to_mention_id=mention.mention_id if named else None,
            )
        )
        if not named:
            data.decisions.append(
                ModerationDecision(
                    mention_id=mention.mention_id,
                    action="reply",
                    actor="agent-1",
                    reply_post_id=reply_id,
                    decided_at=published - timedelta(minutes=1),
                )
            )
        if index < 3:  # a second, later reply: the first one counts
            data.posts.append(
                PostEvent(
                    post_id=f"{reply_id}-b",
                    status="published",
                    channel_id="ch-replies",
                    platform=mention.platform,
                    published_at=published + timedelta(hours=2),
                    in_reply_to_mention_id=mention.mention_id,
                )
            )
    data.engagement.reverse()  # the latest observations arrive first for some posts
    data.posts += rng.sample(data.posts, 5)  # redelivered post events
    return data


def _followers(channel: str, at: datetime) -> int:
    """Our account's follower count: a per-channel base, growing (or shrinking) by the hour."""
    base = {"ch-brand": 12_000, "ch-solo": 800, "ch-other": 5_000}[channel]
    hours = int(at.timestamp() // 3600) % 10_000
    return base + (hours * 3 if channel != "ch-solo" else -hours // 50)


def expected_kpis(data: DataSet, tracker_id: str, start: datetime, end: datetime) -> dict[str, Any]:
    """Every KPI of the contract, straight from the raw events."""
    latest: dict[str, ClassifiedMention] = {}
    for mention in data.mentions:
        known = latest.get(mention.mention_id)
        if known is None or mention.occurred_at >= known.occurred_at:
            latest[mention.mention_id] = mention

    def in_window(m: ClassifiedMention, tracker: str) -> bool:
        return tracker in m.tracker_ids and m.action != "hide" and start <= m.created_at < end

    def volume(tracker: str) -> int:
        return sum(1 for m in latest.values() if in_window(m, tracker))

    own = [m for m in latest.values() if in_window(m, tracker_id)]
    sentiment = {
        s: sum(1 for m in own if m.classification.sentiment == s)
        for s in ("positive", "neutral", "negative")
    }
    largest: dict[str, int] = {}
    for m in own:
        key = f"{m.platform}:{m.author.id}"
        largest[key] = max(largest.get(key, 0), m.author.followers or 0)
    pos, neg = sentiment["positive"], sentiment["negative"]
    group = GROUPS.get(tracker_id)
    members = [t for t, g in GROUPS.items() if g == group] if group else [tracker_id]
    group_volume = sum(volume(t) for t in members)

    # Posts: first publication time, what they reply to.
    published_at: dict[str, datetime] = {}
    channel: dict[str, str] = {}
    reply_to: dict[str, str] = {}
    for post in data.posts:
        channel[post.post_id] = post.channel_id
        if post.in_reply_to_mention_id:
            reply_to[post.post_id] = post.in_reply_to_mention_id
        if post.status == "published" and post.published_at is not None:
            known_at = published_at.get(post.post_id)
            published_at[post.post_id] = min(known_at or post.published_at, post.published_at)
    for decision in data.decisions:
        if decision.reply_post_id:
            reply_to[decision.reply_post_id] = decision.mention_id
    channels = {c for c, trackers in CHANNEL_TRACKERS.items() if tracker_id in trackers}
    own_posts = [
        p
        for p, at in published_at.items()
        if start <= at < end
        and (
            channel[p] in channels
            or (p in reply_to and tracker_id in latest[reply_to[p]].tracker_ids)
        )
    ]
    last_observation: dict[str, EngagementObservation] = {}
    for o in data.engagement:
        if o.post_id and (
            o.post_id not in last_observation
            or o.observed_at > last_observation[o.post_id].observed_at
        ):
            last_observation[o.post_id] = o
    engagements = impressions = reach = 0
    for p in own_posts:
        if p in last_observation:
            o = last_observation[p]
            engagements += o.likes + o.comments + o.shares + o.saves
            impressions += o.impressions
            reach += o.reach
    growth_channels = channels | {channel[p] for p in own_posts}
    series: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for o in data.engagement:
        c = o.channel_id or channel.get(o.post_id or "")
        if o.followers is not None and c in growth_channels and start <= o.observed_at < end:
            series[c].append((o.observed_at, o.followers))
    first = sum(min(points)[1] for points in series.values())
    last = sum(max(points)[1] for points in series.values())

    first_reply: dict[str, datetime] = {}
    for post_id, mention_id in reply_to.items():
        if post_id in published_at:
            at = published_at[post_id]
            first_reply[mention_id] = min(first_reply.get(mention_id, at), at)
    waited = [
        max(0.0, (first_reply[m.mention_id] - m.created_at).total_seconds())
        for m in own
        if m.mention_id in first_reply
    ]
    reviewed = [m for m in own if m.action == "review"]
    replied_reviewed = [m for m in reviewed if m.mention_id in first_reply]

    def pct(part: float, whole: float) -> float | None:
        return None if whole == 0 else 100 * part / whole

    return {
        "mention_volume": len(own),
        "potential_reach": sum(largest.values()),
        "sentiment": sentiment,
        "net_sentiment": pct(pos - neg, pos + neg),
        "share_of_voice": pct(len(own), group_volume),
        "engagements": engagements,
        "impressions": impressions,
        "reach": reach,
        "engagement_rate_by_reach": pct(engagements, reach),
        "engagement_rate_by_impressions": pct(engagements, impressions),
        "response_time_seconds": {
            "avg": statistics.fmean(waited) if waited else None,
            "median": statistics.median(waited) if waited else None,
        },
        "response_rate": pct(len(replied_reviewed), len(reviewed)),
        "platforms": dict(sorted(collections.Counter(m.platform for m in own).items())),
        "review_volume": len(reviewed),
        "replied_volume": len(replied_reviewed),
        "follower_growth": {
            "absolute": (last - first) if series else None,
            "percent": pct(last - first, first) if series else None,
        },
    }


def comparable(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The KPI fields of an API answer, floats rounded (JSON round trip)."""
    return rounded({k: snapshot[k] for k in expected_keys()})


def expected_keys() -> list[str]:
    return [
        "mention_volume",
        "potential_reach",
        "sentiment",
        "net_sentiment",
        "share_of_voice",
        "engagements",
        "impressions",
        "reach",
        "engagement_rate_by_reach",
        "engagement_rate_by_impressions",
        "response_time_seconds",
        "response_rate",
        "platforms",
        "review_volume",
        "replied_volume",
        "follower_growth",
    ]


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def rounded(kpis: dict[str, Any]) -> dict[str, Any]:
    return {k: _rounded(v) for k, v in kpis.items()}
