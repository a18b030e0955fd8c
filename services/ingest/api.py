"""Ingest's HTTP API: trackers, and the batch intake of mentions.

A user acting through the console sees only the trackers of their brands: the list leaves the
others out, and reading, replacing or deleting one of them answers 404 as if it did not exist."""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from services.ingest.domain.batch import IntakeResult, RejectedItem, reason_of
from services.ingest.domain.normalise import MentionIn
from services.ingest.domain.trackers import INVALID_QUERY, Tracker, TrackerId
from services.ingest.intake import Intake, PublishFailedError, TrackerRegistry
from services.ingest.sources.websub import (
    DEFAULT_LEASE_SECONDS,
    WebSubError,
    discover_hub,
    subscribe,
    unsubscribe,
)
from services.ingest.storage import TrackerStore, WebSubStore
from shared.auth import Principal, require_scope
from shared.errors import ApiError
from shared.events import HttpUrlText, MentionSource
from shared.logging import get_logger
from shared.outbound import check_outbound_url
from shared.paging import PageCursor, PageLimit, decode_cursor, page_of
from shared.settings import Settings

log = get_logger(__name__)
_item = TypeAdapter(MentionIn)
_clean_batch = TypeAdapter(list[MentionIn])

Reader = Annotated[Principal, Depends(require_scope("read"))]
TrackerWriter = Annotated[Principal, Depends(require_scope("trackers:write"))]
MentionWriter = Annotated[Principal, Depends(require_scope("mentions:write"))]
SubscriptionId = Annotated[
    str, Path(pattern=r"^[0-9a-f]{32}$", description="sha-256 prefix of the topic")
]


def _items_of(body: Any) -> list[Any]:
    if isinstance(body, dict) and isinstance(body.get("mentions"), list):
        return list(body["mentions"])
    if isinstance(body, list):
        return body
    raise ApiError(
        400, "bad_request", "body must be a JSON array of mentions or {'mentions': [...]}"
    )


def _tracker_of(tracker_id: str, body: Any) -> Tracker:
    """Validate a tracker body; a query error answers 422 with its position."""
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_request", "body must be a JSON object")
    try:
        return Tracker.model_validate({**body, "id": tracker_id})
    except ValidationError as exc:
        query_errors = [e for e in exc.errors() if e["type"] == INVALID_QUERY]
        if query_errors:
            context = query_errors[0].get("ctx", {})
            raise ApiError(
                422,
                "invalid_query",
                query_errors[0]["msg"],
                {"position": context.get("position"), "reason": context.get("reason")},
            ) from exc
        raise ApiError(422, "invalid_request", reason_of(exc)) from exc


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(400, "bad_request", f"body is not valid JSON: {exc}") from exc


def _validated_batch(body: bytes, max_batch: int) -> tuple[list[MentionIn], list[RejectedItem]]:
    """The batch's valid items and a reason for each invalid one.

    A clean JSON array (the common case) is validated in one pass straight from the bytes;
    anything else is parsed and validated item by item, so each bad item gets its own reason.
    """
    if body.lstrip()[:1] == b"[":
        try:
            clean = _clean_batch.validate_json(body)
        except ValidationError:
            pass
        else:
            _check_size(len(clean), max_batch)
            return clean, []
    items = _items_of(_parse_json(body))
    _check_size(len(items), max_batch)
    valid: list[MentionIn] = []
    rejected: list[RejectedItem] = []
    for index, raw in enumerate(items):
        try:
            valid.append(_item.validate_python(raw))
        except ValidationError as exc:
            rejected.append(RejectedItem(index=index, reason=reason_of(exc)))
    return valid, rejected


def _check_size(count: int, max_batch: int) -> None:
    if count > max_batch:
        raise ApiError(413, "batch_too_large", f"at most {max_batch} mentions per request", count)


def _public(document: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": document["_id"],
        **Tracker.model_validate({**document, "id": document["_id"]}).model_dump(exclude={"id"}),
        "created_at": document.get("created_at"),
        "updated_at": document.get("updated_at"),
    }


def _visible(principal: Principal, tracker_id: str) -> None:
    """404 for a tracker outside the caller's brands, the same whether it exists or not."""
    if principal.brands is not None and tracker_id not in principal.brands:
        raise ApiError(404, "not_found", f"no tracker '{tracker_id}'")


