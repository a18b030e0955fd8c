"""Metrics' HTTP API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from services.metrics.storage import MentionFacts
from shared.auth import Principal, require_scope


def build_router(facts: MentionFacts) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["kpis"])

    @router.get("/mentions/count", summary="Classified mentions counted for a tracker")
    async def mention_count(
        tracker_id: Annotated[str, Query(min_length=1, max_length=256)],
        principal: Annotated[Principal, Depends(require_scope("read"))],
    ) -> dict[str, int | str]:
        return {"tracker_id": tracker_id, "mentions": await facts.count(tracker_id)}

    return router
