"""Moderation's HTTP API: classify, the review inbox, tracker rules and canned replies.

Every input is validated before it reaches the database: path ids are identifiers (never a
MongoDB operator), filters are closed enums, bodies are strict models (a misspelt field is a
422, not silently ignored). The actor of every write is the caller's identity: the token's
user, or the console user it acts for (`X-SMM-Actor`). A console user sees only the mentions,
review items, rules and canned replies of their brands (`Principal.brands`); another brand's
answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import Executor
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field, StringConstraints, ValidationError

from services.moderation.domain import StrictModel
from services.moderation.domain.classifiers import ClassifierSuite, TextItem
from services.moderation.domain.replies import PLACEHOLDERS, CannedReply
from services.moderation.domain.review import (
    CorrectionRequest,
    DecisionRequest,
    InvalidCursorError,
    Language,
    PagePosition,
    QueueFilter,
    QueuePosition,
    RulesPosition,
    StatusFilter,
    lease_active,
)
from services.moderation.domain.rules import (
    DEFAULT_RULES,
    MAX_PROGRAM_SIZE,
    PATTERN_TEXT_CHARS,
    TrackerRules,
    stored_rules,
)
from services.moderation.domain.search import Label, MentionFilter
from services.moderation.inbox import Inbox, InboxError
from services.moderation.pipeline import RulesRegistry
from services.moderation.storage import (
    SEARCH_SECONDS,
    CannedReplyStore,
    RulesStore,
    SearchTooBroadError,
    TrackerDirectory,
    routing_entry,
)
from shared.auth import Principal, require_scope
from shared.errors import ApiError, validation_summary
from shared.events import (
    Identifier,
    Intent,
    Platform,
    Priority,
    RoutingAction,
    Sentiment,
    utc_now,
)
from shared.paging import PageCursor, PageLimit, decode_cursor, page_of
from shared.ratelimit import TokenBuckets, retry_after
from shared.settings import Settings

M = TypeVar("M", bound=BaseModel)
P = TypeVar("P", bound=PagePosition)

Reader = Annotated[Principal, Depends(require_scope("read"))]
Reviewer = Annotated[Principal, Depends(require_scope("review:write"))]
RulesWriter = Annotated[Principal, Depends(require_scope("rules:write"))]
#: Classifying costs CPU per text: always a token (even with open reads), rate-limited per token.
Classifier = Annotated[Principal, Depends(require_scope("classify"))]

_ID_PATTERN = r"^[^$\s][^\s]*$"
MentionId = Annotated[str, Path(pattern=_ID_PATTERN, max_length=256, description="platform:id")]
TrackerId = Annotated[str, Path(pattern=_ID_PATTERN, max_length=256)]
ReplyId = Annotated[str, Path(pattern=_ID_PATTERN, max_length=256)]
QueryId = Annotated[str | None, Query(pattern=_ID_PATTERN, max_length=256)]


class ClassifyItem(StrictModel):
    text: Annotated[str, StringConstraints(max_length=40_000)]
    lang: Language | None = None


class ClassifyRequest(StrictModel):
    items: list[ClassifyItem] = Field(min_length=1)


class RenderRequest(StrictModel):
    mention_id: Identifier


def _not_found(mention_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no mention '{mention_id}'")


def _reply_visible(document: dict[str, Any], principal: Principal) -> bool:
    """A canned reply for every tracker (none named) is everybody's; else one is enough."""
    tracker_ids = document.get("tracker_ids") or []
    return not tracker_ids or principal.may_see(tracker_ids)


def _may_write_reply(tracker_ids: list[str], principal: Principal) -> None:
    """A console user writes canned replies of their brands only, never ones for everybody."""
    if principal.brands is None:
        return
    if not tracker_ids:
        raise ApiError(
            403,
            "forbidden",
            "a canned reply for every tracker needs an admin; name your trackers in tracker_ids",
        )
    outside = [t for t in tracker_ids if t not in principal.brands]
    if outside:
        raise ApiError(
            404, "unknown_tracker", f"no tracker '{outside[0]}'", {"tracker_id": outside[0]}
        )


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(400, "bad_request", f"body is not valid JSON: {exc}") from exc


