"""The contract's KPI formulas and the spike threshold, as pure functions."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

#: A negative spike needs at least this many negative mentions in the hour (contract).
SPIKE_MIN_COUNT = 10
#: Hours of history the spike baseline is computed over (contract: one week).
SPIKE_BASELINE_HOURS = 168


def percent(part: float, whole: float) -> float | None:
    """100 * part / whole, or None when whole is 0 (the contract's "null when 0")."""
    return None if whole == 0 else 100.0 * part / whole


def net_sentiment(positive: int, negative: int) -> float | None:
    """100 * (positive - negative) / (positive + negative); None when both are 0."""
    return percent(positive - negative, positive + negative)


def response_times(seconds: Sequence[float]) -> tuple[float | None, float | None]:
    """(average, median) of response times, or (None, None) without any reply."""
    if not seconds:
        return None, None
    return statistics.fmean(seconds), float(statistics.median(seconds))


def follower_growth(first: int | None, last: int | None) -> tuple[int | None, float | None]:
    """Last minus first follower count, and that in percent of the first."""
    if first is None or last is None:
        return None, None
    return last - first, percent(last - first, first)


def spike_threshold(previous_hours: Sequence[int]) -> float:
    """max(10, mean + 3 sigma) of the previous hourly counts (population sigma, zeros included)."""
    if not previous_hours:
        return float(SPIKE_MIN_COUNT)
    mean = statistics.fmean(previous_hours)
    sigma = statistics.pstdev(previous_hours)
    return max(float(SPIKE_MIN_COUNT), mean + 3 * sigma)
