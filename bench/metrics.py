"""Metrics aggregation rate and KPI API latency.

Starts real Tansu and SecantusDB servers, writes N classified mentions (90 days, 100 trackers,
5 % late, 2 % redelivered, 10 % hidden as spam) to `smm.mentions.classified.v1`, then starts
the metrics service as its own process and measures how fast it aggregates them (one process;
from its first applied batch until every partition's applied offset reaches the end). Then it
times `GET /v1/kpis` for 1-, 30- and 90-day windows (unaligned, so hour buckets and sub-hour
edges are used too) and prints p50 and p99.

Two arrival orders, each on fresh servers: `time` (event-time order with the late ones mixed
in, as a live stream or a backfill delivers them: a batch touches few buckets) and `shuffled`
(a random order over the 90 days: a batch touches many buckets). Both are printed.

    .venv/bin/python bench/metrics.py --mentions 1000000 --order both
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from pymongo import MongoClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.local.servers import (  # noqa: E402
    LOCAL_SERVICE_ENV,
    free_port,
    kafka_process,
    mongo_process,
    mongo_uri,
    wait_http_ready,
)

TOPIC = "smm.mentions.classified.v1"
TOKEN = "bench-token-0001"  # noqa: S105 - a local benchmark token
PLATFORMS = ("x", "instagram", "facebook", "mastodon", "reddit", "bluesky", "news", "review")


def mention_value(rng: random.Random, n: int, created: datetime, trackers: int) -> bytes:
    """One ClassifiedMention as JSON (built directly: pydantic would dominate the set-up)."""
    sentiment = rng.choices(("positive", "neutral", "negative"), (4, 4, 2))[0]
    action = "review" if sentiment == "negative" else rng.choices(("approve", "hide"), (9, 1))[0]
    platform_name = rng.choice(PLATFORMS)
    tracker_ids = sorted(
        {f"brand-{rng.randrange(trackers):03d}" for _ in range(rng.choice((1, 1, 2)))}
    )
    now = datetime.now(UTC).isoformat()
    return json.dumps(
        {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "schema_version": 1,
            "occurred_at": now,
            "mention_id": f"{platform_name}:m{n}",
            "platform": platform_name,
            "native_id": f"m{n}",
            "text": "Kaffee heute wieder super, Lieferung schnell",
            "lang": "de",
            "author": {"id": f"a{rng.randrange(200_000)}", "followers": rng.randrange(50_000)},
            "created_at": created.isoformat(),
            "ingested_at": now,
            "source": "api",
            "tracker_ids": tracker_ids,
            "in_reply_to": None,
            "metrics": {},
            "classification": {
                "language": "de",
                "sentiment": sentiment,
                "sentiment_score": {"positive": 0.6, "neutral": 0.0, "negative": -0.6}[sentiment],
                "toxicity": 0.01,
                "spam": 0.95 if action == "hide" else 0.02,
                "intent": "other",
                "labels": [],
                "model_version": "bench",
            },
            "action": action,
            "priority": "normal",
        }
    ).encode()


def generate(count: int, trackers: int, now: datetime) -> list[tuple[bytes, bytes]]:
    rng = random.Random(1)
    start = now - timedelta(days=90)
    span = (now - start).total_seconds()
    messages: list[tuple[bytes, bytes]] = []
    for n in range(count):
        at = start + timedelta(seconds=span * n / count)
        if rng.random() < 0.05:  # late: up to three days old when it arrives
            at -= timedelta(seconds=rng.randrange(3 * 86_400))
        value = mention_value(rng, n, max(at, start), trackers)
        key = json.loads(value)["mention_id"].encode()
        messages.append((key, value))
        if rng.random() < 0.02:
            messages.append((key, value))  # redelivered
    return messages


async def produce(bootstrap: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        headers = [("content-type", b"application/json")]
        for offset in range(0, len(messages), 5_000):
            futures = [
                await producer.send(TOPIC, value, key=key, headers=headers)
                for key, value in messages[offset : offset + 5_000]
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


def wait_aggregated(db: Any, messages: int) -> tuple[float, float]:
    """(first batch applied, every message applied) as monotonic times, from the service's
    per-partition next offsets (one small document: polling it costs the database nothing)."""
    offsets = db["metrics_offsets"]
    first = None
    last_report = time.monotonic()
    while True:
        state = offsets.find_one({"_id": "mentions"}) or {"next": {}, "pending": {}}
        applied = sum(state["next"].values())  # claimed; done once nothing is pending
        now = time.monotonic()
        if applied and first is None:
            first = now
        if applied >= messages and not state["pending"]:
            assert first is not None
            return first, now
        if now - last_report > 30:
            print(f"  ... {applied:,} of {messages:,} messages applied", flush=True)
            last_report = now
        time.sleep(0.2)


def step_seconds(url: str) -> dict[str, float]:
    """Seconds the service spent in each aggregation step, summed (from its /metrics)."""
    text = httpx.get(url + "/metrics", timeout=30).text
    sums: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("smm_metrics_aggregation_step_seconds_sum{"):
            labels, value = line.rsplit(" ", 1)
            sums[labels.split('step="')[1].split('"')[0]] = float(value)
    return sums


def kpi_latencies(url: str, trackers: int, now: datetime, days: int, runs: int) -> list[float]:
    rng = random.Random(days)
    latencies = []
    headers = {"Authorization": f"Bearer {TOKEN}"}  # reads need a token
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        for _ in range(runs):
            end = now - timedelta(minutes=rng.randrange(0, 600), seconds=rng.randrange(60))
            params = {
                "tracker_id": f"brand-{rng.randrange(trackers):03d}",
                "from": (end - timedelta(days=days)).isoformat(),
                "to": end.isoformat(),
            }
            started = time.perf_counter()
            client.get("/v1/kpis", params=params).raise_for_status()
            latencies.append(time.perf_counter() - started)
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(
    order: str, messages: list[tuple[bytes, bytes]], args: argparse.Namespace, now: datetime
) -> dict[str, Any]:
    """One measured run on fresh servers: aggregation rate and KPI latencies."""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-metrics-{order}-"))
    kafka = kafka_process("127.0.0.1", free_port(), workdir / "kafka.log")
    mongo = mongo_process("127.0.0.1", free_port(), str(workdir / "db"), workdir / "mongo.log")
    kafka.start()
    mongo.start()
    kafka.wait_port(30)
    mongo.wait_port(60)
    bootstrap = f"127.0.0.1:{kafka.port}"
    uri = mongo_uri("127.0.0.1", mongo.port)
    port = free_port()
    env = {
        **os.environ,
        **LOCAL_SERVICE_ENV,
        "SMM_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "SMM_MONGODB_URI": uri,
        "SMM_METRICS_PORT": str(port),
        "SMM_ADMIN_TOKEN": TOKEN,
        "SMM_TOPIC_PARTITIONS": "6",
        "SMM_LOG_LEVEL": os.environ.get("SMM_LOG_LEVEL", "WARNING"),
        "SMM_METRICS_BATCH_SIZE": str(args.batch),
        # Scheduled snapshots would compete with the measured work; they run once at start.
        "SMM_METRICS_KPI_INTERVAL_SECONDS": "86400",
    }
    url = f"http://127.0.0.1:{port}"
    log = workdir / "metrics.log"
    metrics: subprocess.Popen[bytes] | None = None
    try:
        # Topics first (the service creates them), then the data, then the measured run.
        with log.open("wb") as out:
            metrics = subprocess.Popen(
                [sys.executable, "-m", "services.metrics"],
                env=env,
                stdout=out,
                stderr=out,
                cwd=ROOT,
            )
        wait_http_ready("metrics", url, metrics, log, 120)
        metrics.terminate()
        metrics.wait(timeout=30)
        started = time.perf_counter()
        asyncio.run(produce(bootstrap, messages))
        print(f"{order}: produced to Kafka in {time.perf_counter() - started:.0f} s", flush=True)

        with log.open("ab") as out:
            metrics = subprocess.Popen(
                [sys.executable, "-m", "services.metrics"],
                env=env,
                stdout=out,
                stderr=out,
                cwd=ROOT,
            )
        db: Any = MongoClient(uri)["smm"]
        first, done = wait_aggregated(db, len(messages))
        wait_http_ready("metrics", url, metrics, log, 120)
        steps = step_seconds(url)
        latencies = {
            days: kpi_latencies(url, args.trackers, now, days, args.queries) for days in (1, 30, 90)
        }
        return {
            "seconds": done - first,
            "rate": args.mentions / (done - first) if done > first else float("nan"),
            "mentions": len(
                {i for doc in db["metrics_directory"].find({}, {"ids": 1}) for i in doc["ids"]}
            ),
            "rollups": db["metrics_rollups"].estimated_document_count(),
            "latencies": latencies,
            "steps": steps,
        }
    finally:
        if metrics is not None:
            metrics.terminate()
            metrics.wait(timeout=30)
        kafka.stop()
        mongo.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mentions", type=int, default=1_000_000)
    parser.add_argument("--trackers", type=int, default=100)
    parser.add_argument("--queries", type=int, default=60, help="KPI requests per window size")
    parser.add_argument("--batch", type=int, default=10_000, help="SMM_METRICS_BATCH_SIZE")
    parser.add_argument("--order", choices=("time", "shuffled", "both"), default="both")
    args = parser.parse_args()

    now = datetime.now(UTC)
    started = time.perf_counter()
    in_time_order = generate(args.mentions, args.trackers, now)
    print(f"generated {len(in_time_order):,} messages in {time.perf_counter() - started:.0f} s")
    orders = ("time", "shuffled") if args.order == "both" else (args.order,)
    results = {}
    for order in orders:
        messages = list(in_time_order)
        if order == "shuffled":
            random.Random(2).shuffle(messages)
        results[order] = run(order, messages, args, now)

    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}"
    )
    print(
        f"mentions: {args.mentions:,} over 90 days, {args.trackers} trackers "
        f"({len(in_time_order) - args.mentions:,} redelivered); batches of {args.batch}"
    )
    for order, result in results.items():
        print(
            f"[{order} order] aggregated: {result['rate']:,.0f} mentions/s in one process "
            f"({result['seconds']:.0f} s); {result['mentions']:,} distinct mentions listed, "
            f"{result['rollups']:,} tracker-day rollups"
        )
        steps = ", ".join(f"{name} {seconds:.1f}" for name, seconds in result["steps"].items())
        print(f"[{order} order] seconds per aggregation step, summed: {steps}")
        for days, latencies in result["latencies"].items():
            print(
                f"[{order} order] GET /v1/kpis {days:>2}-day window: "
                f"p50 {1000 * statistics.median(latencies):.0f} ms, "
                f"p99 {1000 * percentile(latencies, 0.99):.0f} ms ({len(latencies)} requests)"
            )


if __name__ == "__main__":
    main()
