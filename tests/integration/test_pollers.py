"""The pollers against local servers that speak each platform's real wire format.

One in-process HTTP server (uvicorn) plays an Atom feed, an RSS 2.0 feed, a Mastodon instance
(tag timeline with `min_id` paging and Link headers, `/api/v2/search`) and Reddit's listing
JSON; a `websockets` server replays Jetstream from its `cursor` parameter. Cursors live in the
real MongoDB-protocol server. The sink is a recorder that can be told to fail: the pollers are
under test here, not the intake.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import itertools
import json
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from hashlib import sha1
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

import httpx
import pytest
import uvicorn
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from services.ingest.domain.batch import IntakeResult, RejectedItem
from services.ingest.domain.normalise import MentionIn
from services.ingest.sources.bluesky import BlueskyPoller
from services.ingest.sources.mastodon_poller import MastodonPoller
from services.ingest.sources.polling import (
    BlueskySource,
    MastodonSource,
    PollHttpError,
    PollOutcome,
    PollTiming,
    RedditSource,
    RssSource,
    build_pollers,
)
from services.ingest.sources.reddit import RedditApp, RedditPoller
from services.ingest.sources.rss import RssPoller
from services.ingest.storage import CursorStore
from shared.events import MentionSource
from shared.local.servers import free_port
from shared.mongo import create_mongo_client, service_database
from shared.settings import Settings
from tests.integration.helpers import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

HOST = "127.0.0.1"
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
UA = "linux:smm-ingest-tests:0.1 (by /u/smm_test)"
FAST = PollTiming(jitter=0.0, backoff_base=0.05, backoff_cap=1.0)

GERMAN = [
    "Die neue Kaffeemaschine im Büro macht endlich richtigen Espresso",
    "Hat jemand Erfahrung mit dem Entkalken der Siebträgermaschine?",
    "Lieferung kam zwei Tage zu spät, der Kaffee war trotzdem super",
    "Röstung zu dunkel für meinen Geschmack, schade",
]
ENGLISH = [
    "Our new coffee machine finally makes proper espresso",
    "Anyone tried descaling the portafilter machine yet?",
    "Delivery was two days late but the beans are great",
    "Roast is far too dark for my taste, sadly",
]


def _text(n: int) -> str:
    pool = GERMAN if n % 2 else ENGLISH
    return f"{pool[n % len(pool)]} (#{n})"


# --- the sink ------------------------------------------------------------------------------


class BrokerDownError(RuntimeError):
    """What the intake raises when Kafka did not acknowledge."""


class RecordingSink:
    """Records every batch; `fail_next` makes the next calls raise like an unacked publish."""

    def __init__(self) -> None:
        self.batches: list[list[MentionIn]] = []
        self.fail_next = 0

    async def __call__(
        self,
        items: Sequence[MentionIn],
        source: MentionSource,
        rejected: Sequence[RejectedItem] = (),
    ) -> IntakeResult:
        assert source == "poll"
        if self.fail_next:
            self.fail_next -= 1
            raise BrokerDownError("Kafka did not acknowledge")
        self.batches.append(list(items))
        return IntakeResult(accepted=len(items))

    @property
    def items(self) -> list[MentionIn]:
        return [item for batch in self.batches for item in batch]

    def ids(self) -> list[str]:
        return [item.native_id for item in self.items]


# --- the fake upstream (HTTP) --------------------------------------------------------------


@dataclass
class Hit:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float
    status: int = 0


@dataclass
class FeedEntry:
    key: str
    title: str
    html: str
    published: datetime | None
    author: str | None = None


def _http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def _status(n: int, *, tag: str = "kaffee", remote: bool = False) -> dict[str, Any]:
    """A status as Mastodon 4.x serialises it (trimmed to the fields a client reads)."""
    status_id = str(112_000_000_000_000_000 + n)
    account: dict[str, Any] = (
        {"id": "901", "username": "ben", "acct": "ben@mastodon.example.org", "display_name": "Ben"}
        if remote
        else {"id": "17", "username": "anna", "acct": "anna", "display_name": "Anna Beispiel"}
    )
    account |= {"followers_count": 42 + n, "url": "https://social.example.de/@anna"}
    created = (T0 + timedelta(seconds=30 * n)).isoformat(timespec="milliseconds")
    return {
        "id": status_id,
        "created_at": created.replace("+00:00", "Z"),
        "in_reply_to_id": None,
        "in_reply_to_account_id": None,
        "sensitive": False,
        "spoiler_text": "",
        "visibility": "public",
        "language": "de" if n % 2 else "en",
        "uri": f"https://social.example.de/users/anna/statuses/{status_id}",
        "url": f"https://social.example.de/@anna/{status_id}",
        "replies_count": 1,
        "reblogs_count": 2,
        "favourites_count": n % 7,
        "content": f'<p>{escape(_text(n))} <a href="https://social.example.de/tags/{tag}" '
        f'class="mention hashtag" rel="tag">#<span>{tag}</span></a></p>',
        "reblog": None,
        "account": account,
        "media_attachments": [],
        "mentions": [],
        "tags": [{"name": tag, "url": f"https://social.example.de/tags/{tag}"}],
        "emojis": [],
        "card": None,
        "poll": None,
    }


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while number:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
    return out


def _reddit_post(n: int, subreddit: str = "de") -> dict[str, Any]:
    """A `t3` child as `/r/<sub>/new.json?raw_json=1` returns it (trimmed)."""
    post_id = _base36(60_000_000 + n)
    title = _text(n)
    return {
        "kind": "t3",
        "data": {
            "subreddit": subreddit,
            "subreddit_name_prefixed": f"r/{subreddit}",
            "selftext": "Was meint ihr?" if n % 3 == 0 else "",
            "author_fullname": f"t2_{_base36(9_000 + n)}",
            "title": title,
            "name": f"t3_{post_id}",
            "id": post_id,
            "score": n % 11,
            "ups": n % 11,
            "num_comments": n % 5,
            "created": float(T0.timestamp() + 60 * n),
            "created_utc": float(T0.timestamp() + 60 * n),
            "author": "[deleted]" if n % 13 == 0 else f"user_{n}",
            "permalink": f"/r/{subreddit}/comments/{post_id}/post_{n}/",
            "url": f"https://www.reddit.com/r/{subreddit}/comments/{post_id}/post_{n}/",
            "over_18": False,
            "stickied": False,
            "is_self": True,
        },
    }


class Upstream:
    """State and routes of the fake platforms; every request is logged as a `Hit`."""

    def __init__(self) -> None:
        self.base = ""
        self.hits: list[Hit] = []
        #: Responses served before the real handler, per path: (status, headers).
        self.scripted: dict[str, deque[tuple[int, dict[str, str]]]] = defaultdict(deque)
        self.atom: list[FeedEntry] = []
        self.atom_salt = 0  # bump to change the ETag without new entries (a "touched" feed)
        self.atom_modified = T0
        self.rss: list[FeedEntry] = []
        self.rss_modified = T0
        self.statuses: list[dict[str, Any]] = []  # oldest first
        self.reddit: list[dict[str, Any]] = []  # oldest first
        self.reddit_headers_once: dict[str, str] = {}
        self.reddit_token: str | None = None  # when set, listings need this bearer token
        self.reddit_grants: list[dict[str, str]] = []

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/feeds/atom.xml", self._wrap(self.atom_feed)),
                Route("/feeds/rss.xml", self._wrap(self.rss_feed)),
                Route("/api/v1/timelines/tag/{tag}", self._wrap(self.tag_timeline)),
                Route("/api/v2/search", self._wrap(self.search)),
                Route("/r/{sub}/new.json", self._wrap(self.reddit_new)),
                Route("/api/v1/access_token", self._wrap(self.reddit_grant), methods=["POST"]),
            ]
        )

    def hits_on(self, path: str) -> list[Hit]:
        return [hit for hit in self.hits if hit.path == path]

    def _wrap(
        self, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            hit = Hit(
                path=request.url.path,
                query=dict(request.query_params),
                headers={k.lower(): v for k, v in request.headers.items()},
                at=time.monotonic(),
            )
            self.hits.append(hit)
            script = self.scripted[request.url.path]
            if script:
                status, headers = script.popleft()
                response = Response(f"scripted {status}", status_code=status, headers=headers)
            else:
                response = await handler(request)
            hit.status = response.status_code
            return response

        return endpoint

    # feeds

    def _conditional(
        self, request: Request, body: bytes, etag: str | None, modified: datetime, media: str
    ) -> Response:
        headers = {"Last-Modified": _http_date(modified)}
        if etag:
            headers["ETag"] = etag
        match = request.headers.get("if-none-match")
        since = request.headers.get("if-modified-since")
        if etag and match is not None:
            not_modified = match == etag
        else:
            not_modified = since is not None and parsedate_to_datetime(since) >= modified
        if not_modified:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=media, headers=headers)

    async def atom_feed(self, request: Request) -> Response:
        entries = "".join(
            f"""<entry><title>{escape(e.title)}</title>
