"""What one classified mention contributes to the aggregates, and batch deltas of it.

A mention is stored once as a *fact*. The hour and day buckets hold the sum of the facts'
contributions, so when a mention arrives again the bucket changes by (new - old) contribution:
nothing for a redelivery, a move between buckets for a reclassification, and a removal when the
automatic routing now hides it as spam. The deltas of a whole batch are summed in memory first,
so the database sees one increment per bucket and batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.metrics.domain.windows import Unit, bucket_starts
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

    def document(self) -> dict[str, Any]:
        """The stored fact (short field names: there is one per mention)."""
        return {
            "t": list(self.tracker_ids),
            "at": self.created_at,
            "p": self.platform,
            "a": self.author,
            "f": self.followers,
            "s": self.sentiment,
            "act": self.action,
            "c": self.counted,
            "v": self.version,
        }

    @classmethod
    def from_document(cls, mention_id: str, doc: Mapping[str, Any]) -> MentionFact | None:
        """The stored fact, or None when only a reply was recorded for the mention so far."""
        if "v" not in doc:
            return None
        return cls(
            mention_id=mention_id,
            tracker_ids=tuple(doc["t"]),
            created_at=doc["at"],
            platform=doc["p"],
            author=doc["a"],
            followers=doc["f"],
            sentiment=doc["s"],
            action=doc["act"],
            version=doc["v"],
        )

    def entry(self) -> list[Any]:
        """What an hour bucket keeps of each counted mention, for sub-hour windows and for
        recomputing author maps: created_at, author, followers, sentiment, platform, action."""
        return [
            self.created_at,
            self.author,
            self.followers,
            self.sentiment,
            self.platform,
            self.action,
        ]

    def same_contribution(self, other: MentionFact) -> bool:
        return self.document() | {"v": None} == other.document() | {"v": None}


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


BucketKey = tuple[str, Unit, datetime]


def author_field(author: str) -> str:
    """An author key as a MongoDB field name: `%` and `.` escaped, reversibly (exact reach)."""
    return author.replace("%", "%25").replace(".", "%2E")


def entry_field(mention_id: str) -> str:
    """Where an hour bucket keeps a mention's entry: `m.<mention id, escaped>`."""
    return f"m.{author_field(mention_id)}"


class BucketDeltas:
    """Per (tracker, unit, bucket start): field -> increment, and each author's largest
    follower count (kept in the bucket as `r.<author>`, so reach needs no per-author documents).
    Hour buckets also keep one entry per counted mention (`m.<mention>`, set or unset).

    `$max` cannot be taken back: a bucket that loses a mention (reclassified, hidden, moved)
    is listed in `rebuild_authors`, and its author map is recomputed from the facts.
    """

    def __init__(self) -> None:
        self.by_bucket: defaultdict[BucketKey, defaultdict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        self.authors: defaultdict[BucketKey, dict[str, int]] = defaultdict(dict)
        self.rebuild_authors: set[BucketKey] = set()
        self.entries: defaultdict[BucketKey, dict[str, list[Any]]] = defaultdict(dict)
        self.removed: defaultdict[BucketKey, set[str]] = defaultdict(set)

    def add(self, fact: MentionFact, sign: int) -> None:
        if not fact.counted:
            return
        fields = ["volume", f"s.{fact.sentiment}", f"p.{fact.platform}"]
        if fact.action == "review":
            fields.append("review")
        author = author_field(fact.author)
        entry = entry_field(fact.mention_id)
        for unit, start in bucket_starts(fact.created_at).items():
            for tracker_id in fact.tracker_ids:
                key = (tracker_id, unit, start)
                counts = self.by_bucket[key]
                for name in fields:
                    counts[name] += sign
                if unit == "hour" and sign > 0:
                    self.entries[key][entry] = fact.entry()
                    self.removed[key].discard(entry)
                elif unit == "hour":
                    self.removed[key].add(entry)
                if sign < 0:
                    self.rebuild_authors.add(key)
                else:
                    maxima = self.authors[key]
                    maxima[author] = max(maxima.get(author, 0), fact.followers)

    def replace(self, old: MentionFact | None, new: MentionFact) -> None:
        if old is not None:
            self.add(old, -1)
        self.add(new, +1)

    def non_zero(self) -> dict[BucketKey, dict[str, int]]:
        """Buckets whose counts change, with only the fields that change."""
        changes: dict[BucketKey, dict[str, int]] = {}
        for key, counts in self.by_bucket.items():
            moved = {name: value for name, value in counts.items() if value != 0}
            if moved:
                changes[key] = moved
        return changes

    def author_maxima(self, key: BucketKey) -> dict[str, int]:
        """`r.<author>` -> followers for `$max`, unless the bucket's map is rebuilt anyway."""
        if key in self.rebuild_authors:
            return {}
        return {f"r.{author}": followers for author, followers in self.authors[key].items()}


def bucket_id(tracker_id: str, unit: Unit, start: datetime) -> str:
    """A day bucket document's `_id`: readable, unique per tracker, unit and start."""
    return f"{tracker_id}|{unit}|{start.strftime('%Y-%m-%dT%H')}"


def hour_id(start: datetime) -> str:
    """The `_id` of the hour document that holds every tracker's part of that hour."""
    return f"*|hour|{start.strftime('%Y-%m-%dT%H')}"


def tracker_field(tracker_id: str) -> str:
    """Where an hour document keeps a tracker's part: `t.<tracker id, escaped>`."""
    return f"t.{author_field(tracker_id)}"


def field_key(field: str) -> str:
    """The key that `author_field` escaped, back."""
    return field.replace("%2E", ".").replace("%25", "%")
