"""KPI card arithmetic: a figure, the same figure in the previous period, and the change."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Trend = Literal["up", "down", "flat", "new", "none"]


@dataclass(frozen=True, slots=True)
class Change:
    """How a figure moved against the previous period.

    `percent` is the relative change for counts (null when the previous value is 0: "new");
    `points` is the absolute change for figures that already are percentages or scores.
    """

    trend: Trend
    percent: float | None = None
    points: float | None = None


def relative_change(current: float | None, previous: float | None) -> Change:
    """For counts and sums (volume, reach, engagements): percent against the previous."""
    if current is None or previous is None:
        return Change("none")
    if previous == 0:
        return Change("flat", 0.0) if current == 0 else Change("new")
    percent = 100.0 * (current - previous) / previous
    return Change(_trend(percent), round(percent, 1))


def point_change(current: float | None, previous: float | None) -> Change:
    """For percentages and scores (net sentiment, share of voice, rates): points of change."""
    if current is None or previous is None:
        return Change("none")
    points = current - previous
    return Change(_trend(points), None, round(points, 1))


def _trend(delta: float) -> Trend:
    if abs(delta) < 0.05:
        return "flat"
    return "up" if delta > 0 else "down"


# --- The overview's cards ------------------------------------------------------------------

Kind = Literal["count", "score", "percent", "duration"]
Better = Literal["higher", "lower"]
Verdict = Literal["good", "bad", "neutral"]


@dataclass(frozen=True, slots=True)
class Card:
    """One KPI card: the figure as the metrics API answered it, and how it moved.

    `key` names the KPI (`data-kpi`), `value` is the API's raw figure (`data-value`), `sample`
    the counts its tooltip names (how many mentions, engagements, ... it rests on).
    """

    key: str
    kind: Kind
    value: float | None
    previous: float | None
    change: Change
    better: Better
    sample: dict[str, int]

    @property
    def verdict(self) -> Verdict:
        """Whether the move is good news (a shorter response time is; a longer one is not)."""
        if self.change.trend in ("up", "down"):
            rose = self.change.trend == "up"
            return "good" if rose == (self.better == "higher") else "bad"
        return "neutral"


def _number(snapshot: Mapping[str, Any], *path: str) -> float | None:
    value: Any = snapshot
    for part in path:
        value = value.get(part) if isinstance(value, Mapping) else None
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _count(snapshot: Mapping[str, Any], *path: str) -> int:
    value = _number(snapshot, *path)
    return int(value) if value is not None else 0


def group_volume(mention_volume: int, share_of_voice: float | None) -> int | None:
    """The group's mentions, from a brand's volume and share (share = 100 * volume / group).

    None when the share is unknown or 0 (then the brand's volume says nothing of the group's).
    """
    if share_of_voice is None or share_of_voice <= 0:
        return None
    return round(100.0 * mention_volume / share_of_voice)


def build_cards(current: Mapping[str, Any], previous: Mapping[str, Any]) -> list[Card]:
    """The overview's cards from two KpiSnapshots (this period and the one before).

    Counts move in percent (`relative_change`), percentages and scores in points
    (`point_change`), durations in percent with "lower is better".
    """
    volume = _count(current, "mention_volume")
    positive = _count(current, "sentiment", "positive")
    negative = _count(current, "sentiment", "negative")
    group = group_volume(volume, _number(current, "share_of_voice"))
    specs: list[tuple[str, Kind, tuple[str, ...], Better, dict[str, int]]] = [
        ("mention_volume", "count", ("mention_volume",), "higher", {"mentions": volume}),
        ("potential_reach", "count", ("potential_reach",), "higher", {"mentions": volume}),
        (
            "net_sentiment",
            "score",
            ("net_sentiment",),
            "higher",
            {"positive": positive, "negative": negative, "mentions": positive + negative},
        ),
        (
            "share_of_voice",
            "percent",
            ("share_of_voice",),
            "higher",
            {"mentions": volume, **({"group": group} if group is not None else {})},
        ),
        (
            "response_time_median",
            "duration",
            ("response_time_seconds", "median"),
            "lower",
            {"mentions": volume},
        ),
        (
            "response_time_avg",
            "duration",
            ("response_time_seconds", "avg"),
            "lower",
            {"mentions": volume},
        ),
        ("response_rate", "percent", ("response_rate",), "higher", {"mentions": volume}),
        (
            "engagement_rate_by_reach",
            "percent",
            ("engagement_rate_by_reach",),
            "higher",
            {"engagements": _count(current, "engagements"), "reach": _count(current, "reach")},
        ),
    ]
    cards = []
    for key, kind, path, better, sample in specs:
        now, before = _number(current, *path), _number(previous, *path)
        change = (
            point_change(now, before)
            if kind in ("score", "percent")
            else (relative_change(now, before))
        )
        cards.append(Card(key, kind, now, before, change, better, sample))
    return cards


_UNITS: tuple[tuple[str, int], ...] = (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1))


def humanise_duration(seconds: float | None, parts: int = 2) -> list[tuple[int, str]]:
    """A duration as its largest units, e.g. 3 900 s → [(1, "h"), (5, "min")].

    Rounded to the smallest unit shown, at most `parts` units; [] for no value. The page
    translates the unit names.
    """
    if seconds is None:
        return []
    left = max(0, round(seconds))
    if left == 0:
        return [(0, "s")]
    largest = next(i for i, (_, size) in enumerate(_UNITS) if left >= size)
    shown = _UNITS[largest : largest + parts]
    smallest = shown[-1][1]
    left = round(left / smallest) * smallest
    result: list[tuple[int, str]] = []
    for name, size in shown:
        amount, left = divmod(left, size)
        if amount or not result:
            result.append((amount, name))
    return result