<id>tag:roestwerk.example.de,2024:{e.key}</id>
<link rel="alternate" href="https://roestwerk.example.de/blog/{e.key}"/>
{f"<published>{e.published.isoformat()}</published>" if e.published else ""}
{f"<author><name>{escape(e.author)}</name></author>" if e.author else ""}
<content type="html">{escape(e.html)}</content></entry>"""
            for e in reversed(self.atom)
        )
        body = f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="de-DE">
<title>Röstwerk Blog</title><id>tag:roestwerk.example.de,2024:blog</id>
<updated>{self.atom_modified.isoformat()}</updated>
<link rel="self" href="{self.base}/feeds/atom.xml"/>{entries}</feed>""".encode()
        etag = f'"{sha1(body + bytes([self.atom_salt])).hexdigest()[:16]}"'  # noqa: S324
        return self._conditional(request, body, etag, self.atom_modified, "application/atom+xml")

    async def rss_feed(self, request: Request) -> Response:
        items = "".join(
            f"""<item><title>{escape(e.title)}</title>
<link>https://coffee.example.com/news/{e.key}</link>
<guid isPermaLink="true">https://coffee.example.com/news/{e.key}</guid>
{f"<pubDate>{_http_date(e.published)}</pubDate>" if e.published else ""}
<description>{escape(e.html)}</description></item>"""
            for e in reversed(self.rss)
        )
        body = f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Coffee Trade Weekly</title>
