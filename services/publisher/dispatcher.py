"""The scheduler: claims due posts with a lease, sends them, records what happened.

Any number of replicas run this loop against the same database. A claim is a batched
compare-and-set from `scheduled` to `publishing` with a lease; a replica that dies mid-send
leaves posts whose lease expires, and whoever takes them over first asks the network whether
the post already went out (or re-sends under the same idempotency key), so no post is sent
twice. Retryable failures go back to `scheduled` with an exponential, jittered `due_at`;
a 401 parks the channel and holds its posts; a 429 pauses the channel.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import socket
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta

from services.publisher.adapters.base import (
    DEFAULT_RETRY_AFTER,
    MAX_RETRY_AFTER,
    Adapter,
    AuthExpiredError,
    OutgoingPost,
    PermanentSendError,
    Published,
    RateLimitedError,
    RetryableSendError,
    native_id_of_mention,
)
from services.publisher.calendar import Calendar
from services.publisher.channels import ChannelService
from services.publisher.metrics import (
    CLAIM_BATCH,
    LATENESS,
    POSTS,
    RATE_LIMIT_WAITS,
    RECONCILIATIONS,
    RETRIES,
    SEND_LATENCY,
)
from services.publisher.storage import ChannelStore, Outcome, PostStore, RateWindows
from shared.events import PostError, utc_now
from shared.logging import bound_ids, get_logger
from shared.mongo import Document
from shared.settings import Settings

log = get_logger(__name__)


def replica_id() -> str:
    """Who holds a lease: host and process, readable in the database."""
    return f"{socket.gethostname()}:{os.getpid()}"


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: base·2^(attempt-1), capped, times a factor in [0.5, 1]."""
    return float(min(cap, base * 2 ** max(0, attempt - 1)) * random.uniform(0.5, 1.0))


def pause_seconds(retry_after: float) -> float:
    """How long a 429 pauses the channel: at least a second, at most MAX_RETRY_AFTER."""
    if not math.isfinite(retry_after):
        return DEFAULT_RETRY_AFTER
    return min(MAX_RETRY_AFTER, max(1.0, retry_after))


