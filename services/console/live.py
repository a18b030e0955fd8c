"""The live hub: events from Kafka fanned out to the browsers' server-sent event streams.

Each open stream has a small queue; a browser that cannot keep up loses the oldest events and
is told to refresh instead (its page then fetches what it missed), so one slow tab never holds
the consumer back.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """Something new: the kind, the item's id and the trackers it belongs to (ids only: the
    page fetches the fragment, so authorisation stays with the fragment's URL)."""

    kind: str
    item_id: str
    tracker_ids: tuple[str, ...]


#: Events a stream may have waiting before it is told to refresh instead.
QUEUE_SIZE = 200
OVERFLOW = LiveEvent("refresh", "", ())


#: Open streams one session may hold (a few tabs); more answer 429.
STREAMS_PER_SESSION = 6


class TooManyStreamsError(Exception):
    pass


class LiveHub:
    def __init__(self) -> None:
        self._streams: set[asyncio.Queue[LiveEvent]] = set()
        self._owners: dict[asyncio.Queue[LiveEvent], str] = {}
        self._per_owner: dict[str, int] = {}

    def open(self, owner: str) -> asyncio.Queue[LiveEvent]:
        """A new stream for `owner` (a session), at most `STREAMS_PER_SESSION` at once."""
        if self._per_owner.get(owner, 0) >= STREAMS_PER_SESSION:
            raise TooManyStreamsError
        queue: asyncio.Queue[LiveEvent] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._streams.add(queue)
        self._owners[queue] = owner
        self._per_owner[owner] = self._per_owner.get(owner, 0) + 1
        return queue

    def close(self, queue: asyncio.Queue[LiveEvent]) -> None:
        self._streams.discard(queue)
        owner = self._owners.pop(queue, None)
        if owner is not None:
            left = self._per_owner.get(owner, 1) - 1
            if left > 0:
                self._per_owner[owner] = left
            else:
                self._per_owner.pop(owner, None)

    @property
    def listeners(self) -> int:
        return len(self._streams)

    def publish(self, event: LiveEvent) -> None:
        for queue in list(self._streams):
            if queue.full():
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(OVERFLOW)
            else:
                queue.put_nowait(event)