<link>https://coffee.example.com/</link><language>en-us</language>
<description>News from the coffee trade</description>{items}</channel></rss>""".encode()
        # This server sends only Last-Modified (no ETag): If-Modified-Since must suffice.
        return self._conditional(request, body, None, self.rss_modified, "application/rss+xml")

    # Mastodon

    def _mastodon_page(
        self, candidates: list[dict[str, Any]], query: dict[str, str]
    ) -> list[dict[str, Any]]:
        """Mastodon's paging: max_id/since_id bound; min_id returns the oldest above it."""

        def num(key: str) -> int | None:
            return int(query[key]) if key in query else None

        limit = min(int(query.get("limit", 20)), 40)
        max_id, since_id, min_id = num("max_id"), num("since_id"), num("min_id")
        rows = [
            s
            for s in candidates
            if (max_id is None or int(s["id"]) < max_id)
            and (since_id is None or int(s["id"]) > since_id)
            and (min_id is None or int(s["id"]) > min_id)
        ]
        page = rows[:limit] if min_id is not None else rows[-limit:]
        return list(reversed(page))  # newest first, always

    def _rate_headers(self) -> dict[str, str]:
        reset = (datetime.now(UTC) + timedelta(minutes=5)).isoformat(timespec="milliseconds")
        return {
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Remaining": "299",
            "X-RateLimit-Reset": reset.replace("+00:00", "Z"),
        }

    async def tag_timeline(self, request: Request) -> Response:
        tag = request.path_params["tag"].lower()
        tagged = [s for s in self.statuses if any(t["name"] == tag for t in s["tags"])]
        page = self._mastodon_page(tagged, dict(request.query_params))
        headers = self._rate_headers()
        if page:
            url = f"{self.base}/api/v1/timelines/tag/{tag}"
            headers["Link"] = (
                f'<{url}?max_id={page[-1]["id"]}>; rel="next", '
                f'<{url}?min_id={page[0]["id"]}>; rel="prev"'
            )
        return JSONResponse(page, headers=headers)

    async def search(self, request: Request) -> Response:
        if request.headers.get("authorization") != "Bearer search-token":
            return JSONResponse({"error": "The access token is invalid"}, status_code=401)
        query = dict(request.query_params)
        if query.get("type") != "statuses":
            return JSONResponse({"error": "type"}, status_code=422)
        needle = query["q"].lower()
        found = [s for s in self.statuses if needle in s["content"].lower()]
        # In search, min_id is only a lower bound: newest results first, like since_id.
        lower = {k: v for k, v in query.items() if k != "min_id"}
        if "min_id" in query:
            lower["since_id"] = query["min_id"]
        page = self._mastodon_page(found, lower)
        return JSONResponse({"accounts": [], "statuses": page, "hashtags": []})

    # Reddit

    async def reddit_grant(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        credentials = base64.b64decode(
            request.headers.get("authorization", "Basic ").removeprefix("Basic ")
        ).decode()
        self.reddit_grants.append(
            {"credentials": credentials, **{k: str(v) for k, v in form.items()}}
        )
        if credentials != "app-id:app-secret" or form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "invalid_grant"}, status_code=401)
        self.reddit_token = f"token-{len(self.reddit_grants)}"
        return JSONResponse(
            {"access_token": self.reddit_token, "token_type": "bearer", "expires_in": 86400}
        )

    async def reddit_new(self, request: Request) -> Response:
        sub = request.path_params["sub"]
        if self.reddit_token and request.headers.get("authorization") != (
            f"bearer {self.reddit_token}"
        ):
            return JSONResponse({"message": "Unauthorized", "error": 401}, status_code=401)
        newest_first = [p for p in reversed(self.reddit) if p["data"]["subreddit"] == sub]
        limit = min(int(request.query_params.get("limit", 25)), 100)
        after = request.query_params.get("after")
        if after:
            names = [p["data"]["name"] for p in newest_first]
            newest_first = newest_first[names.index(after) + 1 :]
        page = newest_first[:limit]
        more = len(newest_first) > limit
        headers = {
            "x-ratelimit-used": "1",
            "x-ratelimit-remaining": "99.0",
            "x-ratelimit-reset": "60",
        }
        headers |= self.reddit_headers_once
        self.reddit_headers_once = {}
        listing = {
            "kind": "Listing",
            "data": {
                "after": page[-1]["data"]["name"] if more and page else None,
                "before": None,
                "dist": len(page),
                "modhash": "",
                "geo_filter": None,
                "children": page,
            },
        }
        return JSONResponse(listing, headers=headers)


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    fake = Upstream()
    port = free_port()
    config = uvicorn.Config(
        fake.app(), host=HOST, port=port, log_level="warning", lifespan="off", access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    fake.base = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "fake upstream did not start"
        await asyncio.sleep(0.02)
    try:
        yield fake
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def cursors(settings: Settings) -> AsyncIterator[CursorStore]:
    client = create_mongo_client(settings, "ingest-poller-tests")
    try:
        yield CursorStore(service_database(client, settings))
    finally:
        await client.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
        yield client


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


async def _outcome_doc(cursors: CursorStore, key: str) -> dict[str, Any]:
    return next((doc for doc in await cursors.all() if doc["_id"] == key), {})


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- RSS / Atom ----------------------------------------------------------------------------


async def test_feeds_map_send_validators_handle_304_and_resume_after_restart(
    upstream: Upstream, cursors: CursorStore, sink: RecordingSink, http: httpx.AsyncClient
) -> None:
    upstream.atom = [
        FeedEntry(
            f"post-{n}",
            f"Neu im Röstwerk: Teil {n}",
            f"<p>{escape(_text(2 * n + 1))}</p><p><b>Jetzt</b> im Laden.</p>",
            T0 + timedelta(hours=n),
            author="Jana Köhler" if n == 1 else None,
        )
        for n in range(1, 4)
    ]
    upstream.rss = [
        FeedEntry("harvest", "Harvest report", "<p>Arabica up 4 %.</p>", T0),
        FeedEntry("undated", "Roasters meet in Hamburg", "<p>No date on this one.</p>", None),
    ]
    atom = RssSource(url=f"{upstream.base}/feeds/atom.xml")
    rss = RssSource(url=f"{upstream.base}/feeds/rss.xml")
    atom_poller = RssPoller(atom, cursors, sink, http)
    rss_poller = RssPoller(rss, cursors, sink, http)

    assert await atom_poller.poll_once() == 3
    first = sink.items[0]
    assert first.platform == "rss"
    assert first.native_id == "tag:roestwerk.example.de,2024:post-3"
    assert first.url == "https://roestwerk.example.de/blog/post-3"
    assert first.text == f"Neu im Röstwerk: Teil 3\n\n{_text(7)}\nJetzt im Laden."
    assert first.lang == "de"
    assert first.created_at == T0 + timedelta(hours=3)
    assert first.author.display_name == "Röstwerk Blog"
    assert sink.items[2].author.display_name == "Jana Köhler"

    cursor = await cursors.load(atom.key)
    assert cursor["etag"].startswith('"')
    assert cursor["last_modified"] == _http_date(T0)
    assert len(cursor["seen_ids"]) == 3

    # Unchanged feed: the stored validators go out and the server answers 304.
    assert await atom_poller.poll_once() == 0
    conditional = upstream.hits_on("/feeds/atom.xml")[-1]
    assert conditional.headers["if-none-match"] == cursor["etag"]
    assert conditional.headers["if-modified-since"] == cursor["last_modified"]
    assert conditional.status == 304
    assert conditional.headers["user-agent"].startswith("smm-ingest/")

    # RSS 2.0 with Last-Modified only.
    assert await rss_poller.poll_once() == 2
    english = {item.native_id: item for item in sink.items[3:]}
    harvest = english["https://coffee.example.com/news/harvest"]
    assert harvest.lang == "en"
    assert harvest.text == "Harvest report\n\nArabica up 4 %."
    assert await rss_poller.poll_once() == 0
    assert upstream.hits_on("/feeds/rss.xml")[-1].status == 304
    assert "if-none-match" not in upstream.hits_on("/feeds/rss.xml")[-1].headers

    # A new undated item: only it is submitted (the older undated one is remembered).
    upstream.rss.append(FeedEntry("late", "Late news", "<p>Also undated.</p>", None))
    upstream.rss_modified = T0 + timedelta(hours=1)
    assert await rss_poller.poll_once() == 1
    assert sink.ids()[-1] == "https://coffee.example.com/news/late"

    # "Restart": new poller objects over the same cursor store.
    atom_again = RssPoller(atom, cursors, sink, http)
    rss_again = RssPoller(rss, cursors, sink, http)
    assert await atom_again.poll_once() == 0
    assert upstream.hits_on("/feeds/atom.xml")[-1].status == 304
    # The feed is re-rendered (new ETag) with one new, undated entry: no old entry comes back.
    upstream.atom_salt += 1
    upstream.atom.append(FeedEntry("post-4", "Ohne Datum", "<p>Kaffeemaschine</p>", None))
    assert await atom_again.poll_once() == 1
    assert sink.ids()[-1] == "tag:roestwerk.example.de,2024:post-4"
    assert await rss_again.poll_once() == 0

    ids = sink.ids()
    assert len(ids) == len(set(ids)) == 7
    outcome = await _outcome_doc(cursors, atom.key)
    assert outcome["last_error"] is None
    assert outcome["last_success_at"] is not None


async def test_failed_submit_keeps_the_cursor_and_the_items_come_again(
    upstream: Upstream, cursors: CursorStore, sink: RecordingSink, http: httpx.AsyncClient
) -> None:
    upstream.rss = [FeedEntry(f"n{n}", f"News {n}", "<p>Coffee</p>", T0) for n in range(2)]
    upstream.statuses = [_status(n) for n in range(1, 6)]
    upstream.reddit = [_reddit_post(n) for n in range(1, 6)]
    rss = RssPoller(RssSource(url=f"{upstream.base}/feeds/rss.xml"), cursors, sink, http)
    mastodon = MastodonPoller(
        MastodonSource(instance_url=upstream.base, hashtag="kaffee"), cursors, sink, http
    )
    reddit = RedditPoller(
        RedditSource(subreddit="de", user_agent=UA, base_url=upstream.base), cursors, sink, http
    )
    await cursors.save(mastodon.key, {"since_id": upstream.statuses[1]["id"]})
    await cursors.save(reddit.key, {"newest": "t3_x", "newest_created_utc": T0.timestamp() + 90})
    errors_before = _metric("smm_ingest_poll_runs_total", kind="rss", outcome="error")

    for poller, expected in ((rss, 2), (mastodon, 3), (reddit, 4)):
        before = await cursors.load(poller.key)
        sink.fail_next = 1
        with pytest.raises(BrokerDownError):
            await poller.poll_once()
        assert await cursors.load(poller.key) == before, poller.key
        outcome = await _outcome_doc(cursors, poller.key)
        assert "BrokerDownError" in outcome["last_error"]
        # Next poll: the same items again (for the feed a full 200, not a 304).
        submitted_before = len(sink.items)
        assert await poller.poll_once() == expected
        assert len(sink.items) - submitted_before == expected
        assert await cursors.load(poller.key) != before
        assert (await _outcome_doc(cursors, poller.key))["last_error"] is None

    assert upstream.hits_on("/feeds/rss.xml")[1].status == 200
    assert "if-modified-since" not in upstream.hits_on("/feeds/rss.xml")[1].headers
    assert _metric("smm_ingest_poll_runs_total", kind="rss", outcome="error") == errors_before + 1


# --- Mastodon ------------------------------------------------------------------------------


async def test_mastodon_tag_timeline_pages_forward_with_min_id_and_resumes(
    upstream: Upstream, cursors: CursorStore, sink: RecordingSink, http: httpx.AsyncClient
) -> None:
    upstream.statuses = [_status(n, remote=n % 10 == 0) for n in range(1, 96)]
    upstream.statuses += [_status(n, tag="tee") for n in range(96, 99)]
    source = MastodonSource(instance_url=upstream.base, hashtag="#Kaffee", access_token="tok")
    poller = MastodonPoller(source, cursors, sink, http)

    # No cursor yet: the newest page only (no backfill of the tag's history).
    assert await poller.poll_once() == 40
    assert sink.ids()[0] == upstream.statuses[94]["uri"]
    newest = sink.items[0]
    assert newest.text.startswith(f"<p>{_text(95)} ")
    assert newest.lang == "de"
    assert newest.author.id == f"anna@{HOST}"
    assert newest.author.display_name == "Anna Beispiel"
    assert newest.created_at == T0 + timedelta(seconds=30 * 95)
    assert newest.metrics.likes == 95 % 7
    assert newest.metrics.shares == 2
    assert any(item.author.id == "ben@mastodon.example.org" for item in sink.items)
    assert await cursors.load(poller.key) == {"since_id": upstream.statuses[94]["id"]}

    # 90 new statuses: three min_id pages, oldest first, cursor saved after each page.
    upstream.statuses += [_status(n) for n in range(100, 190)]
    assert await poller.poll_once() == 90
    hits = upstream.hits_on("/api/v1/timelines/tag/Kaffee")
    assert [h.query.get("min_id") for h in hits[1:]] == [
        upstream.statuses[94]["id"],
        str(112_000_000_000_000_000 + 139),
        str(112_000_000_000_000_000 + 179),
    ]
    assert all(h.headers["authorization"] == "Bearer tok" for h in hits)
    assert [len(batch) for batch in sink.batches] == [40, 40, 40, 10]

    # Restart with three more: exactly those three.
    upstream.statuses += [_status(n) for n in range(190, 193)]
    assert await MastodonPoller(source, cursors, sink, http).poll_once() == 3
    ids = sink.ids()
    assert len(ids) == len(set(ids)) == 133
    assert await cursors.load(poller.key) == {"since_id": str(112_000_000_000_000_000 + 192)}


async def test_mastodon_search_fills_a_gap_over_several_polls(
    upstream: Upstream, cursors: CursorStore, sink: RecordingSink, http: httpx.AsyncClient
) -> None:
    def matching(n: int) -> dict[str, Any]:
        status = _status(n)
        status["content"] = f"<p>Kaffeemaschine Nr. {n}: {escape(_text(n))}</p>"
        return status

    upstream.statuses = [matching(n) if n % 3 else _status(n) for n in range(1, 16)]
    source = MastodonSource(
        instance_url=upstream.base, query="kaffeemaschine", access_token="search-token", max_pages=2
    )
    poller = MastodonPoller(source, cursors, sink, http)
    assert await poller.poll_once() == 10
    first_since = (await cursors.load(poller.key))["since_id"]

    # A burst of 100 matches: two pages per poll, the rest of the gap in the next poll.
    upstream.statuses += [matching(n) for n in range(100, 200)]
    assert await poller.poll_once() == 80
    cursor = await cursors.load(poller.key)
    assert cursor["since_id"] == first_since
    assert cursor["backfill"]["newest"] == str(112_000_000_000_000_000 + 199)
    assert await MastodonPoller(source, cursors, sink, http).poll_once() == 20
    assert await cursors.load(poller.key) == {"since_id": str(112_000_000_000_000_000 + 199)}
    ids = sink.ids()
    assert len(ids) == len(set(ids)) == 110
    assert all("Kaffeemaschine" in item.text for item in sink.items)


# --- Reddit --------------------------------------------------------------------------------


async def test_reddit_pages_with_after_to_the_cursor_and_resumes(
    upstream: Upstream, cursors: CursorStore, sink: RecordingSink, http: httpx.AsyncClient
) -> None:
    upstream.reddit = [_reddit_post(n) for n in range(1, 121)]
    upstream.reddit += [_reddit_post(n, subreddit="kaffee") for n in range(121, 124)]
    source = RedditSource(subreddit="de", user_agent=UA, base_url=upstream.base)
    poller = RedditPoller(source, cursors, sink, http)

    assert await poller.poll_once() == 100  # no cursor: the newest page only
    newest = sink.items[0]
    assert newest.native_id == upstream.reddit[119]["data"]["name"]
    assert newest.url == "https://www.reddit.com" + upstream.reddit[119]["data"]["permalink"]
    assert newest.created_at == T0 + timedelta(minutes=120)
    assert newest.author.id == "user_120"
    assert newest.metrics.comments == 0
    assert any(item.author.id == "deleted" for item in sink.items)  # post 117 = 9 * 13

    upstream.reddit += [_reddit_post(n) for n in range(200, 430)]
    assert await poller.poll_once() == 230
    hits = upstream.hits_on("/r/de/new.json")
    assert [h.query.get("after") for h in hits[1:]] == [
        None,
        upstream.reddit[-100]["data"]["name"],
        upstream.reddit[-200]["data"]["name"],
    ]
    assert all(h.headers["user-agent"] == UA and h.query["raw_json"] == "1" for h in hits)

    # Restart; the cursor's post was deleted meanwhile: its time still marks where to stop.
    upstream.reddit = [p for p in upstream.reddit if p["data"]["name"] != sink.ids()[100]]
    upstream.reddit += [_reddit_post(n) for n in (430, 431)]
    assert await RedditPoller(source, cursors, sink, http).poll_once() == 2
    ids = sink.ids()
    assert len(ids) == len(set(ids)) == 332
    assert (await cursors.load(poller.key))["newest"] == upstream.reddit[-1]["data"]["name"]


async def test_reddit_with_an_app_uses_oauth_and_renews_a_revoked_token(
    upstream: Upstream, cursors: CursorStore, sink: RecordingSink, http: httpx.AsyncClient
) -> None:
    upstream.reddit = [_reddit_post(n) for n in range(1, 4)]
    upstream.reddit_token = "not-issued-yet"  # anonymous requests are refused from the start
    source = RedditSource(
        subreddit="de",
        user_agent=UA,
        base_url="https://www.reddit.invalid",
        oauth_base_url=upstream.base,
        token_url=f"{upstream.base}/api/v1/access_token",
    )
    poller = RedditPoller(source, cursors, sink, http, app=RedditApp("app-id", "app-secret"))
    assert await poller.poll_once() == 3
    assert upstream.reddit_grants == [
        {"credentials": "app-id:app-secret", "grant_type": "client_credentials"}
    ]
    upstream.reddit += [_reddit_post(4)]
    assert await poller.poll_once() == 1  # the token is reused while valid
    assert len(upstream.reddit_grants) == 1

    upstream.reddit_token = "revoked-elsewhere"
    upstream.reddit += [_reddit_post(5)]
    with pytest.raises(PollHttpError):
        await poller.poll_once()
    assert await poller.poll_once() == 1  # a new token; the cursor held the new post back
    assert len(upstream.reddit_grants) == 2
    assert len(set(sink.ids())) == len(sink.ids()) == 5

    refused = RedditPoller(source, cursors, sink, http, app=RedditApp("app-id", "wrong"))
    with pytest.raises(PollHttpError, match="token request refused"):
        await refused.poll_once()


# --- the loop: rate limits, quota, backoff -------------------------------------------------


async def _run_until(
    poller: Any, done: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0
) -> None:
    """Run the poller's endless loop until `done()`; it must not end by itself meanwhile."""
    task = asyncio.create_task(poller.run())
    try:

        async def probe() -> bool:
            assert not task.done(), "the poll loop must never end on its own"
            result = done()
            return await result if inspect.isawaitable(result) else result

        await eventually(probe, bool, timeout=timeout)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_cancellation_a_library_swallowed_still_stops_the_loop(
    cursors: CursorStore, sink: RecordingSink, http: httpx.AsyncClient
) -> None:
    class Swallowing(RssPoller):
        async def _poll(self) -> PollOutcome:
            with contextlib.suppress(asyncio.CancelledError):  # as a misbehaving client does
                await asyncio.sleep(30)
            return PollOutcome()

    source = RssSource(url="https://swallow.example/feed.xml", interval_seconds=0.05)
    task = asyncio.create_task(Swallowing(source, cursors, sink, http).run())
    await asyncio.sleep(0.5)
    task.cancel()
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), timeout=5)
    assert task.cancelled()


