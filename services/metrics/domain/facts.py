"""What one classified mention contributes to the aggregates, and sums of those contributions.

A mention's *fact* is what the KPIs read of it. The aggregates hold the sum of the facts'
contributions per tracker and UTC day, split by hour, so when a mention arrives again they
change by (new - old) contribution: nothing for a redelivery, a move between hours for a
reclassification, and a removal of its counts when the automatic routing now hides it as spam.

`DaySums` is that sum for one tracker and day, and every part of it can be taken back: the
counters, and one entry per mention (time, author, followers, labels, id, version), from which
reach over distinct authors, response times and windows that start or end inside an hour are
computed. The entries are also where a mention's stored fact is found when it arrives again:
a hidden mention keeps its entry (counted nowhere) for that. A batch's change is a `DaySums`
with negative parts, and adding up stored `DaySums` gives the day's totals.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from services.metrics.domain.windows import floor_to
from shared.events import ClassifiedMention


@dataclass(frozen=True, slots=True)
class MentionFact:
    """The fields of a classified mention that the KPIs read."""

    mention_id: str
    tracker_ids: tuple[str, ...]
    created_at: datetime
    platform: str
    author: str  # platform + author id: the contract's "distinct author"
    followers: int
    sentiment: str
    action: str
    #: `occurred_at` of the event: a later classification of the same mention supersedes.
    version: datetime

    @property
    def counted(self) -> bool:
        """Mentions the automatic routing hid as spam are left out of every KPI."""
        return self.action != "hide"

    @classmethod
    def of(cls, mention: ClassifiedMention) -> MentionFact:
        return cls(
            mention_id=mention.mention_id,
            tracker_ids=tuple(sorted(set(mention.tracker_ids))),
            created_at=mention.created_at,
            platform=mention.platform,
            author=f"{mention.platform}:{mention.author.id}",
            followers=mention.author.followers or 0,
            sentiment=mention.classification.sentiment,
            action=mention.action,
            version=mention.occurred_at,
        )

    def entry(self) -> Entry:
        """What an hour keeps of each mention: what the KPIs read (for windows that cut the
        hour, reach and response times), and its id and version, so the entry is also the
        stored fact a later sighting of the mention is compared with."""
        return (
            micros(self.created_at),
            self.author,
            self.followers,
            self.sentiment,
            self.platform,
            self.action,
            self.mention_id,
            micros(self.version),
        )

    @classmethod
    def from_entry(cls, entry: Entry, tracker_ids: tuple[str, ...]) -> MentionFact:
        created, author, followers, sentiment, platform, action, mention_id, version = entry
        return cls(
            mention_id=mention_id,
            tracker_ids=tracker_ids,
            created_at=from_micros(created),
            platform=platform,
            author=author,
            followers=followers,
            sentiment=sentiment,
            action=action,
            version=from_micros(version),
        )

    def same_contribution(self, other: MentionFact) -> bool:
        return replace(self, version=other.version) == other


def latest_per_mention(mentions: Iterable[ClassifiedMention]) -> dict[str, MentionFact]:
    """One fact per mention id in a batch: the latest classification wins."""
    latest: dict[str, MentionFact] = {}
    for mention in mentions:
        fact = MentionFact.of(mention)
        known = latest.get(fact.mention_id)
        if known is None or fact.version >= known.version:
            latest[fact.mention_id] = fact
    return latest


def supersedes(new: MentionFact, stored: MentionFact | None) -> bool:
    """Whether `new` must replace the stored fact (first sight, or a later, different one)."""
    if stored is None:
        return True
    return new.version > stored.version and not new.same_contribution(stored)


def author_field(author: str) -> str:
    """A key as a MongoDB field name: `%` and `.` escaped, reversibly."""
    return author.replace("%", "%25").replace(".", "%2E")


#: A mention's entry in an hour: created_at (microseconds since the epoch), author, followers,
#: sentiment, platform, action, mention id, version (microseconds since the epoch).
Entry = tuple[int, str, int, str, str, str, str, int]
ENTRY_FIELDS = 8
Counts = dict[str, int]


def count_names(sentiment: str, platform: str, action: str) -> list[str]:
    """The counters a counted mention adds one to."""
    names = ["volume", f"s.{sentiment}", f"p.{platform}"]
    if action == "review":
        names.append("review")
    return names


def platform_mix(counts: Mapping[str, int]) -> dict[str, int]:
    """The mention volume by platform, from a window's counters (`p.<platform>`)."""
    return {
        name[2:]: count
        for name, count in sorted(counts.items())
        if name.startswith("p.") and count > 0
    }


