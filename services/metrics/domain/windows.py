"""Time buckets and how a KPI window is cut into them.

Aggregates are stored per UTC hour and per UTC day. A window [from, to) is answered from day
buckets inside, hour buckets at the day edges, and raw mention facts for the minutes before the
first and after the last whole hour, so any window is exact, aligned or not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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


def ceil_to(moment: datetime, unit: Unit) -> datetime:
    """The first hour or day boundary at or after `moment`."""
    floored = floor_to(moment, unit)
    return floored if floored == moment else floored + UNITS[unit]


def bucket_starts(moment: datetime) -> dict[Unit, datetime]:
    """Both buckets a moment falls into."""
    return {"hour": floor_to(moment, "hour"), "day": floor_to(moment, "day")}


def is_aligned(moment: datetime, unit: Unit) -> bool:
    return floor_to(moment, unit) == moment


Range = tuple[datetime, datetime]


@dataclass(frozen=True)
class WindowPlan:
    """Which stored pieces add up to exactly one window (all ranges half-open)."""

    days: list[Range] = field(default_factory=list)
    hours: list[Range] = field(default_factory=list)
    raw: list[Range] = field(default_factory=list)


def plan_window(start: datetime, end: datetime) -> WindowPlan:
    """Cut [start, end) into day ranges, hour ranges and raw (sub-hour) edges."""
    if end <= start:
        return WindowPlan()
    first_hour, last_hour = ceil_to(start, "hour"), floor_to(end, "hour")
    if first_hour >= last_hour:
        return WindowPlan(raw=[(start, end)])
    raw = [r for r in ((start, first_hour), (last_hour, end)) if r[0] < r[1]]
    first_day, last_day = ceil_to(first_hour, "day"), floor_to(last_hour, "day")
    if first_day >= last_day:
        return WindowPlan(hours=[(first_hour, last_hour)], raw=raw)
    hours = [r for r in ((first_hour, first_day), (last_day, last_hour)) if r[0] < r[1]]
    return WindowPlan(days=[(first_day, last_day)], hours=hours, raw=raw)


def bucket_range(start: datetime, end: datetime, unit: Unit) -> list[datetime]:
    """Every bucket start in [start, end) (both aligned to `unit`)."""
    step = UNITS[unit]
    starts: list[datetime] = []
    moment = start
    while moment < end:
        starts.append(moment)
        moment += step
    return starts