async def test_429_retry_after_and_exhausted_quota_pause_the_next_request(
    upstream: Upstream, cursors: CursorStore, sink: RecordingSink, http: httpx.AsyncClient
) -> None:
    upstream.reddit = [_reddit_post(n) for n in range(1, 4)]
    upstream.scripted["/r/de/new.json"].append((429, {"Retry-After": "1"}))
    upstream.reddit_headers_once = {"x-ratelimit-remaining": "0.0", "x-ratelimit-reset": "1"}
    source = RedditSource(
        subreddit="de", user_agent=UA, base_url=upstream.base, interval_seconds=0.1
    )
    poller = RedditPoller(source, cursors, sink, http, timing=FAST)
    limited_before = _metric("smm_ingest_poll_runs_total", kind="reddit", outcome="rate_limited")

    await _run_until(poller, lambda: len(upstream.hits_on("/r/de/new.json")) >= 4)

    hits = upstream.hits_on("/r/de/new.json")
    assert [h.status for h in hits[:3]] == [429, 200, 200]
    retry_gap = hits[1].at - hits[0].at
    quota_gap = hits[2].at - hits[1].at
    normal_gap = hits[3].at - hits[2].at
    assert retry_gap >= 1.0, retry_gap  # Retry-After: 1
    assert quota_gap >= 0.95, quota_gap  # x-ratelimit-remaining 0, reset in 1 s
    assert normal_gap < 0.6, normal_gap  # back to the 0.1 s interval
    assert _metric("smm_ingest_poll_runs_total", kind="reddit", outcome="rate_limited") == (
        limited_before + 1
    )
    assert len(sink.items) == 3


