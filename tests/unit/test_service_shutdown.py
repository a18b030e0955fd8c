"""A service's shutdown always finishes: a step that hangs or fails is logged and left behind."""

from __future__ import annotations

import asyncio
import time

import pytest
from structlog.testing import capture_logs

from shared.service import ServiceRuntime
from shared.settings import Settings


def _runtime(shutdown_seconds: float) -> ServiceRuntime:
    # Broker and database clients are created but never connected: stopping them is quick.
    return ServiceRuntime(
        name="moderation", settings=Settings(shutdown_timeout_seconds=shutdown_seconds)
    )


async def test_a_hanging_or_failing_step_does_not_keep_the_others_from_running() -> None:
    runtime = _runtime(shutdown_seconds=1.5)
    ran: list[str] = []

    async def hangs() -> None:
        ran.append("hangs")
        await asyncio.Event().wait()  # never set

    async def fails() -> None:
        ran.append("fails")
        raise RuntimeError("flush failed")

    async def closes() -> None:
        ran.append("closes")

    for hook in (hangs, fails, closes):
        runtime.on_stop(hook)
    started = time.monotonic()
    with capture_logs() as logs:
        await runtime.stop()
    took = time.monotonic() - started
    assert ran == ["hangs", "fails", "closes"]
    assert 1.0 <= took < 5.0  # the budget, then at least a second for each later step at most
    events = {(entry["event"], entry.get("step", "")) for entry in logs}
    assert any(
        e == "shutdown step did not finish in time; left behind" and "hangs" in s for e, s in events
    )
    assert any(e == "shutdown step failed" and "fails" in s for e, s in events)
    assert ("service stopped", "") in events


async def test_background_tasks_are_cancelled_and_awaited() -> None:
    runtime = _runtime(shutdown_seconds=5)
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    runtime._running.append(asyncio.create_task(forever(), name="poller"))
    await asyncio.sleep(0)
    with capture_logs() as logs:
        await runtime.stop()
    assert cancelled.is_set()
    assert not [entry for entry in logs if entry["log_level"] == "error"]


async def test_a_cancelled_shutdown_stays_cancelled() -> None:
    runtime = _runtime(shutdown_seconds=30)
    runtime.on_stop(lambda: asyncio.Event().wait())
    stopping = asyncio.create_task(runtime.stop())
    await asyncio.sleep(0.05)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
