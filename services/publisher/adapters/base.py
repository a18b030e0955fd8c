"""What every network adapter does, and how HTTP answers become send outcomes.

An adapter never decides about retries: it says what happened (sent, refused for good,
token expired, slow down, or "try again") and the dispatcher decides what to do about it.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import httpx

from shared.outbound import BlockedAddressError


@dataclass(frozen=True, slots=True)
class ChannelAccess:
    """What an adapter needs to reach one channel (the secret only lives here, in memory)."""

    channel_id: str
    platform: str
    account: str
    api_base_url: str
    credential: str | None
    signing_secret: str | None = None


@dataclass(frozen=True, slots=True)
class OutgoingPost:
    post_id: str
    text: str
    media: list[str]
    idempotency_key: str
    scheduled_for: datetime | None
    #: The native id of the post we answer (from `in_reply_to_mention_id`), if a reply.
    reply_to_native_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Published:
    native_post_id: str
    url: str | None


class SendError(Exception):
    """Base of every send failure; `code` is stable and goes into PostEvent.error."""

    retryable: bool = True

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class PermanentSendError(SendError):
    """The network refused the post and will refuse it again (400, 403, 404, 422)."""

    retryable = False


class AuthExpiredError(SendError):
    """The channel's token is expired or revoked (401): the channel needs re-authorisation."""


class RateLimitedError(SendError):
    """Slow down: nothing is sent to this channel before `retry_after` seconds."""

    def __init__(self, code: str, message: str, retry_after: float) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


class RetryableSendError(SendError):
    """A 5xx or a network failure. `uncertain`: the network may have created the post."""

    def __init__(self, code: str, message: str, *, uncertain: bool) -> None:
        super().__init__(code, message)
        self.uncertain = uncertain


class Adapter(Protocol):
    platform: str

    async def publish(self, access: ChannelAccess, post: OutgoingPost) -> Published:
        """Create the post on the network, or raise a `SendError`."""

    async def find_published(self, access: ChannelAccess, post: OutgoingPost) -> Published | None:
        """After an uncertain send: the post if it is on the network, None if it is not."""


DEFAULT_RETRY_AFTER = 60.0
#: The longest pause a network's 429 may impose on a channel. Its headers are the network's
#: word (or a hostile server's): a year, 10^12 seconds or 400 nines must not overflow the
#: pause or park the channel for ever.
MAX_RETRY_AFTER = 86_400.0
_SECONDS = re.compile(r"^[0-9]+$")
_NUMBER = re.compile(r"^[0-9]+(\.[0-9]+)?$")


def _bounded(seconds: float) -> float | None:
    """`seconds` within [0, MAX_RETRY_AFTER]; None when it is no number (inf, nan)."""
    if not math.isfinite(seconds):
        return None
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


def _http_date(header: str) -> datetime | None:
    try:
        return email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def retry_after_seconds(response: httpx.Response, now: float | None = None) -> float:
    """Seconds to wait from `Retry-After` (seconds or HTTP date) or rate-limit reset headers.

    Always a finite number within [0, MAX_RETRY_AFTER]: a value that is not one is ignored.
    """
    now = time.time() if now is None else now
    header = (response.headers.get("retry-after") or "").strip()
    if _SECONDS.match(header):
        bounded = _bounded(float(header))
        if bounded is not None:
            return bounded
    elif header:
        parsed = _http_date(header)
        if parsed is not None:
            bounded = _bounded(parsed.timestamp() - now)
            if bounded is not None:
                return bounded
    for name in ("x-rate-limit-reset", "x-ratelimit-reset", "ratelimit-reset"):
        reset = (response.headers.get(name) or "").strip()
        if _NUMBER.match(reset):
            value = float(reset)
            # An epoch timestamp (X, Bluesky) or a delta in seconds (IETF RateLimit draft).
            bounded = _bounded(value - now if value > 1_000_000_000 else value)
            if bounded is not None:
                return bounded
    return DEFAULT_RETRY_AFTER


def _reason(response: httpx.Response) -> str:
    text = response.text[:500].replace("\n", " ")
    return f"HTTP {response.status_code}: {text}" if text else f"HTTP {response.status_code}"


def raise_for_outcome(response: httpx.Response) -> None:
    """Map a network's answer to a `SendError` (2xx returns)."""
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 401:
        raise AuthExpiredError("auth_expired", _reason(response))
    if status == 429:
        raise RateLimitedError("rate_limited", _reason(response), retry_after_seconds(response))
    if status in (408, 409, 425) or status >= 500:
        raise RetryableSendError(f"http_{status}", _reason(response), uncertain=True)
    raise PermanentSendError("rejected", _reason(response))


async def send(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """Send `request`; network failures become `RetryableSendError`.

    Whether the network may have acted on it depends on how far the request got: a refused
    connection cannot have created a post, a read timeout may have.
    """
    try:
        return await client.send(request)
    except BlockedAddressError as exc:
        # The channel's server is on an address we may not reach: no retry will change that,
        # and nothing (no secret) was sent.
        raise PermanentSendError("blocked_address", str(exc)) from exc
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise RetryableSendError(
            "unreachable", f"{type(exc).__name__}: {exc}", uncertain=False
        ) from exc
    except httpx.TimeoutException as exc:
        raise RetryableSendError("timeout", f"{type(exc).__name__}: {exc}", uncertain=True) from exc
    except httpx.HTTPError as exc:
        raise RetryableSendError(
            "network_error", f"{type(exc).__name__}: {exc}", uncertain=True
        ) from exc


def native_id_of_mention(mention_id: str | None) -> str | None:
    """`x:123` → `123` (mention ids are `platform:native_id`)."""
    if mention_id is None:
        return None
    _, _, native = mention_id.partition(":")
    return native or None