async def test_errors_back_off_exponentially_and_the_loop_survives(
    upstream: Upstream, cursors: CursorStore, sink: RecordingSink, http: httpx.AsyncClient
) -> None:
    class Ceiling:
        """Full jitter at its upper bound, so the growth is measurable."""

        def uniform(self, low: float, high: float) -> float:
            return high

    upstream.rss = [FeedEntry("n1", "Finally back", "<p>Coffee</p>", T0)]
    for _ in range(4):
        upstream.scripted["/feeds/rss.xml"].append((500, {}))
    source = RssSource(url=f"{upstream.base}/feeds/rss.xml", interval_seconds=0.05)
    poller = RssPoller(source, cursors, sink, http, timing=FAST, rng=Ceiling())  # type: ignore[arg-type]

    await _run_until(poller, lambda: len(sink.items) == 1)

    hits = upstream.hits_on("/feeds/rss.xml")
    assert [h.status for h in hits[:5]] == [500, 500, 500, 500, 200]
    gaps = [b.at - a.at for a, b in itertools.pairwise(hits[:5])]
    for gap, expected in zip(gaps, (0.05, 0.1, 0.2, 0.4), strict=True):
        assert expected * 0.9 <= gap < expected + 0.25, gaps
    assert all(later > earlier * 1.5 for earlier, later in itertools.pairwise(gaps))
    # The loop may be stopped between submitting and recording its success: one more poll
    # (nothing new) records the recovery deterministically.
    assert await poller.poll_once() == 0
    outcome = await _outcome_doc(cursors, poller.key)
    assert outcome["last_error"] is None
    assert outcome["last_success_at"] is not None
    assert _metric("smm_ingest_poll_last_success_timestamp_seconds", kind="rss") > 0


