"""Publisher's HTTP API: channels and posts (the contract's `/v1/posts` and `/v1/channels`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ValidationError

from services.publisher.calendar import Calendar, PostRequest, public_post
from services.publisher.channels import ChannelService, public_channel
from services.publisher.domain.channels import ChannelIn, ChannelPatch, ReauthIn
from services.publisher.domain.posts import PostIn, PostPatch, PostQuery, TextToCount
from services.publisher.domain.text_rules import PostRuleError, count_text
from services.publisher.errors import DomainError
from services.publisher.storage import CommandInbox, PostStore
from shared.auth import Principal, require_scope
from shared.errors import ApiError, validation_summary
from shared.events import Identifier, PostStatus
from shared.paging import PageCursor, PageLimit, decode_cursor, page_of

M = TypeVar("M", bound=BaseModel)

Reader = Annotated[Principal, Depends(require_scope("read"))]
PostWriter = Annotated[Principal, Depends(require_scope("posts:write"))]
Approver = Annotated[Principal, Depends(require_scope("posts:approve"))]
ChannelWriter = Annotated[Principal, Depends(require_scope("channels:write"))]


async def _body(request: Request, model: type[M]) -> M:
    """The request's JSON body as `model`; 400 for bad JSON, 422 with the reasons otherwise."""
    try:
        raw = json.loads(await request.body() or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(400, "bad_request", f"body is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ApiError(422, "invalid_request", "body must be a JSON object")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", validation_summary(exc)) from exc


def _api_error(exc: DomainError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message, exc.details)


def _decode_time_cursor(cursor: str) -> tuple[datetime, str]:
    """A cursor of (time, id) sort keys: posts by creation, commands by arrival."""
    at, item_id = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(at), item_id
    except ValueError as exc:
        raise ApiError(422, "invalid_cursor", "cursor is not one this API returned") from exc


def build_router(
    calendar: Calendar, channels: ChannelService, posts: PostStore, inbox: CommandInbox
) -> APIRouter:
    router = APIRouter(prefix="/v1")

    # --- text counts -----------------------------------------------------------------------

    @router.post(
        "/text/count",
        tags=["posts"],
        summary="A text counted as a network counts it, against its limit",
        description=(
            "Body: {platform, text}. Answers {platform, length, limit, unit, over, "
            "too_many_bytes}: the same count that refuses a post that is too long (X weights "
            "URLs and wide characters, Bluesky counts graphemes and bytes). No side effects."
        ),
    )
    async def count(request: Request, principal: Reader) -> dict[str, Any]:
        body = await _body(request, TextToCount)
        try:
            counted = count_text(body.platform, body.text)
        except PostRuleError as exc:
            raise ApiError(422, exc.code, str(exc)) from exc
        return {
            "platform": counted.platform,
            "length": counted.length,
            "limit": counted.limit,
            "unit": counted.unit,
            "over": counted.over,
            "too_many_bytes": counted.too_many_bytes,
        }

    # --- channels ------------------------------------------------------------------------

    @router.post(
        "/channels",
        status_code=201,
        tags=["channels"],
        summary="Create a channel",
        description=(
            "Body: {id, platform, account, name, timezone (IANA), slots [{weekday, time}], "
            "rate_limit {max_posts, per_seconds}, approval_required, allow_self_approval, "
            "credential_ref (`settings:NAME`, a key of SMM_PUBLISHER_CREDENTIALS, or "
            "`env:SMM_CHANNEL_SECRET_<NAME>`), api_base_url (Mastodon, Bluesky PDS, webhook "
            "only; https unless to an allowed network), signing_secret_ref}. Secrets are "
            "referenced, never stored; a secret of a channel with its own api_base_url is "
            "that channel's alone, and a secret reference is bound for good to where it is "
            "first used (x, facebook, linkedin: the network; others: platform and "
            "api_base_url): naming it for another destination, here, in a PATCH or a reauth, "
            "is 409 `secret_in_use`. A channel whose secret is not set yet is created in "
            "state `needs_reauth`."
        ),
    )
    async def create_channel(request: Request, principal: ChannelWriter) -> dict[str, Any]:
        channel = await _body(request, ChannelIn)
        try:
            return public_channel(await channels.create(channel, principal.id))
        except DomainError as exc:
            raise _api_error(exc) from exc

    @router.get(
        "/channels",
        tags=["channels"],
        summary="Channels by id, paginated",
        description="Answer `{items, next_cursor}`; follow `next_cursor` (null on the last page).",
    )
    async def list_channels(
        principal: Reader,
        limit: PageLimit = 50,
        cursor: PageCursor = None,
    ) -> dict[str, Any]:
        after = decode_cursor(cursor, 1)[0] if cursor else None
        return page_of(await channels.page(after, limit + 1), limit, public_channel)

    @router.get("/channels/{channel_id}", tags=["channels"], summary="One channel")
    async def get_channel(channel_id: Identifier, principal: Reader) -> dict[str, Any]:
        try:
            return public_channel(await channels.get(channel_id))
        except DomainError as exc:
            raise _api_error(exc) from exc

    @router.patch(
        "/channels/{channel_id}",
        tags=["channels"],
        summary="Change a channel",
        description=(
            "Only the given fields change. A new api_base_url needs a new credential_ref "
            "(and signing_secret_ref) in the same request, else 409 `credential_required`."
        ),
    )
    async def patch_channel(
        channel_id: Identifier, request: Request, principal: ChannelWriter
    ) -> dict[str, Any]:
        patch = await _body(request, ChannelPatch)
        try:
            return public_channel(await channels.change(channel_id, patch))
        except DomainError as exc:
            raise _api_error(exc) from exc

    @router.post(
        "/channels/{channel_id}/reauth",
        tags=["channels"],
        summary="Set a parked channel active again",
        description=(
            "After the token behind `credential_ref` was renewed (or with a new "
            "`credential_ref`): the channel becomes `active` and its held posts are sent."
        ),
    )
    async def reauth_channel(
        channel_id: Identifier, request: Request, principal: ChannelWriter
    ) -> dict[str, Any]:
        body = await _body(request, ReauthIn)
        try:
            return public_channel(await channels.reauthorise(channel_id, body.credential_ref))
        except DomainError as exc:
            raise _api_error(exc) from exc

    # --- posts ---------------------------------------------------------------------------

    @router.post(
        "/posts",
        status_code=201,
        tags=["posts"],
        summary="Create a post, reply, draft or recurring series",
        description=(
            "Body: {post_id?, channel_id, text, media, publish_at | rrule | cron, timezone, "
            "in_reply_to_mention_id, requires_approval, idempotency_key, draft}. No timing: "
            "the channel's next free slot (a reply: at once). Text and media are checked "
            "against the network's limits now (422 with the reason). Repeating a request "
            "with the same post_id and content answers 200 with the existing post."
        ),
    )
    async def create_post(
        request: Request, response: Response, principal: PostWriter
    ) -> dict[str, Any]:
        body = await _body(request, PostIn)
        post_id = body.post_id or f"post-{_new_id()}"
        try:
            post, created = await calendar.create(
                PostRequest(
                    post_id=post_id,
                    channel_id=body.channel_id,
                    text=body.text,
                    media=list(body.media),
                    publish_at=body.publish_at,
                    rrule=body.rrule,
                    cron=body.cron,
                    timezone=body.timezone,
                    in_reply_to_mention_id=body.in_reply_to_mention_id,
                    requires_approval=body.requires_approval,
                    idempotency_key=body.idempotency_key,
                    draft=body.draft,
                    actor=principal.id,
                )
            )
        except DomainError as exc:
            raise _api_error(exc) from exc
        if not created:
            response.status_code = 200
        return public_post(post)

    @router.get(
        "/posts",
        tags=["posts"],
        summary="Posts, oldest created first, filtered and paginated",
        description="Follow `next_cursor` (null on the last page).",
    )
    async def list_posts(
        principal: Reader,
        status: Annotated[PostStatus | None, Query()] = None,
        channel_id: Annotated[Identifier | None, Query()] = None,
        series_id: Annotated[Identifier | None, Query()] = None,
        in_reply_to_mention_id: Annotated[Identifier | None, Query()] = None,
        scheduled_from: Annotated[datetime | None, Query()] = None,
        scheduled_to: Annotated[datetime | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: PageCursor = None,
    ) -> dict[str, Any]:
        query = PostQuery(
            status=status,
            channel_id=channel_id,
            series_id=series_id,
            in_reply_to_mention_id=in_reply_to_mention_id,
            scheduled_from=scheduled_from,
            scheduled_to=scheduled_to,
            limit=limit,
            cursor=cursor,
        )
        for name, value in (("scheduled_from", scheduled_from), ("scheduled_to", scheduled_to)):
            if value is not None and value.tzinfo is None:
                raise ApiError(422, "invalid_request", f"{name} needs a timezone offset")
        filters: dict[str, Any] = {}
        for field in ("status", "channel_id", "series_id", "in_reply_to_mention_id"):
            value = getattr(query, field)
            if value is not None:
                filters[field] = value
        window: dict[str, Any] = {}
        if scheduled_from is not None:
            window["$gte"] = scheduled_from
        if scheduled_to is not None:
            window["$lt"] = scheduled_to
        if window:
            filters["scheduled_for"] = window
        after = _decode_time_cursor(cursor) if cursor else None
        found = await posts.search(filters, after, limit + 1)
        page = page_of(found, limit, public_post, lambda p: [p["created_at"].isoformat(), p["_id"]])
        return {"posts": page["items"], "next_cursor": page["next_cursor"]}

    @router.get("/posts/{post_id}", tags=["posts"], summary="One post (or series)")
    async def get_post(post_id: Identifier, principal: Reader) -> dict[str, Any]:
        try:
            return public_post(await calendar.get(post_id))
        except DomainError as exc:
            raise _api_error(exc) from exc

    @router.patch(
        "/posts/{post_id}",
        tags=["posts"],
        summary="Edit a post until publishing starts",
        description=(
            "Body: {text?, media?, publish_at?, draft?, expected_version?}. 409 once publishing "
            "has started (or when `expected_version` is stale). On a channel that requires "
            "approval, changed content needs approval again."
        ),
    )
    async def patch_post(
        post_id: Identifier, request: Request, principal: PostWriter
    ) -> dict[str, Any]:
        patch = await _body(request, PostPatch)
        try:
            return public_post(await calendar.edit(post_id, patch, principal.id))
        except DomainError as exc:
            raise _api_error(exc) from exc

    @router.delete(
        "/posts/{post_id}",
        tags=["posts"],
        summary="Cancel a post (or a whole series) until publishing starts",
        description="The post is kept as `cancelled` and never sent; 409 once publishing started.",
    )
    async def cancel_post(
        post_id: Identifier,
        principal: PostWriter,
        reason: Annotated[str, Query(max_length=2_000)] = "",
    ) -> dict[str, Any]:
        try:
            return public_post(await calendar.cancel(post_id, reason, principal.id))
        except DomainError as exc:
            raise _api_error(exc) from exc

    @router.post(
        "/posts/{post_id}/approve",
        tags=["posts"],
        summary="Approve a post",
        description=(
            "By somebody other than the post's creator and everyone who changed its text or "
            "media since the last approval (403 `four_eyes`), unless the channel has "
            "`allow_self_approval`. 409 `version_conflict` if the post changed meanwhile."
        ),
    )
    async def approve_post(post_id: Identifier, principal: Approver) -> dict[str, Any]:
        try:
            return public_post(await calendar.approve(post_id, principal.id))
        except DomainError as exc:
            raise _api_error(exc) from exc

    @router.get(
        "/posts/{post_id}/commands",
        tags=["posts"],
        summary="Commands received for a post, oldest first, paginated",
        description="Answer `{items, next_cursor}`; follow `next_cursor` (null on the last page).",
    )
    async def post_commands(
        post_id: Identifier,
        principal: Reader,
        limit: PageLimit = 50,
        cursor: PageCursor = None,
    ) -> dict[str, Any]:
        after = _decode_time_cursor(cursor) if cursor else None
        found = await inbox.for_post(post_id, after, limit + 1)
        return page_of(
            found, limit, lambda c: c, lambda c: [c["received_at"].isoformat(), c["_id"]]
        )

    return router


def _new_id() -> str:
    import uuid

    return uuid.uuid4().hex
