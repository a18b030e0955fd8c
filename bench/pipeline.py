"""The whole pipeline: mentions/s from `POST /v1/mentions` to being counted in the KPIs.

Starts real Tansu and SecantusDB servers and the four services as processes, creates the
trackers, then:

1. **Sustained rate**: posts `--mentions` mentions as fast as ingest takes them and measures
   until the metrics service counts every one of them (`GET /v1/kpis`, mention volume summed
   over the trackers): mentions/s from the first acceptance to the last one counted.
2. **Latency at a fixed rate**: posts `--rate` mentions/s for `--seconds`, in batches every
   0.1 s, and for each batch the time from its acceptance (202) until the counted total covers
   it; prints p50 and p99.
3. **Raw baseline** in the same run: a plain aiokafka consume-and-produce loop on the same
   broker, and the ratio.

With `--runs N` the sustained rate is measured N times in a row (fresh mentions each time) and
the median is reported beside every run: on a shared 2-core machine one run can be 20 % off.
For the sustained runs it also prints the CPU time each process used per mention (from
`/proc/<pid>/stat`, Linux only): where the machine's two cores go.

    .venv/bin/python bench/pipeline.py --mentions 20000 --rate 1000 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.local.servers import (  # noqa: E402
    LOCAL_SERVICE_ENV,
    cpu_seconds,
    free_port,
    kafka_process,
    mongo_process,
    mongo_uri,
)

TOKEN = "bench-token-0001"  # noqa: S105 - a local benchmark token
SERVICES = ("ingest", "moderation", "publisher", "metrics")
BRANDS = [f"marke{n:02d}" for n in range(10)]
PHRASES_DE = ["liefert schnell", "Kaffee schmeckt gut", "Bestellung kam heute", "nettes Team"]
PHRASES_EN = ["fast delivery", "tastes great", "order arrived today", "friendly staff"]


def mention(n: int, now: datetime) -> dict[str, Any]:
    german = n % 2 == 0
    phrase = (PHRASES_DE if german else PHRASES_EN)[n % 4]
    return {
        "platform": "x",
        "native_id": f"p{n}",
        "text": f"{BRANDS[n % len(BRANDS)]} {phrase} #{n % 97}",
        "lang": "de" if german else "en",
        "author": {"id": f"u{n % 3000}", "followers": n % 5000},
        "created_at": (now - timedelta(seconds=n % 300)).isoformat(),
    }


class Pipeline:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.kafka = kafka_process("127.0.0.1", free_port(), workdir / "kafka.log")
        self.mongo = mongo_process("127.0.0.1", free_port(), ":memory:", workdir / "mongo.log")
        self.ports = {name: free_port() for name in SERVICES}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka.port}"

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self) -> None:
        self.kafka.start()
        self.mongo.start()
        self.kafka.wait_port(30)
        self.mongo.wait_port(60)
        env = {
            **os.environ,
            **LOCAL_SERVICE_ENV,
            "SMM_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "SMM_MONGODB_URI": mongo_uri("127.0.0.1", self.mongo.port),
            "SMM_ADMIN_TOKEN": TOKEN,
            "SMM_LOG_LEVEL": "WARNING",
            "SMM_TOPIC_PARTITIONS": "6",
            **{f"SMM_{name.upper()}_PORT": str(port) for name, port in self.ports.items()},
        }
        for name in SERVICES:
            with (self.workdir / f"{name}.log").open("wb") as log:
                self.processes[name] = subprocess.Popen(
                    [sys.executable, "-m", f"services.{name}"],
                    env=env,
                    stdout=log,
                    stderr=log,
                    cwd=ROOT,
                )
        deadline = time.monotonic() + 120
        for name in SERVICES:
            while True:
                if self.processes[name].poll() is not None:
                    raise SystemExit(f"{name} exited; see {self.workdir / (name + '.log')}")
                try:
                    if httpx.get(self.url(name) + "/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"{name} not ready")
                time.sleep(0.3)

    def pids(self) -> dict[str, int]:
        """Every process of the pipeline, by name (this benchmark process is `load`)."""
        pids = {name: process.pid for name, process in self.processes.items()}
        for name, server in (("kafka", self.kafka), ("mongodb", self.mongo)):
            if server.pid is not None:
                pids[name] = server.pid
        return {**pids, "load": os.getpid()}

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.kafka.stop()
        self.mongo.stop()


def cpu_by_process(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds each process has used so far (empty where /proc is absent)."""
    seconds: dict[str, float] = {}
    for name, pid in pids.items():
        with contextlib.suppress(OSError):
            seconds[name] = cpu_seconds(pid)
    return seconds