async def test_build_pollers_wires_every_kind(
    cursors: CursorStore, sink: RecordingSink, http: httpx.AsyncClient
) -> None:
    pollers = build_pollers(
        [
            RssSource(url="https://x.example/feed"),
            MastodonSource(instance_url="https://m.example", hashtag="kaffee"),
            RedditSource(subreddit="de", user_agent=UA),
            BlueskySource(),
        ],
        cursors,
        sink,
        http,
    )
    assert [type(p) for p in pollers] == [RssPoller, MastodonPoller, RedditPoller, BlueskyPoller]


# --- Bluesky Jetstream ---------------------------------------------------------------------

DID = "did:plc:7hb2xq4k3mv5zdn6cwyr2lqe"
JET_T0 = 1_714_557_600_000_000


def _jet_event(n: int) -> dict[str, Any]:
    """Event n of the fake firehose: every third a like, every seventh an identity event."""
    time_us = JET_T0 + n * 1000
    if n % 7 == 0:
        return {
            "did": DID,
            "time_us": time_us,
            "kind": "identity",
            "identity": {"did": DID, "handle": "anna.example.de", "seq": n, "time": "x"},
        }
    collection = "app.bsky.feed.like" if n % 3 == 0 else "app.bsky.feed.post"
    text, lang = {
        1: (f"Espresso am Morgen, Tasse Nummer {n}", "de"),
        2: (f"Heute nur Tee, kein KAFFEE? Runde {n}", "de"),
        3: (f"Just tea today, cup number {n}", "en"),
        0: (f"Nothing to see here, post {n}", "en"),
    }[n % 4]
    record: dict[str, Any] = {"$type": collection, "createdAt": "2024-05-01T10:00:00.000Z"}
    if collection == "app.bsky.feed.post":
        record |= {"text": text, "langs": [lang]}
    return {
        "did": DID,
        "time_us": time_us,
        "kind": "commit",
        "commit": {
            "rev": f"3kr{n:010d}",
            "operation": "create",
            "collection": collection,
            "rkey": f"3kr{n:010d}",
            "record": record,
            "cid": f"bafyrei{n:020d}",
        },
    }


