"""The console's overview, mentions and inbox pages with a large stored history.

Starts real Tansu and SecantusDB servers and loads `--mentions` classified mentions (90 days,
three trackers in two brand groups, a few thousand authors on mixed platforms, mixed sentiment
and intent; those routed to review are decided but for the last `--backlog-days`, so the
inbox has a queue). Pushing a million mentions through Kafka and the pipeline would take
longer than the measurement, so they are written with the services' own storage code, the
documents their consumers write: moderation's `Moderator` routing (`moderate`, the default
rules) stored by `MentionStore.record`, and metrics' `MentionAggregates.apply` and
`AuthorLabels.record`, in batches as the consumers do. The decisions of the reviewers are
the one stand-in: one `update_many` a batch marks the older review items done.

Then it starts the five services as processes (`tests/console_kit.py`: trackers acme and
rival in group coffee, velo in bikes, a user per role), signs in as the admin and times each
page (after a warm-up): the console's wall time as the client sees it over loopback, and the
server's own, from the console's `smm_http_request_duration_seconds` histogram (route
label; its buckets make the server p95 an interval). It times the service calls the pages
make directly too, to show which one dominates.

    .venv/bin/python bench/console.py --mentions 1000000 --requests 50
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.metrics import storage as metrics_storage  # noqa: E402
from services.metrics.aggregates import MentionAggregates  # noqa: E402
from services.metrics.storage import AuthorLabels  # noqa: E402
from services.moderation import storage as moderation_storage  # noqa: E402
from services.moderation.domain.routing import Outcome, moderate  # noqa: E402
from services.moderation.domain.rules import DEFAULT_RULES, CompiledRules  # noqa: E402
from services.moderation.storage import REVIEW, MentionStore  # noqa: E402
from shared.events import (  # noqa: E402
    Author,
    Classification,
    Intent,
    Mention,
    MentionMetrics,
    Platform,
    Sentiment,
)
from shared.local.servers import (  # noqa: E402
    free_port,
    kafka_process,
    mongo_process,
    mongo_uri,
)
from shared.mongo import create_mongo_client, ensure_indexes, service_database  # noqa: E402
from shared.settings import Settings  # noqa: E402
from tests.console_kit import PASSWORD, ConsoleStack, console_stack  # noqa: E402

ADMIN = "admin@example.com"
#: The trackers of `tests/console_kit.py` and each mention's share of them (some name two).
TRACKER_MIX: tuple[tuple[tuple[str, ...], int], ...] = (
    (("acme",), 45),
    (("rival",), 25),
    (("velo",), 20),
    (("acme", "rival"), 10),
)
BRAND_WORDS = {"acme": "Acme", "rival": "Rival Roasters", "velo": "Velo"}
AUTHOR_PLATFORMS: tuple[tuple[Platform, int], ...] = (
    ("x", 30),
    ("instagram", 20),
    ("facebook", 12),
    ("mastodon", 8),
)
AUTHOR_PLATFORMS += (("reddit", 8), ("bluesky", 6), ("tiktok", 6), ("news", 4), ("review", 6))
#: (sentiment, intent, weight, English texts, German texts); `{b}` is the brand.
KINDS: tuple[tuple[Sentiment, Intent, int, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "positive",
        "praise",
        30,
        ("love the new {b} blend, tastes great", "{b} delivery was fast, thanks team"),
        ("{b} schmeckt heute wieder super", "Lieferung von {b} kam schnell, danke"),
    ),
    (
        "positive",
        "other",
        15,
        ("morning ritual with {b} and the paper", "tried {b} at the station today"),
        ("Wochenende mit {b} im Garten", "heute {b} im Laden probiert"),
    ),
    (
        "neutral",
        "other",
        35,
        ("{b} opens a shop in the old town", "anyone seen the {b} advert on tv"),
        ("{b} eröffnet eine Filiale am Markt", "hat jemand die Werbung von {b} gesehen"),
    ),
    (
        "neutral",
        "question",
        5,
        ("does {b} ship to austria", "when is the {b} shop open on sunday"),
        ("liefert {b} auch nach Österreich", "wann hat {b} sonntags geöffnet"),
    ),
    (
        "negative",
        "complaint",
        8,
        ("my {b} order arrived broken, still waiting for a refund", "{b} support never answers"),
        ("Bestellung bei {b} kam kaputt an, warte auf Erstattung", "{b} antwortet nie"),
    ),
    (
        "negative",
        "other",
        5,
        ("{b} got worse since the new recipe", "queue at {b} again, forty minutes"),
        ("{b} ist seit dem neuen Rezept schlechter", "wieder Schlange bei {b}"),
    ),
    (
        "positive",
        "purchase_intent",
        2,
        ("thinking of buying the {b} starter kit", "where can i buy {b} beans"),
        ("überlege das Starterset von {b} zu kaufen", "wo bekomme ich {b} Bohnen"),
    ),
)
#: A word of the complaint texts: the free-text search of the benchmark (about 4 %).
SEARCH_WORD = "refund"
SPAM_SHARE = 0.03


@dataclass(frozen=True)
class Writer:
    id: str
    handle: str
    name: str
    followers: int
    platform: Platform
    lang: str


def make_authors(count: int, rng: random.Random) -> tuple[list[Writer], list[float]]:
    """Authors on one platform each, with a long tail: a few write a lot (Zipf weights)."""
    platforms = [p for p, _ in AUTHOR_PLATFORMS]
    platform_weights = [w for _, w in AUTHOR_PLATFORMS]
    authors = [
        Writer(
            id=f"a{n}",
            handle=f"user{n}",
            name=f"User {n}",
            followers=int(min(5_000_000, rng.lognormvariate(6.0, 2.0))),
            platform=rng.choices(platforms, platform_weights)[0],
            lang=rng.choice(("de", "de", "en")),
        )
        for n in range(count)
    ]
    return authors, [1.0 / (rank + 10) for rank in range(count)]


@dataclass
class Generator:
    """Deterministic batches of routed mentions (the same for a given seed and count)."""

    total: int
    days: int
    authors: int
    now: datetime
    seed: int = 1
    rules: CompiledRules = field(default_factory=lambda: CompiledRules(DEFAULT_RULES))

    def __post_init__(self) -> None:
        self.writers, self.writer_weights = make_authors(self.authors, random.Random(self.seed))
        self.start = self.now - timedelta(days=self.days)

    def batch(self, first: int, count: int) -> list[Outcome]:
        rng = random.Random(self.seed * 1_000_003 + first)
        writers = rng.choices(self.writers, self.writer_weights, k=count)
        trackers = rng.choices([t for t, _ in TRACKER_MIX], [w for _, w in TRACKER_MIX], k=count)
        kinds = rng.choices(KINDS, [k[2] for k in KINDS], k=count)
        span = (self.now - self.start).total_seconds() - 60
        outcomes = []
        for offset in range(count):
            n = first + offset
            writer, tracker_ids, kind = writers[offset], trackers[offset], kinds[offset]
            created = self.start + timedelta(seconds=span * (n + rng.random()) / self.total)
            sentiment, intent, _, english, german = kind
            texts = german if writer.lang == "de" else english
            text = rng.choice(texts).format(b=BRAND_WORDS[tracker_ids[0]])
            spam = 0.95 if sentiment != "negative" and rng.random() < SPAM_SHARE else 0.02
            score = {"positive": 0.6, "neutral": 0.0, "negative": -0.4}[sentiment]
            if sentiment == "negative" and rng.random() < 0.3:
                score = -0.8  # strongly negative: high priority
            mention = Mention.model_construct(
                mention_id=f"{writer.platform}:b{n}",
                platform=writer.platform,
                native_id=f"b{n}",
                url=f"https://social.example/{writer.handle}/{n}",
                text=text,
                lang=writer.lang,
                author=Author.model_construct(
                    id=writer.id,
                    handle=writer.handle,
                    display_name=writer.name,
                    followers=writer.followers,
                ),
                created_at=created,
                in_reply_to=None,
                metrics=MentionMetrics.model_construct(likes=rng.randrange(50)),
                ingested_at=created + timedelta(seconds=1),
                source="api",
                tracker_ids=list(tracker_ids),
                occurred_at=created + timedelta(seconds=1),
            )
            classification = Classification.model_construct(
                language=writer.lang,
                sentiment=sentiment,
                sentiment_score=score,
                toxicity=0.01,
                spam=spam,
                intent=intent,
                labels=[],
                model_version="bench",
            )
            rules = [(tracker_id, self.rules) for tracker_id in tracker_ids]
            outcomes.append(
                moderate(mention, classification, rules, created + timedelta(seconds=2))
            )
        return outcomes


@dataclass
class Loaded:
    mentions: int
    seconds: float
    review: int
    waiting: int


async def load(settings: Settings, args: argparse.Namespace, now: datetime) -> Loaded:
    """Write the mentions as moderation's and metrics' consumers would (see the docstring)."""
    # Long socket timeouts: a batch of 10,000 documents can take a while on a busy machine.
    patient = settings.model_copy(update={"mongodb_timeout_ms": 60_000})
    client = create_mongo_client(patient, "bench-console-load")
    db = service_database(client, settings)
    await ensure_indexes(db, moderation_storage.INDEXES)
    await ensure_indexes(db, metrics_storage.INDEXES)
    store = MentionStore(db)
    aggregates = MentionAggregates(db)
    labels = AuthorLabels(db)
    review = db[REVIEW]
    # A topic of its own: the metrics service's partitions of the real topic stay untouched.
    part = MentionAggregates.partition_key("bench.console.load", 0)
    generator = Generator(args.mentions, args.days, args.authors, now)
    backlog_from = now - timedelta(days=args.backlog_days)
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    last_report = started
    routed = 0
    firsts = list(range(0, args.mentions, args.batch))
    try:
        with ThreadPoolExecutor(1) as pool:

            def make(first: int) -> asyncio.Future[list[Outcome]]:
                size = min(args.batch, args.mentions - first)
                return loop.run_in_executor(pool, generator.batch, first, size)

            upcoming = make(firsts[0])
            for index, first in enumerate(firsts):
                outcomes = await upcoming
                if index + 1 < len(firsts):
                    upcoming = make(firsts[index + 1])  # generated while this batch is written
                positioned = [((part, first + i), o.classified) for i, o in enumerate(outcomes)]
                await asyncio.gather(
                    store.record(outcomes),
                    aggregates.apply(positioned),
                    labels.record([o.classified for o in outcomes]),
                )
                routed += sum(o.route.action == "review" for o in outcomes)
                last = outcomes[-1].classified.created_at
                # The reviewers' decisions (the stand-in): all but the recent days are done.
                await review.update_many(
                    {"status": "open", "created_at": {"$lt": backlog_from}},
                    {
                        "$set": {
                            "status": "done",
                            "decision": {
                                "action": "approve",
                                "actor": "bench-reviewer",
                                "reason": "",
                                "reply_post_id": None,
                                "decided_at": last,
                            },
                            "decided_at": last,
                        }
                    },
                )
                if time.perf_counter() - last_report > 30:
                    done = first + len(outcomes)
                    rate = done / (time.perf_counter() - started)
                    print(f"  ... {done:,} of {args.mentions:,} loaded ({rate:,.0f}/s)", flush=True)
                    last_report = time.perf_counter()
        await aggregates.drain()
        seconds = time.perf_counter() - started
        waiting = await review.count_documents({"status": {"$in": ["open", "escalated"]}})
        return Loaded(args.mentions, seconds, routed, waiting)
    finally:
        await client.close()


# --- measuring -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One kind of request, timed: a console page (fragment) or a service API call."""

    name: str
    client: httpx.Client
    path: str
    params: dict[str, str]
    route: str
    metrics_url: str
    htmx: bool = False


