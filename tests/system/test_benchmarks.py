"""The pipeline and metrics benchmarks run, in a short form, in every test run.

Their numbers are not checked here (a benchmark is not a timed test); what is checked is that
they still start the whole stack, push load through it, finish, and print every measurement.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"[\d,.]+"


def run(script: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SMM_LOG_LEVEL": "WARNING"},
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_pipeline_benchmark_short() -> None:
    out = run(
        "pipeline.py",
        *("--mentions", "400", "--batch", "100", "--rate", "100", "--seconds", "2"),
        *("--runs", "2"),
    )
    assert re.search(
        rf"sustained, ingest -> moderation -> metrics: {NUMBER} mentions/s "
        rf"\({NUMBER} counted; runs: {NUMBER}, {NUMBER}\)",
        out,
    ), out
    cpu = re.search(r"CPU per mention in the sustained runs, µs: (.*); total [\d,]+", out)
    assert cpu, out
    for process in ("ingest", "moderation", "publisher", "metrics", "kafka", "mongodb", "load"):
        assert re.search(rf"\b{process} {NUMBER}", cpu.group(1)), out
    assert re.search(rf"p50 {NUMBER} s, p99 {NUMBER} s", out), out
    assert re.search(rf"raw aiokafka consume \+ produce on the same broker: {NUMBER}", out), out
    assert re.search(rf"ratio pipeline/raw: {NUMBER}", out), out


def test_metrics_benchmark_short() -> None:
    out = run(
        "metrics.py", "--mentions", "3000", "--trackers", "5", "--queries", "3", "--order", "both"
    )
    for order in ("time", "shuffled"):
        assert re.search(rf"\[{order} order\] aggregated: {NUMBER} mentions/s", out), out
        steps = re.search(rf"\[{order} order\] seconds per aggregation step, summed: (.*)", out)
        assert steps, out
        for step in ("rollups_read", "plan", "journal", "claim", "directory", "rollups_write"):
            assert re.search(rf"\b{step} {NUMBER}", steps.group(1)), out
        assert re.search(rf"\[{order} order\] GET /v1/kpis 30-day window: p50 {NUMBER} ms", out), (
            out
        )


def test_console_benchmark_short() -> None:
    out = run("console.py", "--mentions", "1000", "--requests", "3", "--warmup", "0")
    assert re.search(rf"loaded: {NUMBER} mentions in {NUMBER} s \({NUMBER} mentions/s", out), out
    pages = (
        "overview 7d, page",
        "overview 7d, figures",
        "overview 30d, figures",
        "mentions, no filter",
        "mentions, negative",
        "mentions, search 'refund'",
        "inbox, queue and first item",
        "inbox, another item",
        "inbox, queue fragment",
        "metrics GET /v1/kpis 30d",
        "metrics GET /v1/kpis/timeseries 30d hourly",
        "moderation GET /v1/mentions (no filter)",
        "moderation GET /v1/review",
        "moderation GET /v1/review/counts",
    )
    for page in pages:
        line = re.search(
            rf"^{re.escape(page)}: p50 {NUMBER} ms, p95 {NUMBER} ms, p99 {NUMBER} ms, "
            rf"max {NUMBER} ms \(\d+ requests; 200: \d+; .*server mean {NUMBER} ms",
            out,
            re.MULTILINE,
        )
        assert line, (page, out)
