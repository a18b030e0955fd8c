"""The review inbox as a service: claim with a lease, decide, reply, and keep the audit trail.

The API validates and authorises, then calls `Inbox`. Every state change is one atomic
find-and-modify on the review item, so two reviewers never both win a claim and only the lease
holder can decide. A decision is stored first (with its events), then published; a retried
request, or the outbox sweep for a request that died in between, publishes the stored events
again with the same ids and the same reply post id, so nothing is posted twice.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter

from services.moderation.domain.replies import (
    TemplateError,
    render,
    safe_author,
    safe_handle,
    unfilled,
)
from services.moderation.domain.review import (
    CORRECTABLE,
    CorrectionRequest,
    DecisionRequest,
    changes_nothing,
    corrected_values,
    lease_active,
    reply_post_id,
)
from services.moderation.domain.rules import priority_max
from services.moderation.pipeline import ModerationPublishers, RulesRegistry
from services.moderation.storage import (
    AuditLog,
    CannedReplyStore,
    DecisionOutbox,
    MentionStore,
    ReviewStore,
)
from shared.events import Correction, ModerationDecision, ScheduleCommand, utc_now
from shared.logging import bound_ids, get_logger
from shared.metrics import registry

log = get_logger(__name__)

DECISIONS = Counter(
    "smm_moderation_decisions_total",
    "Decisions taken in the review inbox, by action.",
    ["action"],
    registry=registry,
)
CORRECTIONS = Counter(
    "smm_moderation_corrections_total",
    "Classifications corrected by reviewers in the inbox.",
    registry=registry,
)


class InboxError(Exception):
    """A request the inbox refuses; the API turns it into the contract's error body."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