async def _parse(request: Request, model: type[M]) -> M:
    """The body as `model`; 422 with a readable reason (field path and message) otherwise."""
    body = await _json_body(request)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        details = [
            {"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False)[:50]
        ]
        raise ApiError(422, "invalid_request", validation_summary(exc), details) from exc


#: Fields GET answers carry that a client may send back unchanged in a PUT.
_READ_ONLY = frozenset({"default", "created_at", "updated_at", "updated_by"})


def _editable(body: Any, id_field: str, path_id: str) -> dict[str, Any]:
    """A PUT body without the read-only fields of a GET answer; its id must match the path."""
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_request", "body must be a JSON object")
    if body.get(id_field, path_id) != path_id:
        raise ApiError(422, "invalid_request", f"the body's {id_field} differs from the path's")
    editable = {k: v for k, v in body.items() if k not in _READ_ONLY and k != id_field}
    return editable | ({"id": path_id} if id_field == "id" else {})


def _inbox_error(exc: InboxError) -> ApiError:
    headers = {"Retry-After": "5"} if exc.status == 503 else None
    return ApiError(exc.status, exc.code, exc.message, exc.details, headers=headers)


def _public_correction(item: dict[str, Any]) -> dict[str, Any] | None:
    """The reviewers' correction of the classification, and what it corrects."""
    correction = item.get("correction")
    if not correction:
        return None
    fields = ("sentiment", "labels", "intent", "note", "actor", "corrected_at", "original")
    return {k: correction.get(k) for k in fields} | {
        "model_version": correction.get("model_version")
    }


def _public_item(
    item: dict[str, Any],
    mention: dict[str, Any] | None,
    now: datetime,
    principal: Principal | None = None,
) -> dict[str, Any]:
    """A review item as reviewers see it: its state, and the mention it is about."""
    status = item["status"]
    if status != "done" and lease_active(item.get("lease_until"), now):
        status = "claimed"
    decision = item.get("decision")
    classified = (mention or {}).get("classified") or {}
    tracker_ids = item.get("tracker_ids", [])
    return {
        "mention_id": item["_id"],
        "status": status,
        "escalated": item["status"] == "escalated",
        "priority": item["priority"],
        "reasons": item.get("reasons", []),
        "tracker_ids": principal.visible(tracker_ids) if principal else tracker_ids,
        "intent": item.get("intent"),
        "language": item.get("language"),
        "platform": item.get("platform"),
        "created_at": item.get("created_at"),
        "queued_at": item.get("queued_at"),
        "lease_owner": item.get("lease_owner") if status == "claimed" else None,
        "lease_until": item.get("lease_until") if status == "claimed" else None,
        "decision": (
            {
                k: decision.get(k)
                for k in ("action", "actor", "reason", "reply_post_id", "decided_at")
            }
            if decision
            else None
        ),
        "correction": _public_correction(item),
        "mention": {
            k: classified.get(k)
            for k in ("text", "url", "author", "metrics", "classification", "in_reply_to")
        },
    }


def _review_summary(item: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A mention's review state in the mentions list: status, holder, decision, correction."""
    public = _public_item(item, None, now)
    fields = ("status", "escalated", "lease_owner", "lease_until", "decision", "correction")
    return {k: public[k] for k in fields}


def _public_rules(tracker_id: str, document: dict[str, Any] | None) -> dict[str, Any]:
    if document is None:
        return {"tracker_id": tracker_id, "default": True, **DEFAULT_RULES.model_dump(mode="json")}
    rules, skipped = stored_rules(document["rules"])
    shown = {"skipped_patterns": skipped} if skipped else {}  # saved, refused by this version
    return {
        "tracker_id": tracker_id,
        "default": False,
        **rules.model_dump(mode="json"),
        **shown,
        "updated_at": document.get("updated_at"),
        "updated_by": document.get("updated_by"),
    }


def _public_reply(document: dict[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in document.items() if k in CannedReply.model_fields}
    reply = CannedReply.model_validate({**fields, "id": document["_id"]})
    return {
        **reply.model_dump(mode="json"),
        "created_at": document.get("created_at"),
        "updated_at": document.get("updated_at"),
    }


def _cursor(cursor: str | None, position: type[P]) -> P | None:
    try:
        return position.decode(cursor) if cursor else None
    except InvalidCursorError as exc:
        raise ApiError(422, "invalid_cursor", str(exc)) from exc


def build_router(
    settings: Settings,
    suite: ClassifierSuite,
    inbox: Inbox,
    rules: RulesRegistry,
    trackers: TrackerDirectory,
    classify_executor: Executor | None = None,
) -> APIRouter:
    """The endpoints; `classify_executor` runs the classifiers off the event loop."""
    router = APIRouter(prefix="/v1")
    rules_store: RulesStore = rules.store
    canned: CannedReplyStore = inbox.canned
    max_items = settings.moderation_classify_max_items
    classify_budget = TokenBuckets(
        rate=settings.moderation_classify_rate_per_second,
        capacity=max(settings.moderation_classify_burst, max_items),
    )

    # --- classifiers -----------------------------------------------------------------------

    @router.post(
        "/classify",
        tags=["classify"],
        summary=f"Classify up to {max_items} texts (no side effects)",
        description=(
            "Body: {items: [{text, lang?}]}. Answers {results} in the same order. Needs the "
            f"`classify` scope; each token may classify "
            f"{settings.moderation_classify_rate_per_second:g} texts per second (bursts up to "
            f"{classify_budget.capacity:g}), beyond that 429 with Retry-After."
        ),
    )
    async def classify(request: Request, principal: Classifier) -> dict[str, Any]:
        body = await _parse(request, ClassifyRequest)
        if len(body.items) > max_items:
            raise ApiError(413, "batch_too_large", f"at most {max_items} items per request")
        wait = classify_budget.take(principal.id, len(body.items), time.monotonic())
        if wait > 0:
            raise ApiError(
                429,
                "rate_limited",
                f"this token classifies at most {classify_budget.rate:g} texts per second; "
                f"retry in {retry_after(wait)} s",
                {"retry_after_seconds": int(retry_after(wait))},
                headers={"Retry-After": retry_after(wait)},
            )
        items = [TextItem(item.text, item.lang) for item in body.items]
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(classify_executor, suite.classify, items)
        return {
            "results": [result.model_dump(mode="json") for result in results],
            "model_version": suite.model_version,
        }

    # --- brand scope -----------------------------------------------------------------------

    async def visible_mention(mention_id: str, principal: Principal) -> dict[str, Any]:
        """The stored mention, or 404 when there is none or it is another brand's."""
        document = await inbox.mentions.get(mention_id)
        if document is None or not principal.may_see(document.get("tracker_ids", [])):
            raise _not_found(mention_id)
        return document

    async def check_review_scope(mention_id: str, principal: Principal) -> None:
        """404 for a review item of another brand (nothing to read for an unscoped caller:
        the inbox answers 404 itself for an item that does not exist)."""
        if principal.brands is None:
            return
        item = await inbox.review.get(mention_id)
        if item is None or not principal.may_see(item.get("tracker_ids", [])):
            raise ApiError(404, "not_found", f"no review item for mention '{mention_id}'")

    def check_tracker_scope(tracker_id: str, principal: Principal) -> None:
        """Another brand's tracker is, for a console user, one that does not exist."""
        if not principal.may_see([tracker_id]):
            raise ApiError(
                404, "unknown_tracker", f"no tracker '{tracker_id}'", {"tracker_id": tracker_id}
            )

    # --- mentions --------------------------------------------------------------------------

    @router.get(
        "/mentions",
        tags=["mentions"],
        summary="Classified mentions, newest first, with their review state",
        description=(
            "Filters: tracker_id, platform, author_id, sentiment, language, intent, label, action, "
            "priority, from and to (created_at, from ≤ t < to, with a timezone offset), q "
            "(every word must be in the text; words are matched whole, case-insensitive). "
            "Pages with `limit` (≤ 200) and `cursor`; answers {items, next_cursor}. A console "
            "user sees only their brands' mentions."
        ),
    )
    async def list_mentions(
        principal: Reader,
        tracker_id: QueryId = None,
        platform: Platform | None = None,
        author_id: QueryId = None,
        sentiment: Sentiment | None = None,
        language: Annotated[Language | None, Query()] = None,
        intent: Intent | None = None,
        label: Annotated[Label | None, Query()] = None,
        action: RoutingAction | None = None,
        priority: Priority | None = None,
        created_from: Annotated[datetime | None, Query(alias="from")] = None,
        created_to: Annotated[datetime | None, Query(alias="to")] = None,
        q: Annotated[str | None, Query(max_length=200)] = None,
        cursor: PageCursor = None,
        limit: PageLimit = 50,
    ) -> dict[str, Any]:
        for name, value in (("from", created_from), ("to", created_to)):
            if value is not None and value.tzinfo is None:
                raise ApiError(422, "invalid_request", f"{name} needs a timezone offset")
        try:
            found = MentionFilter.model_validate(
                {
                    "tracker_id": tracker_id,
                    "platform": platform,
                    "author_id": author_id,
                    "sentiment": sentiment,
                    "language": language,
                    "intent": intent,
                    "label": label,
                    "action": action,
                    "priority": priority,
                    "from": created_from,
                    "to": created_to,
                    "q": q,
                }
            )
        except ValidationError as exc:
            raise ApiError(422, "invalid_request", validation_summary(exc)) from exc
        after = None
        if cursor:
            at, last_id = decode_cursor(cursor, 2)
            try:
                after = (datetime.fromisoformat(at), last_id)
            except ValueError as exc:
                raise ApiError(
                    422, "invalid_cursor", "cursor is not one this API returned"
                ) from exc
        try:
            documents = await inbox.mentions.search(found, principal.brands, after, limit + 1)
        except SearchTooBroadError as exc:
            raise ApiError(
                422,
                "search_too_broad",
                f"the search ran over {SEARCH_SECONDS:g} s: give a tracker_id or a shorter "
                "period (from, to)",
            ) from exc
        now = utc_now()
        reviews = await inbox.review.get_many([doc["_id"] for doc in documents[:limit]])

        def public(document: dict[str, Any]) -> dict[str, Any]:
            review = reviews.get(document["_id"])
            return {
                **document["classified"],
                "tracker_ids": principal.visible(document["classified"].get("tracker_ids", [])),
                "reasons": document.get("reasons", []),
                "review": _review_summary(review, now) if review else None,
            }

        return page_of(
            documents,
            limit,
            public,
            lambda document: [document["created_at"].isoformat(), document["_id"]],
        )

    @router.get("/mentions/{mention_id:path}", tags=["mentions"], summary="One classified mention")
    async def get_mention(mention_id: MentionId, principal: Reader) -> dict[str, Any]:
        document = await visible_mention(mention_id, principal)
        item = await inbox.review.get(mention_id)
        return {
            **document["classified"],
            "tracker_ids": principal.visible(document["classified"].get("tracker_ids", [])),
            "reasons": document.get("reasons", []),
            "auto_decision": document.get("auto_decision"),
            "review": (
                _public_item(item, None, utc_now(), principal) | {"mention": None} if item else None
            ),
        }

    # --- review inbox ----------------------------------------------------------------------

    @router.get(
        "/review",
        tags=["review"],
        summary="The review queue: highest priority first, then oldest first",
        description=(
            "Filters: tracker_id, priority, intent, language, platform, status (open — the "
            "default: waiting and not claimed, the Unclaimed tab —, mine: waiting and claimed "
            "by the caller, waiting: open or escalated whoever holds it (the All tab), "
            "claimed, escalated, done, all). Pages with `limit` and the `next_cursor` of the "
            "previous page. A console user sees only their brands' items."
        ),
    )
    async def review_queue(
        principal: Reader,
        tracker_id: QueryId = None,
        priority: Priority | None = None,
        intent: Intent | None = None,
        language: Annotated[str | None, Query(pattern=r"^[a-z]{2}$")] = None,
        platform: Platform | None = None,
        status: StatusFilter = "open",
        cursor: PageCursor = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> dict[str, Any]:
        queue = QueueFilter(
            tracker_id=tracker_id,
            priority=priority,
            intent=intent,
            language=language,
            platform=platform,
            status=status,
            actor=principal.id,
        )
        after = _cursor(cursor, QueuePosition)
        now = utc_now()
        items = await inbox.review.page(queue, now, after, limit + 1, principal.brands)
        more = len(items) > limit
        items = items[:limit]
        mentions = await inbox.mentions.get_many([item["_id"] for item in items])
        next_cursor = None
        if more:
            last = items[-1]
            next_cursor = QueuePosition(
                rank=last["rank"], created_at=last["created_at"], mention_id=last["_id"]
            ).encode()
        return {
            "items": [
                _public_item(item, mentions.get(item["_id"]), now, principal) for item in items
            ],
            "next_cursor": next_cursor,
        }

    @router.get(
        "/review/counts",
        tags=["review"],
        summary="The inbox tabs' counts: mine, unclaimed, all (waiting items)",
        description=(
            "mine: waiting and claimed by the caller; unclaimed: waiting, nobody holds a lease "
            "(status=open); all: waiting, claimed or not (status=waiting). Optional tracker_id; "
            "a console user counts only their brands."
        ),
    )
    async def review_counts(principal: Reader, tracker_id: QueryId = None) -> dict[str, int]:
        return await inbox.review.counts(tracker_id, principal.id, utc_now(), principal.brands)

    @router.post(
        "/review/{mention_id:path}/claim",
        tags=["review"],
        summary="Claim an item (a lease); 409 when someone else holds it",
        description=f"A lease lasts {settings.moderation_lease_seconds:g} s; claim again to renew.",
    )
    async def claim(mention_id: MentionId, principal: Reviewer) -> dict[str, Any]:
        await check_review_scope(mention_id, principal)
        try:
            item = await inbox.claim(mention_id, principal.id)
        except InboxError as exc:
            raise _inbox_error(exc) from exc
        return _public_item(item, await inbox.mentions.get(mention_id), utc_now(), principal)

    @router.delete(
        "/review/{mention_id:path}/claim", tags=["review"], summary="Give a claimed item back"
    )
    async def release(mention_id: MentionId, principal: Reviewer) -> dict[str, Any]:
        await check_review_scope(mention_id, principal)
        try:
            item = await inbox.release(mention_id, principal.id)
        except InboxError as exc:
            raise _inbox_error(exc) from exc
        return _public_item(item, None, utc_now(), principal)

    @router.post(
        "/review/{mention_id:path}/decision",
        tags=["review"],
        summary="Decide as the lease holder: approve, hide, escalate or reply",
        description=(
            "Body: {action, reason, reply?: {text | canned_reply_id, channel_id?, "
            "requires_approval?}}. A reply becomes a schedule command on smm.posts.commands.v1 "
            "with a post id derived from the mention, so a retried request posts once."
        ),
    )
    async def decide(
        mention_id: MentionId, request: Request, principal: Reviewer
    ) -> dict[str, Any]:
        await check_review_scope(mention_id, principal)
        body = await _parse(request, DecisionRequest)
        try:
            item = await inbox.decide(mention_id, principal.id, body, principal.brands)
        except InboxError as exc:
            raise _inbox_error(exc) from exc
        return _public_item(item, None, utc_now(), principal) | {"mention": None}

    @router.post(
        "/review/{mention_id:path}/correction",
        tags=["review"],
        summary="Correct the mention's sentiment, labels or intent (as a reviewer)",
        description=(
            "Body: {sentiment?, labels?, intent?, note?} (at least one of the first three). "
            "Fields left out keep their earlier correction. Stored on the review item (its "
            "`correction`), audited (action `correct`) and published as a `Correction` on "
            "smm.moderation.corrections.v1. The same correction again changes nothing and "
            "publishes nothing new. 409 `claimed_by_other` while another reviewer holds the "
            "lease; a decided item may be corrected."
        ),
    )
    async def correct(
        mention_id: MentionId, request: Request, principal: Reviewer
    ) -> dict[str, Any]:
        await check_review_scope(mention_id, principal)
        body = await _parse(request, CorrectionRequest)
        try:
            item = await inbox.correct(mention_id, principal.id, body)
        except InboxError as exc:
            raise _inbox_error(exc) from exc
        return _public_item(item, None, utc_now(), principal) | {"mention": None}

    @router.get(
        "/review/{mention_id:path}/audit",
        tags=["review"],
        summary="Who did what to this mention, when and why (oldest first)",
    )
    async def audit(mention_id: MentionId, principal: Reader) -> dict[str, Any]:
        mention = await visible_mention(mention_id, principal)
        entries = [routing_entry(mention), *await inbox.audit.of(mention_id)]
        return {
            "entries": [
                {k: entry.get(k) for k in ("at", "actor", "action", "reason", "details")}
                for entry in entries
            ]
        }

    # --- rules -----------------------------------------------------------------------------

    @router.get(
        "/rules",
        tags=["rules"],
        summary="The trackers' stored rules, by tracker id",
        description=(
            "Pages with `limit` (at most 200) and the `next_cursor` of the previous page; "
            "`defaults` are the rules of a tracker without stored ones."
        ),
    )
    async def list_rules(
        principal: Reader,
        cursor: PageCursor = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> dict[str, Any]:
        after = _cursor(cursor, RulesPosition)
        documents = await rules_store.page(
            after.tracker_id if after else None, limit + 1, principal.brands
        )
        more = len(documents) > limit
        documents = documents[:limit]
        next_cursor = RulesPosition(tracker_id=documents[-1]["_id"]).encode() if more else None
        return {
            "items": [_public_rules(doc["_id"], doc) for doc in documents],
            "next_cursor": next_cursor,
            "defaults": DEFAULT_RULES.model_dump(mode="json"),
        }

    @router.get(
        "/rules/{tracker_id}", tags=["rules"], summary="A tracker's rules (defaults if none)"
    )
    async def get_rules(tracker_id: TrackerId, principal: Reader) -> dict[str, Any]:
        check_tracker_scope(tracker_id, principal)
        return _public_rules(tracker_id, await rules_store.get(tracker_id))

    @router.put(
        "/rules/{tracker_id}",
        tags=["rules"],
        summary="Replace a tracker's rules",
        description=(
            "Block/allow lists of authors and words, VIP authors and a follower threshold, "
            "crisis words, review intents, regular expressions, thresholds and reply channels. "
            "Omitted fields take the defaults. Patterns run on RE2 (linear time, "
            "case-insensitive): no backreferences or lookarounds, and `\\b` is an ASCII word "
            "boundary; a pattern RE2 refuses, or one too complex for the time budget (an RE2 "
            f"program over {MAX_PROGRAM_SIZE:,} instructions), is 422 `invalid_rules` with the "
            f"reason. Patterns search the first {PATTERN_TEXT_CHARS:,} characters of a text. The "
            "tracker must exist in ingest (404 `unknown_tracker`)."
        ),
    )
    async def put_rules(
        tracker_id: TrackerId, request: Request, principal: RulesWriter
    ) -> dict[str, Any]:
        check_tracker_scope(tracker_id, principal)
        body = _editable(await _json_body(request), "tracker_id", tracker_id)
        try:
            tracker_rules = TrackerRules.model_validate(body)
        except ValidationError as exc:
            raise ApiError(422, "invalid_rules", validation_summary(exc)) from exc
        if not await trackers.exists(tracker_id):
            raise ApiError(
                404,
                "unknown_tracker",
                f"no tracker '{tracker_id}': create it in ingest (POST /v1/trackers) first",
                {"tracker_id": tracker_id},
            )
        document = await rules_store.put(
            tracker_id, tracker_rules.model_dump(mode="json"), principal.id
        )
        await rules.refresh(force=True)
        return _public_rules(tracker_id, document)

    @router.delete(
        "/rules/{tracker_id}",
        status_code=204,
        tags=["rules"],
        summary="Drop a tracker's rules (the defaults apply again)",
    )
    async def delete_rules(tracker_id: TrackerId, principal: RulesWriter) -> Response:
        check_tracker_scope(tracker_id, principal)
        if not await rules_store.delete(tracker_id):
            raise ApiError(404, "not_found", f"tracker '{tracker_id}' has no stored rules")
        await rules.refresh(force=True)
        return Response(status_code=204)

    # --- canned replies --------------------------------------------------------------------

    @router.get(
        "/canned-replies",
        tags=["canned replies"],
        summary="Canned replies, by language and tracker",
        description="Placeholders: " + ", ".join(f"{{{k}}} ({v})" for k, v in PLACEHOLDERS.items()),
    )
    async def list_replies(
        principal: Reader,
        language: Annotated[str | None, Query(pattern=r"^[a-z]{2}$")] = None,
        tracker_id: QueryId = None,
    ) -> dict[str, Any]:
        if tracker_id is not None and not principal.may_see([tracker_id]):
            return {"canned_replies": []}
        documents = await canned.list(language, tracker_id)
        return {
            "canned_replies": [
                _public_reply(doc) for doc in documents if _reply_visible(doc, principal)
            ]
        }

    async def visible_reply(reply_id: str, principal: Principal) -> dict[str, Any]:
        document = await canned.get(reply_id)
        if document is None or not _reply_visible(document, principal):
            raise ApiError(404, "not_found", f"no canned reply '{reply_id}'")
        return document

    @router.get("/canned-replies/{reply_id}", tags=["canned replies"], summary="One canned reply")
    async def get_reply(reply_id: ReplyId, principal: Reader) -> dict[str, Any]:
        return _public_reply(await visible_reply(reply_id, principal))

    @router.post(
        "/canned-replies/{reply_id}/render",
        tags=["canned replies"],
        summary="A canned reply as it would answer a mention, and what it leaves unfilled",
        description=(
            "Body: {mention_id}. Answers {text, missing}: the rendered text and the "
            "placeholders this mention leaves empty (e.g. `author` for a name that is not "
            "plain words); a decision with a canned reply that leaves one empty is refused "
            "(422 `unfilled_placeholder`), so the console sends the text written out instead."
        ),
    )
    async def render_reply(
        reply_id: ReplyId, request: Request, principal: Reader
    ) -> dict[str, Any]:
        body = await _parse(request, RenderRequest)
        await visible_reply(reply_id, principal)
        await visible_mention(body.mention_id, principal)
        try:
            text, missing = await inbox.render_canned(
                reply_id, body.mention_id, principal.id, principal.brands
            )
        except InboxError as exc:
            raise _inbox_error(exc) from exc
        return {"text": text, "missing": missing}

    @router.post(
        "/canned-replies",
        status_code=201,
        tags=["canned replies"],
        summary="Create a canned reply; an unknown placeholder is a 422",
    )
    async def create_reply(request: Request, principal: RulesWriter) -> dict[str, Any]:
        reply = await _parse(request, CannedReply)
        _may_write_reply(reply.tracker_ids, principal)
        if not await canned.create(reply.model_dump(mode="json")):
            raise ApiError(409, "conflict", f"canned reply '{reply.id}' exists; use PUT")
        document = await canned.get(reply.id)
        assert document is not None
        return _public_reply(document)

    @router.put(
        "/canned-replies/{reply_id}", tags=["canned replies"], summary="Replace a canned reply"
    )
    async def replace_reply(
        reply_id: ReplyId, request: Request, principal: RulesWriter
    ) -> dict[str, Any]:
        if principal.brands is not None:
            await visible_reply(reply_id, principal)
        body = _editable(await _json_body(request), "id", reply_id)
        try:
            reply = CannedReply.model_validate(body)
        except ValidationError as exc:
            raise ApiError(422, "invalid_request", validation_summary(exc)) from exc
        _may_write_reply(reply.tracker_ids, principal)
        document = await canned.replace(reply.model_dump(mode="json"))
        if document is None:
            raise ApiError(404, "not_found", f"no canned reply '{reply_id}'")
        return _public_reply(document)

    @router.delete(
        "/canned-replies/{reply_id}",
        status_code=204,
        tags=["canned replies"],
        summary="Delete a canned reply",
    )
    async def delete_reply(reply_id: ReplyId, principal: RulesWriter) -> Response:
        if principal.brands is not None:
            _may_write_reply(
                (await visible_reply(reply_id, principal)).get("tracker_ids", []), principal
            )
        if not await canned.delete(reply_id):
            raise ApiError(404, "not_found", f"no canned reply '{reply_id}'")
        return Response(status_code=204)

    return router
