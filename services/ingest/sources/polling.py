"""The poller engine: source configs, the poll loop (pacing, rate limits, backoff), metrics.

Each concrete poller (`rss`, `mastodon_poller`, `reddit`, `bluesky`) only knows how to fetch
and map one page of its platform. This module owns what they share: the rule that a cursor
advances only after the sink (Intake) acknowledged, the loop that never dies, honouring the
server's `Retry-After`/`X-RateLimit-*` before hammering it again, and bounded-label metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import socket
import time
import uuid
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, Literal, TypeVar
from urllib.parse import urlsplit

import httpx
from prometheus_client import Counter, Gauge
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from services.ingest.domain.batch import MentionSink
from services.ingest.storage import CursorStore
from shared.events import HttpUrlText, utc_now
from shared.logging import bound_ids, get_logger
from shared.metrics import registry

if TYPE_CHECKING:  # the concrete pollers import this module
    from services.ingest.sources.reddit import RedditApp

log = get_logger(__name__)

JETSTREAM_URL = "wss://jetstream2.us-east.bsky.network/subscribe"

# --- Metrics (labels: `kind` and `outcome` only, never URLs or keys) -------------------------

POLL_RUNS = Counter(
    "smm_ingest_poll_runs",
    "Polls (for Bluesky: stream micro-batches) by source kind and outcome "
    "(ok, error, rate_limited).",
    ["kind", "outcome"],
    registry=registry,
)
POLL_MENTIONS = Counter(
    "smm_ingest_poll_mentions_fetched",
    "Mentions fetched by pollers and handed to the intake (before matching and de-duplication).",
    ["kind"],
    registry=registry,
)
POLL_LAG = Gauge(
    "smm_ingest_poll_lag_seconds",
    "Now minus the creation time of the newest item fetched in the last poll (0 when the last "
    "poll found nothing new); the worst source of the kind.",
    ["kind"],
    registry=registry,
)
POLL_LAST_SUCCESS = Gauge(
    "smm_ingest_poll_last_success_timestamp_seconds",
    "Unix time of the last successful poll of the stalest source of the kind.",
    ["kind"],
    registry=registry,
)


POLL_CURSOR_DISTRUSTED = Counter(
    "smm_ingest_poll_cursor_distrusted",
    "Poll cursors that pointed into the future (a source reset, a skewed clock, a bogus id), "
    "by kind and reason: `stored` (the saved cursor was reset, so polling restarts at the "
    "newest items instead of skipping everything until that time) or `item` (an item dated "
    "in the future was submitted but kept out of the cursor).",
    ["kind", "reason"],
    registry=registry,
)
POLL_BACKLOG_SKIPPED = Counter(
    "smm_ingest_poll_backlog_skipped",
    "Polls that could not reach their cursor within the page limit, so older new items were "
    "left out (Reddit: listings cannot be resumed in the middle); raise `max_pages` or poll "
    "more often when this grows.",
    ["kind"],
    registry=registry,
)
#: How far in the future a cursor position may lie before it is distrusted (clock skew).
CURSOR_FUTURE_SLACK = timedelta(hours=1)


def beyond_now(moment: datetime, now: datetime, slack: timedelta = CURSOR_FUTURE_SLACK) -> bool:
    """Whether a cursor position at `moment` lies further in the future than clocks drift.

    A cursor there makes "newer than the cursor" match nothing until that time: every new
    item would be skipped, silently. Pollers reset such a cursor and say so loudly.
    """
    return moment > now + slack


class _KindHealth:
    """Per-source lag and last success, folded into one series per kind (worst source wins).

    Several sources share a kind; setting the gauge from whichever polled last would hide a
    stuck source behind a healthy one, so the gauges show the maximum lag and the oldest success.
    """

    def __init__(self) -> None:
        self._lag: dict[str, dict[str, float]] = defaultdict(dict)
        self._success: dict[str, dict[str, float]] = defaultdict(dict)

    def success(self, kind: str, key: str, at: float, lag: float) -> None:
        self._success[kind][key] = at
        self._lag[kind][key] = lag
        POLL_LAST_SUCCESS.labels(kind).set(min(self._success[kind].values()))
        POLL_LAG.labels(kind).set(max(self._lag[kind].values()))

    def forget(self, kind: str, key: str) -> None:
        self._success[kind].pop(key, None)
        self._lag[kind].pop(key, None)
        if self._success[kind]:
            POLL_LAST_SUCCESS.labels(kind).set(min(self._success[kind].values()))
        if self._lag[kind]:
            POLL_LAG.labels(kind).set(max(self._lag[kind].values()))


HEALTH = _KindHealth()

# --- Source configuration --------------------------------------------------------------------

_HASHTAG = re.compile(r"^\w+$")
_SUBREDDIT = re.compile(r"^[A-Za-z0-9_]{2,21}(\+[A-Za-z0-9_]{2,21})*$")
WsUrlText = Annotated[str, StringConstraints(max_length=2_048, pattern=r"^wss?://\S+$")]


class _SourceBase(BaseModel):
    """Strict: a typo in an operator's JSON is an error at start, not a silently ignored key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @property
    def key(self) -> str:
        """Stable id of the source: its cursor document's `_id` (so never reorder its parts)."""
        raise NotImplementedError


