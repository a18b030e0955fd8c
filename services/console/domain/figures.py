"""The overview's and voices' arithmetic on the metrics API's answers: series rolled up to the
user's days, each bucket's share of voice in the brand group, the crisis to show, and an
author's sentiment mix. Pure functions: the pages fetch, these compute, templates show.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

SENTIMENTS = ("positive", "neutral", "negative")
#: A negative spike whose window ended longer ago than this is history, not a crisis.
CRISIS_WITHIN = timedelta(hours=2)


@dataclass(frozen=True, slots=True)
class Bucket:
    """Mentions of one hour or day, by sentiment (`label` is the bucket as the user reads it:
    an aware start for hours, the user's calendar day for days)."""

    start: datetime
    label: str
    positive: int
    neutral: int
    negative: int

    @property
    def volume(self) -> int:
        return self.positive + self.neutral + self.negative


def _moment(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def buckets(
    points: Iterable[Mapping[str, Any]],
    show: str,
    time_zone: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[Bucket]:
    """Time series points as chart buckets; hourly points are summed into the user's days
    when `show` is "day" (an hour belongs to the local day it starts in).

    Points outside [start, end) are left out when the bounds are given. Counts are summable
    across hours; reach (distinct authors) is not, so buckets carry counts only.
    """
    zone = ZoneInfo(time_zone)
    order: list[str] = []
    sums: dict[str, list[int]] = {}
    starts: dict[str, datetime] = {}
    for point in points:
        moment = _moment(point["start"])
        if (start is not None and moment < start) or (end is not None and moment >= end):
            continue
        key = moment.astimezone(zone).date().isoformat() if show == "day" else moment.isoformat()
        if key not in sums:
            order.append(key)
            sums[key] = [0, 0, 0]
            starts[key] = moment
        sentiment = point.get("sentiment") or {}
        for i, name in enumerate(SENTIMENTS):
            sums[key][i] += int(sentiment.get(name) or 0)
    return [Bucket(starts[k], k, sums[k][0], sums[k][1], sums[k][2]) for k in order]


def share_of_voice(volumes: Mapping[str, Sequence[int]]) -> dict[str, list[float | None]]:
    """Each tracker's share of its group per bucket: 100 * its volume / the group's volume
    in that bucket, None where the group had no mention (as the KPI's `share_of_voice`).

    Every series must have the same buckets, in the same order.
    """
    lengths = {len(series) for series in volumes.values()}
    if len(lengths) > 1:
        raise ValueError("every tracker's series must have the same buckets")
    size = lengths.pop() if lengths else 0
    totals = [sum(series[i] for series in volumes.values()) for i in range(size)]
    return {
        tracker: [
            round(100.0 * series[i] / totals[i], 1) if totals[i] else None for i in range(size)
        ]
        for tracker, series in volumes.items()
    }


def active_crisis(
    alerts: Iterable[Mapping[str, Any]], tracker_id: str, now: datetime
) -> Mapping[str, Any] | None:
    """The latest negative spike of the tracker whose window ended within `CRISIS_WITHIN`
    (or is still open), else None."""
    found: Mapping[str, Any] | None = None
    for alert in alerts:
        if alert.get("kind") != "negative_spike" or alert.get("tracker_id") != tracker_id:
            continue
        if not alert.get("window_start") or not alert.get("window_end"):
            continue
        if _moment(alert["window_end"]) < now - CRISIS_WITHIN:
            continue
        if found is None or _moment(alert["window_start"]) > _moment(found["window_start"]):
            found = alert
    return found


@dataclass(frozen=True, slots=True)
class Share:
    """One sentiment's part of an author's mentions (percent of all their mentions)."""

    sentiment: str
    count: int
    percent: float


def sentiment_mix(counts: Mapping[str, Any]) -> list[Share]:
    """Positive, neutral, negative as counts and percentages (summing to 100 when any)."""
    values = [int(counts.get(name) or 0) for name in SENTIMENTS]
    total = sum(values)
    return [
        Share(name, value, round(100.0 * value / total, 1) if total else 0.0)
        for name, value in zip(SENTIMENTS, values, strict=True)
    ]


def platform_mix(platforms: dict[str, int]) -> list[dict[str, float | int | str]]:
    """The mention volume by network, largest first, each with its share in percent (the
    KPI answer's `platforms`; the shares add up to 100 but for rounding)."""
    total = sum(platforms.values())
    ranked = sorted(platforms.items(), key=lambda item: (-item[1], item[0]))
    return [
        {"platform": name, "mentions": count, "percent": 100 * count / total if total else 0.0}
        for name, count in ranked
        if count > 0
    ]
