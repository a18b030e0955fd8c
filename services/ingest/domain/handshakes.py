"""Rules for the platforms' verification handshakes: what we agree to sign or echo, and how often.

X's CRC makes us answer `HMAC(consumer secret, crc_token)`, the very value that signs a delivery
whose body is `crc_token`. So a CRC token must be one that can never be a delivery body: X
sends short opaque tokens (base64/base64url characters), and no JSON document is written with
only those characters. Anything else is refused before we compute an HMAC over it.
"""

from __future__ import annotations

import json
import math
import re
from collections import OrderedDict
from dataclasses import dataclass

#: Longest CRC token we sign; X's are a few dozen characters.
MAX_CRC_TOKEN = 255
#: base64 and base64url characters (and `=` padding): no braces, quotes, colons or spaces.
_CRC_TOKEN = re.compile(r"^[A-Za-z0-9_\-+/=]{1," + str(MAX_CRC_TOKEN) + r"}$")


def crc_token_problem(token: str) -> str | None:
    """Why `token` is not a CRC token we sign (None when it is one)."""
    if not _CRC_TOKEN.match(token):
        return (
            f"crc_token must be 1-{MAX_CRC_TOKEN} characters of A-Z, a-z, 0-9, '-', '_', '+', "
            "'/' and '='"
        )
    try:
        json.loads(token)
    except ValueError:
        return None
    # A bare number ("123") is valid JSON; X's random tokens are not, so refuse it too.
    return "crc_token must not be a JSON document"


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Token buckets per client key: `rate` tokens per second, at most `burst` saved up.

    In-process and approximate on purpose (each replica limits on its own); it exists to
    keep the handshakes from being an oracle or a CPU sink, not to meter anyone. At most
    `max_keys` clients are remembered; the longest-idle one is forgotten first (a forgotten
    client starts with a full bucket, so forgetting never blocks anyone).
    """

    def __init__(self, rate: float, burst: int, max_keys: int = 4096) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def acquire(self, key: str, now: float) -> float:
        """Take one token for `key` at monotonic time `now`: 0.0 when allowed, else the
        seconds until a token is available (the caller answers 429 with that Retry-After)."""
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(tokens=float(self.burst), at=now)
        else:
            elapsed = max(now - bucket.at, 0.0)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.at = now
        self._buckets[key] = bucket  # most recently used last
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate


def retry_after_header(wait: float) -> str:
    """`Retry-After` in whole seconds, never 0 (a client told 0 would come straight back)."""
    return str(max(1, math.ceil(wait)))