class Counter:
    """The number of bench mentions the metrics service has counted, over all trackers.

    Read from its `smm_mentions_total` counters (they move once a batch's aggregates are
    written), not from `GET /v1/kpis`: polling ten trackers' KPIs twenty times a second would
    load the service being measured. `kpi_total` checks the KPI API agrees at the end."""

    def __init__(self, client: httpx.AsyncClient, metrics_url: str, since: datetime) -> None:
        self.client = client
        self.metrics_url = metrics_url
        self.window = {
            "from": (since - timedelta(hours=1)).isoformat(),
            "to": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        }

    async def total(self) -> int:
        text = (await self.client.get(self.metrics_url + "/metrics")).text
        return sum(
            int(float(line.rsplit(" ", 1)[1]))
            for line in text.splitlines()
            if line.startswith("smm_mentions_total{")
            and any(f'tracker="{brand}"' in line for brand in BRANDS)
        )

    async def kpi_total(self) -> int:
        answers = await asyncio.gather(
            *(
                self.client.get(
                    self.metrics_url + "/v1/kpis", params={"tracker_id": b, **self.window}
                )
                for b in BRANDS
            )
        )
        return sum(a.json()["mention_volume"] for a in answers if a.status_code == 200)


async def post(client: httpx.AsyncClient, url: str, batch: list[dict[str, Any]]) -> int:
    for _ in range(100):
        response = await client.post(url + "/v1/mentions", content=json.dumps(batch).encode())
        if response.status_code == 202:
            # The ids are unique, so a duplicate can only be an earlier attempt of this batch
            # that ingest emitted before answering 503: it is on its way all the same.
            result = response.json()
            emitted: int = result["accepted"] + result["duplicates"]
            return emitted
        await asyncio.sleep(0.5)
    raise SystemExit(f"ingest refused a batch: {response.status_code} {response.text[:200]}")


