"""When posts go out: local wall-clock times in IANA zones, posting slots and recurrence.

Everything is computed in the channel's local wall time and converted to UTC at the end, so
"every Monday 09:00 Europe/Berlin" stays 09:00 in Berlin across daylight-saving changes.
A local time that does not exist (spring forward) moves forward by the gap (02:30 → 03:30);
a local time that exists twice (fall back) means its first occurrence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as wall_time
from typing import Annotated
from zoneinfo import ZoneInfo

from croniter import CroniterBadCronError, CroniterBadDateError, croniter
from dateutil.rrule import DAILY, HOURLY, MINUTELY, SECONDLY, WEEKLY, rrule, rrulestr
from pydantic import Field, StringConstraints, field_validator

from shared.events import Model

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: How far ahead "add to queue" looks for a free slot.
QUEUE_HORIZON_DAYS = 366
#: Most occurrences one next-occurrence computation walks through (about a quarter second);
#: a rule that needs more is refused rather than left to block a worker.
MAX_RRULE_STEPS = 50_000
#: Length of one period of the fixed-length frequencies (MONTHLY and YEARLY have few
#: periods per year and are walked).
_PERIOD_SECONDS = {WEEKLY: 7 * 86_400, DAILY: 86_400, HOURLY: 3_600, MINUTELY: 60, SECONDLY: 1}
#: Occurrences sampled to check the gap between them against the minimum.
_GAP_SAMPLE = 10


class TimingError(ValueError):
    """A recurrence rule or cron expression that cannot produce times."""


class Slot(Model):
    """A weekly posting time in the channel's timezone, e.g. {"weekday": "mon", "time": "09:30"}."""

    weekday: Annotated[str, StringConstraints(pattern=r"^(mon|tue|wed|thu|fri|sat|sun)$")]
    time: Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]

    def local_time(self) -> wall_time:
        hour, minute = self.time.split(":")
        return wall_time(int(hour), int(minute))


class Slots(Model):
    slots: list[Slot] = Field(default_factory=list, max_length=200)

    @field_validator("slots")
    @classmethod
    def _distinct(cls, slots: list[Slot]) -> list[Slot]:
        unique = {(s.weekday, s.time): s for s in slots}
        return [unique[key] for key in sorted(unique, key=lambda k: (WEEKDAYS.index(k[0]), k[1]))]


def local_to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a naive local wall time (gap: shifted forward; overlap: first)."""
    # fold=0 takes the offset in force before a transition: for a time in the spring-forward
    # gap that lands after the gap (02:30 CET is 03:30 CEST); in the fall-back overlap it is
    # the first of the two instants.
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def utc_to_local(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive local wall time of a UTC instant."""
    return instant.astimezone(zone).replace(tzinfo=None)


def slot_times(slots: Iterable[Slot], zone: ZoneInfo, after: datetime) -> Iterable[datetime]:
    """Every slot instant (UTC) strictly after `after`, in order, for the queue horizon."""
    ordered = list(slots)
    if not ordered:
        return
    start = utc_to_local(after, zone).date()
    for offset in range(QUEUE_HORIZON_DAYS + 8):
        day = start + timedelta(days=offset)
        todays = sorted(
            local_to_utc(datetime.combine(day, slot.local_time()), zone)
            for slot in ordered
            if WEEKDAYS.index(slot.weekday) == day.weekday()
        )
        for instant in todays:
            if instant > after:
                yield instant


def next_free_slot(
    slots: Iterable[Slot], zone: ZoneInfo, after: datetime, taken: set[datetime]
) -> datetime | None:
    """The first slot after `after` that no post of the channel occupies yet."""
    for instant in slot_times(slots, zone, after):
        if instant not in taken:
            return instant
    return None


def next_occurrence(
    *, rrule_text: str | None, cron: str | None, zone: ZoneInfo, anchor: datetime, after: datetime
) -> datetime | None:
    """The first occurrence strictly after `after` (UTC), or None when the series has ended.

    `anchor` is the series' start (UTC); RRULEs without DTSTART start there, in local time.
    """
    local_after = utc_to_local(after, zone)
    if cron is not None:
        try:
            # Wall-clock iteration on naive local times; DST is applied by local_to_utc.
            iterator = croniter(cron, local_after)
            candidate: datetime = iterator.get_next(datetime)
        except (CroniterBadCronError, CroniterBadDateError, ValueError, KeyError) as exc:
            raise TimingError(f"invalid cron expression: {exc}") from exc
        instant = local_to_utc(candidate, zone)
        while instant <= after:  # two local times in the fall-back hour map to one instant
            candidate = iterator.get_next(datetime)
            instant = local_to_utc(candidate, zone)
        return instant
    if rrule_text is not None:
        try:
            return _next_of_rule(parse_rrule(rrule_text, zone, anchor), zone, local_after, after)
        except TimingError:
            raise
        except (ValueError, OverflowError) as exc:
            # dateutil finds some rules empty only while iterating them (an INTERVAL that
            # never meets a BYHOUR): a plain ValueError, which is the rule's fault, not ours.
            raise TimingError(f"invalid RRULE: {exc}") from exc
    raise TimingError("a recurring post needs an rrule or a cron expression")


