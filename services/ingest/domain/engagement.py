"""When to poll a published post's counters: often at first, then ever more rarely.

Engagement comes in fast in the first hours and slowly afterwards, so polling every post at a
fixed rate would waste API quota on old posts and miss the early curve of new ones.
"""

from __future__ import annotations

from datetime import datetime, timedelta

#: Pause before poll n (the last one repeats until the window closes).
POLL_STEPS: tuple[timedelta, ...] = tuple(
    timedelta(minutes=m) for m in (1, 5, 15, 30, 60, 120, 240, 480, 720, 1440)
)


def next_poll_at(
    published_at: datetime, polls_done: int, now: datetime, window: timedelta
) -> datetime | None:
    """The next poll after `polls_done` polls, or None once the window after publishing ends."""
    step = POLL_STEPS[min(polls_done, len(POLL_STEPS) - 1)]
    due = max(now, published_at) + step if polls_done else published_at + step
    if due > published_at + window:
        return None
    return due
