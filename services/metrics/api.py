"""Metrics' HTTP API: KPI snapshots, time series and voices for any window, and recent alerts.

A user acting through the console sees only their brands: another tracker answers 404 as if
it did not exist, and the alerts list leaves other trackers' out."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime

from services.metrics.domain.windows import UNITS, Unit, is_aligned
from services.metrics.kpis import KpiCalculator, Timeseries
from services.metrics.storage import AlertStore
from services.metrics.voices import VoiceBoard, Voices
from shared.auth import Principal, require_scope
from shared.errors import ApiError
from shared.events import Alert, KpiSnapshot

#: Most points one time series answer may hold (an hourly series of about 200 days).
MAX_POINTS = 5_000
#: Most voices per list of one `/v1/voices` answer.
MAX_VOICES = 50
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


def _visible(principal: Principal, tracker_id: str) -> None:
    """404 for a tracker outside the caller's brands, the same whether it exists or not."""
    if principal.brands is not None and tracker_id not in principal.brands:
        raise ApiError(404, "not_found", "no such tracker", {"tracker_id": tracker_id})


def build_router(
    kpis: KpiCalculator, voices: VoiceBoard, alerts: AlertStore, max_window_days: int
) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["kpis"])

    async def known_tracker(tracker_id: str, principal: Principal) -> None:
        _visible(principal, tracker_id)
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
        await known_tracker(tracker_id, principal)
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
        await known_tracker(tracker_id, principal)
        return await kpis.timeseries(tracker_id, start, end, unit)

    @router.get(
        "/voices",
        summary="A tracker's authors with the largest reach and the most mentions in [from, to)",
        description=(
            "Counted like the KPIs: distinct mentions matched to the tracker by `created_at`, "
            "spam hidden automatically left out; an author is platform + author id, their "
            "reach their largest `followers` in the window (what they add to "
            "`potential_reach`). Two rankings of `limit` voices each."
        ),
        response_model=Voices,
    )
    async def get_voices(
        tracker_id: TrackerId,
        start: From,
        end: To,
        principal: Reader,
        limit: Annotated[int, Query(ge=1, le=MAX_VOICES, description="voices per list")] = 10,
    ) -> Voices:
        _checked_window(start, end, max_window_days)
        await known_tracker(tracker_id, principal)
        return await voices.voices(tracker_id, start, end, limit)

    @router.get("/alerts", summary="Alerts emitted, newest first")
    async def get_alerts(
        principal: Reader,
        tracker_id: Annotated[
            str | None, Query(min_length=1, max_length=256, pattern=IDENTIFIER)
        ] = None,
        since: Annotated[AwareDatetime | None, Query(description="window_start ≥ this")] = None,
        limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
    ) -> dict[str, Any]:
        wanted = None if tracker_id is None else [tracker_id]
        if principal.brands is not None:
            wanted = principal.visible(wanted if wanted is not None else sorted(principal.brands))
            if not wanted:
                return {"alerts": []}
        documents = await alerts.recent(wanted, since, limit)
        return {
            "alerts": [
                Alert.model_validate(doc["alert"]).model_dump(mode="json") for doc in documents
            ]
        }

    return router
