"""The publisher's Prometheus metrics (labels are bounded: platform, status, outcome)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

POSTS = Gauge(
    "smm_publisher_posts",
    "Posts by status and platform (refreshed periodically).",
    ["status", "platform"],
)
TRANSITIONS = Counter(
    "smm_publisher_post_transitions_total", "Post state changes.", ["status", "platform"]
)
SEND_LATENCY = Histogram(
    "smm_publisher_send_seconds",
    "Duration of one request to a network, by outcome.",
    ["platform", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
LATENESS = Histogram(
    "smm_publisher_dispatch_lateness_seconds",
    "From when a post was due to when its request to the network started.",
    ["platform"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
RETRIES = Counter(
    "smm_publisher_retries_total",
    "Sends scheduled again after a retryable failure.",
    ["platform", "code"],
)
RATE_LIMIT_WAITS = Counter(
    "smm_publisher_rate_limit_waits_total",
    "Sends postponed by a channel's own limit or a network's 429.",
    ["platform", "source"],
)
RECONCILIATIONS = Counter(
    "smm_publisher_reconciliations_total",
    "Uncertain sends checked with the network before any retry, by what was found.",
    ["platform", "found"],
)
CLAIM_BATCH = Histogram(
    "smm_publisher_claim_batch_size",
    "Posts claimed per scheduler round.",
    buckets=(1, 5, 10, 25, 50, 100, 200, 500, 1000),
)
