"""Voices: the authors with the largest reach and the most mentions of a brand in a period,
with their sentiment mix and a link to their mentions (from metrics' `GET /v1/voices`, counted
like the KPIs, so a voice's reach is what they add to the overview's potential reach)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from services.console.clients import ServiceError
from services.console.domain.figures import sentiment_mix
from services.console.pages.overview import chosen_period, period_context
from services.console.web import SignedIn, console_of, page_url, render
from shared.logging import get_logger

log = get_logger(__name__)
router = APIRouter(include_in_schema=False)

#: Voices per list.
LIMIT = 20


def _with_mix(voices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**voice, "mix": sentiment_mix(voice.get("sentiment") or {})} for voice in voices]


@router.get("/voices", response_class=HTMLResponse)
async def voices_page(
    viewer: SignedIn,
    brand: Annotated[str | None, Query(max_length=256)] = None,
    period: Annotated[str | None, Query(max_length=10)] = None,
    first: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    last: Annotated[str | None, Query(alias="to", max_length=10)] = None,
) -> HTMLResponse:
    chosen = viewer.brand(brand)
    resolved, period_error = chosen_period(viewer, period, first, last)
    context: dict[str, Any] = {
        "screen": "voices",
        "brand": chosen,
        "period_error": period_error,
        "voices_url": page_url(viewer.request),
        "voices": None,
        "voices_error": period_error,
        **period_context(viewer, resolved, period, first, last),
    }
    if resolved is not None:
        metrics = console_of(viewer.request).clients.metrics
        try:
            answer = await metrics.voices(
                viewer.actor, chosen.id, resolved.start, resolved.end, LIMIT
            )
            context["voices"] = {
                "authors": int(answer.get("authors") or 0),
                "by_reach": _with_mix(list(answer.get("by_reach") or [])),
                "by_mentions": _with_mix(list(answer.get("by_mentions") or [])),
            }
        except ServiceError as exc:
            log.warning("voices failed", error=str(exc), brand=chosen.id)
            context["voices_error"] = viewer.locale.format(
                "The {service} service failed: {reason}", service=exc.service, reason=exc.message
            )
    return render(
        viewer,
        viewer.request,
        "voices.html",
        context,
        block="voices",
        status=422 if period_error else 200,
    )