@dataclass
class Timing:
    probe: Probe
    wall: list[float]
    statuses: dict[int, int]
    server_mean: float | None
    server_p95: tuple[float, float] | None
    body_bytes: int


def histogram(metrics_url: str, route: str) -> dict[str, float]:
    """The `smm_http_request_duration_seconds` series of GET `route`: buckets, sum, count."""
    text = httpx.get(metrics_url, timeout=30).text
    found: dict[str, float] = {}
    label = f'route="{route}"'
    for line in text.splitlines():
        if not line.startswith("smm_http_request_duration_seconds") or label not in line:
            continue
        if 'method="GET"' not in line:
            continue
        name, value = line.rsplit(" ", 1)
        if "_bucket" in name:
            found["le=" + name.split('le="')[1].split('"')[0]] = float(value)
        elif name.startswith("smm_http_request_duration_seconds_sum"):
            found["sum"] = float(value)
        elif name.startswith("smm_http_request_duration_seconds_count"):
            found["count"] = float(value)
    return found


def server_side(
    before: dict[str, float], after: dict[str, float]
) -> tuple[float | None, tuple[float, float] | None]:
    """Mean and the histogram bucket (lower, upper seconds) holding the 95th percentile."""
    count = after.get("count", 0.0) - before.get("count", 0.0)
    if count <= 0:
        return None, None
    mean = (after.get("sum", 0.0) - before.get("sum", 0.0)) / count
    bounds = sorted(
        (float(key[3:]), after[key] - before.get(key, 0.0))
        for key in after
        if key.startswith("le=") and key != "le=+Inf"
    )
    lower = 0.0
    for upper, cumulative in bounds:
        if cumulative >= 0.95 * count:
            return mean, (lower, upper)
        lower = upper
    return mean, (lower, math.inf)


