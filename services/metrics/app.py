"""Composition root of the metrics service: the one place real dependencies are wired."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from services.metrics import api, exporter, handlers, storage
from services.metrics.aggregates import MentionAggregates
from services.metrics.alerts import SpikeDetector
from services.metrics.kpis import KpiCalculator
from services.metrics.snapshots import SnapshotScheduler
from services.metrics.voices import VoiceBoard
from shared.http import create_http_app
from shared.service import ServiceRuntime
from shared.settings import Settings


def build_app(settings: Settings) -> FastAPI:
    runtime = ServiceRuntime(name="metrics", settings=settings, indexes=storage.INDEXES)
    exporter.start_counters_at_zero()
    aggregates = MentionAggregates(runtime.db)
    posts = storage.PostStore(runtime.db)
    engagement = storage.EngagementStore(runtime.db)
    trackers = storage.TrackerDirectory(runtime.db)
    alerts = storage.AlertStore(runtime.db)
    labels = storage.AuthorLabels(runtime.db)
    out = handlers.publishers(runtime)
    handlers.register(runtime, aggregates, posts, engagement, labels)

    kpis = KpiCalculator(aggregates, posts, engagement, trackers, settings.metrics_channel_trackers)
    scheduler = SnapshotScheduler(
        kpis,
        aggregates,
        trackers,
        storage.LeaseStore(runtime.db),
        out.kpis,
        interval_seconds=settings.metrics_kpi_interval_seconds,
        window=timedelta(hours=settings.metrics_kpi_window_hours),
    )
    spikes = SpikeDetector(
        aggregates, alerts, out.alerts, interval_seconds=settings.metrics_alert_interval_seconds
    )
    runtime.on_stop(aggregates.landed)
    runtime.add_background_task(
        "drop-orphan-journals", lambda: aggregates.drop_orphan_journals_every(600)
    )
    runtime.add_background_task("kpi-snapshots", scheduler.run)
    runtime.add_background_task("spike-alerts", spikes.run)
    return create_http_app(
        runtime,
        routers=[
            api.build_router(
                kpis,
                VoiceBoard(aggregates, labels),
                alerts,
                settings.metrics_max_window_days,
            )
        ],
        description="KPIs by event time: volume, reach, sentiment, share of voice, engagement.",
    )
