"""Metrics' HTTP API: KPI snapshots and time series for any window, and recent alerts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime

from services.metrics.domain.windows import UNITS, Unit, is_aligned
from services.metrics.kpis import KpiCalculator, Timeseries
from services.metrics.storage import AlertStore
from shared.auth import Principal, require_scope
from shared.errors import ApiError
from shared.events import Alert, KpiSnapshot

#: Most points one time series answer may hold (an hourly series of about 200 days).
MAX_POINTS = 5_000
IDENTIFIER = r"^[^$\s][^\s]*$"

Reader = Annotated[Principal, Depends(require_scope("read"))]
TrackerId = Annotated[
    str, Query(min_length=1, max_length=256, pattern=IDENTIFIER, description="Tracker id")
]
From = Annotated[
    AwareDatetime, Query(alias="from", description="Window start, RFC 3339 with offset")
]
To = Annotated[AwareDatetime, Query(alias="to", description="Window end (exclusive)")]


def _checked_window(start: datetime, end: datetime, max_days: int) -> None:
    if end <= start:
        raise ApiError(422, "invalid_window", "'to' must be after 'from'", {"from": str(start)})
    if end - start > timedelta(days=max_days):
        raise ApiError(
            422,
            "window_too_long",
            f"the window may span at most {max_days} days (SMM_METRICS_MAX_WINDOW_DAYS)",
            {"days": round((end - start) / timedelta(days=1), 2)},
        )


def build_router(kpis: KpiCalculator, alerts: AlertStore, max_window_days: int) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["kpis"])

    async def known_tracker(tracker_id: str) -> None:
        if not await kpis.tracker_exists(tracker_id):
            raise ApiError(404, "unknown_tracker", f"no tracker '{tracker_id}' and no data for it")

    @router.get(
        "/kpis",
        summary="A tracker's KPIs over [from, to), by mention event time",
        response_model=KpiSnapshot,
    )
    async def get_kpis(
        tracker_id: TrackerId, start: From, end: To, principal: Reader
    ) -> KpiSnapshot:
        _checked_window(start, end, max_window_days)
        await known_tracker(tracker_id)
        return await kpis.snapshot(tracker_id, start, end)

    @router.get(
        "/kpis/timeseries",
        summary="Mention KPIs per hour or day of [from, to)",
        response_model=Timeseries,
    )
    async def get_timeseries(
        tracker_id: TrackerId,
        start: From,
        end: To,
        principal: Reader,
        bucket: Annotated[Literal["hour", "day"], Query(description="hour or day (UTC)")] = "day",
    ) -> Timeseries:
        unit: Unit = bucket
        _checked_window(start, end, max_window_days)
        if not (is_aligned(start, unit) and is_aligned(end, unit)):
            raise ApiError(
                422,
                "unaligned_window",
                f"'from' and 'to' must be whole {unit}s (UTC) for bucket={unit}",
            )
        if (end - start) / UNITS[unit] > MAX_POINTS:
            raise ApiError(422, "too_many_points", f"at most {MAX_POINTS} buckets; use bucket=day")
        await known_tracker(tracker_id)
        return await kpis.timeseries(tracker_id, start, end, unit)

    @router.get("/alerts", summary="Alerts emitted, newest first")
    async def get_alerts(
        principal: Reader,
        tracker_id: Annotated[
            str | None, Query(min_length=1, max_length=256, pattern=IDENTIFIER)
        ] = None,
        since: Annotated[AwareDatetime | None, Query(description="window_start ≥ this")] = None,
        limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
    ) -> dict[str, Any]:
        documents = await alerts.recent(tracker_id, since, limit)
        return {
            "alerts": [
                Alert.model_validate(doc["alert"]).model_dump(mode="json") for doc in documents
            ]
        }

    return router