def measure(probe: Probe, warmup: int, requests: int, budget: float) -> Timing:
    """`warmup` untimed requests, then `requests` timed ones, or fewer (at least three) when
    they take longer than `budget` seconds in all: a slow page is reported, not waited out."""
    headers = {"HX-Request": "true"} if probe.htmx else {}
    started = time.perf_counter()
    for _ in range(warmup):
        probe.client.get(probe.path, params=probe.params, headers=headers)
        if time.perf_counter() - started > budget / 4:
            break
    before = histogram(probe.metrics_url, probe.route)
    wall: list[float] = []
    statuses: dict[int, int] = {}
    size = 0
    begun = time.perf_counter()
    for n in range(requests):
        if n >= 3 and time.perf_counter() - begun > budget:
            break
        started = time.perf_counter()
        answer = probe.client.get(probe.path, params=probe.params, headers=headers)
        wall.append(time.perf_counter() - started)
        statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
        size = len(answer.content)
    mean, p95 = server_side(before, histogram(probe.metrics_url, probe.route))
    return Timing(probe, wall, statuses, mean, p95, size)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return "inf" if math.isinf(seconds) else f"{1000 * seconds:,.0f}"


def report(timing: Timing, target: float | None) -> str:
    wall = timing.wall
    p95 = percentile(wall, 0.95)
    statuses = ", ".join(f"{code}: {n}" for code, n in sorted(timing.statuses.items()))
    server = "server n/a"
    if timing.server_mean is not None and timing.server_p95 is not None:
        low, high = timing.server_p95
        server = f"server mean {ms(timing.server_mean)} ms, p95 in ({ms(low)}, {ms(high)}] ms"
    verdict = ""
    if target is not None:
        verdict = "; target met" if p95 <= target else "; TARGET MISSED"
    return (
        f"{timing.probe.name}: p50 {ms(statistics.median(wall))} ms, p95 {ms(p95)} ms, "
        f"p99 {ms(percentile(wall, 0.99))} ms, max {ms(max(wall))} ms "
        f"({len(wall)} requests; {statuses}; {timing.body_bytes:,} bytes); {server}{verdict}"
    )


