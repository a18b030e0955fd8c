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
#: Up to this many hours a daily chart is built from hourly points rolled up to the user's
#: days; beyond, from the API's UTC days (the API answers at most 5 000 points a series).
MAX_HOURLY_POINTS = 62 * 24
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


class PeriodError(ValueError):
    """A period the user asked for that makes no sense.

    `message` is English text with `{name}` placeholders and `values` fills them, so a page
    can translate the message before formatting it.
    """

    def __init__(self, message: str, **values: object) -> None:
        super().__init__(message.format(**values))
        self.message = message
        self.values = values


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


@dataclass(frozen=True, slots=True)
class ChartWindow:
    """What to ask the time series API for a period's charts.

    The API wants windows of whole UTC hours or days, so the period is widened to them:
    `start` ≤ period start and `end` ≥ period end. `fetch` is the bucket asked for, `show`
    the bucket drawn (hourly points are rolled up to the user's days when `show` is "day").
    """

    start: datetime
    end: datetime
    fetch: Literal["hour", "day"]
    show: Literal["hour", "day"]


def _floor(moment: datetime, step: timedelta) -> datetime:
    moment = moment.astimezone(UTC)
    floored = moment.replace(minute=0, second=0, microsecond=0)
    return floored.replace(hour=0) if step == DAY else floored


def _ceil(moment: datetime, step: timedelta) -> datetime:
    floored = _floor(moment, step)
    return floored if floored == moment else floored + step


def chart_window(period: Period) -> ChartWindow:
    """The aligned window and buckets of a period's time series (see `ChartWindow`)."""
    show = period.bucket
    hourly = (_ceil(period.end, HOUR) - _floor(period.start, HOUR)) / HOUR
    fetch: Literal["hour", "day"] = "hour" if hourly <= MAX_HOURLY_POINTS else "day"
    step = HOUR if fetch == "hour" else DAY
    return ChartWindow(_floor(period.start, step), _ceil(period.end, step), fetch, show)


def _floor_to_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def parse_day(text: str | None) -> date | None:
    """A `YYYY-MM-DD` day from a query parameter; None when empty; PeriodError when not a day."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PeriodError("{text} is not a day (YYYY-MM-DD)", text=text[:40]) from None


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
        raise PeriodError(
            "Unknown period {key}; choose one of {keys}.",
            key=chosen[:20],
            keys=", ".join(PERIOD_KEYS),
        )
    if first_day is None or last_day is None:
        raise PeriodError("A custom period needs a first and a last day.")
    if last_day < first_day:
        raise PeriodError("The last day is before the first day.")
    if (last_day - first_day).days + 1 > MAX_CUSTOM_DAYS:
        raise PeriodError("A custom period covers {days} days at most.", days=MAX_CUSTOM_DAYS)
    zone = ZoneInfo(time_zone)
    start = datetime.combine(first_day, time.min, zone).astimezone(UTC)
    end = datetime.combine(last_day + timedelta(days=1), time.min, zone).astimezone(UTC)
    return Period("custom", start, end)
