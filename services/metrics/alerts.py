"""Negative-spike alerts: checked on a schedule, emitted once per tracker and hour.

Per tracker, when the negative mentions of the current (or just finished) hour reach
max(10, mean + 3 sigma of the previous 168 hourly counts), an Alert goes to `smm.alerts.v1`. The
alert is first stored under the key tracker|hour (a unique `_id`), then published, then marked
sent: replicas and restarts never emit it twice, and one whose emitter died before Kafka had
it is published again, with the same `event_id`, by whoever finds it pending later.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from services.metrics import exporter
from services.metrics.aggregates import MentionAggregates
from services.metrics.domain.formulas import SPIKE_BASELINE_HOURS, SPIKE_MIN_COUNT, spike_threshold
from services.metrics.domain.windows import HOUR, floor_to
from services.metrics.storage import AlertStore
from shared.events import Alert, utc_now
from shared.kafka import EventPublisher
from shared.logging import get_logger

log = get_logger(__name__)

#: A pending alert older than this was abandoned by its emitter and is published again.
PENDING_GRACE = timedelta(seconds=30)


def alert_key(tracker_id: str, hour: datetime) -> str:
    return f"negative_spike|{tracker_id}|{hour.strftime('%Y-%m-%dT%H')}"


class SpikeDetector:
    def __init__(
        self,
        aggregates: MentionAggregates,
        alerts: AlertStore,
        publisher: EventPublisher,
        interval_seconds: float,
    ) -> None:
        self._aggregates = aggregates
        self._alerts = alerts
        self._publisher = publisher
        self._interval = interval_seconds

    async def run(self) -> None:
        """The background task: check, then sleep, for the life of the process."""
        while True:
            await self.check()
            await asyncio.sleep(self._interval)

    async def check(self, now: datetime | None = None) -> list[Alert]:
        """Check the current and the previous hour of every tracker; emit what is new."""
        hour = floor_to(now or utc_now(), "hour")
        emitted = [alert async for alert in self._spikes(hour - HOUR, hour + HOUR)]
        for document in await self._alerts.take_stale_pending(PENDING_GRACE):
            await self._emit(document["_id"], Alert.model_validate(document["alert"]))
        return emitted

    async def _spikes(self, first_hour: datetime, end: datetime) -> AsyncIterator[Alert]:
        candidates = await self._aggregates.hourly_negatives(first_hour, end)
        for tracker_id, by_hour in candidates.items():
            hours = [h for h, count in by_hour.items() if count >= SPIKE_MIN_COUNT]
            for hour in sorted(hours):
                baseline_start = hour - SPIKE_BASELINE_HOURS * HOUR
                history = await self._aggregates.hourly_negatives(
                    baseline_start, hour, [tracker_id]
                )
                known = history.get(tracker_id, {})
                previous = [
                    known.get(baseline_start + i * HOUR, 0) for i in range(SPIKE_BASELINE_HOURS)
                ]
                threshold = spike_threshold(previous)
                observed = by_hour[hour]
                if observed < threshold:
                    continue
                alert = Alert(
                    tracker_id=tracker_id,
                    kind="negative_spike",
                    severity="critical" if observed >= 2 * threshold else "warning",
                    message=(
                        f"{observed} negative mentions for {tracker_id} in the hour from "
                        f"{hour:%Y-%m-%d %H:00} UTC (threshold {threshold:.1f})"
                    ),
                    window_start=hour,
                    window_end=hour + HOUR,
                    observed=float(observed),
                    threshold=threshold,
                    details={"baseline_hours": SPIKE_BASELINE_HOURS},
                )
                key = alert_key(tracker_id, hour)
                stored = {
                    "tracker_id": tracker_id,
                    "kind": alert.kind,
                    "window_start": hour,
                    "alert": alert.model_dump(mode="json"),
                }
                if await self._alerts.claim(key, stored):
                    await self._emit(key, alert)
                    yield alert

    async def _emit(self, key: str, alert: Alert) -> None:
        await self._publisher.publish(alert, key=alert.tracker_id)
        await self._alerts.mark_sent(key)
        exporter.ALERTS.labels(alert.kind, alert.tracker_id).inc()
        log.warning("alert emitted", tracker_id=alert.tracker_id, kind=alert.kind, key=key)