class Dispatcher:
    def __init__(
        self,
        *,
        posts: PostStore,
        channel_store: ChannelStore,
        channels: ChannelService,
        calendar: Calendar,
        adapters: dict[str, Adapter],
        rate_windows: RateWindows,
        settings: Settings,
        owner: str | None = None,
    ) -> None:
        self._posts = posts
        self._channel_store = channel_store
        self._channels = channels
        self._calendar = calendar
        self._adapters = adapters
        self._rate_windows = rate_windows
        self._settings = settings
        self.owner = owner or replica_id()
        self._lease = timedelta(seconds=settings.publisher_lease_seconds)
        self._ahead = timedelta(seconds=settings.publisher_claim_ahead_seconds)
        self._send_slots = asyncio.Semaphore(settings.publisher_send_concurrency)
        self._max_inflight = settings.publisher_send_concurrency * 4
        self._inflight = 0
        self._room = asyncio.Event()
        self._rounds: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Claim and send until cancelled; several rounds may be sending at once."""
        interval = self._settings.publisher_poll_interval_seconds
        try:
            while True:
                room = min(
                    self._settings.publisher_claim_batch, self._max_inflight - self._inflight
                )
                if room <= 0:
                    self._room.clear()
                    await self._room.wait()
                    continue
                claimed = await self._claim(room)
                if claimed:
                    self._inflight += len(claimed)
                    task = asyncio.create_task(self._process(claimed))
                    self._rounds.add(task)
                    task.add_done_callback(self._rounds.discard)
                if len(claimed) < room:
                    await asyncio.sleep(interval)
        finally:
            # Shutting down: let rounds in flight finish their sends and record them (a send
            # cut off halfway would only be reconciled after its lease), then give up.
            if self._rounds:
                grace = self._settings.publisher_send_timeout_seconds + 5
                await asyncio.wait(list(self._rounds), timeout=grace)
            for task in list(self._rounds):
                task.cancel()

    async def run_once(self) -> int:
        """One claim-and-send round, awaited (tests and tools)."""
        claimed = await self._claim(self._settings.publisher_claim_batch)
        if claimed:
            self._inflight += len(claimed)
            await self._process(claimed)
        return len(claimed)

    async def _claim(self, limit: int) -> list[Document]:
        now = utc_now()
        blocked = await self._channels.blocked(now)
        claimed = await self._posts.claim_due(
            self.owner, now, self._lease, limit, blocked, ahead=self._ahead
        )
        if claimed:
            CLAIM_BATCH.observe(len(claimed))
        return claimed

    async def _process(self, claimed: list[Document]) -> None:
        try:
            await self._process_batch(claimed)
        except Exception:
            # The posts keep their lease; when it expires they are reconciled and retried.
            log.exception("dispatch round failed; its posts are retried after the lease")
        finally:
            self._inflight -= len(claimed)
            self._room.set()

    async def _process_batch(self, claimed: list[Document]) -> None:
        token = claimed[0]["claim_token"]
        channel_ids = {post["channel_id"] for post in claimed}
        channels = {c["_id"]: c for c in await self._channel_store.many(channel_ids)}
        sendable = await self._within_rate_limits(token, claimed, channels)
        fresh = [post for post in sendable if not post.get("uncertain")]
        await self._calendar.announce(fresh)  # `publishing`
        # One post's unexpected error (a database hiccup while pausing its channel, a bug)
        # is that post's failed attempt: the other posts' outcomes are recorded regardless,
        # or they would be sent again after the lease.
        results = await asyncio.gather(
            *(self._send(post, channels.get(post["channel_id"])) for post in sendable),
            return_exceptions=True,
        )
        outcomes = [
            self._unexpected(post, result) if isinstance(result, BaseException) else result
            for post, result in zip(sendable, results, strict=True)
        ]
        merged = {post["_id"]: post for post in sendable}
        finished = [{**merged[o.post_id], **o.changes} for o in outcomes]
        # Announce first, then record: a crash in between repeats an event, never loses one.
        await self._calendar.announce(finished)
        lost = await self._posts.finish(token, outcomes)
        for post_id in lost:
            log.warning("claim lost before the outcome was recorded", post_id=post_id)
        for post in finished:
            if post.get("series_id") and post["status"] in ("published", "failed"):
                await self._calendar.advance_series(post["series_id"], post["scheduled_for"])

    async def _within_rate_limits(
        self, token: str, claimed: list[Document], channels: dict[str, Document]
    ) -> list[Document]:
        """The posts that fit their channel's budget; the others go back to `scheduled`."""
        now = utc_now()
        by_channel: dict[str, list[Document]] = defaultdict(list)
        for post in claimed:
            by_channel[post["channel_id"]].append(post)
        sendable: list[Document] = []
        for channel_id, posts in by_channel.items():
            limit = (channels.get(channel_id) or {}).get("rate_limit")
            if not limit:
                sendable.extend(posts)
                continue
            posts.sort(key=lambda p: p.get("due_at") or now)
            granted, window_end = await self._rate_windows.reserve(
                channel_id, limit["max_posts"], limit["per_seconds"], now, len(posts)
            )
            sendable.extend(posts[:granted])
            over = posts[granted:]
            if over:
                platform = over[0].get("platform") or "unknown"
                RATE_LIMIT_WAITS.labels(platform, "channel_limit").inc(len(over))
                await self._posts.release(token, [p["_id"] for p in over], window_end)
        return sendable

    async def _send(self, post: Document, channel: Document | None) -> Outcome:
        wait = (post.get("claimed_due", utc_now()) - utc_now()).total_seconds()
        if wait > 0:  # claimed a moment ahead (SMM_PUBLISHER_CLAIM_AHEAD_SECONDS)
            await asyncio.sleep(wait)
        async with self._send_slots:
            with bound_ids(post_id=post["_id"]):
                return await self._send_one(post, channel)

    async def _send_one(self, post: Document, channel: Document | None) -> Outcome:
        platform = post.get("platform") or "unknown"
        now = utc_now()
        if channel is None or channel["platform"] not in self._adapters:
            return self._failed(post, "unknown_channel", "the post's channel no longer exists")
        if (
            post["lease_until"] - timedelta(seconds=self._settings.publisher_send_timeout_seconds)
            < now
        ):
            # Not enough lease left for a safe send: let it come back, reconciled.
            return Outcome(post["_id"], {"status": "scheduled", "due_at": now, "uncertain": True})
        adapter = self._adapters[channel["platform"]]
        access = self._channels.access(channel)
        outgoing = OutgoingPost(
            post_id=post["_id"],
            text=post["text"],
            media=list(post.get("media") or []),
            idempotency_key=post.get("idempotency_key") or post["_id"],
            scheduled_for=post.get("scheduled_for"),
            reply_to_native_id=native_id_of_mention(post.get("in_reply_to_mention_id")),
        )
        problem = self._channels.credential_problem(channel)
        if problem is not None or (access.credential is None and channel["platform"] != "generic"):
            # Parked, so the scheduler skips the channel until it is re-authorised (instead of
            # claiming its posts again every round).
            reason = problem or "credential is not set"
            await self._channels.mark_needs_reauth(channel["_id"], reason)
            return await self._hold_for_reauth(post, reason)
        started = time.perf_counter()
        outcome_label = "published"
        try:
            published: Published | None = None
            if post.get("uncertain"):
                published = await adapter.find_published(access, outgoing)
                RECONCILIATIONS.labels(platform, "yes" if published else "no").inc()
                if published is not None:
                    log.info("uncertain send had gone out; not sending again")
            if published is None:
                if post.get("attempt", 1) <= 1 and not post.get("uncertain"):
                    scheduled = post.get("scheduled_for") or now
                    LATENESS.labels(platform).observe(max(0.0, (now - scheduled).total_seconds()))
                published = await adapter.publish(access, outgoing)
            return self._published(post, published)
        except AuthExpiredError as exc:
            outcome_label = "auth_expired"
            await self._channels.mark_needs_reauth(channel["_id"], exc.message)
            return await self._hold_for_reauth(post, exc.message)
        except RateLimitedError as exc:
            outcome_label = "rate_limited"
            until = utc_now() + timedelta(seconds=pause_seconds(exc.retry_after))
            await self._channels.pause(channel["_id"], until)
            RATE_LIMIT_WAITS.labels(platform, "network_429").inc()
            return Outcome(
                post["_id"],
                {
                    "status": "scheduled",
                    "due_at": until,
                    "attempt": max(0, post.get("attempt", 1) - 1),
                    "error": PostError(
                        code=exc.code, message=exc.message, retryable=True
                    ).model_dump(),
                },
            )
        except RetryableSendError as exc:
            outcome_label = "retryable"
            return self._retry(post, exc.code, exc.message, uncertain=exc.uncertain)
        except PermanentSendError as exc:
            outcome_label = "rejected"
            return self._failed(post, exc.code, exc.message)
        except Exception as exc:  # an adapter bug must not lose the post: retry, reconciled
            outcome_label = "error"
            log.exception("unexpected send error")
            return self._retry(
                post, "internal_error", f"{type(exc).__name__}: {exc}", uncertain=True
            )
        finally:
            SEND_LATENCY.labels(platform, outcome_label).observe(time.perf_counter() - started)

    def _unexpected(self, post: Document, error: BaseException) -> Outcome:
        """An error that escaped the send of `post`: a retryable attempt, reconciled first."""
        with bound_ids(post_id=post["_id"]):
            log.error(
                "unexpected error while sending; the post is retried",
                error=f"{type(error).__name__}: {error}"[:500],
                exc_info=error,
            )
            return self._retry(
                post, "internal_error", f"{type(error).__name__}: {error}", uncertain=True
            )

    def _published(self, post: Document, published: Published) -> Outcome:
        log.info("post published", native_post_id=published.native_post_id)
        return Outcome(
            post["_id"],
            {
                "status": "published",
                "native_post_id": published.native_post_id,
                "url": published.url,
                "published_at": utc_now(),
                "uncertain": None,
                "error": None,
                "due_at": None,
            },
        )

    def _failed(self, post: Document, code: str, message: str) -> Outcome:
        log.warning("post failed", code=code, error=message[:300])
        error = PostError(code=code, message=message[:4000], retryable=False)
        return Outcome(
            post["_id"],
            {"status": "failed", "error": error.model_dump(), "due_at": None, "uncertain": None},
        )

    def _retry(self, post: Document, code: str, message: str, *, uncertain: bool) -> Outcome:
        attempt = int(post.get("attempt", 1))
        platform = post.get("platform") or "unknown"
        if attempt >= self._settings.publisher_max_attempts:
            if uncertain or post.get("uncertain"):
                message = f"{message} (an earlier attempt may have gone out; check the network)"
            return self._failed(post, code, f"gave up after {attempt} attempts: {message}")
        delay = backoff_seconds(
            attempt,
            self._settings.publisher_retry_base_seconds,
            self._settings.publisher_retry_max_seconds,
        )
        RETRIES.labels(platform, code).inc()
        log.info("send will be retried", code=code, attempt=attempt, retry_in=round(delay, 2))
        error = PostError(code=code, message=message[:4000], retryable=True)
        return Outcome(
            post["_id"],
            {
                "status": "scheduled",
                "due_at": utc_now() + timedelta(seconds=delay),
                "uncertain": True if (uncertain or post.get("uncertain")) else None,
                "error": error.model_dump(),
            },
        )

    async def _hold_for_reauth(self, post: Document, reason: str) -> Outcome:
        """Back to `scheduled` (not failed): sent once the channel is re-authorised."""
        error = PostError(
            code="auth_expired",
            message=f"channel needs re-authorisation: {reason}"[:4000],
            retryable=True,
        )
        return Outcome(
            post["_id"],
            {
                "status": "scheduled",
                "due_at": utc_now(),
                "attempt": max(0, post.get("attempt", 1) - 1),
                "error": error.model_dump(),
            },
        )


async def refresh_post_gauge(posts: PostStore, interval: float = 300.0) -> None:
    """Keep `smm_publisher_posts` current (a background task).

    Rarely: the count is an aggregation over every post, which a large calendar pays for.
    """
    while True:
        POSTS.clear()
        for row in await posts.counts():
            key = row["_id"]
            POSTS.labels(key.get("status") or "unknown", key.get("platform") or "unknown").set(
                row["n"]
            )
        await asyncio.sleep(interval)


__all__: Sequence[str] = ["Dispatcher", "backoff_seconds", "refresh_post_gauge", "replica_id"]