@dataclass
class FakeJetstream:
    """Replays events from `cursor` (inclusive), then streams appended ones; can drop a client."""

    events: list[dict[str, Any]] = field(default_factory=list)
    connections: list[dict[str, list[str]]] = field(default_factory=list)
    close_after: list[int] = field(default_factory=list)

    async def handler(self, socket: ServerConnection) -> None:
        query = parse_qs(urlsplit(socket.request.path if socket.request else "").query)
        self.connections.append(query)
        wanted = set(query.get("wantedCollections", []))
        cursor = int(query["cursor"][0]) if "cursor" in query else None
        limit = self.close_after.pop(0) if self.close_after else None
        index = (
            next((i for i, e in enumerate(self.events) if e["time_us"] >= cursor), len(self.events))
            if cursor is not None
            else len(self.events)
        )
        sent = 0
        try:
            while True:
                while index < len(self.events):
                    event = self.events[index]
                    index += 1
                    if event["kind"] == "commit" and event["commit"]["collection"] not in wanted:
                        continue
                    await socket.send(json.dumps(event))
                    sent += 1
                    if limit is not None and sent >= limit:
                        await socket.close()
                        return
                with contextlib.suppress(TimeoutError):  # notices a client that went away
                    await asyncio.wait_for(socket.recv(), 0.02)
        except ConnectionClosed:
            return


