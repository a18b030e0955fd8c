"""Overview: a brand's KPI cards against the previous period, its charts and a crisis banner.

The page answers at once with skeletons; its figures region fetches the same URL as an htmx
fragment (block "figures"), which asks the metrics service once per figure set (this period's
and the previous period's KPIs, each group tracker's time series, the recent alerts): the
cards, the charts and their tables all show those answers, so they never disagree.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from babel.dates import format_date
from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from services.console.clients import ServiceError
from services.console.domain.cards import build_cards, humanise_duration
from services.console.domain.figures import (
    CRISIS_WITHIN,
    Bucket,
    active_crisis,
    buckets,
    platform_mix,
    share_of_voice,
)
from services.console.domain.periods import (
    Period,
    PeriodError,
    chart_window,
    parse_day,
    resolve_period,
)
from services.console.web import (
    Brand,
    SignedIn,
    Viewer,
    console_of,
    is_htmx,
    page_url,
    render,
    utc_now,
)
from shared.logging import get_logger

log = get_logger(__name__)
router = APIRouter(include_in_schema=False)

Day = Annotated[str | None, Query(max_length=10)]


def chosen_period(
    viewer: Viewer, period: str | None, first: str | None, last: str | None
) -> tuple[Period | None, str | None]:
    """The period asked for, or None and the reason in the user's language."""
    try:
        return (
            resolve_period(
                period, utc_now(), viewer.locale.time_zone, parse_day(first), parse_day(last)
            ),
            None,
        )
    except PeriodError as exc:
        return None, viewer.locale.format(exc.message, **exc.values)


def period_context(
    viewer: Viewer, period: Period | None, key: str | None, first: str | None, last: str | None
) -> dict[str, Any]:
    """What the header's period form shows (the custom days as asked, or as resolved)."""
    return {
        "period": period,
        "period_key": period.key if period else (key or "7d"),
        "period_from": first or "",
        "period_to": last or "",
    }


def _labels(viewer: Viewer, series: list[Bucket], show: str) -> list[str]:
    if show == "day":
        return [
            format_date(date.fromisoformat(b.label), "medium", locale=viewer.locale.language)
            for b in series
        ]
    return [viewer.locale.datetime(b.start, "short") for b in series]


def _duration(viewer: Viewer, seconds: float | None) -> str:
    parts = humanise_duration(seconds)
    return " ".join(f"{amount} {viewer.t(unit)}" for amount, unit in parts) or "\u2013"


async def _figures(viewer: Viewer, brand: Brand, period: Period) -> dict[str, Any]:
    """One set of metrics answers, and everything the cards and charts show from it."""
    metrics = console_of(viewer.request).clients.metrics
    actor = viewer.actor
    group = [b for b in viewer.brands if b.group == brand.group] or [brand]
    window = chart_window(period)
    previous = period.previous()
    now = utc_now()
    current_kpis, previous_kpis, *series = await asyncio.gather(
        metrics.kpis(actor, brand.id, period.start, period.end),
        metrics.kpis(actor, brand.id, previous.start, previous.end),
        *(
            metrics.timeseries(actor, member.id, window.start, window.end, window.fetch)
            for member in group
        ),
    )
    crisis: Any = None
    alerts_failed = False
    try:
        recent = await metrics.alerts(
            actor, limit=20, tracker_id=brand.id, since=now - CRISIS_WITHIN - timedelta(hours=1)
        )
        crisis = active_crisis(recent, brand.id, now)
    except ServiceError as exc:
        log.warning("alerts unavailable", error=str(exc))
        alerts_failed = True
    per_tracker = {
        member.id: buckets(answer.get("points", []), window.show, viewer.locale.time_zone)
        for member, answer in zip(group, series, strict=True)
    }
    mine = per_tracker[brand.id]
    shares = share_of_voice({k: [b.volume for b in v] for k, v in per_tracker.items()})
    labels = _labels(viewer, mine, window.show)
    platform_rows = platform_mix(current_kpis.get("platforms") or {})
    chart = {
        "labels": labels,
        "sentiment": {
            "positive": [b.positive for b in mine],
            "neutral": [b.neutral for b in mine],
            "negative": [b.negative for b in mine],
        },
        "share": [{"name": member.name, "values": shares[member.id]} for member in group],
        "platforms": platform_rows,
        "text": {
            "positive": viewer.t("positive"),
            "neutral": viewer.t("neutral"),
            "negative": viewer.t("negative"),
            "mentions": viewer.t("Mentions"),
            "share": viewer.t("Share of voice (%)"),
        },
    }
    cards = build_cards(current_kpis, previous_kpis)
    updated_at = datetime.fromisoformat(str(current_kpis.get("occurred_at") or now.isoformat()))
    minutes = max(0, int((now - updated_at).total_seconds() // 60))
    return {
        "kpis": current_kpis,
        "previous_kpis": previous_kpis,
        "cards": {card.key: card for card in cards},
        "durations": {c.key: _duration(viewer, c.value) for c in cards if c.kind == "duration"},
        "empty": not current_kpis.get("mention_volume") and not previous_kpis.get("mention_volume"),
        "chart": chart,
        "rows": list(zip(labels, mine, strict=True)),
        "platform_rows": platform_rows,
        "share_rows": [(label, [shares[m.id][i] for m in group]) for i, label in enumerate(labels)],
        "group": group,
        "window": window,
        "previous_period": previous,
        "crisis": crisis,
        "alerts_failed": alerts_failed,
        "updated_at": updated_at,
        "updated_minutes": minutes,
    }


@router.get("/overview", response_class=HTMLResponse)
async def overview_page(
    viewer: SignedIn,
    brand: Annotated[str | None, Query(max_length=256)] = None,
    period: Annotated[str | None, Query(max_length=10)] = None,
    first: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    last: Annotated[str | None, Query(alias="to", max_length=10)] = None,
) -> HTMLResponse:
    chosen = viewer.brand(brand)
    resolved, period_error = chosen_period(viewer, period, first, last)
    context: dict[str, Any] = {
        "screen": "overview",
        "brand": chosen,
        "period_error": period_error,
        "figures_url": page_url(viewer.request),
        "figures": None,
        "figures_error": period_error,
        **period_context(viewer, resolved, period, first, last),
    }
    status = 422 if period_error else 200
    if is_htmx(viewer.request) and resolved is not None:
        try:
            context["figures"] = await _figures(viewer, chosen, resolved)
        except ServiceError as exc:
            log.warning("overview figures failed", error=str(exc), brand=chosen.id)
            context["figures_error"] = viewer.locale.format(
                "The {service} service failed: {reason}", service=exc.service, reason=exc.message
            )
    return render(viewer, viewer.request, "overview.html", context, block="figures", status=status)