def micros(moment: datetime) -> int:
    """A moment as integer microseconds since the epoch (exact, unlike a float)."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def from_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class DaySums:
    """A tracker's sums for one UTC day, by hour (`"00"`..`"23"`), each a multiset that can be
    taken back: the counters, and one entry per mention (`Entry` -> 1, or 0 once taken back).
    The authors' follower counts (for reach) are read from the entries.

    Plain dicts of JSON-ready values: a busy batch adds hundreds of these, so the write path
    builds no datetimes or Counters.
    """

    __slots__ = ("counts", "entries")

    def __init__(self) -> None:
        self.counts: dict[str, Counts] = {}
        self.entries: dict[str, dict[Entry, int]] = {}

    def add_fact(self, fact: MentionFact, sign: int) -> None:
        """Add (+1) or take back (-1) one mention in its hour. A hidden one adds its entry
        only (it counts in no KPI, but a later sighting must find it)."""
        hour = f"{fact.created_at.hour:02d}"
        if fact.counted:
            counts = self.counts.setdefault(hour, {})
            for name in count_names(fact.sentiment, fact.platform, fact.action):
                counts[name] = counts.get(name, 0) + sign
        _add_one(self.entries.setdefault(hour, {}), fact.entry(), sign)

    def hours(self) -> list[str]:
        return sorted(set(self.counts) | set(self.entries))

    def hour_counts(self, hour: str) -> Counts:
        return self.counts.get(hour, {})

    def hour_entries(self, hour: str) -> dict[Entry, int]:
        return self.entries.get(hour, {})

    def author_maxima(self, hour: str) -> dict[str, int]:
        """Each author's largest follower count among the hour's mentions counted now."""
        maxima: dict[str, int] = {}
        for (_, author, followers, _, _, action, *_rest), times in self.hour_entries(hour).items():
            if times > 0 and action != "hide" and followers >= maxima.get(author, 0):
                maxima[author] = followers
        return maxima

    def is_empty(self) -> bool:
        return not any(
            times
            for part in (self.counts, self.entries)
            for values in part.values()
            for times in values.values()
        )

    def document(self) -> dict[str, Any]:
        """Stored form, zeros left out (a sum that nets out stores nothing): `c` the counters
        by hour, `e.<hour>` the hour's entries as `[*entry, times]` items, and `t` the hours
        that take entries back (negative times), if any.

        Each part is a JSON string, not nested documents: a server decodes and re-encodes a
        document element by element, and SecantusDB does so in Python, so a rollup of a busy
        day is cheap to rewrite only when it has few elements.
        """
        counts = {hour: kept for hour, values in self.counts.items() if (kept := _kept(values))}
        entries = {
            hour: _json([[*entry, n] for entry, n in values.items() if n])
            for hour, values in self.entries.items()
            if any(values.values())
        }
        document: dict[str, Any] = {"c": _json(counts), "e": entries}
        taken_back = sorted(
            hour for hour, values in self.entries.items() if any(n < 0 for n in values.values())
        )
        if taken_back:
            document["t"] = taken_back
        return document

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> DaySums:
        """The sums of a stored document (a part a projection left out is empty). An entry
        may be listed more than once (`add_to_document` appends): its times are summed."""
        sums = cls()
        sums.counts = json.loads(doc.get("c") or "{}")
        for hour, packed in (doc.get("e") or {}).items():
            entries: dict[Entry, int] = {}
            for item in json.loads(packed):
                _add_one(entries, tuple(item[:ENTRY_FIELDS]), item[ENTRY_FIELDS])
            sums.entries[hour] = entries
        return sums


def stored_mentions(packed_hour: str) -> dict[str, Entry]:
    """The mentions an hour of a stored rollup holds now (`e.<hour>`), by mention id."""
    entries: dict[Entry, int] = {}
    for item in json.loads(packed_hour):
        _add_one(entries, tuple(item[:ENTRY_FIELDS]), item[ENTRY_FIELDS])
    return {entry[6]: entry for entry, times in entries.items() if times > 0}


def add_to_document(stored: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    """`stored` plus `change`, both in stored form (`DaySums.document`); `stored` may be empty.

    The counters are summed. An hour's entries are appended to its stored JSON list as the
    change has them encoded, neither parsed nor encoded again (a mention is added once, so
    appending is adding); an hour from which the change takes entries back (`t`) is read,
    summed and written anew, so it does not keep cancelled pairs. A busy day is thus
    rewritten in time proportional to its size, not to the work of parsing it."""
    counts: dict[str, Counts] = json.loads(stored.get("c") or "{}")
    for hour, values in json.loads(change.get("c") or "{}").items():
        mine = counts.setdefault(hour, {})
        for name, times in values.items():
            _add_one(mine, name, times)
    entries: dict[str, str] = dict(stored.get("e") or {})
    taken_back = set(change.get("t") or ())
    for hour, packed in (change.get("e") or {}).items():
        known = entries.get(hour)
        if hour not in taken_back:
            entries[hour] = packed if known is None else f"{known[:-1]},{packed[1:]}"
            continue
        merged = DaySums.from_document({"e": {hour: known or "[]"}}).hour_entries(hour)
        for item in json.loads(packed):
            _add_one(merged, tuple(item[:ENTRY_FIELDS]), item[ENTRY_FIELDS])
        remaining = [[*entry, n] for entry, n in merged.items() if n]
        if remaining:
            entries[hour] = _json(remaining)
        else:
            entries.pop(hour, None)
    kept_counts = {hour: kept for hour, values in counts.items() if (kept := _kept(values))}
    return {"c": _json(kept_counts), "e": entries}


def _add_one(values: dict[Any, int], key: Any, times: int) -> None:
    values[key] = values.get(key, 0) + times


def _kept(values: Counts) -> Counts:
    return {name: n for name, n in values.items() if n}


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


DayKey = tuple[str, datetime]  # (tracker id, UTC day start)


class BatchDeltas:
    """What a batch changes, per tracker and day: new facts added, replaced ones taken back."""

    def __init__(self) -> None:
        self.days: dict[DayKey, DaySums] = {}

    def add(self, fact: MentionFact, sign: int) -> None:
        day = floor_to(fact.created_at, "day")
        for tracker_id in fact.tracker_ids:
            self.days.setdefault((tracker_id, day), DaySums()).add_fact(fact, sign)

    def replace(self, old: MentionFact | None, new: MentionFact) -> None:
        if old is not None:
            self.add(old, -1)
        self.add(new, +1)

    def non_empty(self) -> dict[DayKey, DaySums]:
        """The days that change (a mention replaced by an equal one changes none)."""
        return {key: sums for key, sums in self.days.items() if not sums.is_empty()}


@functools.lru_cache(maxsize=4096)
def day_name(day: datetime) -> str:
    return day.strftime("%Y-%m-%d")
