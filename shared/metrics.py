"""Prometheus metrics every service exports, beside FastStream's own middleware metrics.

Label values are bounded sets (topic, reason, route, status class): never ids or authors,
so the number of series stays small whatever the traffic.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

registry: CollectorRegistry = REGISTRY

BUILD_INFO = Gauge(
    "smm_build_info", "Which service and version this process runs.", ["service", "version"]
)
DLQ_MESSAGES = Counter(
    "smm_dlq_messages_total",
    "Messages a consumer could not parse, validate or process, sent to the topic's .dlq twin.",
    ["topic", "reason"],
)
CONSUMER_RETRIES = Counter(
    "smm_consumer_retries_total",
    "Messages (or batches) whose processing failed and will be tried again.",
    ["topic"],
)
CONSUMER_FAILING_SINCE = Gauge(
    "smm_consumer_failing_since_timestamp_seconds",
    "When processing of the partition began to fail and has failed ever since (0: it moves).",
    ["topic", "partition"],
)
EVENTS_PUBLISHED = Counter(
    "smm_events_published_total", "Events written to Kafka and acknowledged.", ["topic"]
)
EVENT_AGE = Histogram(
    "smm_event_age_seconds",
    "Time from an event's occurred_at to the end of its processing by this consumer.",
    ["topic"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
CONSUMER_LAG = Gauge(
    "smm_consumer_lag_messages",
    "Messages behind the partition's end after the last processed batch (per owned partition).",
    ["topic", "partition"],
)
HTTP_REQUESTS = Counter(
    "smm_http_requests_total", "HTTP requests served.", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "smm_http_request_duration_seconds",
    "HTTP request latency.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
)
DEPENDENCY_UP = Gauge(
    "smm_dependency_up", "1 when the last readiness check reached the dependency.", ["dependency"]
)
