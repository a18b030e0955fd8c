"""The metrics exporter's counters exist at 0 before their first increment.

Prometheus' increase() reads a series that first appears at 3 as no increase at all, so a
tracker's first mentions would be missing from the "Mention volume" panel.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.metrics import exporter
from shared.events import KpiSnapshot
from shared.metrics import registry


def _value(name: str, labels: dict[str, str]) -> float | None:
    return registry.get_sample_value(name, labels)


def test_platform_and_post_counters_start_at_zero() -> None:
    exporter.start_counters_at_zero()
    assert _value("smm_mentions_hidden_total", {"platform": "threads"}) is not None
    labels = {"platform": "tiktok", "sentiment": "negative"}
    assert _value("smm_mentions_by_platform_total", labels) is not None
    assert _value("smm_posts_total", {"platform": "linkedin", "status": "failed"}) is not None


def test_a_trackers_counters_start_at_zero_with_its_first_kpi_refresh() -> None:
    tracker = "exporter-zero-test"
    labels = {"tracker": tracker, "sentiment": "positive"}
    assert _value("smm_mentions_total", labels) is None
    now = datetime.now(UTC)
    snapshot = KpiSnapshot.model_validate(
        {
            "tracker_id": tracker,
            "from": now - timedelta(hours=1),
            "to": now,
        }
    )
    exporter.show_snapshot(snapshot)
    assert _value("smm_mentions_total", labels) == 0.0