def build_router(
    settings: Settings, intake: Intake, trackers: TrackerRegistry, store: TrackerStore
) -> APIRouter:
    router = APIRouter(prefix="/v1")
    max_batch = settings.ingest_max_batch

    @router.post(
        "/mentions",
        status_code=202,
        response_model=IntakeResult,
        tags=["mentions"],
        summary=f"Accept a batch of up to {max_batch} mentions",
        description=(
            "Each item is matched against the trackers, de-duplicated by `platform:native_id` "
            "and emitted on smm.mentions.raw.v1. Answers 202 once Kafka acknowledged every "
            "accepted mention (acks=all); 503 when it cannot, so the caller retries the batch "
            "(already emitted items then count as duplicates)."
        ),
    )
    async def post_mentions(
        request: Request,
        principal: MentionWriter,
        source: Annotated[MentionSource, Query(description="api, or import for backfills")] = "api",
    ) -> IntakeResult:
        valid, rejected = _validated_batch(await request.body(), max_batch)
        try:
            result = await intake.submit(valid, source, rejected)
        except PublishFailedError as exc:
            raise ApiError(
                503,
                "broker_unavailable",
                "mentions could not be written to Kafka; retry the request",
                headers={"Retry-After": "5"},
            ) from exc
        log.info(
            "mention batch",
            accepted=result.accepted,
            duplicates=result.duplicates,
            unmatched=result.unmatched,
            rejected=len(result.rejected),
        )
        return result

    @router.get(
        "/trackers",
        tags=["trackers"],
        summary="Trackers by id, a page at a time",
        description="Answers `{items, next_cursor}`; follow `next_cursor` (null on the last page).",
    )
    async def list_trackers(
        principal: Reader,
        limit: PageLimit = 50,
        cursor: PageCursor = None,
    ) -> dict[str, Any]:
        after = decode_cursor(cursor, 1)[0] if cursor else None
        found = await store.page(after, limit + 1, among=principal.brands)
        return page_of(found, limit, _public)

    @router.get("/trackers/{tracker_id}", tags=["trackers"], summary="One tracker")
    async def get_tracker(tracker_id: TrackerId, principal: Reader) -> dict[str, Any]:
        _visible(principal, tracker_id)
        document = await store.get(tracker_id)
        if document is None:
            raise ApiError(404, "not_found", f"no tracker '{tracker_id}'")
        return _public(document)

    @router.post(
        "/trackers",
        status_code=201,
        tags=["trackers"],
        summary="Create a tracker",
        description="Body: {id, name, query, languages, group}. 409 if the id exists.",
    )
    async def create_tracker(request: Request, principal: TrackerWriter) -> dict[str, Any]:
        body = _parse_json(await request.body())
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise ApiError(422, "invalid_request", "id: field required (a lowercase slug)")
        tracker = _tracker_of(body["id"], {k: v for k, v in body.items() if k != "id"})
        if await store.count() >= settings.ingest_max_trackers:
            raise ApiError(409, "too_many_trackers", f"at most {settings.ingest_max_trackers}")
        if not await store.create(tracker.model_dump()):
            raise ApiError(409, "conflict", f"tracker '{tracker.id}' exists; use PUT to change it")
        await trackers.refresh()
        document = await store.get(tracker.id)
        assert document is not None
        return _public(document)

    @router.put("/trackers/{tracker_id}", tags=["trackers"], summary="Replace a tracker")
    async def replace_tracker(
        tracker_id: TrackerId, request: Request, principal: TrackerWriter
    ) -> dict[str, Any]:
        body = _parse_json(await request.body())
        if not isinstance(body, dict):
            raise ApiError(422, "invalid_request", "body must be a JSON object")
        if body.get("id", tracker_id) != tracker_id:
            raise ApiError(422, "invalid_request", "the body's id differs from the path's")
        _visible(principal, tracker_id)
        tracker = _tracker_of(tracker_id, {k: v for k, v in body.items() if k != "id"})
        document = await store.replace(tracker.model_dump())
        if document is None:
            raise ApiError(404, "not_found", f"no tracker '{tracker_id}'")
        await trackers.refresh()
        return _public(document)

    @router.delete(
        "/trackers/{tracker_id}", status_code=204, tags=["trackers"], summary="Delete a tracker"
    )
    async def delete_tracker(tracker_id: TrackerId, principal: TrackerWriter) -> Response:
        _visible(principal, tracker_id)
        if not await store.delete(tracker_id):
            raise ApiError(404, "not_found", f"no tracker '{tracker_id}'")
        await trackers.refresh()
        return Response(status_code=204)

    return router