class RssSource(_SourceBase):
    kind: Literal["rss"] = "rss"
    url: HttpUrlText
    interval_seconds: float = Field(default=300.0, gt=0)

    @property
    def key(self) -> str:
        return f"rss:{self.url}"


class MastodonSource(_SourceBase):
    """A hashtag timeline (public) or a full-text search (needs a token) on one instance."""

    kind: Literal["mastodon"] = "mastodon"
    instance_url: HttpUrlText
    hashtag: str | None = None
    query: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    access_token: SecretStr | None = None
    interval_seconds: float = Field(default=60.0, gt=0)
    #: Most pages (of 40) one poll reads; the rest is read by the next poll.
    max_pages: int = Field(default=10, ge=1, le=100)

    @field_validator("instance_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("hashtag")
    @classmethod
    def _hashtag(cls, value: str | None) -> str | None:
        if value is None:
            return None
        tag = value.strip().lstrip("#")
        if not _HASHTAG.match(tag):
            raise ValueError("a hashtag is letters, digits and underscores, e.g. 'Nachhaltigkeit'")
        return tag

    @model_validator(mode="after")
    def _one_of(self) -> MastodonSource:
        if (self.hashtag is None) == (self.query is None):
            raise ValueError("set exactly one of 'hashtag' or 'query'")
        if self.query is not None and self.access_token is None:
            raise ValueError("'query' (full-text search) needs an 'access_token'")
        return self

    @property
    def host(self) -> str:
        return (urlsplit(self.instance_url).netloc or self.instance_url).lower()

    @property
    def key(self) -> str:
        if self.hashtag is not None:
            return f"mastodon:{self.host}:tag:{self.hashtag.lower()}"
        return f"mastodon:{self.host}:search:{self.query}"


class RedditSource(_SourceBase):
    """A subreddit's newest posts or comments, or a search (optionally within a subreddit)."""

    kind: Literal["reddit"] = "reddit"
    subreddit: str | None = None
    query: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = None
    #: `new` (posts) or `comments` (newest comments); only for a subreddit without a query.
    listing: Literal["new", "comments"] = "new"
    #: Reddit blocks generic agents: `<platform>:<app id>:<version> (by /u/<username>)`.
    user_agent: Annotated[
        str, StringConstraints(min_length=8, max_length=256, pattern=r"^[^\r\n]+$")
    ]
    interval_seconds: float = Field(default=120.0, gt=0)
    max_pages: int = Field(default=5, ge=1, le=50)
    base_url: HttpUrlText = "https://www.reddit.com"
    #: Used instead of `base_url` when a Reddit app is configured (application-only OAuth).
    oauth_base_url: HttpUrlText = "https://oauth.reddit.com"
    token_url: HttpUrlText = "https://www.reddit.com/api/v1/access_token"  # noqa: S105 - a URL

    @field_validator("subreddit")
    @classmethod
    def _subreddit(cls, value: str | None) -> str | None:
        if value is None:
            return None
        name = value.strip().removeprefix("/").removeprefix("r/")
        if not _SUBREDDIT.match(name):
            raise ValueError("a subreddit name is 2-21 letters, digits or '_' (e.g. 'de')")
        return name

    @field_validator("base_url", "oauth_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _what(self) -> RedditSource:
        if self.subreddit is None and self.query is None:
            raise ValueError("set 'subreddit', 'query' or both")
        if self.listing == "comments" and (self.query is not None or self.subreddit is None):
            raise ValueError("listing 'comments' needs a 'subreddit' and no 'query'")
        return self

    @property
    def key(self) -> str:
        sub = self.subreddit.lower() if self.subreddit else None
        if self.query is None:
            return f"reddit:r/{sub}:{self.listing}"
        return f"reddit:search:{'r/' + sub if sub else 'all'}:{self.query}"


class BlueskySource(_SourceBase):
    """The Jetstream firehose; `keywords` is a cheap prefilter before the intake's matcher."""

    kind: Literal["bluesky"] = "bluesky"
    jetstream_url: WsUrlText = JETSTREAM_URL
    wanted_collections: list[str] = Field(default_factory=lambda: ["app.bsky.feed.post"])
    #: Case-insensitive substrings; a post must contain one to be submitted. Empty: all posts.
    keywords: list[str] = Field(default_factory=list)
    batch_size: int = Field(default=500, ge=1, le=10_000)
    batch_seconds: float = Field(default=1.0, gt=0, le=60)
    #: Resume this much before the stored cursor; Jetstream replays, the intake de-duplicates.
    resume_margin_seconds: float = Field(default=3.0, ge=0, le=300)

    @field_validator("wanted_collections")
    @classmethod
    def _collections(cls, value: list[str]) -> list[str]:
        if not value or any(not re.match(r"^[a-zA-Z0-9.*-]+$", c) for c in value):
            raise ValueError("wanted_collections are NSIDs such as 'app.bsky.feed.post'")
        return value

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        words = [word.strip().casefold() for word in value]
        if any(not word for word in words):
            raise ValueError("keywords must not be empty strings")
        return words

    @property
    def key(self) -> str:
        parts = urlsplit(self.jetstream_url)
        return f"bluesky:{parts.netloc.lower()}{parts.path.rstrip('/')}"


PollSource = Annotated[
    RssSource | MastodonSource | RedditSource | BlueskySource, Field(discriminator="kind")
]
_SOURCE_ADAPTER: TypeAdapter[PollSource] = TypeAdapter(PollSource)
KINDS: tuple[str, ...] = ("rss", "mastodon", "reddit", "bluesky")


class PollSourceError(ValueError):
    """`SMM_POLL_SOURCES` is invalid; the message names every bad entry and field."""


def parse_poll_sources(raw: Sequence[Mapping[str, Any]]) -> list[PollSource]:
    """Validate the configured sources; all problems are reported at once, secrets never echoed."""
    sources: list[PollSource] = []
    problems: list[str] = []
    for index, item in enumerate(raw):
        where = f"poll_sources[{index}]"
        kind = item.get("kind") if isinstance(item, Mapping) else None
        if kind not in KINDS:
            problems.append(f"{where}: 'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
            continue
        try:
            sources.append(_SOURCE_ADAPTER.validate_python(item))
        except ValidationError as exc:
            for error in exc.errors(include_input=False, include_url=False):
                loc = ".".join(str(part) for part in error["loc"][1:]) or "(source)"
                problems.append(f"{where} ({kind}): {loc}: {error['msg']}")
    seen: dict[str, int] = {}
    for index, source in enumerate(sources):
        if source.key in seen:
            problems.append(f"poll source {source.key!r} is configured twice")
        seen[source.key] = index
    if problems:
        raise PollSourceError("invalid poll sources:\n  " + "\n  ".join(problems))
    return sources


# --- Rate limits and backoff -----------------------------------------------------------------

#: Longest pause a server's rate-limit headers can impose (guards against absurd values).
MAX_SERVER_PAUSE = 3600.0


def _parse_when(value: str, now: datetime) -> float | None:
    """Seconds until `value`: delta seconds, a Unix time, an ISO 8601 or an HTTP date."""
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        # Reddit and Retry-After send a delta; some APIs send an epoch timestamp instead.
        return number - now.timestamp() if number > 1e9 else number
    moment: datetime | None = None
    try:
        moment = datetime.fromisoformat(value)  # Mastodon: 2024-05-01T12:05:00.000Z
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)  # Retry-After: Wed, 01 May 2024 12:05:00 GMT
        except (TypeError, ValueError, IndexError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - now).total_seconds()


def _bounded(delay: float | None) -> float | None:
    return None if delay is None else min(max(delay, 0.0), MAX_SERVER_PAUSE)


def retry_after_delay(headers: Mapping[str, str], now: datetime) -> float | None:
    """How long a 429/503 asks us to wait: `Retry-After`, else the rate-limit window's reset."""
    retry_after = headers.get("retry-after")
    if retry_after:
        delay = _parse_when(retry_after, now)
        if delay is not None:
            return _bounded(delay)
    reset = headers.get("x-ratelimit-reset")
    return _bounded(_parse_when(reset, now)) if reset else None


def quota_exhausted_delay(headers: Mapping[str, str], now: datetime) -> float | None:
    """After a success: the wait until the reset when `X-RateLimit-Remaining` reached zero."""
    remaining, reset = headers.get("x-ratelimit-remaining"), headers.get("x-ratelimit-reset")
    if remaining is None or reset is None:
        return None
    try:
        left = float(remaining)
    except ValueError:
        return None
    return _bounded(_parse_when(reset, now)) if left < 1 else None


def full_jitter_backoff(failures: int, base: float, cap: float, rng: random.Random) -> float:
    """AWS-style full jitter: uniform in [0, min(cap, base·2^(failures-1))].

    Spreads the retries of many replicas instead of having them return in lock-step.
    """
    ceiling = min(cap, base * 2 ** max(failures - 1, 0))
    return rng.uniform(0.0, ceiling)


@dataclass(frozen=True)
class PollTiming:
    """Loop pacing; tests shrink it, production keeps the defaults."""

    #: Each sleep between polls is the interval ± this fraction (spreads replicas and sources).
    jitter: float = 0.1
    backoff_base: float = 2.0
    backoff_cap: float = 15 * 60.0
    #: Longest response body read; a feed or page larger than this is an error.
    max_body_bytes: int = 20 * 1024 * 1024


class RateLimitedError(Exception):
    """The server answered 429/503; `delay` is what its headers ask for (None: unknown)."""

    def __init__(self, status: int, delay: float | None) -> None:
        super().__init__(f"HTTP {status}, retry after {delay if delay is not None else '?'} s")
        self.status = status
        self.delay = delay


class PollHttpError(Exception):
    """Any other non-success HTTP answer."""

    def __init__(self, status: int, url: str, snippet: str) -> None:
        super().__init__(f"HTTP {status} from {url}: {snippet}")
        self.status = status


@dataclass(frozen=True)
class Fetched:
    """A read response: status, headers and the (size-capped) body."""

    status_code: int
    headers: httpx.Headers
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


@dataclass(frozen=True)
class PollOutcome:
    """What one poll did: mentions submitted and the newest creation time among them."""

    submitted: int = 0
    newest: datetime | None = None


# --- Pollers ---------------------------------------------------------------------------------

S = TypeVar("S", bound=_SourceBase)


#: Lease releases still running after their pollers stopped (kept so they are not collected).
_RELEASING: set[asyncio.Task[None]] = set()


class Poller(ABC, Generic[S]):
    """One source: `poll_once` fetches, submits, then advances the cursor; `run` loops forever.

    The cursor is saved only after the sink returned, so a failed submit (Kafka down) leaves
    it where it was and the next poll fetches the same items again: nothing is lost, and the
    intake drops what was already emitted.
    """

    kind: ClassVar[str]

    def __init__(
        self,
        source: S,
        cursors: CursorStore,
        sink: MentionSink,
        *,
        timing: PollTiming | None = None,
        rng: random.Random | None = None,
        owner: str | None = None,
    ) -> None:
        self.source = source
        self.cursors = cursors
        self.sink = sink
        self.timing = timing or PollTiming()
        self.rng = rng or random.Random()
        self.failures = 0
        #: Monotonic time before which the server asked us not to come back.
        self._not_before = 0.0
        #: Monotonic time at which the lease must be renewed (0: not held).
        self._lease_renew_at = 0.0
        #: Who this replica is, for the per-source lease (see CursorStore.hold_lease).
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @property
    def key(self) -> str:
        return self.source.key

    @property
    def interval(self) -> float:
        value: float = getattr(self.source, "interval_seconds", 60.0)
        return value

    @abstractmethod
    async def _poll(self) -> PollOutcome:
        """Fetch, submit, save the cursor (in that order); raise on any failure."""

    async def poll_once(self) -> int:
        """One poll; returns the mentions submitted. Raises after recording a failure."""
        with bound_ids(poll_source=self.key):
            try:
                outcome = await self._poll()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._observe_failure(exc)
                raise
            await self._observe_success(outcome)
            return outcome.submitted

    async def run(self) -> None:
        """Poll forever: interval ± jitter, server-requested pauses, backoff on errors."""
        log.info("poller started", poll_source=self.key, kind=self.kind)
        try:
            while True:
                if _cancel_requested():
                    # A library swallowed our cancellation mid-call (seen with the database
                    # client): honour it here, or the loop would outlive its shutdown.
                    raise asyncio.CancelledError
                if not await self.hold_lease():
                    await asyncio.sleep(self._jittered_interval())
                    continue
                try:
                    await self.poll_once()
                    delay = self._jittered_interval()
                except asyncio.CancelledError:
                    raise
                except RateLimitedError as exc:
                    # Never sooner than asked; the backoff keeps a "retry after 0" from spinning.
                    delay = max(exc.delay or 0.0, self._backoff())
                except Exception:
                    delay = self._backoff()
                await asyncio.sleep(max(delay, self._not_before - time.monotonic(), 0.0))
        finally:
            HEALTH.forget(self.kind, self.key)
            await self.release_lease()
            log.info("poller stopped", poll_source=self.key, kind=self.kind)

    @property
    def lease_ttl(self) -> timedelta:
        """Long enough to outlive one poll and its pause; short enough to take over quickly."""
        return timedelta(seconds=max(60.0, 2 * self.interval))

    async def hold_lease(self) -> bool:
        """True while this replica is the one polling the source.

        The lease is renewed in the database only once half of it has run out, so a fast
        poller does not write on every loop.
        """
        now = time.monotonic()
        if now < self._lease_renew_at:
            return True
        try:
            held = await self.cursors.hold_lease(self.key, self.owner, self.lease_ttl)
        except Exception as exc:  # database unreachable: do not poll blind, try again later
            log.warning("cannot check the poll lease", poll_source=self.key, error=repr(exc))
            held = False
        ttl = self.lease_ttl.total_seconds()
        self._lease_renew_at = now + ttl / 2 if held else 0.0
        return held

    async def release_lease(self) -> None:
        """Give the source up (at shutdown) from its own bounded task.

        This runs while the poll task is being cancelled, possibly in the middle of a database
        call; the release must neither wait on that nor be cancelled with it. If it does not
        happen, the lease simply runs out.
        """
        if not self._lease_renew_at:
            return
        self._lease_renew_at = 0.0

        async def release() -> None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.cursors.release_lease(self.key, self.owner), 5)

        task = asyncio.get_running_loop().create_task(release())
        _RELEASING.add(task)
        task.add_done_callback(_RELEASING.discard)

    # -- shared helpers for subclasses --

    def _jittered_interval(self) -> float:
        spread = self.interval * self.timing.jitter
        return self.interval + self.rng.uniform(-spread, spread)

    def _backoff(self) -> float:
        return full_jitter_backoff(
            self.failures, self.timing.backoff_base, self.timing.backoff_cap, self.rng
        )

    async def _submit(self, items: Sequence[Any], rejected: Sequence[Any] = ()) -> None:
        """Hand a page to the intake; raises (and so keeps the cursor) if it did not take it."""
        if items or rejected:
            await self.sink(items, "poll", rejected)
            POLL_MENTIONS.labels(self.kind).inc(len(items))

    async def _get(
        self,
        http: httpx.AsyncClient,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Fetched:
        """GET with the body capped; 429/503 become RateLimitedError, other errors PollHttpError.

        A success whose `X-RateLimit-Remaining` hit zero pauses the next poll until the reset.
        """
        async with http.stream(
            "GET", url, params=params, headers=headers, follow_redirects=True
        ) as response:
            status = response.status_code
            if status in (429, 503):
                raise RateLimitedError(status, retry_after_delay(response.headers, utc_now()))
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self.timing.max_body_bytes:
                    raise PollHttpError(status, url, "response body too large")
            if status >= 400 or (300 <= status < 400 and status != 304):
                raise PollHttpError(status, url, bytes(body[:200]).decode(errors="replace"))
            pause = quota_exhausted_delay(response.headers, utc_now())
            if pause:
                self._not_before = max(self._not_before, time.monotonic() + pause)
                log.info("rate-limit quota used up; pausing", poll_source=self.key, seconds=pause)
            return Fetched(status, response.headers, bytes(body))

    def _distrust(self, reason: Literal["stored", "item"], position: object) -> None:
        """Loud record of a cursor position in the future (see `beyond_now`)."""
        POLL_CURSOR_DISTRUSTED.labels(self.kind, reason).inc()
        if reason == "stored":
            log.error(
                "poll cursor lies in the future; reset so new items are not skipped",
                poll_source=self.key,
                kind=self.kind,
                cursor=str(position)[:64],
            )
        else:
            log.warning(
                "item dated in the future kept out of the poll cursor",
                poll_source=self.key,
                kind=self.kind,
                position=str(position)[:64],
            )

    async def _observe_success(self, outcome: PollOutcome, *, quiet: bool = False) -> None:
        """Metrics always; the log line and the outcome document unless `quiet` (streams)."""
        self.failures = 0
        POLL_RUNS.labels(self.kind, "ok").inc()
        now = utc_now()
        lag = max((now - outcome.newest).total_seconds(), 0.0) if outcome.newest else 0.0
        HEALTH.success(self.kind, self.key, now.timestamp(), lag)
        if quiet:
            return
        if outcome.submitted:
            log.info("polled", poll_source=self.key, submitted=outcome.submitted, lag_s=lag)
        await self._record(None)

    async def _observe_failure(self, exc: BaseException) -> None:
        self.failures += 1
        limited = isinstance(exc, RateLimitedError)
        POLL_RUNS.labels(self.kind, "rate_limited" if limited else "error").inc()
        log.warning(
            "poll rate-limited" if limited else "poll failed",
            poll_source=self.key,
            kind=self.kind,
            error=repr(exc),
            failures=self.failures,
        )
        await self._record(repr(exc)[:500])

    async def _record(self, error: str | None) -> None:
        """Write the outcome beside the cursor; a database hiccup here must not stop polling."""
        try:
            await self.cursors.record_outcome(self.key, error)
        except Exception as exc:
            log.warning("recording poll outcome failed", poll_source=self.key, error=repr(exc))


def _cancel_requested() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class HttpPoller(Poller[S]):
    """A poller that fetches over HTTP with the service's shared client."""

    def __init__(
        self,
        source: S,
        cursors: CursorStore,
        sink: MentionSink,
        http: httpx.AsyncClient,
        *,
        timing: PollTiming | None = None,
        rng: random.Random | None = None,
        owner: str | None = None,
    ) -> None:
        super().__init__(source, cursors, sink, timing=timing, rng=rng, owner=owner)
        self.http = http


def build_pollers(
    sources: Sequence[PollSource],
    cursor_store: CursorStore,
    sink: MentionSink,
    http_client: httpx.AsyncClient,
    *,
    timing: PollTiming | None = None,
    reddit_app: RedditApp | None = None,
) -> list[Poller[Any]]:
    """One poller per configured source, sharing the HTTP client, cursor store and sink."""
    # Imported here: the concrete pollers import this module for their base class.
    from services.ingest.sources.bluesky import BlueskyPoller
    from services.ingest.sources.mastodon_poller import MastodonPoller
    from services.ingest.sources.reddit import RedditPoller
    from services.ingest.sources.rss import RssPoller

    pollers: list[Poller[Any]] = []
    for source in sources:
        if isinstance(source, RssSource):
            pollers.append(RssPoller(source, cursor_store, sink, http_client, timing=timing))
        elif isinstance(source, MastodonSource):
            pollers.append(MastodonPoller(source, cursor_store, sink, http_client, timing=timing))
        elif isinstance(source, RedditSource):
            pollers.append(
                RedditPoller(source, cursor_store, sink, http_client, timing=timing, app=reddit_app)
            )
        else:
            pollers.append(BlueskyPoller(source, cursor_store, sink, timing=timing))
    return pollers
