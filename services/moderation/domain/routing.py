"""From a classified mention to everything moderation says about it.

`moderate` applies each matched tracker's rules, merges their routes, and builds the events:
the ClassifiedMention, the automatic ModerationDecision (actor `auto`) when no person needs to
look, and one urgent Alert per tracker whose rules made the mention urgent.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from services.moderation.domain.rules import (
    DEFAULT_PATTERN_BUDGET_SECONDS,
    CompiledRules,
    PatternBudget,
    Route,
    merge_routes,
)
from shared.events import Alert, Classification, ClassifiedMention, Mention, ModerationDecision

AUTO_ACTOR = "auto"
#: Alerts need a tracker; a mention that matched none (sent by another system) uses this.
UNASSIGNED_TRACKER = "unassigned"
#: Label of a mention whose text the classifiers could not classify (it goes to review).
CLASSIFICATION_FAILED = "classification_failed"


def _max_length(model: type[ModerationDecision] | type[Alert], name: str) -> int:
    """A text field's limit as the event model declares it (one source of truth)."""
    limits = [getattr(m, "max_length", None) for m in model.model_fields[name].metadata]
    return min(int(limit) for limit in limits if limit is not None)


#: The decision's `reason` must fit its field, or the event fails validation and the whole
#: partition stalls on that mention.
REASON_LIMIT = _max_length(ModerationDecision, "reason")
ALERT_MESSAGE_LIMIT = _max_length(Alert, "message")


def fit_reasons(reasons: Sequence[str], limit: int = REASON_LIMIT, prefix: str = "") -> str:
    """`prefix` and the reasons joined by "; ", cut at a whole reason to fit `limit`.

    What is left out is counted ("; and 12 more"), so a reader knows the list goes on.
    """
    for kept in range(len(reasons), -1, -1):
        left = len(reasons) - kept
        text = prefix + "; ".join(reasons[:kept])
        if left:
            text += ("; " if kept else "") + f"and {left} more"
        if len(text) <= limit:
            return text
    return (prefix + "; ".join(reasons))[:limit]  # not even the count fits: the start of it


@dataclass(frozen=True)
class Outcome:
    """The events and routing of one mention, as stored and published."""

    classified: ClassifiedMention
    route: Route
    decision: ModerationDecision | None
    alerts: tuple[Alert, ...]

    @property
    def mention_id(self) -> str:
        return self.classified.mention_id

    @cached_property
    def classified_bytes(self) -> bytes:
        """The ClassifiedMention as written to Kafka and stored: encoded once for both."""
        return self.classified.to_bytes()

    @cached_property
    def decision_bytes(self) -> bytes | None:
        return self.decision.to_bytes() if self.decision is not None else None


def unclassified(language: str | None, model_version: str) -> Classification:
    """The stand-in for a text the classifiers failed on: neutral, flagged, sent to a person."""
    return Classification(
        language=language,
        sentiment="neutral",
        sentiment_score=0.0,
        toxicity=0.0,
        spam=0.0,
        intent="other",
        labels=[CLASSIFICATION_FAILED],
        model_version=model_version,
    )


def moderate(
    mention: Mention,
    classification: Classification,
    rules: Sequence[tuple[str, CompiledRules]],
    now: datetime,
    pattern_budget_seconds: float = DEFAULT_PATTERN_BUDGET_SECONDS,
) -> Outcome:
    """Route one mention under the rules of its trackers (tracker id, compiled rules).

    A mention the classifiers failed on goes to review: nothing is decided on a guess. The
    trackers' patterns share one time budget, however many trackers matched.
    """
    budget = PatternBudget(pattern_budget_seconds)
    per_tracker = [
        (tracker_id, compiled.route(mention, classification, budget))
        for tracker_id, compiled in rules
    ]
    if CLASSIFICATION_FAILED in classification.labels:
        failed = Route("review", "normal", ("classification failed",), (CLASSIFICATION_FAILED,))
        per_tracker = [(tracker_id, failed) for tracker_id, _ in per_tracker]
    route = merge_routes([r for _, r in per_tracker])
    labels = list(dict.fromkeys([*classification.labels, *route.labels]))
    classified = _classified(
        mention, classification.model_copy(update={"labels": labels}), route, now
    )
    decision = None
    if route.action != "review":
        decision = ModerationDecision(
            mention_id=mention.mention_id,
            action=route.action,
            actor=AUTO_ACTOR,
            reason=fit_reasons(route.reasons) or "no rule asks for review",
            decided_at=now,
            tracker_ids=mention.tracker_ids,
            occurred_at=now,
        )
    alerts = tuple(
        _urgent_alert(mention, tracker_id, tracker_route, now)
        for tracker_id, tracker_route in per_tracker
        if tracker_route.urgent
    )
    return Outcome(classified, route, decision, alerts)


_MENTION_FIELDS = tuple(
    name for name in Mention.model_fields if name not in ("event_id", "occurred_at")
)


def _classified(
    mention: Mention, classification: Classification, route: Route, now: datetime
) -> ClassifiedMention:
    """The ClassifiedMention of an already validated mention, without validating it again.

    Validation costs about a third of the routing time on the hot path and would only
    re-check what `Mention` checked; the one rule of its own is checked explicitly.
    """
    fields = {name: getattr(mention, name) for name in _MENTION_FIELDS}
    classified = ClassifiedMention.model_construct(
        **fields,
        event_id=uuid.uuid4(),
        occurred_at=now,
        classification=classification,
        action=route.action,
        priority=route.priority,
    )
    if route.action == "hide" and (
        classification.sentiment == "negative" or "toxic" in classification.labels
    ):  # the model's own rule, which model_construct does not run
        raise ValueError("negative or toxic mentions go to review, never hidden automatically")
    return classified


def _urgent_alert(mention: Mention, tracker_id: str, route: Route, now: datetime) -> Alert:
    who = mention.author.handle or mention.author.display_name or mention.author.id
    prefix = f"Urgent mention by {who} on {mention.platform}: "[: ALERT_MESSAGE_LIMIT // 2]
    return Alert(
        tracker_id=tracker_id,
        kind="urgent_mention",
        severity="critical",
        message=fit_reasons(route.reasons, ALERT_MESSAGE_LIMIT, prefix),
        mention_id=mention.mention_id,
        observed=float(mention.author.followers or 0),
        details={
            "reasons": list(route.reasons),
            "url": mention.url,
            "author": who,
            "followers": mention.author.followers,
            "priority": route.priority,
        },
        occurred_at=now,
    )
