"""The path every mention takes through moderation: classify, route, store, publish.

The consumer hands whole batches to `Moderator.process`: one classifier call per batch, rules
compiled once per tracker, three bulk writes to MongoDB, and one wait for Kafka's
acknowledgements of everything the batch produced. It is idempotent: a redelivered mention
republishes what was stored for it the first time (same event ids) and creates nothing new.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from services.moderation.domain.classifiers import ClassifierSuite, TextItem
from services.moderation.domain.routing import (
    UNASSIGNED_TRACKER,
    Outcome,
    moderate,
    unclassified,
)
from services.moderation.domain.rules import (
    DEFAULT_PATTERN_BUDGET_SECONDS,
    DEFAULT_RULES,
    CompiledRules,
    TrackerRules,
    stored_rules,
)
from services.moderation.storage import MentionStore, ReviewStore, RulesStore
from shared.events import (
    Alert,
    Classification,
    Mention,
    utc_now,
)
from shared.kafka import EventPublisher
from shared.logging import bound_ids, get_logger
from shared.metrics import registry

log = get_logger(__name__)

CLASSIFIED = Counter(
    "smm_moderation_mentions_total",
    "Mentions classified and routed, by automatic action and priority.",
    ["action", "priority"],
    registry=registry,
)
CLASSIFY_SECONDS = Histogram(
    "smm_moderation_classify_batch_seconds",
    "Time the classifiers took for one consumed batch.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=registry,
)
CLASSIFY_PER_MENTION = Histogram(
    "smm_moderation_classify_seconds_per_mention",
    "Classifier time per mention (batch time divided by batch size).",
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05),
    registry=registry,
)
ALERTS = Counter(
    "smm_moderation_urgent_alerts_total", "Urgent-mention alerts emitted.", registry=registry
)
QUEUE_DEPTH = Gauge(
    "smm_moderation_review_queue",
    "Review items waiting for a person (open or escalated), by priority.",
    ["priority"],
    registry=registry,
)
RULE_SETS = Gauge(
    "smm_moderation_rule_sets", "Trackers with their own stored rules.", registry=registry
)


def _stored_rules(tracker_id: str, stored: dict[str, Any]) -> TrackerRules | None:
    """Rules as stored; a pattern this engine refuses is skipped (with a warning) rather than
    the whole set, so block lists and thresholds still apply."""
    try:
        rules, skipped = stored_rules(stored)
    except ValueError:  # stored by an older version with other limits: keep defaults
        log.exception("stored rules invalid; using defaults", tracker_id=tracker_id)
        return None
    if skipped:
        log.warning(
            "stored patterns refused (RE2, program cap) are skipped",
            tracker_id=tracker_id,
            skipped=skipped,
        )
    return rules


@dataclass
class RulesRegistry:
    """Every tracker's compiled rules, recompiled when the stored set changes."""

    store: RulesStore
    default: CompiledRules = field(default_factory=lambda: CompiledRules(DEFAULT_RULES))
    compiled: dict[str, CompiledRules] = field(default_factory=dict)
    _revision: object = None
    #: One refresh at a time: a slower one that read the rules before a change would
    #: otherwise install the older rules last, until the next refresh.
    _refreshing: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def refresh(self, force: bool = False) -> bool:
        """Recompile if rules changed since the last call; True when it did."""
        async with self._refreshing:
            return await self._refresh(force)

    async def _refresh(self, force: bool) -> bool:
        revision = await self.store.revision()
        if revision == self._revision and not force:
            return False
        compiled: dict[str, CompiledRules] = {}
        for document in await self.store.all():
            rules = _stored_rules(document["_id"], document["rules"])
            if rules is not None:
                compiled[document["_id"]] = CompiledRules(rules)
        self.compiled = compiled
        self._revision = revision
        RULE_SETS.set(len(compiled))
        return True

    async def keep_fresh(self, interval: float) -> None:
        """Background task: pick up rules changed through another replica."""
        while True:
            await asyncio.sleep(interval)
            await self.refresh()

    def for_trackers(self, tracker_ids: Sequence[str]) -> list[tuple[str, CompiledRules]]:
        if not tracker_ids:
            return [(UNASSIGNED_TRACKER, self.default)]
        return [(t, self.compiled.get(t, self.default)) for t in tracker_ids]


@dataclass(frozen=True)
class ModerationPublishers:
    classified: EventPublisher
    decisions: EventPublisher
    alerts: EventPublisher
    commands: EventPublisher
    #: The inbox's corrections (None where nothing corrects, e.g. a consumer-only test).
    corrections: EventPublisher | None = None


def _key_alert(event: Alert) -> str:
    return event.tracker_id


