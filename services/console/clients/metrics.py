"""The metrics service's API, as the console uses it."""

from __future__ import annotations

from typing import Any

from services.console.clients.base import ServiceClient
from shared.auth import Actor


class MetricsClient(ServiceClient):
    service = "metrics"

    async def alerts(self, actor: Actor, limit: int = 50) -> list[dict[str, Any]]:
        page = await self.get("/v1/alerts", actor, limit=limit)
        return list(page.get("alerts", []))
