"""Moderation's HTTP API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from services.moderation.storage import MentionStore
from shared.auth import Principal, require_scope
from shared.errors import ApiError


def build_router(store: MentionStore) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["mentions"])

    @router.get("/mentions/{mention_id}", summary="One mention as moderation knows it")
    async def get_mention(
        mention_id: str, principal: Annotated[Principal, Depends(require_scope("read"))]
    ) -> dict[str, Any]:
        document = await store.get(mention_id)
        if document is None:
            raise ApiError(404, "not_found", f"no mention '{mention_id}'")
        mention: dict[str, Any] = document["mention"]
        return mention

    return router
