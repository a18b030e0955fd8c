"""Issue 16 (ingest): no poll cursor may silently skip new items after its source was reset.

A cursor that points into the future (a source restored or re-created, a skewed clock, a
bogus id or date) makes "newer than the cursor" match nothing until that time. Each poller
resets such a cursor loudly (log line and `smm_ingest_poll_cursor_distrusted_total`) and
never lets an item dated in the future become the cursor. Same fakes as `test_pollers.py`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from websockets.asyncio.server import serve

from services.ingest.sources.bluesky import BlueskyPoller
from services.ingest.sources.mastodon_poller import MastodonPoller
from services.ingest.sources.polling import BlueskySource, MastodonSource, RedditSource
from services.ingest.sources.reddit import RedditPoller
from services.ingest.storage import CursorStore
from shared.local.servers import free_port
from tests.integration.test_pollers import (
    FAST,
    HOST,
    JET_T0,
    UA,
    FakeJetstream,
    RecordingSink,
    Upstream,
    _jet_event,
    _metric,
    _reddit_post,
    _status,
    cursors,
    http,
    sink,
    upstream,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
__all__ = ["cursors", "http", "sink", "upstream"]  # fixtures

DISTRUSTED = "smm_ingest_poll_cursor_distrusted_total"


def _future_snowflake(days: int = 30) -> str:
    moment = datetime.now(UTC) + timedelta(days=days)
    return str(int(moment.timestamp() * 1000) << 16)


@pytest.mark.parametrize("mode", ["tag", "search"])
async def test_mastodon_cursor_in_the_future_is_reset_not_obeyed(
    upstream: Upstream,
    cursors: CursorStore,
    sink: RecordingSink,
    http: httpx.AsyncClient,
    mode: str,
) -> None:
    upstream.statuses = [_status(n) for n in range(1, 6)]
    for status in upstream.statuses:
        status["content"] = "<p>Kaffeemaschine</p>" + status["content"]
    source = (
        MastodonSource(instance_url=upstream.base, hashtag="kaffee")
        if mode == "tag"
        else MastodonSource(
            instance_url=upstream.base, query="kaffeemaschine", access_token="search-token"
        )
    )
    poller = MastodonPoller(source, cursors, sink, http)
    await cursors.save(poller.key, {"since_id": _future_snowflake()})
    before = _metric(DISTRUSTED, kind="mastodon", reason="stored")

    assert await poller.poll_once() == 5  # not 0 until next month
    assert _metric(DISTRUSTED, kind="mastodon", reason="stored") == before + 1
    assert await cursors.load(poller.key) == {"since_id": upstream.statuses[-1]["id"]}


async def test_a_future_dated_status_never_becomes_the_mastodon_cursor(
    upstream: Upstream, cursors: CursorStore, sink: RecordingSink, http: httpx.AsyncClient
) -> None:
    upstream.statuses = [_status(n) for n in range(1, 4)]
    bogus = _status(4)
    bogus["id"] = _future_snowflake()  # e.g. a remote status `published` next month
    upstream.statuses.append(bogus)
    poller = MastodonPoller(
        MastodonSource(instance_url=upstream.base, hashtag="kaffee"), cursors, sink, http
    )
    before = _metric(DISTRUSTED, kind="mastodon", reason="item")
    assert await poller.poll_once() == 4  # the odd status is still a mention
    assert await cursors.load(poller.key) == {"since_id": upstream.statuses[2]["id"]}
    assert _metric(DISTRUSTED, kind="mastodon", reason="item") == before + 1

    fresh = _status(5)  # a real new status after the bogus one: still found
    upstream.statuses.insert(3, fresh)
    assert await poller.poll_once() == 2  # it, and the bogus one again (the intake drops it)
    assert any(item.native_id.endswith(fresh["id"]) for item in sink.items[-2:])
    assert await cursors.load(poller.key) == {"since_id": fresh["id"]}


async def test_reddit_cursor_in_the_future_is_reset_not_obeyed(
    upstream: Upstream, cursors: CursorStore, sink: RecordingSink, http: httpx.AsyncClient
) -> None:
    upstream.reddit = [_reddit_post(n) for n in range(1, 6)]
    poller = RedditPoller(
        RedditSource(subreddit="de", user_agent=UA, base_url=upstream.base), cursors, sink, http
    )
    future = (datetime.now(UTC) + timedelta(days=30)).timestamp()
    await cursors.save(poller.key, {"newest": "t3_gone", "newest_created_utc": future})
    before = _metric(DISTRUSTED, kind="reddit", reason="stored")

    assert await poller.poll_once() == 5
    assert _metric(DISTRUSTED, kind="reddit", reason="stored") == before + 1
    assert (await cursors.load(poller.key))["newest"] == upstream.reddit[-1]["data"]["name"]


async def test_a_future_dated_reddit_post_never_becomes_the_cursor(
    upstream: Upstream, cursors: CursorStore, sink: RecordingSink, http: httpx.AsyncClient
) -> None:
    upstream.reddit = [_reddit_post(n) for n in range(1, 4)]
    bogus = _reddit_post(4)
    bogus["data"]["created_utc"] = (datetime.now(UTC) + timedelta(days=30)).timestamp()
    upstream.reddit.append(bogus)
    poller = RedditPoller(
        RedditSource(subreddit="de", user_agent=UA, base_url=upstream.base), cursors, sink, http
    )
    assert await poller.poll_once() == 4
    assert (await cursors.load(poller.key))["newest"] == upstream.reddit[2]["data"]["name"]


async def test_bluesky_cursor_in_the_future_is_reset_and_future_events_never_become_it(
    cursors: CursorStore, sink: RecordingSink
) -> None:
    future_us = int((datetime.now(UTC) + timedelta(days=30)).timestamp() * 1_000_000)
    bogus = _jet_event(5) | {"time_us": future_us}
    fake = FakeJetstream(events=[_jet_event(n) for n in range(1, 5)] + [bogus])
    port = free_port()
    async with serve(fake.handler, HOST, port):
        source = BlueskySource(jetstream_url=f"ws://{HOST}:{port}/subscribe", batch_seconds=0.3)
        poller = BlueskyPoller(source, cursors, sink, timing=FAST)
        await cursors.save(poller.key, {"time_us": future_us})
        before = _metric(DISTRUSTED, kind="bluesky", reason="stored")
        await poller.poll_once()
        assert poller.last_connect_cursor is None  # live tail, and the cursor may move again
        assert _metric(DISTRUSTED, kind="bluesky", reason="stored") == before + 1

        await cursors.save(poller.key, {"time_us": JET_T0})
        await poller.poll_once()
        assert (await cursors.load(poller.key)) == {"time_us": JET_T0 + 4 * 1000}


async def test_a_reddit_backlog_beyond_the_page_limit_is_counted(
    upstream: Upstream, cursors: CursorStore, sink: RecordingSink, http: httpx.AsyncClient
) -> None:
    upstream.reddit = [_reddit_post(n) for n in range(1, 3)]
    source = RedditSource(subreddit="de", user_agent=UA, base_url=upstream.base, max_pages=1)
    poller = RedditPoller(source, cursors, sink, http)
    assert await poller.poll_once() == 2
    upstream.reddit += [_reddit_post(n) for n in range(3, 153)]  # 150 new: two pages
    before = _metric("smm_ingest_poll_backlog_skipped_total", kind="reddit")
    assert await poller.poll_once() == 100
    assert _metric("smm_ingest_poll_backlog_skipped_total", kind="reddit") == before + 1
