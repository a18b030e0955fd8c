"""The metrics service's API, as the console uses it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from services.console.clients.base import ServiceClient
from shared.auth import Actor


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


class MetricsClient(ServiceClient):
    service = "metrics"

    async def alerts(
        self,
        actor: Actor,
        limit: int = 50,
        tracker_id: str | None = None,
        since: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Alerts newest first (`since` is on `window_start`)."""
        page = await self.get(
            "/v1/alerts", actor, limit=limit, tracker_id=tracker_id, since=_iso(since)
        )
        return list(page.get("alerts", []))

    async def kpis(
        self, actor: Actor, tracker_id: str, start: datetime, end: datetime
    ) -> dict[str, Any]:
        """A KpiSnapshot of [start, end) (contract formulas; field names as on the wire)."""
        answer: dict[str, Any] = await self.get(
            "/v1/kpis", actor, tracker_id=tracker_id, **{"from": _iso(start), "to": _iso(end)}
        )
        return answer

    async def timeseries(
        self,
        actor: Actor,
        tracker_id: str,
        start: datetime,
        end: datetime,
        bucket: Literal["hour", "day"],
    ) -> dict[str, Any]:
        """`{tracker_id, bucket, from, to, points: [{start, mention_volume, potential_reach,
        sentiment, net_sentiment}]}`; start and end must be whole UTC buckets."""
        answer: dict[str, Any] = await self.get(
            "/v1/kpis/timeseries",
            actor,
            tracker_id=tracker_id,
            bucket=bucket,
            **{"from": _iso(start), "to": _iso(end)},
        )
        return answer

    async def voices(
        self, actor: Actor, tracker_id: str, start: datetime, end: datetime, limit: int = 10
    ) -> dict[str, Any]:
        """`{tracker_id, from, to, authors, by_reach: [voice], by_mentions: [voice]}`, a voice
        being {platform, author_id, handle, display_name, reach, mentions, sentiment,
        last_mention_at}."""
        answer: dict[str, Any] = await self.get(
            "/v1/voices",
            actor,
            tracker_id=tracker_id,
            limit=limit,
            **{"from": _iso(start), "to": _iso(end)},
        )
        return answer
