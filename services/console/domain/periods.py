"""Report periods: the last 24 h, 7 d, 30 d or a custom range, and the period before it.

Windows are half-open [start, end) in UTC, like the KPI API. A custom range is given as days in
the user's time zone (from the first day's midnight to the midnight after the last), so "1 to
7 March" in Berlin means what a person there means, across daylight-saving changes too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

PeriodKey = Literal["24h", "7d", "30d", "custom"]
PERIOD_KEYS: tuple[PeriodKey, ...] = ("24h", "7d", "30d", "custom")
_LENGTHS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
#: The longest custom range: a year (the time series' day buckets stay few).
MAX_CUSTOM_DAYS = 366


class PeriodError(ValueError):
    """A period the user asked for that makes no sense (reason in words)."""


@dataclass(frozen=True, slots=True)
class Period:
    key: PeriodKey
    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def previous(self) -> Period:
        """The period of the same length just before this one (for "change against")."""
        return Period(self.key, self.start - self.length, self.start)

    @property
    def bucket(self) -> Literal["hour", "day"]:
        """Hourly points up to two days, daily beyond (charts stay readable)."""
        return "hour" if self.length <= timedelta(days=2) else "day"


def _floor_to_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def resolve_period(
    key: str | None,
    now: datetime,
    time_zone: str,
    first_day: date | None = None,
    last_day: date | None = None,
) -> Period:
    """The period for a request's `period`, `from` and `to` (days, for custom)."""
    chosen = key or "7d"
    if chosen in _LENGTHS:
        end = _floor_to_minute(now.astimezone(UTC)) + timedelta(minutes=1)
        return Period(chosen, end - _LENGTHS[chosen], end)  # type: ignore[arg-type]
    if chosen != "custom":
        raise PeriodError(f"unknown period {chosen!r}; choose one of {', '.join(PERIOD_KEYS)}")
    if first_day is None or last_day is None:
        raise PeriodError("a custom period needs a first and a last day")
    if last_day < first_day:
        raise PeriodError("the last day is before the first day")
    if (last_day - first_day).days + 1 > MAX_CUSTOM_DAYS:
        raise PeriodError(f"a custom period covers {MAX_CUSTOM_DAYS} days at most")
    zone = ZoneInfo(time_zone)
    start = datetime.combine(first_day, time.min, zone).astimezone(UTC)
    end = datetime.combine(last_day + timedelta(days=1), time.min, zone).astimezone(UTC)
    return Period("custom", start, end)
