"""UTC hours and days: the buckets the aggregates are kept in and time series are cut into.

Aggregates are stored per tracker and UTC day, by hour, with one entry per mention, so any
window [from, to) is exact, aligned or not (`MentionAggregates.window_totals`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
Unit = Literal["hour", "day"]
UNITS: dict[Unit, timedelta] = {"hour": HOUR, "day": DAY}


def floor_to(moment: datetime, unit: Unit) -> datetime:
    """The start of the hour or UTC day that contains `moment`."""
    floored = moment.replace(minute=0, second=0, microsecond=0)
    return floored.replace(hour=0) if unit == "day" else floored


def is_aligned(moment: datetime, unit: Unit) -> bool:
    return floor_to(moment, unit) == moment


def bucket_range(start: datetime, end: datetime, unit: Unit) -> list[datetime]:
    """Every bucket start in [start, end) (both aligned to `unit`)."""
    step = UNITS[unit]
    starts: list[datetime] = []
    moment = start
    while moment < end:
        starts.append(moment)
        moment += step
    return starts