def first_inbox_item(api: httpx.Client, moderation: str, second: bool = False) -> str | None:
    """A waiting review item of acme: the first in the queue, or the second."""
    answer = api.get(
        moderation + "/v1/review", params={"tracker_id": "acme", "status": "open", "limit": "2"}
    )
    items = answer.json().get("items", []) if answer.status_code == 200 else []
    items = items[1:] if second else items
    return str(items[0]["mention_id"]) if items else None


def probes(stack: ConsoleStack, now: datetime) -> tuple[list[Probe], list[Probe]]:
    """The console's pages (as a signed-in admin) and the service calls behind them."""
    console = stack.sign_in(ADMIN, PASSWORD)
    console_metrics = stack.console_url + "/metrics"
    pages = [
        Probe(
            "overview 7d, page",
            console,
            "/overview",
            {"brand": "acme", "period": "7d"},
            "/overview",
            console_metrics,
        ),
    ]
    for period in ("7d", "30d"):
        pages.append(
            Probe(
                f"overview {period}, figures",
                console,
                "/overview",
                {"brand": "acme", "period": period},
                "/overview",
                console_metrics,
                htmx=True,
            )
        )
    mentions: tuple[tuple[str, dict[str, str]], ...] = (
        ("mentions, no filter", {}),
        ("mentions, negative", {"sentiment": "negative"}),
        (f"mentions, search '{SEARCH_WORD}'", {"q": SEARCH_WORD}),
    )
    for name, extra in mentions:
        pages.append(
            Probe(
                name, console, "/mentions", {"brand": "acme", **extra}, "/mentions", console_metrics
            )
        )
    api = stack.api()
    inbox = {"brand": "acme"}
    pages.append(
        Probe("inbox, queue and first item", console, "/inbox", inbox, "/inbox", console_metrics)
    )
    item = first_inbox_item(api, stack.url("moderation"), second=True)
    if item is not None:
        pages.append(
            Probe(
                "inbox, another item",
                console,
                "/inbox",
                {**inbox, "mention": item},
                "/inbox",
                console_metrics,
            )
        )
    pages.append(
        Probe(
            "inbox, queue fragment",
            console,
            "/inbox/queue",
            inbox,
            "/inbox/queue",
            console_metrics,
            htmx=True,
        )
    )

    metrics, moderation = stack.url("metrics"), stack.url("moderation")
    hour = now.replace(minute=0, second=0, microsecond=0)
    services: list[Probe] = []
    for days in (7, 30):
        window = {
            "tracker_id": "acme",
            "from": (now - timedelta(days=days)).isoformat(),
            "to": now.isoformat(),
        }
        services.append(
            Probe(
                f"metrics GET /v1/kpis {days}d",
                api,
                metrics + "/v1/kpis",
                window,
                "/v1/kpis",
                metrics + "/metrics",
            )
        )
        hourly = {
            "tracker_id": "acme",
            "bucket": "hour",
            "from": (hour - timedelta(days=days)).isoformat(),
            "to": (hour + timedelta(hours=1)).isoformat(),
        }
        services.append(
            Probe(
                f"metrics GET /v1/kpis/timeseries {days}d hourly",
                api,
                metrics + "/v1/kpis/timeseries",
                hourly,
                "/v1/kpis/timeseries",
                metrics + "/metrics",
            )
        )
    services.append(
        Probe(
            "metrics GET /v1/alerts",
            api,
            metrics + "/v1/alerts",
            {"tracker_id": "acme", "limit": "20", "since": (now - timedelta(hours=25)).isoformat()},
            "/v1/alerts",
            metrics + "/metrics",
        )
    )
    for name, extra in mentions:
        services.append(
            Probe(
                f"moderation GET /v1/mentions ({name.split(', ')[1]})",
                api,
                moderation + "/v1/mentions",
                {"tracker_id": "acme", "limit": "50", **extra},
                "/v1/mentions",
                moderation + "/metrics",
            )
        )
    services.append(
        Probe(
            "moderation GET /v1/review",
            api,
            moderation + "/v1/review",
            {"tracker_id": "acme", "limit": "50"},
            "/v1/review",
            moderation + "/metrics",
        )
    )
    services.append(
        Probe(
            "moderation GET /v1/review/counts",
            api,
            moderation + "/v1/review/counts",
            {"tracker_id": "acme"},
            "/v1/review/counts",
            moderation + "/metrics",
        )
    )
    return pages, services


