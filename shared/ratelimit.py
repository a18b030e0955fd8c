"""A token bucket per caller, for endpoints that cost CPU (moderation's `POST /v1/classify`,
charged per text) or that must not be an oracle (ingest's webhook handshakes, one a call).

Pure logic with the clock passed in: the API asks `take(key, cost, now)` and answers 429 with
the returned wait when it is positive. In-process and approximate on purpose: each replica
limits on its own; a forgotten caller starts with a full bucket, so forgetting blocks nobody.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class TokenBuckets:
    """`rate` tokens per second per key, at most `capacity` saved up."""

    rate: float
    capacity: float
    #: Keys remembered at most (callers are configured tokens, so few); the oldest go first.
    max_keys: int = 10_000
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def take(self, key: str, cost: float, now: float) -> float:
        """Take `cost` tokens for `key`: 0.0 when granted, else the seconds until it would be.

        A cost above the capacity could never be granted; it is charged as a full bucket, so
        an endpoint's largest allowed request always gets through when the bucket is full.
        """
        cost = min(cost, self.capacity)
        bucket = self._buckets.pop(key, None) or _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        self._buckets[key] = bucket  # re-inserted: the dict stays in least recently used order
        if len(self._buckets) > self.max_keys:
            del self._buckets[next(iter(self._buckets))]
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / self.rate


def retry_after(wait: float) -> str:
    """A `Retry-After` header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait)))
