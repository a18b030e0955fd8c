"""Alerts: spike and urgent alerts of the user's brands, newest first, linked to their mentions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from services.console.web import SignedIn, render

router = APIRouter(include_in_schema=False)


@router.get("/alerts", response_class=HTMLResponse)
async def alerts_page(viewer: SignedIn, brand: str | None = None) -> HTMLResponse:
    chosen = viewer.brand(brand) if brand else None
    found = await viewer.request.app.state.console.clients.metrics.alerts(viewer.actor, limit=100)
    visible = {b.id for b in viewer.brands}
    items: list[dict[str, Any]] = [
        alert
        for alert in found
        if alert.get("tracker_id") in visible
        and (chosen is None or alert["tracker_id"] == chosen.id)
    ]
    names = {b.id: b.name for b in viewer.brands}
    return render(
        viewer,
        viewer.request,
        "alerts.html",
        {"alerts": items, "brand": chosen, "brand_names": names, "screen": "alerts"},
        block="list",
    )
