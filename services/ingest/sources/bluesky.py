"""Bluesky through Jetstream: the firehose as JSON over a WebSocket, in micro-batches.

Jetstream numbers every event with `time_us` and replays from a `cursor` (a `time_us`) on
connect. We buffer posts for up to `batch_seconds` or `batch_size`, submit them, and only then
save the `time_us` of the last event handled, so a crash or disconnect resumes without a gap.
On reconnect we ask for `cursor - resume_margin_seconds`: Jetstream instances stamp `time_us`
on receipt, so after a fail-over to another instance the same event may carry a slightly
different time. The overlap is submitted again; this process skips ids it submitted recently,
and the intake's `SeenStore` drops the rest, so nothing is emitted twice downstream.

The firehose carries every public post (hundreds a second). `keywords` is a cheap
case-insensitive prefilter applied before submitting, so the intake only sees candidates; its
matcher still decides which trackers a post belongs to.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import ValidationError
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from services.ingest.domain.batch import MentionSink
from services.ingest.domain.normalise import MentionIn
from services.ingest.sources.polling import (
    CURSOR_FUTURE_SLACK,
    HEALTH,
    BlueskySource,
    Poller,
    PollOutcome,
    PollTiming,
)
from services.ingest.storage import CursorStore
from shared import __version__
from shared.logging import bound_ids, get_logger

log = get_logger(__name__)

POST = "app.bsky.feed.post"
_LANG = re.compile(r"^([a-zA-Z]{2})(?:[-_][a-zA-Z0-9]+)*$")
#: A streaming source writes its outcome document at most this often (not once per batch).
_RECORD_EVERY = 30.0


def subscribe_url(base: str, collections: Sequence[str], cursor_us: int | None) -> str:
    """`…/subscribe?wantedCollections=…&cursor=…` (no cursor: start at the live tail)."""
    parts = urlsplit(base)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("wantedCollections", "cursor")]
    query += [("wantedCollections", collection) for collection in collections]
    if cursor_us is not None:
        query.append(("cursor", str(cursor_us)))
    return urlunsplit(parts._replace(query=urlencode(query)))


def at_uri_to_native_id(uri: str) -> str | None:
    """`at://<did>/app.bsky.feed.post/<rkey>` → `<did>/<rkey>` (our native id of that post)."""
    if not uri.startswith("at://"):
        return None
    parts = uri[len("at://") :].split("/")
    return f"{parts[0]}/{parts[2]}" if len(parts) == 3 and parts[1] == POST else None


def _created_at(value: Any, time_us: int) -> datetime:
    """The record's `createdAt` (client-set), else the time Jetstream saw the event."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.fromtimestamp(time_us / 1e6, tz=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def post_text(event: dict[str, Any]) -> str | None:
    """The text of a post-create event; None for every other event (deletes, likes, identity)."""
    commit = event.get("commit") or {}
    if (
        event.get("kind") != "commit"
        or commit.get("operation") != "create"
        or commit.get("collection") != POST
    ):
        return None
    text = (commit.get("record") or {}).get("text")
    return text if isinstance(text, str) else None


def jetstream_event_to_mention(event: dict[str, Any]) -> MentionIn | None:
    """Map a Jetstream post-create event; None for anything else."""
    if post_text(event) is None:
        return None
    did, commit = str(event["did"]), event["commit"]
    record, rkey = commit.get("record") or {}, str(commit["rkey"])
    langs = record.get("langs") or []
    lang_match = _LANG.match(str(langs[0])) if langs else None
    parent = ((record.get("reply") or {}).get("parent") or {}).get("uri")
    return MentionIn.model_validate(
        {
            "platform": "bluesky",
            "native_id": f"{did}/{rkey}",
            "url": f"https://bsky.app/profile/{did}/post/{rkey}",
            "text": str(record.get("text") or "")[:40_000],
            "lang": lang_match.group(1).lower() if lang_match else None,
            "author": {"id": did},
            "created_at": _created_at(record.get("createdAt"), int(event["time_us"])),
            "in_reply_to": at_uri_to_native_id(parent) if isinstance(parent, str) else None,
        }
    )


def matches_keywords(text: str, keywords: Sequence[str]) -> bool:
    """Case-insensitive substring prefilter; no keywords means everything passes."""
    if not keywords:
        return True
    folded = text.casefold()
    return any(keyword in folded for keyword in keywords)


class _RecentIds:
    """Ids submitted lately by this process, so a replayed overlap is not resubmitted."""

    def __init__(self, size: int = 50_000) -> None:
        self._order: deque[str] = deque()
        self._ids: set[str] = set()
        self._size = size

    def __contains__(self, item: str) -> bool:
        return item in self._ids

    def add_all(self, ids: Iterable[str]) -> None:
        for item in ids:
            if item in self._ids:
                continue
            self._order.append(item)
            self._ids.add(item)
            if len(self._order) > self._size:
                self._ids.discard(self._order.popleft())


class LeaseLostError(RuntimeError):
    """Another replica holds this source now (this one was paused past its lease)."""