@dataclass
class Inbox:
    review: ReviewStore
    mentions: MentionStore
    audit: AuditLog
    outbox: DecisionOutbox
    canned: CannedReplyStore
    rules: RulesRegistry
    out: ModerationPublishers
    lease: timedelta
    publish_timeout: float = 10.0

    async def claim(self, mention_id: str, actor: str) -> dict[str, Any]:
        now = utc_now()
        item = await self.review.claim(mention_id, actor, now, self.lease)
        if item is None:
            raise await self._refusal(mention_id, actor, now)
        await self.audit.append(
            mention_id, actor, "claim", details={"lease_until": item["lease_until"].isoformat()}
        )
        return item

    async def release(self, mention_id: str, actor: str) -> dict[str, Any]:
        now = utc_now()
        item = await self.review.release(mention_id, actor, now)
        if item is None:
            raise await self._refusal(mention_id, actor, now, releasing=True)
        await self.audit.append(mention_id, actor, "release")
        return item

    async def decide(
        self,
        mention_id: str,
        actor: str,
        request: DecisionRequest,
        brands: frozenset[str] | None = None,
    ) -> dict[str, Any]:
        """Apply a decision; `brands` (a console user's trackers, None for all) bounds which
        trackers' reply channels, canned replies and brand name a reply may use."""
        now = utc_now()
        current = await self.review.get(mention_id)
        if current is None:
            raise InboxError(404, "not_found", f"no review item for mention '{mention_id}'")
        retried = self._same_decision(current, actor, request)
        if retried is not None:  # a retried request: publish again, change nothing
            await self._publish_or_503(mention_id, retried)
            return current
        holds_lease = current.get("lease_owner") == actor and lease_active(
            current.get("lease_until"), now
        )
        if current["status"] == "done" or not holds_lease:
            raise await self._refusal(mention_id, actor, now)
        command = (
            await self._reply_command(mention_id, actor, request, now, brands)
            if request.reply
            else None
        )
        event = ModerationDecision(
            mention_id=mention_id,
            action=request.action,
            actor=actor,
            reason=request.reason,
            reply_post_id=command.post_id if command else None,
            decided_at=now,
            tracker_ids=current.get("tracker_ids", []),
            occurred_at=now,
        )
        decision = {
            "action": request.action,
            "actor": actor,
            "reason": request.reason,
            "reply_post_id": event.reply_post_id,
            "decided_at": now,
            "event": event.model_dump(mode="json"),
            "command": command.model_dump(mode="json") if command else None,
        }
        escalate_to = (
            priority_max(current["priority"], "high") if request.action == "escalate" else None
        )
        event_id = str(event.event_id)
        await self.outbox.add(event_id, mention_id, decision)
        item = await self.review.decide(mention_id, actor, now, decision, escalate_to)
        if item is None:
            await self.outbox.remove(event_id)
            latest = await self.review.get(mention_id)
            if latest is not None and self._same_decision(latest, actor, request) is not None:
                return latest  # the same request twice at once (a double click): one applied
            raise await self._refusal(mention_id, actor, now)
        with bound_ids(mention_id=mention_id, post_id=event.reply_post_id):
            await self.audit.append(
                mention_id,
                actor,
                request.action,
                request.reason,
                details={
                    "reply_post_id": event.reply_post_id,
                    "text": command.text if command else None,
                },
                entry_id=f"{mention_id}:{event.event_id}",
                at=now,
            )
            DECISIONS.labels(request.action).inc()
            log.info("review decision", action=request.action, actor=actor)
            await self._publish_or_503(mention_id, decision)
        return item

    async def republish_stale(self, older_than: timedelta = timedelta(seconds=30)) -> int:
        """Publish decisions whose request died between storing and publishing (outbox).

        An outbox entry whose decision never reached the review item (the lease was lost in
        between) is dropped: that decision did not happen.
        """
        entries = await self.outbox.older_than(utc_now() - older_than)
        published = 0
        for entry in entries:
            item = await self.review.get(entry["mention_id"])
            applied = (item or {}).get("decision") or {}
            if applied.get("event", {}).get("event_id") == entry["_id"]:
                await self._publish(entry["mention_id"], entry["decision"])
                published += 1
            else:
                await self.outbox.remove(entry["_id"])
        return published

    async def sweep_outbox(self, interval: float = 15.0) -> None:
        """Background task around `republish_stale`."""
        while True:
            republished = await self.republish_stale()
            if republished:
                log.warning("decisions republished by the outbox sweep", count=republished)
            await asyncio.sleep(interval)

    # --- internals -----------------------------------------------------------------------

    @staticmethod
    def _same_decision(
        current: dict[str, Any], actor: str, request: DecisionRequest
    ) -> dict[str, Any] | None:
        decision = current.get("decision")
        if (
            decision is not None
            and current["status"] in ("done", "escalated")
            and decision["actor"] == actor
            and decision["action"] == request.action
            and decision["reason"] == request.reason
            and not lease_active(current.get("lease_until"), utc_now())
        ):
            return dict(decision)
        return None

    async def _publish_or_503(self, mention_id: str, decision: dict[str, Any]) -> None:
        """Publish a stored decision; 503 when Kafka does not acknowledge in time.

        The decision stays stored, and in the outbox: a retry or the outbox sweep publishes it.
        """
        try:
            await asyncio.wait_for(self._publish(mention_id, decision), self.publish_timeout)
        except Exception as exc:
            log.exception("decision stored but not yet published", mention_id=mention_id)
            raise InboxError(
                503,
                "broker_unavailable",
                "the decision is stored; Kafka did not acknowledge it yet, retry the request",
            ) from exc

    async def _publish(self, mention_id: str, decision: dict[str, Any]) -> None:
        event = ModerationDecision.model_validate(decision["event"])
        if decision.get("command"):
            command = ScheduleCommand.model_validate(decision["command"])
            await self.out.commands.publish(command, command.post_id)
        await self.out.decisions.publish(event, mention_id)
        await self.outbox.remove(str(event.event_id))

    async def _reply_command(
        self,
        mention_id: str,
        actor: str,
        request: DecisionRequest,
        now: datetime,
        brands: frozenset[str] | None,
    ) -> ScheduleCommand:
        reply = request.reply
        assert reply is not None
        document = await self.mentions.get(mention_id)
        if document is None:
            raise InboxError(404, "not_found", f"no mention '{mention_id}'")
        mention = document["classified"]
        tracker_ids = _within(mention.get("tracker_ids") or [], brands)
        rules = [compiled.rules for _, compiled in self.rules.for_trackers(tracker_ids)]
        if reply.channel_id is not None and brands is not None:
            allowed = {channel for r in rules for channel in r.reply_channels.values()}
            if reply.channel_id not in allowed:  # another brand's account answers nobody here
                raise InboxError(
                    404, "not_found", f"no reply channel '{reply.channel_id}' of your brands"
                )
        channel_id = reply.channel_id or next(
            (
                r.reply_channels[mention["platform"]]
                for r in rules
                if mention["platform"] in r.reply_channels
            ),
            None,
        )
        if channel_id is None:
            raise InboxError(
                422,
                "no_reply_channel",
                "give reply.channel_id: the tracker rules name no reply channel for "
                f"'{mention['platform']}'",
            )
        text = reply.text
        if reply.canned_reply_id is not None:
            canned = await self.canned.get(reply.canned_reply_id)
            if canned is None or not _usable(canned, brands):
                raise InboxError(
                    422, "unknown_canned_reply", f"no canned reply '{reply.canned_reply_id}'"
                )
            values = self.reply_values(mention, actor, brands)
            text, missing = self._render(canned["text"], values)
            if missing:
                raise InboxError(
                    422,
                    "unfilled_placeholder",
                    "this mention leaves " + ", ".join(f"{{{m}}}" for m in missing) + " of the "
                    "canned reply empty: send the text written out instead",
                    {"missing": missing},
                )
        if not text:
            raise InboxError(422, "empty_reply", "the reply renders to an empty text")
        post_id = reply_post_id(mention_id)
        return ScheduleCommand(
            post_id=post_id,
            channel_id=channel_id,
            text=text,
            publish_at=now,
            in_reply_to_mention_id=mention_id,
            requires_approval=reply.requires_approval,
            idempotency_key=post_id,
            actor=actor,
            occurred_at=now,
        )

    def reply_values(
        self, mention: dict[str, Any], actor: str, brands: frozenset[str] | None = None
    ) -> dict[str, str]:
        """What a canned reply's placeholders stand for in an answer to `mention` (the
        classified event as stored) written by `actor` for `brands` (None: any of the
        mention's trackers); "" where there is nothing safe."""
        tracker_ids = _within(mention.get("tracker_ids") or [], brands)
        rules = [compiled.rules for _, compiled in self.rules.for_trackers(tracker_ids)]
        author = mention.get("author") or {}
        brand = next((r.brand for r in rules if r.brand), None) or (
            tracker_ids[0] if tracker_ids else ""
        )
        return {
            "author": safe_author(author.get("display_name"), author.get("handle")),
            "handle": safe_handle(author.get("handle")),
            "brand": brand,
            "platform": mention.get("platform") or "",
            "reviewer": actor,
        }

    @staticmethod
    def _render(template: str, values: dict[str, str]) -> tuple[str, list[str]]:
        try:
            return render(template, values), unfilled(template, values)
        except TemplateError as exc:
            raise InboxError(422, "invalid_template", str(exc)) from exc

    async def render_canned(
        self,
        reply_id: str,
        mention_id: str,
        actor: str,
        brands: frozenset[str] | None = None,
    ) -> tuple[str, list[str]]:
        """A canned reply as it would answer a mention, and the placeholders left empty."""
        canned = await self.canned.get(reply_id)
        if canned is None or not _usable(canned, brands):
            raise InboxError(404, "not_found", f"no canned reply '{reply_id}'")
        document = await self.mentions.get(mention_id)
        if document is None:
            raise InboxError(404, "not_found", f"no mention '{mention_id}'")
        values = self.reply_values(document["classified"], actor, brands)
        return self._render(canned["text"], values)

    async def correct(
        self, mention_id: str, actor: str, request: CorrectionRequest
    ) -> dict[str, Any]:
        """Store a reviewer's correction on the review item, audit it, publish `Correction`.

        The same correction again changes nothing and publishes nothing new; if its event was
        not acknowledged the first time, the stored event (same id) is published again.
        """
        now = utc_now()
        current = await self.review.get(mention_id)
        document = await self.mentions.get(mention_id)
        if current is None or document is None:
            raise InboxError(404, "not_found", f"no review item for mention '{mention_id}'")
        earlier = current.get("correction")
        values = corrected_values(earlier, request)
        if earlier is not None and changes_nothing(earlier, values):
            if not earlier.get("published"):
                await self._publish_correction(mention_id, earlier)
            return current
        classification = document["classified"]["classification"]
        event = Correction(
            mention_id=mention_id,
            tracker_ids=current.get("tracker_ids", []),
            actor=actor,
            sentiment=values["sentiment"],
            labels=values["labels"],
            intent=values["intent"],
            note=values["note"],
            original_sentiment=classification["sentiment"],
            original_labels=classification.get("labels", []),
            original_intent=classification["intent"],
            model_version=classification["model_version"],
            corrected_at=now,
            occurred_at=now,
        )
        original = {name: classification.get(name) for name in CORRECTABLE}
        correction = {
            **values,
            "actor": actor,
            "corrected_at": now,
            "original": original,
            "model_version": event.model_version,
            "event": event.model_dump(mode="json"),
            "published": False,
        }
        item = await self.review.correct(mention_id, actor, now, correction)
        if item is None:
            raise await self._refusal(mention_id, actor, now, correcting=True)
        changed = {name: values[name] for name in CORRECTABLE if values[name] is not None}
        await self.audit.append(
            mention_id,
            actor,
            "correct",
            values["note"] or "",
            details={
                "corrected": changed,
                "original": original,
                "model_version": event.model_version,
            },
            entry_id=f"{mention_id}:{event.event_id}",
            at=now,
        )
        CORRECTIONS.inc()
        await self._publish_correction(mention_id, correction)
        return item

    async def _publish_correction(self, mention_id: str, correction: dict[str, Any]) -> None:
        """Publish a stored correction's event; 503 when Kafka does not acknowledge in time
        (the correction stays stored: the same request again publishes it)."""
        if self.out.corrections is None:
            return
        event = Correction.model_validate(correction["event"])
        try:
            await asyncio.wait_for(
                self.out.corrections.publish(event, mention_id), self.publish_timeout
            )
        except Exception as exc:
            log.exception("correction stored but not yet published", mention_id=mention_id)
            raise InboxError(
                503,
                "broker_unavailable",
                "the correction is stored; Kafka did not acknowledge it yet, retry the request",
            ) from exc
        await self.review.correction_published(mention_id, str(event.event_id))

    async def _refusal(
        self,
        mention_id: str,
        actor: str,
        now: datetime,
        releasing: bool = False,
        correcting: bool = False,
    ) -> InboxError:
        """Why a claim, release or decision did not apply, read back after the atomic attempt."""
        item = await self.review.get(mention_id)
        if item is None:
            return InboxError(404, "not_found", f"no review item for mention '{mention_id}'")
        if item["status"] == "done" and not correcting:
            decision = item.get("decision") or {}
            return InboxError(
                409,
                "already_decided",
                f"already decided: {decision.get('action')} by {decision.get('actor')}",
                {"action": decision.get("action"), "actor": decision.get("actor")},
            )
        holder, until = item.get("lease_owner"), item.get("lease_until")
        if until is not None and lease_active(until, now) and holder != actor:
            return InboxError(
                409,
                "claimed_by_other",
                f"{holder} holds the lease until {until.isoformat()}",
                {"lease_owner": holder, "lease_until": until.isoformat()},
            )
        if releasing:
            return InboxError(409, "not_claimed", "you hold no lease on this item")
        return InboxError(
            409,
            "lease_required",
            "claim the item first (POST .../claim); your lease is missing or expired",
            {"lease_owner": holder, "lease_until": until.isoformat() if until else None},
        )


def _within(tracker_ids: list[str], brands: frozenset[str] | None) -> list[str]:
    """The trackers a reply may speak for: the mention's, within the user's brands."""
    return [t for t in tracker_ids if brands is None or t in brands]


def _usable(canned: dict[str, Any], brands: frozenset[str] | None) -> bool:
    """A canned reply for every tracker, or for one of the user's brands."""
    scoped: list[str] = canned.get("tracker_ids") or []
    return brands is None or not scoped or not brands.isdisjoint(scoped)
