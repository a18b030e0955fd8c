"""Scheduled KPI snapshots on `smm.kpi.v1` and the KPI gauges for Prometheus.

Every replica refreshes its gauges each interval (so any replica Prometheus scrapes shows
current values); only the replica holding the interval's lease publishes the snapshots, so
subscribers get one snapshot per active tracker and interval. Active trackers are those
defined in ingest and those with mentions in the window.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from datetime import timedelta

from services.metrics import exporter
from services.metrics.aggregates import MentionAggregates
from services.metrics.kpis import KpiCalculator
from services.metrics.storage import LeaseStore, TrackerDirectory
from shared.events import KpiSnapshot, utc_now
from shared.kafka import EventPublisher
from shared.logging import get_logger

log = get_logger(__name__)
LEASE = "kpi-snapshots"


class SnapshotScheduler:
    def __init__(
        self,
        kpis: KpiCalculator,
        aggregates: MentionAggregates,
        trackers: TrackerDirectory,
        leases: LeaseStore,
        publisher: EventPublisher,
        interval_seconds: float,
        window: timedelta,
    ) -> None:
        self._kpis = kpis
        self._aggregates = aggregates
        self._trackers = trackers
        self._leases = leases
        self._publisher = publisher
        self._interval = interval_seconds
        self._window = window
        self._holder = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"

    async def run(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(self._interval)

    async def tick(self) -> list[KpiSnapshot]:
        """Compute every active tracker's snapshot; publish them when we hold the lease."""
        end = utc_now().replace(microsecond=0)
        start = end - self._window
        active = await self._trackers.all_ids() | await self._aggregates.trackers_with_data(
            start, end
        )
        snapshots = [await self._kpis.snapshot(t, start, end) for t in sorted(active)]
        for snapshot in snapshots:
            exporter.show_snapshot(snapshot)
        exporter.KPI_REFRESHED.set_to_current_time()
        interval = timedelta(seconds=self._interval)
        if snapshots and await self._leases.acquire(LEASE, self._holder, interval):
            await self._publisher.publish_many(snapshots, key=lambda s: s.tracker_id)
            log.info("kpi snapshots published", trackers=len(snapshots))
        return snapshots
