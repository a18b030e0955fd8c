"""Publisher's HTTP API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from services.publisher.storage import CommandInbox
from shared.auth import Principal, require_scope


def build_router(inbox: CommandInbox) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["posts"])

    @router.get("/posts/{post_id}/commands", summary="Commands received for a post, oldest first")
    async def post_commands(
        post_id: str, principal: Annotated[Principal, Depends(require_scope("read"))]
    ) -> list[dict[str, Any]]:
        return await inbox.for_post(post_id)

    return router