def _next_of_rule(
    parsed: rrule, zone: ZoneInfo, local_after: datetime, after: datetime
) -> datetime | None:
    rule = fast_forward(parsed, local_after)
    if rule is None:
        return None
    for steps, candidate_local in enumerate(rule):
        if steps >= MAX_RRULE_STEPS:
            raise TimingError(
                f"the RRULE needs more than {MAX_RRULE_STEPS} steps to reach the next "
                "occurrence (COUNT with BY rules from a DTSTART long ago?); simplify it"
            )
        if candidate_local <= local_after:
            continue
        instant = local_to_utc(candidate_local, zone)
        if instant > after:  # two local times in the fall-back hour map to one instant
            return instant
    return None


def fast_forward(rule: rrule, local_after: datetime) -> rrule | None:
    """The same rule with DTSTART moved to just before `local_after`, by whole periods.

    A rule repeats every INTERVAL periods from DTSTART, so moving DTSTART by whole periods
    keeps every later occurrence; walking from a DTSTART a month back with FREQ=SECONDLY
    would take millions of steps. COUNT counts from the original DTSTART: without BY rules
    there is one occurrence per period, so the count is reduced by the periods skipped; with
    BY rules the rule is walked (bounded by MAX_RRULE_STEPS). None: the series has ended.
    """
    parts = _RuleParts.of(rule)
    unit = _PERIOD_SECONDS.get(parts.freq)
    if unit is None:
        return rule
    period = timedelta(seconds=unit * parts.interval)
    skip = (local_after - parts.dtstart) // period - 1  # one period of margin before `after`
    if skip <= 0:
        return rule
    if parts.count is None:
        return rule.replace(dtstart=parts.dtstart + skip * period)
    if parts.by_rules:  # occurrences per period vary: they cannot be counted arithmetically
        return rule
    remaining = parts.count - skip
    if remaining <= 0:
        return None
    return rule.replace(dtstart=parts.dtstart + skip * period, count=remaining)


@dataclass(frozen=True, slots=True)
class _RuleParts:
    """What dateutil keeps private about a parsed rule."""

    freq: int
    interval: int
    dtstart: datetime
    count: int | None
    by_rules: bool

    @classmethod
    def of(cls, rule: rrule) -> _RuleParts:
        return cls(
            freq=rule._freq,  # type: ignore[attr-defined]
            interval=rule._interval,  # type: ignore[attr-defined]
            dtstart=rule._dtstart,  # type: ignore[attr-defined]
            count=rule._count,  # type: ignore[attr-defined]
            by_rules=bool(rule._original_rule),  # type: ignore[attr-defined]
        )


def parse_rrule(text: str, zone: ZoneInfo, anchor: datetime) -> rrule:
    """An RFC 5545 RRULE evaluated on naive local times (DTSTART defaults to `anchor`)."""
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    try:
        parsed = rrulestr(body, dtstart=utc_to_local(anchor, zone).replace(microsecond=0))
    except (ValueError, TypeError, KeyError) as exc:
        raise TimingError(f"invalid RRULE: {exc}") from exc
    if not isinstance(parsed, rrule):
        raise TimingError("give a single RRULE (no RDATE/EXDATE sets)")
    dtstart = getattr(parsed, "_dtstart", None)  # dateutil keeps it private
    if dtstart is not None and dtstart.tzinfo is not None:
        raise TimingError("DTSTART in the RRULE must be a local time without TZID; use timezone")
    return parsed


def validate_recurrence(
    rrule_text: str | None,
    cron: str | None,
    zone: ZoneInfo,
    anchor: datetime,
    min_gap_seconds: int = 60,
) -> datetime:
    """The first occurrence after `anchor`, or TimingError with a reason.

    Occurrences closer than `min_gap_seconds` are refused: nobody posts every second, and
    such a series would flood the channel and the calendar.
    """
    if rrule_text is not None:
        parts = _RuleParts.of(parse_rrule(rrule_text, zone, anchor))
        if parts.freq == SECONDLY and parts.interval < min_gap_seconds:
            raise TimingError(
                f"FREQ=SECONDLY with INTERVAL={parts.interval} repeats more often than every "
                f"{min_gap_seconds} s"
            )
    first = next_occurrence(
        rrule_text=rrule_text, cron=cron, zone=zone, anchor=anchor, after=anchor - timedelta(0, 1)
    )
    if first is None:
        raise TimingError("the recurrence produces no future occurrence")
    previous = first
    for _ in range(_GAP_SAMPLE):
        following = next_occurrence(
            rrule_text=rrule_text, cron=cron, zone=zone, anchor=anchor, after=previous
        )
        if following is None:
            break
        gap = (following - previous).total_seconds()
        if gap < min_gap_seconds:
            raise TimingError(
                f"occurrences are {gap:g} s apart; a recurring post may repeat at most every "
                f"{min_gap_seconds} s"
            )
        previous = following
    return first


def compact_instant(instant: datetime) -> str:
    """`20261129T080000Z`: a UTC instant as it appears in deterministic instance ids."""
    return instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
