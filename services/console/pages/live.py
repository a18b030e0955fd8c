"""Server-sent events: what is new for this user's brands, as ids only.

The page decides what to fetch (the "n new" bar, a badge), through fragment URLs that check
the session and brand again, so the stream itself carries nothing a user may not see beyond
an id of their own brands. The session and the user's brands are checked again every
minute: a disabled user's stream ends, a brand taken away stops being announced, and an open
tab does not keep an idle session alive. A session holds a few streams at most.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from services.console.live import LiveHub, TooManyStreamsError
from services.console.web import PageError, SignedIn, console_of, utc_now

router = APIRouter(include_in_schema=False)

HEARTBEAT_SECONDS = 15.0
RECHECK_SECONDS = 60.0


@router.get("/live/stream")
async def live_stream(viewer: SignedIn, brand: str | None = None) -> StreamingResponse:
    chosen = viewer.brand(brand).id if brand else None
    visible = frozenset(b.id for b in viewer.brands)
    hub: LiveHub = viewer.request.app.state.live
    console = console_of(viewer.request)
    try:
        queue = hub.open(viewer.session.csrf_token)  # per session, without the session id
    except TooManyStreamsError:
        raise PageError(429, viewer.t("Too many open live streams; close some tabs.")) from None

    async def still_allowed() -> frozenset[str] | None:
        """The user's brands now, or None when the session or the user is gone."""
        session = await console.sessions.peek(viewer.session_id, utc_now())
        user = await console.users.get(viewer.user.email) if session else None
        if user is None or user.disabled:
            return None
        return frozenset(b.id for b in await console.brands.of(user))

    async def events() -> AsyncIterator[str]:
        nonlocal visible
        loop = asyncio.get_running_loop()
        checked = loop.time()
        try:
            yield "retry: 5000\n\n"
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=HEARTBEAT_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    event = None
                if loop.time() - checked >= RECHECK_SECONDS:
                    now_visible = await still_allowed()
                    if now_visible is None or (chosen is not None and chosen not in now_visible):
                        yield "event: signed-out\ndata: {}\n\n"
                        return
                    visible = now_visible
                    checked = loop.time()
                if event is None:
                    continue
                if event.kind == "refresh":
                    yield "event: refresh\ndata: {}\n\n"
                    continue
                mine = [t for t in event.tracker_ids if t in visible]
                if not mine or (chosen is not None and chosen not in mine):
                    continue
                data = json.dumps({"id": event.item_id, "trackers": mine})
                yield f"event: {event.kind}\ndata: {data}\n\n"
        finally:
            hub.close(queue)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