class BlueskyPoller(Poller[BlueskySource]):
    """A Jetstream consumer; `poll_once` reads one micro-batch, `run` streams and reconnects."""

    kind = "bluesky"

    def __init__(
        self,
        source: BlueskySource,
        cursors: CursorStore,
        sink: MentionSink,
        *,
        timing: PollTiming | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(source, cursors, sink, timing=timing, rng=rng)
        self._recent = _RecentIds()
        self._last_recorded = 0.0
        #: Diagnostics: the cursor asked for on the latest connect.
        self.last_connect_cursor: int | None = None

    @property
    def interval(self) -> float:
        return self.source.batch_seconds

    async def _poll(self) -> PollOutcome:
        return await self._session(once=True)

    async def run(self) -> None:
        """Stream forever; after a disconnect or failed submit, back off and resume."""
        log.info("jetstream consumer started", poll_source=self.key)
        try:
            while True:
                if not await self.hold_lease():  # another replica streams this source
                    await asyncio.sleep(self.lease_ttl.total_seconds() / 4)
                    continue
                try:
                    with bound_ids(poll_source=self.key):
                        await self._session(once=False)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    await self._observe_failure(exc)
                await asyncio.sleep(self._backoff())
        finally:
            HEALTH.forget(self.kind, self.key)
            await self.release_lease()
            log.info("jetstream consumer stopped", poll_source=self.key)

    async def _session(self, *, once: bool) -> PollOutcome:
        """One connection: read, batch, submit, save the cursor; `once` stops after a batch."""
        stored = (await self.cursors.load(self.key)).get("time_us")
        if stored is not None and int(stored) > _future_limit_us():
            # Jetstream would live-tail from now, and the cursor would never move again
            # (it only grows): every reconnect would leave a gap. Start afresh instead.
            self._distrust("stored", stored)
            stored = None
        margin = int(self.source.resume_margin_seconds * 1_000_000)
        start = max(int(stored) - margin, 0) if stored is not None else None
        self.last_connect_cursor = start
        url = subscribe_url(self.source.jetstream_url, self.source.wanted_collections, start)
        log.info("jetstream connecting", poll_source=self.key, cursor=start)
        state = _Batch(saved_us=int(stored) if stored is not None else None)
        # Not the guarded client: an operator-set URL (SMM_POLL_SOURCES), never user input.
        async with connect(
            url, open_timeout=10, user_agent_header=f"smm-ingest/{__version__}"
        ) as socket:
            window_end = time.monotonic() + self.source.batch_seconds
            while True:
                remaining = window_end - time.monotonic()
                if remaining > 0 and len(state.items) < self.source.batch_size:
                    try:
                        raw = await asyncio.wait_for(socket.recv(), remaining)
                    except TimeoutError:
                        continue
                    except ConnectionClosed:
                        outcome = await self._flush(state, observe=not once)
                        if once:
                            return outcome
                        raise
                    self._handle(raw, state)
                    continue
                outcome = await self._flush(state, observe=not once)
                if once:
                    return outcome
                window_end = time.monotonic() + self.source.batch_seconds

    def _handle(self, raw: str | bytes, state: _Batch) -> None:
        try:
            event = json.loads(raw)
            time_us = int(event["time_us"])
        except (ValueError, TypeError, KeyError):
            log.debug("unreadable jetstream message", poll_source=self.key)
            return
        if time_us > _future_limit_us():
            self._distrust("item", time_us)  # handled, but never the cursor's position
        else:
            state.last_us = max(state.last_us or 0, time_us)
        text = post_text(event)
        if text is None or not matches_keywords(text, self.source.keywords):
            return
        try:
            item = jetstream_event_to_mention(event)
        except (ValidationError, KeyError, TypeError, ValueError) as exc:
            log.debug("unmappable bluesky post", poll_source=self.key, error=repr(exc))
            return
        if item is not None and item.native_id not in self._recent:
            state.items.append(item)

    async def _flush(self, state: _Batch, *, observe: bool) -> PollOutcome:
        """Submit the batch, then save the last `time_us` handled (filtered events included)."""
        items = state.items
        progressed = state.last_us is not None and state.last_us != state.saved_us
        if items:
            await self._submit(items)
            self._recent.add_all(item.native_id for item in items)
        if progressed and state.last_us is not None:
            await self.cursors.save(self.key, {"time_us": state.last_us})
            state.saved_us = state.last_us
        if observe and not await self.hold_lease():
            raise LeaseLostError(self.key)  # ends the session; another replica took over
        newest = datetime.fromtimestamp(state.last_us / 1e6, tz=UTC) if state.last_us else None
        outcome = PollOutcome(submitted=len(items), newest=newest)
        state.items = []
        if observe and progressed:
            quiet = time.monotonic() - self._last_recorded < _RECORD_EVERY
            if not quiet:
                self._last_recorded = time.monotonic()
            await self._observe_success(outcome, quiet=quiet)
        return outcome


def _future_limit_us() -> int:
    """The latest `time_us` a cursor may hold (now plus the clock-skew allowance)."""
    return int((time.time() + CURSOR_FUTURE_SLACK.total_seconds()) * 1_000_000)


class _Batch:
    """The micro-batch being filled, and how far the stream has been read and saved."""

    def __init__(self, saved_us: int | None) -> None:
        self.items: list[MentionIn] = []
        self.last_us: int | None = saved_us
        self.saved_us = saved_us
