"""Publisher: dispatch lateness, duplicates and lost posts with a replica killed mid-run.

Starts real Tansu and SecantusDB servers, a fake network server (tests/fakes/platforms.py,
its own process) and N publisher replicas (`python -m services.publisher`, each its own
process). Creates 50 channels (Mastodon, Bluesky and signed-webhook channels, all pointing at
the fake), inserts the posts directly into the database, due evenly over `--window` seconds,
kills one replica with SIGKILL halfway through, waits until every post is final, and prints
dispatch lateness (network arrival - due time) p50/p99/max, posts sent, duplicates and lost.

    .venv/bin/python bench/publisher.py --posts 100000 --window 180
    .venv/bin/python bench/publisher.py --posts 5000 --window 60   # smaller machines
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pymongo import AsyncMongoClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.publisher.adapters.bluesky import record_key  # noqa: E402
from services.publisher.storage import CHANNELS, INDEXES, POSTS  # noqa: E402
from shared.local.servers import (  # noqa: E402
    LOCAL_SERVICE_ENV,
    free_port,
    kafka_process,
    mongo_process,
    mongo_uri,
)
from shared.mongo import ensure_indexes  # noqa: E402
from tests.fakes.platforms import WEBHOOK_SECRET  # noqa: E402

TOKEN = "bench-token-0001"  # noqa: S105 - a local benchmark token
DATABASE = "smm_bench"
PLATFORMS = ("mastodon", "bluesky", "generic")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def channel_documents(count: int, fake: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    channels: list[dict[str, Any]] = []
    for i in range(count):
        kind = PLATFORMS[i % len(PLATFORMS)]
        base = f"{fake}/webhook/hook" if kind == "generic" else f"{fake}/{kind}"
        channels.append(
            {
                "_id": f"bench-{kind}-{i}",
                "platform": kind,
                "account": f"did:plc:bench{i}" if kind == "bluesky" else f"acct{i}",
                "name": f"Bench {i}",
                "timezone": "Europe/Berlin",
                "slots": [],
                "rate_limit": None,
                "approval_required": False,
                "credential_ref": "env:SMM_CHANNEL_SECRET_BENCH_TOKEN",
                "signing_secret_ref": "env:SMM_CHANNEL_SECRET_BENCH_HOOK"
                if kind == "generic"
                else None,
                "api_base_url": base,
                "state": "active",
                "paused_until": None,
                "created_at": now,
                "updated_at": now,
            }
        )
    return channels


def post_documents(
    count: int, channels: list[dict[str, Any]], start: datetime, window: float
) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    posts = []
    for n in range(count):
        channel = channels[n % len(channels)]
        due = start + timedelta(seconds=window * n / count)
        post_id = f"bench-{n:07d}"
        posts.append(
            {
                "_id": post_id,
                "kind": "post",
                "channel_id": channel["_id"],
                "platform": channel["platform"],
                "text": f"Wochenangebot Nummer {n}: frisch geröstet, fair gehandelt.",
                "media": [],
                "timezone": "Europe/Berlin",
                "idempotency_key": post_id,
                "status": "scheduled",
                "scheduled_for": due,
                "due_at": due,
                "created_at": now,
                "updated_at": now,
                "created_by": "bench",
                "attempt": 0,
                "version": 1,
            }
        )
    return posts


def network_key(post: dict[str, Any]) -> str:
    """The key the fake records a post under (see tests/fakes/platforms.py)."""
    if post["platform"] == "bluesky":
        return record_key(post["_id"], post["scheduled_for"])
    return str(post["_id"])


def start_replica(
    index: int, env: dict[str, str], workdir: Path
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    log = (workdir / f"replica-{index}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "services.publisher"],
        env={**env, "SMM_PUBLISHER_PORT": str(port)},
        stdout=log,
        stderr=log,
        cwd=ROOT,
    )
    return process, port


def start_fake(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.platforms", "--port", str(port)],
        cwd=ROOT,
        stdout=(workdir / "fake.log").open("wb"),
        stderr=subprocess.STDOUT,
    )


def wait_http(url: str, process: subprocess.Popen[bytes], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited early")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{what} not ready")


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-publisher-"))
    kafka = kafka_process("127.0.0.1", free_port(), workdir / "kafka.log")
    mongo = mongo_process("127.0.0.1", free_port(), ":memory:", workdir / "mongo.log")
    kafka.start()
    mongo.start()
    fake_port = free_port()
    fake = start_fake(fake_port, workdir)
    replicas: list[subprocess.Popen[bytes]] = []
    client: AsyncMongoClient[dict[str, Any]] | None = None
    try:
        kafka.wait_port(30)
        mongo.wait_port(60)
        fake_url = f"http://127.0.0.1:{fake_port}"
        wait_http(f"{fake_url}/_fake/created", fake, "fake networks")
        uri = mongo_uri("127.0.0.1", mongo.port)
        client = AsyncMongoClient(uri, tz_aware=True)
        db = client[DATABASE]
        await ensure_indexes(db, INDEXES)
        channels = channel_documents(args.channels, fake_url)
        await db[CHANNELS].insert_many(channels)

        lead = args.lead if args.lead is not None else 40 + args.posts / 1_500
        start = datetime.now(UTC) + timedelta(seconds=lead)
        posts = post_documents(args.posts, channels, start, args.window)
        inserting = time.perf_counter()
        for offset in range(0, len(posts), 5_000):
            await db[POSTS].insert_many(posts[offset : offset + 5_000], ordered=False)
        insert_seconds = time.perf_counter() - inserting

        env = {
            **os.environ,
            **LOCAL_SERVICE_ENV,
            "SMM_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{kafka.port}",
            "SMM_MONGODB_URI": uri,
            "SMM_MONGODB_DATABASE": DATABASE,
            "SMM_ADMIN_TOKEN": TOKEN,
            "SMM_LOG_LEVEL": "WARNING",
            "SMM_TOPIC_PARTITIONS": "6",
            "SMM_PUBLISHER_LEASE_SECONDS": str(args.lease),
            "SMM_PUBLISHER_SEND_TIMEOUT_SECONDS": str(min(5.0, args.lease / 3)),
            "SMM_PUBLISHER_CLAIM_BATCH": str(args.batch),
            "SMM_PUBLISHER_SEND_CONCURRENCY": str(args.concurrency),
            "SMM_PUBLISHER_POLL_INTERVAL_SECONDS": str(args.poll),
            "SMM_PUBLISHER_CLAIM_AHEAD_SECONDS": str(args.ahead),
            "SMM_CHANNEL_SECRET_BENCH_TOKEN": "bench-network-token",
            "SMM_CHANNEL_SECRET_BENCH_HOOK": WEBHOOK_SECRET,
        }
        ports = []
        for index in range(args.replicas):
            process, port = start_replica(index, env, workdir)
            replicas.append(process)
            ports.append(port)
        for process, port in zip(replicas, ports, strict=True):
            wait_http(f"http://127.0.0.1:{port}/readyz", process, "publisher replica")
        ready_margin = (start - datetime.now(UTC)).total_seconds()
        if ready_margin < 0:
            print(f"warning: setup overran the start by {-ready_margin:.1f}s; raise --lead")

        kill_at = start + timedelta(seconds=args.window / 2)
        await asyncio.sleep(max(0.0, (kill_at - datetime.now(UTC)).total_seconds()))
        victim = replicas[0]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        killed_at = datetime.now(UTC)

        deadline = time.monotonic() + args.window / 2 + args.lease + args.drain
        final = 0
        while time.monotonic() < deadline:
            final = await db[POSTS].count_documents(
                {"kind": "post", "status": {"$in": ["published", "failed", "cancelled"]}}
            )
            if final >= args.posts:
                break
            await asyncio.sleep(2)
        finished_at = datetime.now(UTC)

        statuses = Counter(
            {
                row["_id"]: row["n"]
                for row in await (
                    await db[POSTS].aggregate([{"$group": {"_id": "$status", "n": {"$sum": 1}}}])
                ).to_list(None)
            }
        )
        failed_ids = set(await db[POSTS].distinct("_id", {"status": "failed"}))
        async with httpx.AsyncClient(timeout=120) as http:
            created = (await http.get(f"{fake_url}/_fake/created")).json()["items"]
    finally:
        for process in replicas:
            if process.poll() is None:
                process.terminate()
        for process in replicas:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        if client is not None:
            await client.close()
        fake.terminate()
        kafka.stop()
        mongo.stop()

    arrivals: dict[str, list[float]] = {}
    for _platform, key, received_at in created:
        arrivals.setdefault(key, []).append(received_at)
    lateness: list[float] = []
    lateness_before_kill: list[float] = []
    sent = duplicates = lost = 0
    for post in posts:
        times = arrivals.get(network_key(post))
        if not times:
            lost += post["_id"] not in failed_ids
            continue
        sent += 1
        duplicates += len(times) - 1
        late = min(times) - post["scheduled_for"].timestamp()
        lateness.append(late)
        if post["scheduled_for"] < killed_at - timedelta(seconds=5):
            lateness_before_kill.append(late)
    failed = len(failed_ids)

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(
        f"workload: {args.posts} posts over {args.window:.0f}s across {args.channels} channels, "
        f"{args.replicas} replicas (batch {args.batch}, concurrency {args.concurrency}, "
        f"lease {args.lease:.0f}s, claim ahead {args.ahead}s), "
        "replica 0 killed (SIGKILL) at mid-window"
    )
    print(f"setup: inserted {args.posts} posts in {insert_seconds:.1f}s")
    took = (finished_at - start).total_seconds()
    print(f"final states: {dict(statuses)}; all final {took:.1f}s after the first was due")
    print(f"posts sent: {sent}")
    print(f"duplicates on the network: {duplicates}")
    print(f"lost (never sent and not marked failed): {lost}")
    print(f"failed (visible, with reason): {failed}")
    for label, values in (("all posts", lateness), ("due before the kill", lateness_before_kill)):
        print(
            f"dispatch lateness, {label}: p50 {percentile(values, 0.5):.3f}s  "
            f"p99 {percentile(values, 0.99):.3f}s  max {max(values, default=float('nan')):.3f}s"
        )
    slow = sum(1 for value in lateness if value > 1.0)
    print(f"sent more than 1 s late: {slow} (a killed replica's posts wait for its lease)")
    print(f"logs: {workdir}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument(
        "--window", type=float, default=180.0, help="seconds over which posts are due"
    )
    parser.add_argument("--lead", type=float, default=None, help="seconds before the first is due")
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--poll", type=float, default=0.2)
    parser.add_argument("--ahead", type=float, default=1.0, help="claim this long before due")
    parser.add_argument("--drain", type=float, default=300.0, help="longest wait after the window")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
