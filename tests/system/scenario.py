"""One marketing team's afternoon, driven through the four running services' public interfaces.

Two coffee brands (Röstwerk and the competitor Bohnenblitz, one `group`) and an e-bike brand are
tracked. Mentions arrive over `POST /v1/mentions` and a signed Mastodon webhook: German and
English, praise, complaints, toxic and spam posts, duplicates and malformed items. A reviewer
answers one complaint through the inbox; the publisher sends that reply and two scheduled posts
to a fake Mastodon; engagement arrives on `smm.engagement.v1`. Then every KPI the metrics
service serves is compared with values this module computes itself from what went in and
from what moderation decided (read through moderation's own API).

The end-to-end and chaos tests share this; the chaos test kills services while it runs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from shared.events import EngagementObservation
from shared.settings import Settings
from shared.topics import ENGAGEMENT, topic_name
from tests.integration.helpers import produce

MASTODON_WEBHOOK_SECRET = "e2e-mastodon-webhook-secret"
CHANNEL = "roestwerk-mastodon"
CHANNEL_TOKEN_NAME = "roestwerk_mastodon"
TRACKERS = [
    {"id": "roestwerk", "name": "Röstwerk", "query": "röstwerk OR #roestwerk", "group": "kaffee"},
    {"id": "bohnenblitz", "name": "Bohnenblitz", "query": "bohnenblitz", "group": "kaffee"},
    {"id": "velora", "name": "Velora", "query": "velora", "group": "ebike"},
]

#: (native id, author, followers, language, text): written for this test.
POSTS: list[tuple[str, str, int | None, str, str]] = [
    ("p01", "lena", 120, "de", "Röstwerk hat die beste Crema der Stadt, ich bin total begeistert!"),
    (
        "p02",
        "tom",
        80,
        "de",
        "Die Lieferung von Röstwerk ist schon wieder zu spät. Echt enttäuschend.",
    ),
    ("p03", "mia", 3400, "de", "Röstwerk, wann kommt die neue Espressobohne wieder in den Shop?"),
    ("p04", "ben", 45, "en", "Röstwerk beans are amazing, best coffee I had this year"),
    (
        "p05",
        "ana",
        900,
        "en",
        "Terrible service from Röstwerk, my order arrived broken and nobody answers",
    ),
    (
        "p06",
        "spamhub",
        5,
        "en",
        "Röstwerk FREE giveaway!!! Click http://win.example/now to win $1000 cash, "
        "call +49 151 2345678",
    ),
    ("p07", "kai", 60, "de", "Röstwerk ihr seid doch alle Vollidioten, was für ein Saftladen"),
    ("p08", "lena", 130, "de", "Nochmal Röstwerk: der Filterkaffee ist auch richtig gut"),
    ("p09", "jo", None, "en", "Just tried Bohnenblitz, pretty decent cold brew"),
    ("p10", "sue", 2100, "en", "Bohnenblitz ruined my morning, the capsules leak everywhere"),
    ("p11", "max", 75, "de", "Bohnenblitz Kapseln sind okay, nichts Besonderes"),
    ("p12", "eva", 310, "de", "Mein Velora Lastenrad fährt sich traumhaft, große Empfehlung"),
    ("p13", "nils", 40, "de", "Velora Akku nach drei Monaten kaputt, Support antwortet nicht"),
    ("p14", "ida", 15, "en", "Is the Velora cargo bike worth the price? Thinking about buying one"),
]
#: Items the ingest API must reject, each with the reason it must give.
MALFORMED: list[dict[str, Any]] = [
    {
        "platform": "x",
        "native_id": "bad1",
        "author": {"id": "a"},
        "created_at": "2026-01-01T00:00:00Z",
    },
    {
        "platform": "x",
        "native_id": "bad2",
        "text": "Röstwerk",
        "author": {"id": "a"},
        "created_at": "yesterday",
    },
    {
        "platform": "x",
        "native_id": "$where",
        "text": "Röstwerk",
        "author": {"id": "a"},
        "created_at": "2026-01-01T00:00:00Z",
    },
    {
        "platform": "myspace",
        "native_id": "bad4",
        "text": "Röstwerk",
        "author": {"id": "a"},
        "created_at": "2026-01-01T00:00:00Z",
    },
]
#: Posts seen on Mastodon (through the API here); our reply channel is on Mastodon too, and a
#: reply must go to the network of the mention it answers.
ON_MASTODON = frozenset({"p02", "p05"})
WEBHOOK_STATUS_ID = "990011"
WEBHOOK_URI = f"https://social.example.de/users/jana/statuses/{WEBHOOK_STATUS_ID}"


def mention_item(
    native_id: str, author: str, followers: int | None, lang: str, text: str, at: datetime
) -> dict[str, Any]:
    platform = "mastodon" if native_id in ON_MASTODON else "x"
    host = "social.example.de/@" if platform == "mastodon" else "x.com/"
    return {
        "platform": platform,
        "native_id": native_id,
        "url": f"https://{host}{author}/status/{native_id}",
        "text": text,
        "lang": lang,
        "author": {"id": author, "handle": f"@{author}", "followers": followers},
        "created_at": at.isoformat(),
    }


def mastodon_webhook(at: datetime) -> bytes:
    return json.dumps(
        {
            "event": "status.created",
            "created_at": at.isoformat(),
            "object": {
                "id": WEBHOOK_STATUS_ID,
                "uri": WEBHOOK_URI,
                "url": f"https://social.example.de/@jana/{WEBHOOK_STATUS_ID}",
                "created_at": at.isoformat(),
                "content": "<p>Bei <b>Röstwerk</b> gibt es jetzt Hafermilch, sehr schön!</p>",
                "language": "de",
                "visibility": "public",
                "account": {"id": "7", "acct": "jana", "followers_count": 510},
            },
        }
    ).encode()


@dataclass
class Observed:
    """What the services did, read back through their APIs: the ground the expectations stand on."""

    mentions: dict[str, dict[str, Any]] = field(default_factory=dict)  # moderation's view
    posts: dict[str, dict[str, Any]] = field(default_factory=dict)  # publisher's view
    reply_post_id: str | None = None
    replied_mention_id: str | None = None
    observations: list[EngagementObservation] = field(default_factory=list)


@dataclass
class Urls:
    ingest: str
    moderation: str
    publisher: str
    metrics: str


class Scenario:
    def __init__(self, urls: Urls, settings: Settings, token: str, fake_base: str) -> None:
        self.urls = urls
        self.settings = settings
        self.auth = {"Authorization": f"Bearer {token}"}
        self.fake_base = fake_base
        self.start = datetime.now(UTC).replace(microsecond=0)
        self.window_from = self.start - timedelta(hours=3)
        self.window_to = self.start + timedelta(hours=2)
        self.observed = Observed()
        self.scheduled_post_ids = ["e2e-post-1", "e2e-post-2"]

    # --- steps -----------------------------------------------------------------------------

    async def configure(self, client: httpx.AsyncClient) -> None:
        for tracker in TRACKERS:
            response = await client.post(
                f"{self.urls.ingest}/v1/trackers", json=tracker, headers=self.auth
            )
            assert response.status_code in (201, 409), response.text
        channel = {
            "id": CHANNEL,
            "platform": "mastodon",
            "account": "roestwerk",
            "name": "Röstwerk auf Mastodon",
            "timezone": "Europe/Berlin",
            "credential_ref": f"settings:{CHANNEL_TOKEN_NAME}",
            "api_base_url": f"{self.fake_base}/mastodon",
        }
        response = await client.post(
            f"{self.urls.publisher}/v1/channels", json=channel, headers=self.auth
        )
        assert response.status_code in (201, 409), response.text

    async def send_mentions(self, client: httpx.AsyncClient) -> list[str]:
        """The stream: a batch with duplicates and malformed items, the same batch again (a
        client retry), and a signed webhook. Returns the accepted mention ids."""
        items = [
            mention_item(n, a, f, lang, text, self.start - timedelta(minutes=50 - i * 3))
            for i, (n, a, f, lang, text) in enumerate(POSTS)
        ]
        batch = [*items[:8], items[0], *MALFORMED, *items[8:], items[3]]
        first = await self._post_mentions(client, batch)
        assert first["unmatched"] == 0, first  # each post names a brand tracked a moment ago
        rejected = {r["index"]: r["reason"] for r in first["rejected"]}
        assert sorted(rejected) == [9, 10, 11, 12], first
        assert first["duplicates"] == 2, first
        again = await self._post_mentions(client, batch)  # the client retried the request
        assert again["accepted"] == 0, again
        body = mastodon_webhook(self.start - timedelta(minutes=5))
        signature = hmac.new(MASTODON_WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        for delivery in range(2):  # Mastodon redelivers
            hook = await client.post(
                f"{self.urls.ingest}/webhooks/mastodon",
                content=body,
                headers={
                    "X-Hub-Signature": f"sha256={signature}",
                    "Content-Type": "application/json",
                },
            )
            assert hook.status_code == 200, hook.text
            # Once, then a duplicate: never "unmatched" (a tracker just created is matched).
            assert hook.json()["accepted" if delivery == 0 else "duplicates"] == 1, hook.text
        forged = await client.post(
            f"{self.urls.ingest}/webhooks/mastodon",
            content=body,
            headers={"X-Hub-Signature": "sha256=00"},
        )
        assert forged.status_code == 401
        return [*first["mention_ids"], f"mastodon:{WEBHOOK_URI}"]

    async def _post_mentions(
        self, client: httpx.AsyncClient, batch: list[dict[str, Any]]
    ) -> dict[str, Any]:
        for _ in range(60):  # 503 while a broker or database is away: the client retries
            response = await client.post(
                f"{self.urls.ingest}/v1/mentions", json=batch, headers=self.auth
            )
            if response.status_code == 202:
                result: dict[str, Any] = response.json()
                return result
            assert response.status_code == 503, response.text
            await _sleep(1)
        raise AssertionError("ingest never accepted the batch")

    async def await_classified(
        self, client: httpx.AsyncClient, mention_ids: list[str], timeout: float = 120
    ) -> None:
        deadline = _now() + timeout
        pending = set(mention_ids)
        while pending:
            for mention_id in sorted(pending):
                response = await _get(
                    client, f"{self.urls.moderation}/v1/mentions/{mention_id}", headers=self.auth
                )
                if response is not None and response.status_code == 200:
                    self.observed.mentions[mention_id] = response.json()
                    pending.discard(mention_id)
            assert _now() < deadline, f"not classified in time: {sorted(pending)}"
            if pending:
                await _sleep(0.5)

    async def answer_one_complaint(self, client: httpx.AsyncClient) -> None:
        """Claim the oldest negative Röstwerk review item and reply to it."""
        response = await client.get(
            f"{self.urls.moderation}/v1/review",
            params={"tracker_id": "roestwerk", "status": "open", "limit": 100},
        )
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        negative = [
            item
            for item in items
            if self.observed.mentions[item["mention_id"]]["classification"]["sentiment"]
            == "negative"
            and item["platform"] == "mastodon"
        ]
        assert negative, f"no negative review item among {[i['mention_id'] for i in items]}"
        mention_id = negative[0]["mention_id"]
        claim = await client.post(
            f"{self.urls.moderation}/v1/review/{mention_id}/claim", headers=self.auth
        )
        assert claim.status_code == 200, claim.text
        decision = await client.post(
            f"{self.urls.moderation}/v1/review/{mention_id}/decision",
            json={
                "action": "reply",
                "reason": "complaint about a late or broken delivery",
                "reply": {
                    "text": "Das tut uns leid! Schreib uns bitte deine Bestellnummer per DM.",
                    "channel_id": CHANNEL,
                },
            },
            headers=self.auth,
        )
        assert decision.status_code in (200, 201), decision.text
        body = decision.json()
        self.observed.replied_mention_id = mention_id
        self.observed.reply_post_id = body.get("reply_post_id") or body["decision"]["reply_post_id"]

    async def schedule_posts(self, client: httpx.AsyncClient) -> None:
        at = datetime.now(UTC) + timedelta(seconds=4)
        texts = [
            "Neue Röstung: Äthiopien Guji, ab heute im Shop ☕",
            "Wochenendtipp: unsere Filterkaffee-Box",
        ]
        for post_id, text in zip(self.scheduled_post_ids, texts, strict=True):
            body = {
                "post_id": post_id,
                "channel_id": CHANNEL,
                "text": text,
                "publish_at": at.isoformat(),
            }
            response = await client.post(
                f"{self.urls.publisher}/v1/posts", json=body, headers=self.auth
            )
            assert response.status_code in (200, 201), response.text

    async def await_published(self, client: httpx.AsyncClient, timeout: float = 150) -> None:
        wanted = [*self.scheduled_post_ids, self.observed.reply_post_id]
        deadline = _now() + timeout
        while True:
            for post_id in wanted:
                assert post_id is not None
                response = await _get(
                    client, f"{self.urls.publisher}/v1/posts/{post_id}", headers=self.auth
                )
                if response is not None and response.status_code == 200:
                    self.observed.posts[post_id] = response.json()
            states = {p: self.observed.posts.get(p, {}).get("status") for p in wanted if p}
            if all(state == "published" for state in states.values()):
                return
            assert _now() < deadline, f"not published in time: {states}"
            await _sleep(0.5)

    async def send_engagement(self) -> None:
        base = datetime.now(UTC)
        # (post, minutes after base, likes, comments, shares, saves, impressions, reach, followers)
        plan = [
            ("e2e-post-1", 1, 4, 1, 0, 0, 300, 250, 1_000),
            ("e2e-post-1", 5, 12, 3, 2, 1, 900, 700, 1_012),
            ("e2e-post-1", 3, 8, 2, 1, 0, 600, 500, 1_006),  # arrives late: superseded
            ("e2e-post-2", 2, 2, 0, 0, 0, 150, 120, 1_003),
            ("e2e-post-2", 6, 5, 1, 1, 2, 400, 330, 1_015),
            (self.observed.reply_post_id, 4, 1, 0, 0, 0, 40, 35, 1_009),
        ]
        for post_id, minutes, likes, comments, shares, saves, impressions, reach, followers in plan:
            assert post_id is not None
            self.observed.observations.append(
                EngagementObservation(
                    post_id=post_id,
                    channel_id=CHANNEL,
                    observed_at=base + timedelta(minutes=minutes),
                    likes=likes,
                    comments=comments,
                    shares=shares,
                    saves=saves,
                    impressions=impressions,
                    reach=reach,
                    followers=followers,
                )
            )
        messages = [
            (o.post_id.encode(), o.to_bytes()) for o in self.observed.observations if o.post_id
        ]
        messages.append((b"e2e-post-1", b'{"post_id": "e2e-post-1", "likes": "many"}'))  # malformed
        await produce(
            self.settings.kafka_bootstrap_servers, topic_name(ENGAGEMENT, self.settings), messages
        )

    # --- the expectation, computed here --------------------------------------------------

    def expected(self, tracker_id: str) -> dict[str, Any]:
        group = next(t["group"] for t in TRACKERS if t["id"] == tracker_id)
        counted = self._counted(tracker_id)
        volume = len(counted)
        reach_by_author: dict[str, int] = {}
        for mention in counted:
            key = f"{mention['platform']}:{mention['author']['id']}"
            reach_by_author[key] = max(
                reach_by_author.get(key, 0), mention["author"].get("followers") or 0
            )
        sentiment = {"positive": 0, "neutral": 0, "negative": 0}
        for mention in counted:
            sentiment[mention["classification"]["sentiment"]] += 1
        polar = sentiment["positive"] + sentiment["negative"]
        group_volume = sum(len(self._counted(t["id"])) for t in TRACKERS if t["group"] == group)
        result: dict[str, Any] = {
            "mention_volume": volume,
            "potential_reach": sum(reach_by_author.values()),
            "sentiment": sentiment,
            "net_sentiment": 100 * (sentiment["positive"] - sentiment["negative"]) / polar
            if polar
            else None,
            "share_of_voice": 100 * volume / group_volume if group_volume else None,
        }
        result |= self._posts_kpis(tracker_id, counted)
        return result

    def _counted(self, tracker_id: str) -> list[dict[str, Any]]:
        return [
            m
            for m in self.observed.mentions.values()
            if tracker_id in m["tracker_ids"]
            and m["action"] != "hide"
            and self.window_from <= _time(m["created_at"]) < self.window_to
        ]

    def _posts_kpis(self, tracker_id: str, counted: list[dict[str, Any]]) -> dict[str, Any]:
        ours = list(self.scheduled_post_ids) if tracker_id == "roestwerk" else []
        replied = self.observed.replied_mention_id
        if replied is not None and tracker_id in self.observed.mentions[replied]["tracker_ids"]:
            assert self.observed.reply_post_id is not None
            ours.append(self.observed.reply_post_id)
        latest: dict[str, EngagementObservation] = {}
        for observation in self.observed.observations:
            if observation.post_id in ours:
                known = latest.get(observation.post_id)
                if known is None or observation.observed_at > known.observed_at:
                    latest[observation.post_id] = observation
        engagements = sum(o.likes + o.comments + o.shares + o.saves for o in latest.values())
        impressions = sum(o.impressions for o in latest.values())
        reach = sum(o.reach for o in latest.values())
        review = [m for m in counted if m["action"] == "review"]
        delays = []
        for mention in counted:
            if mention["mention_id"] == replied:
                published = _time(
                    self.observed.posts[self.observed.reply_post_id or ""]["published_at"]
                )
                delays.append((published - _time(mention["created_at"])).total_seconds())
        replied_in_review = [m for m in review if m["mention_id"] == replied]
        followers = sorted(
            (o.observed_at, o.followers)
            for o in self.observed.observations
            if o.post_id in ours and o.followers is not None
        )
        growth: dict[str, Any] = {"absolute": None, "percent": None}
        if followers:
            first, last = followers[0][1], followers[-1][1]
            assert first is not None
            assert last is not None
            growth = {
                "absolute": last - first,
                "percent": 100 * (last - first) / first if first else None,
            }
        return {
            "engagements": engagements,
            "impressions": impressions,
            "reach": reach,
            "engagement_rate_by_reach": 100 * engagements / reach if reach else None,
            "engagement_rate_by_impressions": 100 * engagements / impressions
            if impressions
            else None,
            "response_time_seconds": {
                "avg": statistics.fmean(delays) if delays else None,
                "median": statistics.median(delays) if delays else None,
            },
            "response_rate": 100 * len(replied_in_review) / len(review) if review else None,
            "follower_growth": growth,
        }

    async def kpis(self, client: httpx.AsyncClient, tracker_id: str) -> dict[str, Any] | None:
        response = await _get(
            client,
            f"{self.urls.metrics}/v1/kpis",
            headers=self.auth,
            params={
                "tracker_id": tracker_id,
                "from": self.window_from.isoformat(),
                "to": self.window_to.isoformat(),
            },
        )
        if response is None or response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        return body


def differences(actual: dict[str, Any] | None, expected: dict[str, Any]) -> dict[str, Any]:
    """Every KPI whose served value differs from the expectation (floats to 1e-6)."""
    if actual is None:
        return {"kpis": "unavailable"}
    found: dict[str, Any] = {}
    for key, want in expected.items():
        have = actual.get(key)
        if isinstance(want, dict):
            inner = {k: (have or {}).get(k) for k in want}
            if any(not _close(inner[k], want[k]) for k in want):
                found[key] = {"served": inner, "expected": want}
        elif not _close(have, want):
            found[key] = {"served": have, "expected": want}
    return found


def _close(have: Any, want: Any) -> bool:
    if isinstance(want, float) and isinstance(have, int | float):
        return abs(have - want) <= 1e-6 * max(1.0, abs(want))
    return bool(have == want)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _now() -> float:
    import time

    return time.monotonic()


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def _get(client: httpx.AsyncClient, url: str, **kwargs: Any) -> httpx.Response | None:
    """GET that tolerates a service being restarted (the chaos test kills them)."""
    try:
        return await client.get(url, **kwargs)
    except httpx.HTTPError:
        return None