class WebSubSubscriptionIn(BaseModel):
    """A feed to receive by push: its URL (the WebSub topic) and, optionally, its hub."""

    model_config = ConfigDict(extra="forbid")

    topic: HttpUrlText
    hub: HttpUrlText | None = Field(
        default=None, description="found from the feed's Link header or hub link when omitted"
    )
    lease_seconds: int = Field(default=DEFAULT_LEASE_SECONDS, ge=3600, le=90 * 24 * 3600)

    @field_validator("topic", "hub")
    @classmethod
    def _outbound(cls, value: str | None) -> str | None:
        """Both are fetched or posted to: http(s), a host, no credentials in the URL."""
        return None if value is None else check_outbound_url(value)


#: Never `secret` nor `callback_token` (nor the callback URL, which carries the token).
_PUBLIC_SUBSCRIPTION_FIELDS = (
    "topic",
    "hub",
    "intent",
    "state",
    "lease_seconds",
    "requested_lease_seconds",
    "lease_expires_at",
    "verified_at",
    "requested_at",
    "last_error",
    "denied_reason",
)


def _public_subscription(document: dict[str, Any]) -> dict[str, Any]:
    """A subscription as the API shows it: never its secret or callback token."""
    return {"id": document["_id"]} | {key: document.get(key) for key in _PUBLIC_SUBSCRIPTION_FIELDS}


def build_websub_router(
    settings: Settings, store: WebSubStore, http: httpx.AsyncClient
) -> APIRouter:
    """`/v1/websub/subscriptions`: feeds pushed to us by their hubs, managed over the API."""
    router = APIRouter(prefix="/v1/websub/subscriptions", tags=["websub"])

    def public_base_url() -> str:
        if not settings.public_base_url:
            raise ApiError(
                409, "websub_disabled", "set SMM_PUBLIC_BASE_URL so hubs can reach ingest"
            )
        return settings.public_base_url

    async def existing(subscription_id: str) -> dict[str, Any]:
        document = await store.get(subscription_id)
        if document is None:
            raise ApiError(404, "not_found", f"no WebSub subscription '{subscription_id}'")
        return document

    @router.get(
        "",
        summary="List WebSub subscriptions and their state, by id, a page at a time",
        description="Answers `{items, next_cursor}`; follow `next_cursor` (null on the last page).",
    )
    async def list_subscriptions(
        principal: Reader,
        limit: PageLimit = 50,
        cursor: PageCursor = None,
    ) -> dict[str, Any]:
        found = await store.page(decode_cursor(cursor, 1)[0] if cursor else None, limit + 1)
        return page_of(found, limit, _public_subscription)

    @router.get("/{subscription_id}", summary="One WebSub subscription")
    async def get_subscription(
        subscription_id: SubscriptionId, principal: Reader
    ) -> dict[str, Any]:
        return _public_subscription(await existing(subscription_id))

    @router.post(
        "",
        status_code=202,
        summary="Subscribe to a feed at its hub",
        description=(
            "Asks the hub to push the feed to `/webhooks/websub/{id}`. The hub confirms by "
            "calling back, so `state` becomes `subscribed` a little later. Leases are renewed "
            "automatically before they end. 502 when the hub or the feed cannot be reached."
        ),
    )
    async def create_subscription(
        body: WebSubSubscriptionIn, principal: TrackerWriter
    ) -> dict[str, Any]:
        base = public_base_url()
        try:
            hub = body.hub or await discover_hub(http, body.topic)
            subscription_id = await subscribe(
                http,
                store,
                hub_url=hub,
                topic=body.topic,
                public_base_url=base,
                lease_seconds=body.lease_seconds,
            )
        except WebSubError as exc:
            raise ApiError(502, "hub_failed", str(exc)) from exc
        log.info(
            "websub subscription requested", subscription_id=subscription_id, actor=principal.id
        )
        return _public_subscription(await existing(subscription_id))

    @router.delete(
        "/{subscription_id}",
        status_code=202,
        summary="Unsubscribe: the hub stops pushing once it verifies the request",
    )
    async def delete_subscription(
        subscription_id: SubscriptionId, principal: TrackerWriter
    ) -> dict[str, Any]:
        base = public_base_url()
        document = await existing(subscription_id)
        try:
            await unsubscribe(
                http,
                store,
                hub_url=document["hub"],
                topic=document["topic"],
                public_base_url=base,
                subscription_id=subscription_id,
            )
        except WebSubError as exc:
            raise ApiError(502, "hub_failed", str(exc)) from exc
        return _public_subscription(await existing(subscription_id))

    return router