def _sent(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the fake sends for wantedCollections=app.bsky.feed.post (likes are filtered)."""
    return [
        e
        for e in events
        if e["kind"] != "commit" or e["commit"]["collection"] == "app.bsky.feed.post"
    ]


def _is_candidate(event: dict[str, Any]) -> bool:
    if event["kind"] != "commit" or event["commit"]["collection"] != "app.bsky.feed.post":
        return False
    text = event["commit"]["record"]["text"].casefold()
    return "kaffee" in text or "espresso" in text


async def test_bluesky_jetstream_batches_prefilters_and_resumes_from_the_cursor(
    cursors: CursorStore, sink: RecordingSink
) -> None:
    fake = FakeJetstream(events=[_jet_event(n) for n in range(1, 61)], close_after=[20])
    port = free_port()
    async with serve(fake.handler, HOST, port):
        source = BlueskySource(
            jetstream_url=f"ws://{HOST}:{port}/subscribe",
            keywords=["Kaffee", "espresso"],
            batch_seconds=0.2,
            resume_margin_seconds=0.0025,
        )
        poller = BlueskyPoller(source, cursors, sink, timing=FAST)
        seeded = JET_T0  # as if an earlier run had stopped just before event 1
        await cursors.save(poller.key, {"time_us": seeded})
        expected = [f"{DID}/{e['commit']['rkey']}" for e in fake.events if _is_candidate(e)]
        assert 10 < len(expected) < 30

        last_sent = _sent(fake.events)[-1]["time_us"]

        async def caught_up() -> bool:
            return await cursors.load(poller.key) == {"time_us": last_sent}

        # The server drops the connection after 20 messages; the poller reconnects and resumes.
        await _run_until(poller, caught_up)
        first, second = fake.connections[0], fake.connections[1]
        assert first["wantedCollections"] == ["app.bsky.feed.post"]
        assert first["cursor"] == [str(seeded - 2500)]
        assert second["cursor"] == [str(_sent(fake.events)[19]["time_us"] - 2500)]
        assert sink.ids() == expected  # no gap, no duplicate, nothing the prefilter rejects
        item = sink.items[0]
        assert item.url == f"https://bsky.app/profile/{DID}/post/{item.native_id.split('/')[1]}"
        assert item.author.id == DID
        assert item.lang in ("de", "en")

        # Restart: a new consumer resumes from the stored cursor (minus the margin).
        stored = last_sent
        fake.events += [_jet_event(n) for n in range(61, 71)]
        fresh = [f"{DID}/{e['commit']['rkey']}" for e in fake.events[60:] if _is_candidate(e)]
        restarted = BlueskyPoller(source, cursors, sink, timing=FAST)
        submitted = await restarted.poll_once()
        assert fake.connections[-1]["cursor"] == [str(stored - 2500)]
        assert restarted.last_connect_cursor == stored - 2500
        new_ids = sink.ids()[len(expected) :]
        assert submitted == len(new_ids)
        # Only the margin window may repeat (the intake's SeenStore drops those).
        repeated = [i for i in new_ids if i not in fresh]
        margin_ids = {
            f"{DID}/{e['commit']['rkey']}"
            for e in fake.events
            if e["time_us"] >= stored - 2500 and _is_candidate(e)
        }
        assert set(repeated) <= margin_ids
        assert [i for i in new_ids if i in fresh] == fresh
        assert await cursors.load(poller.key) == {"time_us": _sent(fake.events)[-1]["time_us"]}
