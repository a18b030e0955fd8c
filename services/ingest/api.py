"""Ingest's HTTP API: the batch intake of mentions."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, TypeAdapter, ValidationError

from services.ingest.domain.normalise import MentionIn, to_mention
from services.ingest.handlers import IngestPublishers
from shared.auth import Principal, require_scope
from shared.errors import ApiError
from shared.events import Mention, utc_now
from shared.logging import get_logger
from shared.settings import Settings

log = get_logger(__name__)
_item = TypeAdapter(MentionIn)


class RejectedItem(BaseModel):
    index: int
    reason: str


class IntakeResult(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[RejectedItem]
    mention_ids: list[str]


def _reason(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'item'}: {err['msg']}"
        for err in exc.errors(include_url=False)[:10]
    )


def _items_of(body: Any) -> list[Any]:
    if isinstance(body, dict) and isinstance(body.get("mentions"), list):
        return list(body["mentions"])
    if isinstance(body, list):
        return body
    raise ApiError(
        400, "bad_request", "body must be a JSON array of mentions or {'mentions': [...]}"
    )


def build_router(settings: Settings, publishers: IngestPublishers) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["mentions"])
    max_batch = settings.ingest_max_batch

    @router.post(
        "/mentions",
        status_code=202,
        response_model=IntakeResult,
        summary=f"Accept a batch of up to {max_batch} mentions",
        description=(
            "Answers 202 once every accepted mention is acknowledged by Kafka (acks=all); "
            "503 when the broker cannot be reached, so the caller retries."
        ),
    )
    async def post_mentions(
        request: Request, principal: Annotated[Principal, Depends(require_scope("mentions:write"))]
    ) -> IntakeResult:
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise ApiError(400, "bad_request", f"body is not valid JSON: {exc}") from exc
        items = _items_of(body)
        if len(items) > max_batch:
            raise ApiError(
                413, "batch_too_large", f"at most {max_batch} mentions per request", len(items)
            )
        now = utc_now()
        mentions: list[Mention] = []
        rejected: list[RejectedItem] = []
        for index, raw in enumerate(items):
            try:
                item = _item.validate_python(raw)
            except ValidationError as exc:
                rejected.append(RejectedItem(index=index, reason=_reason(exc)))
                continue
            mentions.append(to_mention(item, source="api", ingested_at=now, tracker_ids=[]))
        try:
            await asyncio.wait_for(
                asyncio.gather(
                    *(publishers.raw_mentions.publish(m, key=m.mention_id) for m in mentions)
                ),
                timeout=settings.publish_timeout_seconds,
            )
        except Exception as exc:  # broker unreachable or refusing: the caller must retry
            log.error("publishing mentions failed", error=repr(exc), count=len(mentions))
            raise ApiError(
                503,
                "broker_unavailable",
                "mentions could not be written to Kafka; retry the request",
                headers={"Retry-After": "5"},
            ) from exc
        log.info("mentions accepted", accepted=len(mentions), rejected=len(rejected))
        return IntakeResult(
            accepted=len(mentions),
            duplicates=0,
            rejected=rejected,
            mention_ids=[m.mention_id for m in mentions],
        )

    return router
