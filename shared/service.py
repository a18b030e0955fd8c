"""What every service process is made of: settings, broker, database and its life cycle.

A service's `app.py` builds a `ServiceRuntime`, registers its handlers on `runtime.broker`,
adds its routers and background tasks, and hands it to `shared.http.create_http_app`. Start-up
waits (with backoff, up to `SMM_STARTUP_TIMEOUT_SECONDS`) for Kafka and MongoDB, so the
services can start in any order beside their servers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from tenacity import AsyncRetrying, retry_if_not_exception_type, stop_after_delay, wait_exponential

from shared import __version__
from shared.kafka import build_broker, create_missing_topics
from shared.logging import get_logger
from shared.metrics import BUILD_INFO, DEPENDENCY_UP
from shared.mongo import Document, create_mongo_client, ensure_indexes, ping, service_database
from shared.settings import ServiceName, Settings
from shared.topics import TopicCreationError

log = get_logger(__name__)

BackgroundTask = Callable[[], Awaitable[None]]


@dataclass
class ServiceRuntime:
    """The real dependencies of one service process, wired once (the composition root)."""

    name: ServiceName
    settings: Settings
    indexes: Mapping[str, Sequence[IndexModel]] = field(default_factory=dict)
    broker: KafkaBroker = field(init=False)
    mongo: AsyncMongoClient[Document] = field(init=False)
    db: AsyncDatabase[Document] = field(init=False)
    _tasks: list[tuple[str, BackgroundTask]] = field(default_factory=list, init=False)
    _running: list[asyncio.Task[None]] = field(default_factory=list, init=False)
    _on_start: list[Callable[[], Awaitable[Any]]] = field(default_factory=list, init=False)
    _on_stop: list[Callable[[], Awaitable[Any]]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.broker = build_broker(self.settings, self.name)
        self.mongo = create_mongo_client(self.settings, self.name)
        self.db = service_database(self.mongo, self.settings)

    def add_background_task(self, name: str, task: BackgroundTask) -> None:
        """Run `task` for the life of the process; it is restarted if it crashes."""
        self._tasks.append((name, task))

    def on_start(self, hook: Callable[[], Awaitable[Any]]) -> None:
        """Run `hook` once the database is ready, before consumers start (retried on failure)."""
        self._on_start.append(hook)

    def on_stop(self, hook: Callable[[], Awaitable[Any]]) -> None:
        """Run `hook` at shutdown, after background tasks stopped, before the broker stops."""
        self._on_stop.append(hook)

    async def start(self) -> None:
        BUILD_INFO.labels(self.name, __version__).set(1)
        retrying = AsyncRetrying(
            stop=stop_after_delay(self.settings.startup_timeout_seconds),
            wait=wait_exponential(multiplier=0.2, max=5),
            retry=retry_if_not_exception_type(TopicCreationError),
            reraise=True,
            before_sleep=lambda state: log.warning(
                "waiting for dependencies",
                attempt=state.attempt_number,
                error=repr(state.outcome.exception() if state.outcome else None),
            ),
        )
        async for attempt in retrying:
            with attempt:
                await ping(self.mongo)
                await ensure_indexes(self.db, self.indexes)
                if self.settings.create_topics:
                    await create_missing_topics(self.settings)
        pending = list(self._on_start)
        async for attempt in retrying:
            with attempt:
                while pending:  # each hook once, in order, retried until it succeeds
                    await pending[0]()
                    pending.pop(0)
                await self.broker.start()
        tasks = [*self._tasks, ("readiness-probe", self._probe_dependencies)]
        for name, task in tasks:
            self._running.append(asyncio.create_task(self._supervise(name, task), name=name))
        log.info("service started", version=__version__)

    async def stop(self) -> None:
        """Stop background tasks, run the stop hooks, stop the broker, close the database.

        All within `SMM_SHUTDOWN_TIMEOUT_SECONDS`: a step that overruns or fails is logged by
        name and left behind, and the next one still runs.
        """
        deadline = asyncio.get_running_loop().time() + self.settings.shutdown_timeout_seconds
        for running in self._running:
            running.cancel()
        for running in self._running:
            await self._within(deadline, f"background task {running.get_name()}", running)
        self._running.clear()
        for hook in self._on_stop:
            await self._within(deadline, f"stop hook {getattr(hook, '__qualname__', hook)}", hook())
        await self._within(deadline, "broker stop", self.broker.stop())
        await self._within(deadline, "database close", self.mongo.close())
        log.info("service stopped")

    async def _within(self, deadline: float, step: str, work: Awaitable[Any]) -> None:
        """Await one shutdown step until `deadline` (at least a second); log if it overran."""
        left = max(1.0, deadline - asyncio.get_running_loop().time())
        try:
            await asyncio.wait_for(work, timeout=left)
        except asyncio.CancelledError:  # a background task we cancelled ended the usual way
            current = asyncio.current_task()
            if current is not None and current.cancelling():  # this shutdown itself is cancelled
                raise
        except TimeoutError:
            log.error("shutdown step did not finish in time; left behind", step=step)
        except Exception:  # one failing step must not keep the others from running
            log.exception("shutdown step failed", step=step)

    async def readiness(self) -> dict[str, str]:
        """Dependency → "ok" or the reason it is not reachable."""
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(ping(self.mongo), timeout=2)
            checks["mongodb"] = "ok"
        except Exception as exc:  # any failure means "not ready"; the reason is reported
            checks["mongodb"] = f"unreachable: {type(exc).__name__}"
        try:
            ok = await self.broker.ping(timeout=2)
            checks["kafka"] = "ok" if ok else "unreachable"
        except Exception as exc:  # as above
            checks["kafka"] = f"unreachable: {type(exc).__name__}"
        for dependency, state in checks.items():
            DEPENDENCY_UP.labels(dependency).set(1 if state == "ok" else 0)
        return checks

    async def _probe_dependencies(self, interval: float = 15.0) -> None:
        """Keep `smm_dependency_up` current even when nobody calls /readyz."""
        while True:
            await self.readiness()
            await asyncio.sleep(interval)

    async def _supervise(self, name: str, task: BackgroundTask) -> None:
        pause = 1.0
        while True:
            try:
                await task()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background task crashed; restarting", task=name)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 60.0)
