"""The one path every mention takes, whatever its source: normalise, match, de-duplicate, emit.

API batches, webhooks, pollers and the bulk importer all call `Intake.submit`. It answers only
once Kafka acknowledged what it accepted; if Kafka fails, it releases its de-duplication claims
and raises, so the source retries and nothing is lost or held back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge

from services.ingest.domain.batch import IntakeResult, RejectedItem
from services.ingest.domain.matcher import Matcher, TrackerRule
from services.ingest.domain.normalise import MentionIn, normalise_text, to_mention
from services.ingest.storage import Claim, SeenStore, TrackerStore
from shared.events import Mention, MentionSource, mention_id_of, utc_now
from shared.kafka import EventPublisher
from shared.language import LanguageDetector
from shared.logging import get_logger
from shared.metrics import registry

log = get_logger(__name__)

MENTIONS_IN = Counter(
    "smm_ingest_mentions_total",
    "Mentions received by ingest, by source and outcome "
    "(accepted, duplicate, unmatched, rejected).",
    ["source", "outcome"],
    registry=registry,
)
TRACKERS_ACTIVE = Gauge(
    "smm_ingest_trackers", "Trackers compiled into the matcher.", registry=registry
)


class PublishFailedError(RuntimeError):
    """Kafka did not acknowledge in time: the caller must retry the batch."""


@dataclass
class TrackerRegistry:
    """The compiled matcher over all trackers, recompiled when the stored set changes."""

    store: TrackerStore
    matcher: Matcher = field(default_factory=lambda: Matcher.compile([]))
    groups: dict[str, str | None] = field(default_factory=dict)
    _revision: object = None
    #: One refresh at a time: a slower one that read the trackers earlier would otherwise
    #: install its older matcher last, and mentions of a new tracker would be dropped as
    #: unmatched until the next refresh.
    _refreshing: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def refresh(self, force: bool = False) -> bool:
        """Recompile if trackers changed since the last call; True when it did."""
        async with self._refreshing:
            return await self._refresh(force)

    async def _refresh(self, force: bool) -> bool:
        revision = await self.store.revision()
        if revision == self._revision and not force:
            return False
        documents = await self.store.all()
        rules = [
            TrackerRule(
                tracker_id=doc["_id"],
                query=doc["query"],
                languages=frozenset(doc.get("languages") or ()),
            )
            for doc in documents
        ]
        self.matcher = await asyncio.to_thread(Matcher.compile, rules)
        self.groups = {doc["_id"]: doc.get("group") for doc in documents}
        self._revision = revision
        TRACKERS_ACTIVE.set(len(rules))
        log.info("trackers compiled", trackers=len(rules))
        return True

    async def keep_fresh(self, interval: float = 2.0) -> None:
        """Background task: pick up trackers changed through another replica."""
        while True:
            await asyncio.sleep(interval)
            await self.refresh()


def _mention_key(mention: Mention) -> str:
    return mention.mention_id


class Intake:
    def __init__(
        self,
        trackers: TrackerRegistry,
        seen: SeenStore,
        publisher: EventPublisher,
        detector: LanguageDetector,
        publish_timeout: float,
    ) -> None:
        self.trackers = trackers
        self.seen = seen
        self.publisher = publisher
        self.detector = detector
        self.publish_timeout = publish_timeout
        self._confirming: set[asyncio.Task[None]] = set()

    def _confirm_later(self, claim: Claim) -> None:
        """Confirm the batch after answering: Kafka has it already, and a lost confirmation
        can only cost a duplicate (the batch is released as abandoned), never a mention."""
        task = asyncio.create_task(self._confirm(claim))
        self._confirming.add(task)
        task.add_done_callback(self._confirming.discard)

    async def _confirm(self, claim: Claim) -> None:
        try:
            await self.seen.confirm(claim)
        except Exception as exc:  # logged, and harmless beyond a possible later duplicate
            log.warning("confirming a batch failed", error=repr(exc), batch_id=claim.batch_id)

    async def drain(self) -> None:
        """At shutdown: wait for the confirmations still being written."""
        if self._confirming:
            await asyncio.gather(*self._confirming, return_exceptions=True)

    async def submit(
        self,
        items: Sequence[MentionIn],
        source: MentionSource,
        rejected: Sequence[RejectedItem] = (),
    ) -> IntakeResult:
        """Emit the new, matched mentions of `items`; count the rest.

        Raises PublishFailedError when Kafka does not acknowledge: the batch's claims are
        then released, so the retried batch is emitted in full.
        """
        now = utc_now()
        result = IntakeResult(rejected=list(rejected))
        candidates: dict[str, Mention] = {}
        matcher = self.trackers.matcher
        for item in items:
            mention_id = mention_id_of(item.platform, item.native_id)
            if mention_id in candidates:
                result.duplicates += 1
                continue
            text = normalise_text(item.text)
            lang = item.lang or self.detector.detect(text)
            tracker_ids = matcher.match(text, lang)
            if not tracker_ids:
                result.unmatched += 1
                continue
            candidates[mention_id] = to_mention(
                item, source=source, ingested_at=now, tracker_ids=tracker_ids, text=text, lang=lang
            )
        claim = await self.seen.claim(list(candidates))
        result.duplicates += len(candidates) - len(claim.owned)
        fresh = [mention for mention_id, mention in candidates.items() if mention_id in claim.owned]
        try:
            await asyncio.wait_for(
                self.publisher.publish_many(fresh, key=_mention_key),
                timeout=self.publish_timeout,
            )
        except Exception as exc:  # any failure to get acks: give the claims back and refuse
            await self.seen.release(claim)
            log.error("publishing mentions failed", error=repr(exc), count=len(fresh))
            raise PublishFailedError("Kafka did not acknowledge the mentions") from exc
        if claim.owned:
            self._confirm_later(claim)
        result.accepted = len(fresh)
        result.mention_ids = [m.mention_id for m in fresh]
        for outcome, count in (
            ("accepted", result.accepted),
            ("duplicate", result.duplicates),
            ("unmatched", result.unmatched),
            ("rejected", len(result.rejected)),
        ):
            if count:
                MENTIONS_IN.labels(source, outcome).inc(count)
        return result