async def sustained(pipe: Pipeline, count: int, offset: int, batch: int) -> tuple[float, int]:
    now = datetime.now(UTC)
    items = [mention(offset + n, now) for n in range(count)]
    headers = {"Authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    async with httpx.AsyncClient(headers=headers, timeout=120) as client:
        counter = Counter(client, pipe.url("metrics"), now)
        before = await counter.total()
        started = time.perf_counter()
        batches = [items[i : i + batch] for i in range(0, count, batch)]
        queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        for b in batches:
            queue.put_nowait(b)
        accepted = 0

        async def worker() -> None:
            nonlocal accepted
            while not queue.empty():
                # Not `accepted += await ...`: that reads `accepted` before awaiting, so the
                # four workers would overwrite each other's counts.
                emitted = await post(client, pipe.url("ingest"), queue.get_nowait())
                accepted += emitted

        await asyncio.gather(*(worker() for _ in range(4)))
        while await counter.total() - before < accepted:  # noqa: ASYNC110 - polling an API
            await asyncio.sleep(0.2)
        elapsed = time.perf_counter() - started
        counted = await counter.kpi_total()
        if counted < accepted:  # the KPI API must show what the counters say
            raise SystemExit(f"KPI API counts {counted:,} of {accepted:,} mentions")
    return accepted / elapsed, accepted


async def latency(
    pipe: Pipeline, rate: int, seconds: float, offset: int
) -> tuple[list[float], float]:
    """Per batch: seconds from its 202 until the counted total covers it."""
    now = datetime.now(UTC)
    per_tick = max(1, rate // 10)
    ticks = int(seconds * 10)
    headers = {"Authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    async with httpx.AsyncClient(headers=headers, timeout=120) as client:
        counter = Counter(client, pipe.url("metrics"), now)
        base = await counter.total()
        accepted_at: list[tuple[int, float]] = []  # (cumulative accepted, when)
        cumulative = 0
        done = asyncio.Event()

        async def send(items: list[dict[str, Any]]) -> None:
            nonlocal cumulative
            emitted = await post(client, pipe.url("ingest"), items)
            cumulative += emitted
            # Counted once the total covers every batch accepted so far (an upper bound).
            accepted_at.append((cumulative, time.perf_counter()))

        async def produce() -> None:
            # Open loop: a batch every 100 ms whether or not earlier ones were answered, so a
            # slow answer does not lower the offered rate.
            start = time.perf_counter()
            sending = []
            for tick in range(ticks):
                first = offset + tick * per_tick
                items = [mention(first + k, now) for k in range(per_tick)]
                sending.append(asyncio.create_task(send(items)))
                await asyncio.sleep(max(0.0, start + (tick + 1) / 10 - time.perf_counter()))
            await asyncio.gather(*sending)
            done.set()

        counted_at: dict[int, float] = {}

        async def watch() -> None:
            while True:
                total = await counter.total() - base
                stamp = time.perf_counter()
                for index, (needed, _) in enumerate(accepted_at):
                    if index not in counted_at and total >= needed:
                        counted_at[index] = stamp
                if done.is_set() and len(counted_at) == len(accepted_at):
                    return
                await asyncio.sleep(0.05)

        started = time.perf_counter()
        await asyncio.gather(produce(), watch())
        achieved = cumulative / (time.perf_counter() - started)
    return [counted_at[i] - at for i, (_, at) in enumerate(accepted_at)], achieved


async def raw_baseline(bootstrap: str, count: int) -> float:
    """aiokafka alone: produce `count` messages, then consume them and produce each onward."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type="lz4")
    await producer.start()
    value = json.dumps(mention(0, datetime.now(UTC))).encode()
    try:
        futures = [
            await producer.send("bench.raw-in", value, key=f"k{n}".encode()) for n in range(count)
        ]
        await asyncio.gather(*futures)
        consumer = AIOKafkaConsumer(
            "bench.raw-in",
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            group_id="bench-raw",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            moved = 0
            started = None
            while moved < count:
                batch = await consumer.getmany(timeout_ms=1000, max_records=1000)
                if started is None and batch:
                    started = time.perf_counter()
                sends = [
                    await producer.send("bench.raw-out", record.value, key=record.key)
                    for records in batch.values()
                    for record in records
                ]
                await asyncio.gather(*sends)
                await consumer.commit()
                moved += len(sends)
            assert started is not None
            return count / (time.perf_counter() - started)
        finally:
            await consumer.stop()
    finally:
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mentions", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rate", type=int, default=1_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=1, help="sustained runs (median reported)")
    args = parser.parse_args()

    pipe = Pipeline(Path(tempfile.mkdtemp(prefix="bench-pipeline-")))
    pipe.start()
    try:
        with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as client:
            for brand in BRANDS:
                body = {"id": brand, "name": brand, "query": brand, "group": "bench"}
                client.post(pipe.url("ingest") + "/v1/trackers", json=body).raise_for_status()
        asyncio.run(sustained(pipe, 1_000, 10_000_000, args.batch))  # warm-up: groups, models
        runs: list[tuple[float, int]] = []
        cpu_before = cpu_by_process(pipe.pids())
        for run in range(args.runs):
            runs.append(asyncio.run(sustained(pipe, args.mentions, run * 1_000_000, args.batch)))
        cpu_used = {
            name: used - cpu_before.get(name, used)
            for name, used in cpu_by_process(pipe.pids()).items()
        }
        delays, achieved = asyncio.run(latency(pipe, args.rate, args.seconds, 20_000_000))
        raw = asyncio.run(raw_baseline(pipe.bootstrap, args.mentions))
    finally:
        pipe.stop()
    delays.sort()
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}"
    )
    rate = statistics.median(r for r, _ in runs)
    accepted = sum(a for _, a in runs)
    each = f"; runs: {', '.join(f'{r:,.0f}' for r, _ in runs)}" if len(runs) > 1 else ""
    print(
        f"sustained, ingest -> moderation -> metrics: {rate:,.0f} mentions/s "
        f"({accepted:,} counted{each})"
    )
    if cpu_used:
        per_mention = {name: used / accepted * 1e6 for name, used in cpu_used.items()}
        listed = ", ".join(f"{name} {us:,.0f}" for name, us in per_mention.items())
        print(
            f"CPU per mention in the sustained runs, µs: {listed}; "
            f"total {sum(per_mention.values()):,.0f}"
        )
    print(
        f"latency at {achieved:,.0f} mentions/s for {args.seconds:g} s, acceptance -> counted: "
        f"p50 {statistics.median(delays):.2f} s, p99 {p99:.2f} s, max {delays[-1]:.2f} s"
    )
    print(f"raw aiokafka consume + produce on the same broker: {raw:,.0f} messages/s")
    print(f"ratio pipeline/raw: {rate / raw:.3f}")


if __name__ == "__main__":
    main()
