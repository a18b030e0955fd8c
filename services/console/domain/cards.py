"""KPI card arithmetic: a figure, the same figure in the previous period, and the change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