@dataclass
class Moderator:
    suite: ClassifierSuite
    rules: RulesRegistry
    store: MentionStore
    out: ModerationPublishers
    #: Mentions per chunk of a batch (classified, stored and published together).
    chunk_size: int = 250
    #: Time all patterns together may take on one mention.
    pattern_budget_seconds: float = DEFAULT_PATTERN_BUDGET_SECONDS
    #: Where classifying and routing run: off the event loop, so health checks, the API and
    #: the database writes of the previous chunk go on meanwhile (None: asyncio's default).
    executor: Executor | None = None

    async def process(self, mentions: Sequence[Mention]) -> list[Outcome]:
        """Moderate a batch; return once everything it produced is acknowledged by Kafka.

        The batch is worked in chunks so that the database writes one chunk while this
        process classifies and routes the next; each chunk is published once it is stored.
        """
        first: dict[str, Mention] = {}
        for m in mentions:  # a mention twice in one batch is moderated once
            first.setdefault(m.mention_id, m)
        unique = list(first.values())
        if not unique:
            return []
        stored: list[Outcome] = []
        publishing: list[asyncio.Task[None]] = []
        writing: asyncio.Task[list[Outcome]] | None = None
        loop = asyncio.get_running_loop()
        try:
            for start in range(0, len(unique), self.chunk_size):
                chunk = unique[start : start + self.chunk_size]
                outcomes = await loop.run_in_executor(self.executor, self._route, chunk)
                if writing is not None:
                    stored += await self._published(await writing, publishing)
                writing = asyncio.create_task(self.store.record(outcomes))
            if writing is not None:
                stored += await self._published(await writing, publishing)
            await asyncio.gather(*publishing)
        finally:  # a failure anywhere fails the batch (retried); leave no task behind
            for task in [*publishing, *([writing] if writing else [])]:
                task.cancel()
        for outcome in stored:
            CLASSIFIED.labels(outcome.route.action, outcome.route.priority).inc()
            ALERTS.inc(len(outcome.alerts))
            if outcome.alerts:
                with bound_ids(mention_id=outcome.mention_id):
                    log.warning("urgent mention", reasons=list(outcome.route.reasons))
        log.info(
            "mentions moderated",
            received=len(mentions),
            review=sum(o.route.action == "review" for o in stored),
            hidden=sum(o.route.action == "hide" for o in stored),
            alerts=sum(len(o.alerts) for o in stored),
        )
        return stored

    def _route(self, mentions: Sequence[Mention]) -> list[Outcome]:
        started = time.perf_counter()
        classifications = self._classify([TextItem(m.text, m.lang) for m in mentions])
        elapsed = time.perf_counter() - started
        CLASSIFY_SECONDS.observe(elapsed)
        CLASSIFY_PER_MENTION.observe(elapsed / len(mentions))
        now = utc_now()
        budget = self.pattern_budget_seconds
        return [
            moderate(m, c, self.rules.for_trackers(m.tracker_ids), now, budget)
            for m, c in zip(mentions, classifications, strict=True)
        ]

    async def _published(
        self, stored: list[Outcome], publishing: list[asyncio.Task[None]]
    ) -> list[Outcome]:
        """Start publishing what was stored (acknowledgements are awaited at the batch end)."""
        publishing += [
            asyncio.create_task(
                self.out.classified.publish_encoded(
                    [(o.mention_id, o.classified_bytes) for o in stored]
                )
            ),
            asyncio.create_task(
                self.out.decisions.publish_encoded(
                    [(o.mention_id, o.decision_bytes) for o in stored if o.decision_bytes]
                )
            ),
            asyncio.create_task(
                self.out.alerts.publish_many([a for o in stored for a in o.alerts], _key_alert)
            ),
        ]
        return stored

    def _classify(self, items: list[TextItem]) -> list[Classification]:
        """Classify a batch; if that fails, item by item, so one bad text cannot block the
        partition: a text that still fails is marked and sent to review."""
        try:
            return self.suite.classify(items)
        except Exception:
            log.exception("batch classification failed; classifying one by one")
        results: list[Classification] = []
        for item in items:
            try:
                results.extend(self.suite.classify([item]))
            except Exception:
                log.exception("classification failed; the mention goes to review")
                results.append(unclassified(item.lang, self.suite.model_version))
        return results


async def track_queue_depth(review: ReviewStore, interval: float = 15.0) -> None:
    """Background task: keep the queue-depth gauge current for dashboards and alerts."""
    while True:
        for priority, count in (await review.depth()).items():
            QUEUE_DEPTH.labels(priority).set(count)
        await asyncio.sleep(interval)
