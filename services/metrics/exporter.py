"""Prometheus metrics of the metrics service: KPI counters and gauges for Grafana.

Labels are bounded sets only: tracker (at most `SMM_INGEST_MAX_TRACKERS`), group, platform (a
closed list), sentiment, status, kind, basis. Never author, mention or post ids.
Counters move when a fact is seen for the first time (a redelivery does not move them);
gauges hold the KPIs of the scheduled window (`SMM_METRICS_KPI_WINDOW_HOURS`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import get_args

from prometheus_client import Counter, Gauge, Histogram

from services.metrics.domain.facts import MentionFact
from shared.events import KpiSnapshot, Platform, PostEvent, Sentiment

AGGREGATION_STEP = Histogram(
    "smm_metrics_aggregation_step_seconds",
    "Time a batch of classified mentions spends in each step of its aggregation: rollups_read, "
    "plan, journal, claim, directory, rollups_write, finish.",
    ["step"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
MENTIONS = Counter(
    "smm_mentions_total",
    "Mentions counted for a tracker (first sight; hidden spam is left out), by sentiment.",
    ["tracker", "sentiment"],
)
MENTIONS_BY_PLATFORM = Counter(
    "smm_mentions_by_platform_total",
    "Mentions counted (first sight, any tracker, hidden spam left out), by platform, sentiment.",
    ["platform", "sentiment"],
)
MENTIONS_HIDDEN = Counter(
    "smm_mentions_hidden_total",
    "Mentions the automatic routing hid as spam (left out of every KPI), by platform.",
    ["platform"],
)
OFFSET_RESTARTS = Counter(
    "smm_metrics_offset_restarts_total",
    "Times a partition of the classified mentions began again below the offsets already "
    "applied, with messages never applied (the topic was created anew); they are applied by "
    "mention identity. Alert: it means a topic was deleted, restored or mirrored.",
    ["partition"],
)
MENTIONS_RECLASSIFIED = Counter(
    "smm_mentions_reclassified_total", "Mentions whose later classification replaced the earlier."
)
POSTS = Counter(
    "smm_posts_total",
    "Our posts seen published or failed for the first time, by platform and status.",
    ["platform", "status"],
)
ALERTS = Counter(
    "smm_alerts_emitted_total", "Alerts emitted on smm.alerts.v1, by kind.", ["kind", "tracker"]
)
KPI_REFRESHED = Gauge(
    "smm_kpi_refreshed_timestamp_seconds", "When this process last refreshed the KPI gauges."
)

_TRACKER = ["tracker"]
KPI_MENTION_VOLUME = Gauge("smm_kpi_mention_volume", "Mentions in the KPI window.", _TRACKER)
KPI_POTENTIAL_REACH = Gauge(
    "smm_kpi_potential_reach", "sum of distinct authors' largest follower count.", _TRACKER
)
KPI_SENTIMENT = Gauge(
    "smm_kpi_sentiment_mentions",
    "Mentions in the KPI window by sentiment.",
    ["tracker", "sentiment"],
)
KPI_NET_SENTIMENT = Gauge("smm_kpi_net_sentiment", "100 * (pos - neg) / (pos + neg).", _TRACKER)
KPI_SHARE_OF_VOICE = Gauge(
    "smm_kpi_share_of_voice_percent",
    "The tracker's share of its group's mention volume.",
    ["tracker", "group"],
)
KPI_ENGAGEMENTS = Gauge(
    "smm_kpi_engagements", "Engagements of our posts published in the window.", _TRACKER
)
KPI_ENGAGEMENT_RATE = Gauge(
    "smm_kpi_engagement_rate_percent",
    "100 * engagements / reach or impressions of our posts published in the window.",
    ["tracker", "basis"],
)
KPI_RESPONSE_TIME = Gauge(
    "smm_kpi_response_time_seconds",
    "Time from a mention to our first published reply (avg, median).",
    ["tracker", "stat"],
)
KPI_RESPONSE_RATE = Gauge(
    "smm_kpi_response_rate_percent", "Replied mentions per mention routed to review.", _TRACKER
)
KPI_FOLLOWER_GROWTH = Gauge(
    "smm_kpi_follower_growth", "Last minus first follower count in the window.", _TRACKER
)
KPI_FOLLOWER_GROWTH_PERCENT = Gauge(
    "smm_kpi_follower_growth_percent", "Follower growth in percent of the first count.", _TRACKER
)


def start_counters_at_zero() -> None:
    """Create the bounded counter series at 0 before anything is counted.

    A series that first appears already above 0 shows no `increase()` in Prometheus, so a
    dashboard would read a tracker's first burst of mentions as none. Platforms, sentiments
    and post states are closed lists; trackers get theirs with their first KPI refresh.
    """
    for platform in get_args(Platform):
        MENTIONS_HIDDEN.labels(platform)
        for status in ("published", "failed"):
            POSTS.labels(platform, status)
        for sentiment in get_args(Sentiment):
            MENTIONS_BY_PLATFORM.labels(platform, sentiment)
    POSTS.labels("unknown", "published")
    POSTS.labels("unknown", "failed")


def count_mentions(new: Iterable[MentionFact], reclassified: int) -> None:
    for fact in new:
        if not fact.counted:
            MENTIONS_HIDDEN.labels(fact.platform).inc()
            continue
        MENTIONS_BY_PLATFORM.labels(fact.platform, fact.sentiment).inc()
        for tracker_id in fact.tracker_ids:
            MENTIONS.labels(tracker_id, fact.sentiment).inc()
    if reclassified:
        MENTIONS_RECLASSIFIED.inc(reclassified)


def count_posts(published: Iterable[PostEvent], failed: Iterable[PostEvent]) -> None:
    for event in published:
        POSTS.labels(event.platform or "unknown", "published").inc()
    for event in failed:
        POSTS.labels(event.platform or "unknown", "failed").inc()


def _set(gauge: Gauge, labels: tuple[str, ...], value: float | None) -> None:
    """Set a gauge, or remove its series when the KPI is undefined (null)."""
    if value is None:
        with contextlib.suppress(KeyError):
            gauge.remove(*labels)
    else:
        gauge.labels(*labels).set(value)


def show_snapshot(snapshot: KpiSnapshot) -> None:
    """Publish one tracker's KPIs as gauges."""
    tracker = snapshot.tracker_id
    for sentiment in get_args(Sentiment):
        MENTIONS.labels(tracker, sentiment)  # at 0 from the tracker's first refresh
    _set(KPI_MENTION_VOLUME, (tracker,), snapshot.mention_volume)
    _set(KPI_POTENTIAL_REACH, (tracker,), snapshot.potential_reach)
    for sentiment, count in snapshot.sentiment.model_dump().items():
        _set(KPI_SENTIMENT, (tracker, sentiment), count)
    _set(KPI_NET_SENTIMENT, (tracker,), snapshot.net_sentiment)
    _set(KPI_SHARE_OF_VOICE, (tracker, snapshot.group or ""), snapshot.share_of_voice)
    _set(KPI_ENGAGEMENTS, (tracker,), snapshot.engagements)
    _set(KPI_ENGAGEMENT_RATE, (tracker, "reach"), snapshot.engagement_rate_by_reach)
    _set(KPI_ENGAGEMENT_RATE, (tracker, "impressions"), snapshot.engagement_rate_by_impressions)
    _set(KPI_RESPONSE_TIME, (tracker, "avg"), snapshot.response_time_seconds.avg)
    _set(KPI_RESPONSE_TIME, (tracker, "median"), snapshot.response_time_seconds.median)
    _set(KPI_RESPONSE_RATE, (tracker,), snapshot.response_rate)
    _set(KPI_FOLLOWER_GROWTH, (tracker,), snapshot.follower_growth.absolute)
    _set(KPI_FOLLOWER_GROWTH_PERCENT, (tracker,), snapshot.follower_growth.percent)
