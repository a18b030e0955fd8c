"""Moderation's HTTP API: classify, the review inbox, tracker rules and canned replies.

Every input is validated before it reaches the database: path ids are identifiers (never a
MongoDB operator), filters are closed enums, bodies are strict models (a misspelt field is a
422, not silently ignored). The actor of every write is the caller's token identity.
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
from services.moderation.inbox import Inbox, InboxError
from services.moderation.pipeline import RulesRegistry
from services.moderation.storage import (
    CannedReplyStore,
    RulesStore,
    TrackerDirectory,
    routing_entry,
)
from shared.auth import Principal, require_scope
from shared.errors import ApiError, validation_summary
from shared.events import Intent, Platform, Priority, utc_now
from shared.paging import PageCursor
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


def _public_item(
    item: dict[str, Any], mention: dict[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """A review item as reviewers see it: its state, and the mention it is about."""
    status = item["status"]
    if status != "done" and lease_active(item.get("lease_until"), now):
        status = "claimed"
    decision = item.get("decision")
    classified = (mention or {}).get("classified") or {}
    return {
        "mention_id": item["_id"],
        "status": status,
        "escalated": item["status"] == "escalated",
        "priority": item["priority"],
        "reasons": item.get("reasons", []),
        "tracker_ids": item.get("tracker_ids", []),
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
        "mention": {
            k: classified.get(k)
            for k in ("text", "url", "author", "metrics", "classification", "in_reply_to")
        },
    }


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

    # --- mentions --------------------------------------------------------------------------

    @router.get("/mentions/{mention_id:path}", tags=["mentions"], summary="One classified mention")
    async def get_mention(mention_id: MentionId, principal: Reader) -> dict[str, Any]:
        document = await inbox.mentions.get(mention_id)
        if document is None:
            raise ApiError(404, "not_found", f"no mention '{mention_id}'")
        item = await inbox.review.get(mention_id)
        return {
            **document["classified"],
            "reasons": document.get("reasons", []),
            "auto_decision": document.get("auto_decision"),
            "review": _public_item(item, None, utc_now()) | {"mention": None} if item else None,
        }

    # --- review inbox ----------------------------------------------------------------------

    @router.get(
        "/review",
        tags=["review"],
        summary="The review queue: highest priority first, then oldest first",
        description=(
            "Filters: tracker_id, priority, intent, language, platform, status (open — the "
            "default: waiting and not claimed —, claimed, escalated, done, all). Pages with "
            "`limit` and the `next_cursor` of the previous page."
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
        )
        after = _cursor(cursor, QueuePosition)
        now = utc_now()
        items = await inbox.review.page(queue, now, after, limit + 1)
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
            "items": [_public_item(item, mentions.get(item["_id"]), now) for item in items],
            "next_cursor": next_cursor,
        }

    @router.post(
        "/review/{mention_id:path}/claim",
        tags=["review"],
        summary="Claim an item (a lease); 409 when someone else holds it",
        description=f"A lease lasts {settings.moderation_lease_seconds:g} s; claim again to renew.",
    )
    async def claim(mention_id: MentionId, principal: Reviewer) -> dict[str, Any]:
        try:
            item = await inbox.claim(mention_id, principal.id)
        except InboxError as exc:
            raise _inbox_error(exc) from exc
        return _public_item(item, await inbox.mentions.get(mention_id), utc_now())

    @router.delete(
        "/review/{mention_id:path}/claim", tags=["review"], summary="Give a claimed item back"
    )
    async def release(mention_id: MentionId, principal: Reviewer) -> dict[str, Any]:
        try:
            item = await inbox.release(mention_id, principal.id)
        except InboxError as exc:
            raise _inbox_error(exc) from exc
        return _public_item(item, None, utc_now())

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
        body = await _parse(request, DecisionRequest)
        try:
            item = await inbox.decide(mention_id, principal.id, body)
        except InboxError as exc:
            raise _inbox_error(exc) from exc
        return _public_item(item, None, utc_now()) | {"mention": None}

    @router.get(
        "/review/{mention_id:path}/audit",
        tags=["review"],
        summary="Who did what to this mention, when and why (oldest first)",
    )
    async def audit(mention_id: MentionId, principal: Reader) -> dict[str, Any]:
        mention = await inbox.mentions.get(mention_id)
        if mention is None:
            raise ApiError(404, "not_found", f"no mention '{mention_id}'")
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
        documents = await rules_store.page(after.tracker_id if after else None, limit + 1)
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
        documents = await canned.list(language, tracker_id)
        return {"canned_replies": [_public_reply(doc) for doc in documents]}

    @router.get("/canned-replies/{reply_id}", tags=["canned replies"], summary="One canned reply")
    async def get_reply(reply_id: ReplyId, principal: Reader) -> dict[str, Any]:
        document = await canned.get(reply_id)
        if document is None:
            raise ApiError(404, "not_found", f"no canned reply '{reply_id}'")
        return _public_reply(document)

    @router.post(
        "/canned-replies",
        status_code=201,
        tags=["canned replies"],
        summary="Create a canned reply; an unknown placeholder is a 422",
    )
    async def create_reply(request: Request, principal: RulesWriter) -> dict[str, Any]:
        reply = await _parse(request, CannedReply)
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
        body = _editable(await _json_body(request), "id", reply_id)
        try:
            reply = CannedReply.model_validate(body)
        except ValidationError as exc:
            raise ApiError(422, "invalid_request", validation_summary(exc)) from exc
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
        if not await canned.delete(reply_id):
            raise ApiError(404, "not_found", f"no canned reply '{reply_id}'")
        return Response(status_code=204)

    return router