def load_average() -> str:
    """The 1-minute load average (other work on the machine shows in every number)."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mentions", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--authors", type=int, default=3_000)
    parser.add_argument("--batch", type=int, default=10_000, help="mentions per stored batch")
    parser.add_argument(
        "--backlog-days", type=float, default=2.0, help="review items this recent stay waiting"
    )
    parser.add_argument("--requests", type=int, default=50, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests per page first")
    parser.add_argument(
        "--on-disk", action="store_true", help="SecantusDB on disk (default: in memory)"
    )
    parser.add_argument(
        "--probe-seconds", type=float, default=60.0, help="time limit of one page's requests"
    )
    parser.add_argument("--target-ms", type=float, default=300.0, help="p95 target of a page")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-console-"))
    kafka = kafka_process("127.0.0.1", free_port(), workdir / "kafka.log")
    storage = str(workdir / "db") if args.on_disk else ":memory:"
    mongo = mongo_process("127.0.0.1", free_port(), storage, workdir / "mongo.log")
    kafka.start()
    mongo.start()
    try:
        kafka.wait_port(30)
        mongo.wait_port(60)
        settings = Settings(
            kafka_bootstrap_servers=f"127.0.0.1:{kafka.port}",
            mongodb_uri=mongo_uri("127.0.0.1", mongo.port),
            mongodb_database="smm",
            topic_prefix="",
            topic_partitions=2,
            kafka_enable_idempotence=False,
        )
        now = datetime.now(UTC)
        loaded = asyncio.run(load(settings, args, now))
        print(
            f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{platform.machine()}; SecantusDB (a MongoDB-protocol server in Python) standalone, "
            f"{'on disk' if args.on_disk else 'in memory'}; load average {load_average()}"
        )
        print(
            f"loaded: {loaded.mentions:,} mentions in {loaded.seconds:.0f} s "
            f"({loaded.mentions / loaded.seconds:,.0f} mentions/s, moderation's and metrics' "
            f"storage code; {args.days} days, 3 trackers in 2 groups, {args.authors:,} authors); "
            f"{loaded.review:,} routed to review, {loaded.waiting:,} waiting "
            f"(the last {args.backlog_days:g} days)"
        )
        (workdir / "logs").mkdir()
        with console_stack(settings, workdir / "logs") as stack:
            pages, services = probes(stack, now)
            target, budget = args.target_ms / 1000, args.probe_seconds
            for probe in pages:
                print(
                    report(measure(probe, args.warmup, args.requests, budget), target), flush=True
                )
            for probe in services:
                print(report(measure(probe, args.warmup, args.requests, budget), None), flush=True)
            print(f"load average after measuring: {load_average()}")
    finally:
        kafka.stop()
        mongo.stop()


if __name__ == "__main__":
    main()
