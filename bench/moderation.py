"""Moderation throughput: mentions classified per second by one process, end to end.

Starts real Tansu and SecantusDB servers, fills `smm.mentions.raw.v1` with unique German and
English mentions (complaints, questions, praise, spam, a few urgent ones), then starts the
moderation service as its own process. It consumes, classifies, routes, writes MongoDB in
batches and produces classified mentions, automatic decisions and alerts (acks=all). The rate
is taken from the Kafka timestamps of the first and last classified mention, so the consumer
group's start-up wait is not counted; the service process's CPU time is printed beside it.

In the same run it measures a plain aiokafka loop that only consumes the same mentions and
produces each one again (acks=all, lz4): the ceiling of any consumer written in Python here.

    .venv/bin/python bench/moderation.py --mentions 50000
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

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.kafka import create_missing_topics  # noqa: E402
from shared.local.servers import (  # noqa: E402
    LOCAL_SERVICE_ENV,
    cpu_seconds,
    free_port,
    kafka_process,
    mongo_process,
    mongo_uri,
    wait_http_ready,
)
from shared.settings import Settings  # noqa: E402
from shared.topics import MENTIONS_CLASSIFIED, MENTIONS_RAW  # noqa: E402

TOKEN = "bench-token-0001"  # noqa: S105 - a local benchmark token
PARTITIONS = 6

DE = [
    "Die Lieferung von {b} kam heute pünktlich, der Kaffee schmeckt richtig gut",
    "Schon wieder ist meine Bestellung bei {b} kaputt angekommen, echt ärgerlich",
    "Weiß jemand, wann {b} den neuen Hafer Latte wieder im Laden hat?",
    "Was kostet eigentlich das Abo von {b}? Ich würde gern bestellen",
    "Mega Service bei {b}, danke an das Team in der Filiale am Markt",
    "GRATIS GEWINNEN bei {b}!!! Jetzt klicken http://gewinn.example/{n}",
    "Der Akku der {b} Mühle hält nicht mal eine Woche, so enttäuschend",
]
EN = [
    "Just tried the new {b} cold brew and honestly it is great",
    "My {b} order arrived broken again, really disappointed with the support",
    "Does anyone know if {b} ships to Austria?",
    "Thanks {b} for the quick replacement, excellent service",
    "Win a free {b} voucher now!!! click http://prize.example/{n} free free",
    "The {b} app keeps crashing when I pay, terrible update",
]
URGENT = "Rückruf bei {b}? Mein Kind ist nach dem Müsli verletzt, wir gehen zum Anwalt"


def mention(rng: random.Random, n: int, now: datetime) -> bytes:
    brand = f"marke{n % 50:02d}"
    german = n % 2 == 0
    template = URGENT if n % 500 == 0 else rng.choice(DE if german else EN)
    text = template.format(b=brand, n=n) + f" #{rng.randrange(10_000)}"
    created = now - timedelta(seconds=n % 3_600)
    body: dict[str, Any] = {
        "mention_id": f"x:b{n}",
        "platform": "x",
        "native_id": f"b{n}",
        "url": f"https://x.com/someone/status/{n}",
        "text": text,
        "lang": "de" if german else "en",
        "author": {
            "id": f"u{n % 5000}",
            "handle": f"@u{n % 5000}",
            "followers": 50_000 if n % 97 == 0 else n % 3_000,
        },
        "created_at": created.isoformat(),
        "ingested_at": now.isoformat(),
        "source": "api",
        "tracker_ids": [f"brand-{n % 50:02d}"],
        "metrics": {"likes": n % 7, "shares": 0, "comments": 1, "views": None},
    }
    return json.dumps(body).encode()


async def fill(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", compression_type="lz4", linger_ms=5
    )
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value, key=f"x:b{n}".encode())
            for n, value in enumerate(values)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def count_and_span(
    bootstrap: str, topic: str, expected: int, within_seconds: float
) -> tuple[int, float]:
    """Read `topic` until `expected` records; return (count, seconds from first to last).

    The span runs from the first to the last record's Kafka timestamp, so the consumer
    group's start-up (about 5 s on Tansu) is not counted.
    """
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    count, first, last = 0, float("inf"), 0.0
    deadline = time.monotonic() + within_seconds
    try:
        while count < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=5_000)
            for records in batch.values():
                for record in records:
                    count += 1
                    first = min(first, record.timestamp / 1000)
                    last = max(last, record.timestamp / 1000)
    finally:
        await consumer.stop()
    return count, max(last - first, 1e-9)


async def raw_consume_produce_rate(bootstrap: str, source: str, count: int) -> float:
    """Consume `count` records and produce each one again: the plain aiokafka ceiling."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", compression_type="lz4", linger_ms=5
    )
    await consumer.start()
    await producer.start()
    consumer.assign([TopicPartition(source, p) for p in range(PARTITIONS)])
    done = 0
    started = time.perf_counter()
    try:
        while done < count:
            batch = await consumer.getmany(timeout_ms=1_000, max_records=500)
            futures = [
                await producer.send("bench.raw-copy", record.value, key=record.key)
                for records in batch.values()
                for record in records
            ]
            await asyncio.gather(*futures)
            done += len(futures)
    finally:
        elapsed = time.perf_counter() - started
        await producer.stop()
        await consumer.stop()
    return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mentions", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500, help="SMM_MODERATION_BATCH_SIZE")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-moderation-"))
    kafka = kafka_process("127.0.0.1", free_port(), workdir / "kafka.log")
    mongo = mongo_process("127.0.0.1", free_port(), ":memory:", workdir / "mongo.log")
    kafka.start()
    mongo.start()
    kafka.wait_port(30)
    mongo.wait_port(60)
    bootstrap = f"127.0.0.1:{kafka.port}"
    server_pids = {
        name: pid
        for name, pid in (("kafka (Tansu)", kafka.pid), ("MongoDB (SecantusDB)", mongo.pid))
        if pid is not None
    }
    port = free_port()
    env = {
        **os.environ,
        **LOCAL_SERVICE_ENV,
        "SMM_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "SMM_MONGODB_URI": mongo_uri("127.0.0.1", mongo.port),
        "SMM_ADMIN_TOKEN": TOKEN,
        "SMM_MODERATION_PORT": str(port),
        "SMM_TOPIC_PARTITIONS": str(PARTITIONS),
        "SMM_LOG_LEVEL": "WARNING",
        "SMM_MODERATION_BATCH_SIZE": str(args.batch),
    }
    log = workdir / "moderation.log"
    url = f"http://127.0.0.1:{port}"
    rng = random.Random(1)
    now = datetime.now(UTC)
    values = [mention(rng, n, now) for n in range(args.mentions)]
    service: subprocess.Popen[bytes] | None = None
    try:
        settings = Settings(
            kafka_bootstrap_servers=bootstrap,
            topic_partitions=PARTITIONS,
            kafka_enable_idempotence=False,
        )
        asyncio.run(create_missing_topics(settings))
        asyncio.run(fill(bootstrap, MENTIONS_RAW, values))
        with log.open("wb") as out:
            service = subprocess.Popen(
                [sys.executable, "-m", "services.moderation"],
                env=env,
                stdout=out,
                stderr=out,
                cwd=ROOT,
            )
        wait_http_ready("moderation", url, service, log, 120)
        cpu_before = cpu_seconds(service.pid)
        servers_before = {name: cpu_seconds(pid) for name, pid in server_pids.items()}
        wall_before = time.perf_counter()
        count, span = asyncio.run(
            count_and_span(bootstrap, MENTIONS_CLASSIFIED, args.mentions, within_seconds=900)
        )
        wall = time.perf_counter() - wall_before
        cpu = cpu_seconds(service.pid) - cpu_before
        servers_cpu = {n: cpu_seconds(pid) - servers_before[n] for n, pid in server_pids.items()}
        load = os.getloadavg()[0]
        raw_rate = asyncio.run(raw_consume_produce_rate(bootstrap, MENTIONS_RAW, args.mentions))
    finally:
        if service is not None:
            service.terminate()
            service.wait(timeout=30)
        kafka.stop()
        mongo.stop()

    rate = count / span
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}"
    )
    print(f"mentions: {args.mentions:,}; consumer batches of up to {args.batch}")
    print(
        f"moderation end to end (consume, classify, route, MongoDB, produce): {rate:,.0f} "
        f"mentions/s ({count:,} classified in {span:.1f} s)"
    )
    print(
        f"moderation process CPU: {cpu:.1f} s for {count:,} mentions = "
        f"{count / max(cpu, 1e-9):,.0f} mentions per CPU-second "
        f"(wall incl. group start-up {wall:.1f} s)"
    )
    for name, seconds in servers_cpu.items():
        print(f"{name} CPU meanwhile: {seconds:.1f} s")
    print(f"load average (1 min) at the end: {load:.1f} on {os.cpu_count()} cores")
    print(f"raw aiokafka consume + produce (acks=all, lz4): {raw_rate:,.0f} messages/s")
    print(f"ratio moderation/raw: {rate / raw_rate:.2f}")


if __name__ == "__main__":
    main()
