"""Server-sent events: what is new for this user's brands, as ids only.

The page decides what to fetch (the "n new" bar, a badge), through fragment URLs that check
the session and brand again, so the stream itself carries nothing a user may not see beyond
an id of their own brands. The session is checked again every minute: a disabled user's
stream ends.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from services.console.live import LiveHub
from services.console.web import SignedIn, console_of, utc_now

router = APIRouter(include_in_schema=False)

HEARTBEAT_SECONDS = 15.0
RECHECK_SECONDS = 60.0


@router.get("/live/stream")
async def live_stream(viewer: SignedIn, brand: str | None = None) -> StreamingResponse:
    chosen = viewer.brand(brand).id if brand else None
    visible = frozenset(b.id for b in viewer.brands)
    hub: LiveHub = viewer.request.app.state.live
    console = console_of(viewer.request)

    async def still_allowed() -> bool:
        session = await console.sessions.find(viewer.session_id, utc_now())
        user = await console.users.get(viewer.user.email) if session else None
        return user is not None and not user.disabled

    async def events() -> AsyncIterator[str]:
        queue = hub.open()
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
                    if not await still_allowed():
                        yield "event: signed-out\ndata: {}\n\n"
                        return
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
