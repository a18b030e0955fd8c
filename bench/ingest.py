"""Ingest throughput: mentions/s accepted through `POST /v1/mentions` into Kafka.

Starts real Tansu and SecantusDB servers and the ingest service as its own process, creates
200 trackers, then posts batches of unique mentions from several concurrent clients and counts
what ingest accepted (acknowledged by Kafka with acks=all). In the same run it measures the raw
aiokafka produce rate of equally sized messages on the same broker, and prints the ratio.

    .venv/bin/python bench/ingest.py --mentions 100000 --batch 1000 --concurrency 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

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

TOKEN = "bench-token-0001"  # noqa: S105 - a local benchmark token
WORDS_DE = [
    "kaffee",
    "lieferung",
    "schnell",
    "freundlich",
    "bestellung",
    "heute",
    "wieder",
    "super",
    "leider",
    "akku",
]
WORDS_EN = [
    "coffee",
    "delivery",
    "fast",
    "friendly",
    "order",
    "today",
    "again",
    "great",
    "sadly",
    "battery",
    "app",
]


def tracker_bodies(count: int) -> list[dict[str, Any]]:
    """`count` trackers: brand words, a phrase, a hashtag and a NOT clause each."""
    bodies = []
    for n in range(count):
        brand = f"marke{n:03d}"
        bodies.append(
            {
                "id": f"brand-{n:03d}",
                "name": f"Marke {n}",
                "query": f'({brand} OR "{brand} shop" OR #{brand}) NOT "{brand} fake"',
                "languages": ["de", "en"],
                "group": f"group-{n % 20}",
            }
        )
    return bodies


def mention(rng: random.Random, n: int, trackers: int, now: datetime) -> dict[str, Any]:
    words = WORDS_DE if n % 2 else WORDS_EN
    text = " ".join(rng.choice(words) for _ in range(14))
    if n % 10:  # 90 % name a tracked brand
        text = f"{text} marke{rng.randrange(trackers):03d} {rng.choice(words)}"
    return {
        "platform": "x",
        "native_id": f"b{n}",
        "url": f"https://x.com/someone/status/{n}",
        "text": text,
        "lang": "de" if n % 2 else "en",
        "author": {"id": f"u{n % 5000}", "handle": f"@u{n % 5000}", "followers": n % 3000},
        "created_at": (now - timedelta(seconds=n % 600)).isoformat(),
        "metrics": {"likes": n % 7, "shares": 0, "comments": 1, "views": None},
    }


async def post_all(
    url: str, batches: list[list[dict[str, Any]]], concurrency: int
) -> dict[str, int]:
    totals = {"accepted": 0, "duplicates": 0, "unmatched": 0, "rejected": 0, "requests": 0}
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    bodies = {id(b): json.dumps(b).encode() for b in batches}

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            batch = queue.get_nowait()
            response = await client.post(
                "/v1/mentions",
                content=bodies[id(batch)],
                headers={"content-type": "application/json"},
            )
            response.raise_for_status()
            result = response.json()
            totals["accepted"] += result["accepted"]
            totals["duplicates"] += result["duplicates"]
            totals["unmatched"] += result["unmatched"]
            totals["rejected"] += len(result["rejected"])
            totals["requests"] += 1

    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return totals


async def raw_produce_rate(bootstrap: str, values: list[bytes], topic: str) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", compression_type="lz4", linger_ms=5
    )
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [
            await producer.send(topic, value, key=f"k{n}".encode())
            for n, value in enumerate(values)
        ]
        await asyncio.gather(*futures)
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    return len(values) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mentions", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--trackers", type=int, default=200)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    kafka = kafka_process("127.0.0.1", free_port(), workdir / "kafka.log")
    mongo = mongo_process("127.0.0.1", free_port(), ":memory:", workdir / "mongo.log")
    kafka.start()
    mongo.start()
    kafka.wait_port(30)
    mongo.wait_port(60)
    bootstrap = f"127.0.0.1:{kafka.port}"
    port = free_port()
    env = {
        **os.environ,
        **LOCAL_SERVICE_ENV,
        "SMM_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "SMM_MONGODB_URI": mongo_uri("127.0.0.1", mongo.port),
        "SMM_ADMIN_TOKEN": TOKEN,
        "SMM_INGEST_PORT": str(port),
        "SMM_TOPIC_PARTITIONS": "6",
        "SMM_LOG_LEVEL": "WARNING",
        "SMM_INGEST_MAX_BATCH": str(max(args.batch, 1000)),
    }
    log = workdir / "ingest.log"
    with log.open("wb") as out:
        ingest = subprocess.Popen(
            [sys.executable, "-m", "services.ingest"], env=env, stdout=out, stderr=out, cwd=ROOT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http_ready("ingest", url, ingest, log, 90)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            for body in tracker_bodies(args.trackers):
                client.post("/v1/trackers", json=body).raise_for_status()
        rng = random.Random(1)
        now = datetime.now(UTC)
        items = [mention(rng, n, args.trackers, now) for n in range(args.mentions)]
        batches = [items[i : i + args.batch] for i in range(0, len(items), args.batch)]
        asyncio.run(post_all(url, batches[:3], 1))  # warm-up: connections, topic metadata
        started = time.perf_counter()
        totals = asyncio.run(post_all(url, batches[3:], args.concurrency))
        elapsed = time.perf_counter() - started
        accepted_rate = totals["accepted"] / elapsed
        posted_rate = sum(len(b) for b in batches[3:]) / elapsed

        sample = [json.dumps({**m, "mention_id": f"x:{m['native_id']}"}).encode() for m in items]
        raw_rate = asyncio.run(raw_produce_rate(bootstrap, sample, "bench.raw-produce"))
    finally:
        ingest.terminate()
        ingest.wait(timeout=30)
        kafka.stop()
        mongo.stop()

    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}"
    )
    print(
        f"trackers: {args.trackers}; batches of {args.batch}; {args.concurrency} concurrent clients"
    )
    print(
        f"posted: {posted_rate:,.0f} mentions/s ({totals['requests']} requests in {elapsed:.1f} s)"
    )
    print(
        f"accepted into Kafka: {accepted_rate:,.0f} mentions/s "
        f"(accepted {totals['accepted']:,}, unmatched {totals['unmatched']:,}, "
        f"duplicates {totals['duplicates']:,}, rejected {totals['rejected']:,})"
    )
    print(f"raw aiokafka produce (acks=all, lz4): {raw_rate:,.0f} messages/s")
    print(f"ratio ingest/raw: {accepted_rate / raw_rate:.2f}")


if __name__ == "__main__":
    main()
