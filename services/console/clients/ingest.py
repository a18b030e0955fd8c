"""The ingest service's API, as the console uses it."""

from __future__ import annotations

from typing import Any

from services.console.clients.base import ServiceClient
from shared.auth import Actor


class IngestClient(ServiceClient):
    service = "ingest"

    async def trackers(self, actor: Actor | None) -> list[dict[str, Any]]:
        """Every tracker the caller may see (all of them for the console itself)."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = await self.get("/v1/trackers", actor, limit=200, cursor=cursor)
            items.extend(page.get("items", []))
            cursor = page.get("next_cursor")
            if not cursor or len(items) >= 10_000:
                return items
