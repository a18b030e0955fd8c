"""WebSub (W3C) subscriber: subscribe to feeds at their hub, confirm intents, map pushed feeds.

A subscription document in `WebSubStore` is keyed by our subscription id and holds the `topic`,
`hub`, the `secret` the hub signs pushes with, the `intent` (the mode we last asked for:
`subscribe` or `unsubscribe`) with the time we asked (`requested_at`) and the lease we asked
for, and the verified `state` with its lease. The intent is stored before the hub is asked,
because many hubs verify synchronously, before they answer our request.

The id is derived from the topic, so anyone can compute it; the callback URL therefore also
carries a random `callback_token` (`/webhooks/websub/{id}/{token}`) that only we and the hub
know. A verification is believed only with that token, only for the mode we asked for, and
only shortly after we asked; the lease a hub grants is never longer than the one we asked for.
The token is never logged nor shown by the API.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import httpx
from pydantic import ValidationError

from services.ingest.domain.batch import BadPayloadError, Mapped, RejectedItem, reason_of
from services.ingest.sources.rss import entry_to_mention, parse_feed
from services.ingest.storage import WebSubStore
from shared.events import utc_now
from shared.logging import get_logger

log = get_logger(__name__)

Mode = Literal["subscribe", "unsubscribe"]
DEFAULT_LEASE_SECONDS = 10 * 24 * 3600
#: Longest hub.challenge we echo; hubs use short random strings.
MAX_CHALLENGE = 1024
CALLBACK_PATH = "/webhooks/websub/"
#: How long a hub may take to verify our request (`SMM_WEBSUB_VERIFY_WINDOW_SECONDS`).
DEFAULT_VERIFY_WINDOW = timedelta(minutes=10)
#: What `secrets.token_urlsafe(32)` makes (43 characters); anything else is not ours.
_CALLBACK_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,128}$")


class WebSubError(RuntimeError):
    """The hub refused or could not be reached; the subscription keeps its old state."""


@dataclass(frozen=True)
class IntentAnswer:
    """How to answer a hub's verification GET: `status` with a text/plain `body`, and the
    fields to record on the subscription (none when nothing may change)."""

    status: int
    body: str = ""
    reason: str = ""
    fields: dict[str, Any] = field(default_factory=dict)


def subscription_id_for(topic: str) -> str:
    """A stable id per topic, so renewing a subscription keeps its API id and callback URL."""
    return hashlib.sha256(topic.encode()).hexdigest()[:32]


def new_callback_token() -> str:
    return secrets.token_urlsafe(32)


def callback_url(public_base_url: str, subscription_id: str, callback_token: str) -> str:
    return f"{public_base_url.rstrip('/')}{CALLBACK_PATH}{subscription_id}/{callback_token}"


def token_matches(subscription: Mapping[str, Any], presented: str | None) -> bool:
    """Whether the callback URL's token is the subscription's (compared in constant time)."""
    expected = subscription.get("callback_token")
    if not isinstance(expected, str) or not expected or presented is None:
        return False
    if not _CALLBACK_TOKEN.match(presented):
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


def _lease(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 10:
        raise ValueError("hub.lease_seconds must be a non-negative integer")
    return int(raw)


#: The same answer for every "this is not a verification we expect", so no one can tell an
#: unknown subscription from a wrong token.
_NOT_OURS = IntentAnswer(404, reason="no such pending intent")


def judge_intent(
    subscription: Mapping[str, Any] | None,
    callback_token: str | None,
    params: Mapping[str, str],
    now: datetime,
    window: timedelta = DEFAULT_VERIFY_WINDOW,
) -> IntentAnswer:
    """Decide the hub's GET (§5.3) without I/O: echo the challenge only for an intent we have.

    Believed only with the subscription's callback token, for the topic and the mode we
    asked for, within `window` of our request. `hub.mode=denied` (§5.2) is recorded when we
    asked to subscribe (a hub may deny later too, and only the hub knows the callback URL).
    The granted lease is clamped to the one we asked for. Anything else is 404, which the hub
    takes as "not confirmed", and changes nothing.
    """
    if subscription is None or not token_matches(subscription, callback_token):
        return _NOT_OURS
    mode, topic = params.get("hub.mode"), params.get("hub.topic")
    if not topic or topic != subscription.get("topic"):
        return IntentAnswer(404, reason="topic does not match the subscription")
    intent = subscription.get("intent")
    if mode == "denied":
        if intent != "subscribe":
            return IntentAnswer(404, reason="denied, but we did not ask to subscribe")
        reason = (params.get("hub.reason") or "")[:500]
        return IntentAnswer(
            200,
            reason="denied recorded",
            fields={"state": "denied", "denied_reason": reason, "denied_at": now},
        )
    if mode not in ("subscribe", "unsubscribe") or mode != intent:
        return IntentAnswer(404, reason="mode does not match our pending intent")
    requested_at = subscription.get("requested_at")
    if not isinstance(requested_at, datetime) or not (
        requested_at <= now + timedelta(seconds=5) and now - requested_at <= window
    ):
        return IntentAnswer(404, reason="no request of ours is waiting for verification")
    challenge = params.get("hub.challenge")
    if not challenge or len(challenge) > MAX_CHALLENGE:
        return IntentAnswer(400, reason="missing or oversized hub.challenge")
    if mode == "unsubscribe":
        fields: dict[str, Any] = {"state": "unsubscribed", "lease_expires_at": None}
    else:
        try:
            granted = _lease(params.get("hub.lease_seconds"))
        except ValueError as exc:
            return IntentAnswer(400, reason=str(exc))
        asked = subscription.get("requested_lease_seconds")
        asked = asked if isinstance(asked, int) and asked > 0 else DEFAULT_LEASE_SECONDS
        # A hub that names no lease is taken to grant ours; one that grants more gets ours.
        lease = asked if granted is None else min(granted, asked)
        fields = {
            "state": "subscribed",
            "lease_seconds": lease,
            "lease_expires_at": now + timedelta(seconds=lease),
        }
    return IntentAnswer(200, body=challenge, fields={**fields, "verified_at": now})


async def verify_intent(
    subscription_id: str,
    callback_token: str | None,
    params: Mapping[str, str],
    store: WebSubStore,
    window: timedelta = DEFAULT_VERIFY_WINDOW,
) -> IntentAnswer:
    """Answer the hub's GET: `judge_intent` on the stored subscription, then record it."""
    subscription = await store.get(subscription_id)
    answer = judge_intent(subscription, callback_token, params, utc_now(), window)
    if answer.status == 200 and answer.fields:
        await store.upsert(subscription_id, answer.fields)
        mode = params.get("hub.mode")
        if mode == "denied":
            log.warning("websub subscription denied", subscription_id=subscription_id)
        else:
            log.info("websub intent verified", subscription_id=subscription_id, mode=mode)
    return answer


def map_feed(body: bytes, topic: str, content_type: str | None = None) -> Mapped:
    """Map a pushed feed document (RSS or Atom) to mentions, one per entry.

    Entries map exactly as the RSS poller maps them (`rss.entry_to_mention`), so an entry that
    arrives by push and by polling is one mention. `BadPayloadError` when it is not a feed.
    """
    parsed = parse_feed(body, content_type, topic)
    if not parsed.entries and not parsed.feed:  # `bozo` alone is set for mere quirks
        raise BadPayloadError("body is not an RSS or Atom document")
    arrived_at = utc_now()
    result = Mapped()
    for index, entry in enumerate(parsed.entries):
        try:
            result.items.append(entry_to_mention(entry, parsed.feed, topic, arrived_at))
        except (ValidationError, KeyError, ValueError, TypeError, IndexError) as exc:
            result.rejected.append(RejectedItem(index=index, reason=reason_of(exc)))
    return result


def _redacted(text: str, secrets_: Mapping[str, str]) -> str:
    """`text` with every value of ours in `secrets_` replaced by its placeholder."""
    for value, placeholder in secrets_.items():
        text = text.replace(value, placeholder)
    return text


async def _ask_hub(
    http: httpx.AsyncClient,
    store: WebSubStore,
    *,
    mode: Mode,
    hub_url: str,
    topic: str,
    public_base_url: str,
    lease_seconds: int,
    subscription_id: str | None,
) -> str:
    subscription_id = subscription_id or subscription_id_for(topic)
    existing = await store.get(subscription_id) or {}
    if existing.get("hub") != hub_url:
        # A new hub gets a new secret and callback URL: what one hub knows must not let it
        # sign pushes nor answer verifications for the subscription at another.
        existing = {}
    secret = existing.get("secret") or secrets.token_hex(32)
    # Kept across renewals at one hub, so its subscription (keyed by callback URL) stays one.
    token = existing.get("callback_token") or new_callback_token()
    callback = callback_url(public_base_url, subscription_id, token)
    fields: dict[str, Any] = {
        "topic": topic,
        "hub": hub_url,
        "secret": secret,
        "callback_token": token,
        "intent": mode,
        "requested_at": utc_now(),
    }
    if mode == "subscribe":
        fields["requested_lease_seconds"] = lease_seconds
    await store.upsert(subscription_id, fields)
    form = {"hub.mode": mode, "hub.topic": topic, "hub.callback": callback}
    if mode == "subscribe":
        form |= {"hub.secret": secret, "hub.lease_seconds": str(lease_seconds)}
    try:
        response = await http.post(hub_url, data=form)
    except httpx.HTTPError as exc:
        await store.upsert(
            subscription_id, {"last_error": f"hub unreachable: {type(exc).__name__}"}
        )
        raise WebSubError(f"hub {hub_url} unreachable: {exc!r}") from exc
    if not response.is_success:  # hubs answer 202 (verify later) or 204 (verified)
        await store.upsert(subscription_id, {"last_error": f"hub answered {response.status_code}"})
        # The hub may quote our request back: never pass the callback token or the secret on
        # (blanked out before the cut, which could otherwise leave part of one).
        snippet = _redacted(response.text, {token: "<callback token>", secret: "<secret>"})[:200]
        raise WebSubError(f"hub {hub_url} answered {response.status_code}: {snippet}")
    await store.upsert(subscription_id, {"last_error": None})
    log.info("websub request sent", subscription_id=subscription_id, mode=mode, hub=hub_url)
    return subscription_id


async def subscribe(
    http: httpx.AsyncClient,
    store: WebSubStore,
    *,
    hub_url: str,
    topic: str,
    public_base_url: str,
    lease_seconds: int = DEFAULT_LEASE_SECONDS,
    subscription_id: str | None = None,
) -> str:
    """Ask `hub_url` to push `topic` to us; the subscription id. Renewing keeps the secret."""
    return await _ask_hub(
        http,
        store,
        mode="subscribe",
        hub_url=hub_url,
        topic=topic,
        public_base_url=public_base_url,
        lease_seconds=lease_seconds,
        subscription_id=subscription_id,
    )


async def unsubscribe(
    http: httpx.AsyncClient,
    store: WebSubStore,
    *,
    hub_url: str,
    topic: str,
    public_base_url: str,
    subscription_id: str | None = None,
) -> str:
    """Ask the hub to stop pushing `topic`; confirmed when the hub verifies the intent."""
    return await _ask_hub(
        http,
        store,
        mode="unsubscribe",
        hub_url=hub_url,
        topic=topic,
        public_base_url=public_base_url,
        lease_seconds=0,
        subscription_id=subscription_id,
    )


async def discover_hub(http: httpx.AsyncClient, topic: str) -> str:
    """The hub a feed names (§4): an HTTP `Link: <…>; rel="hub"` header, else a hub link in
    the feed document itself (RSS `atom:link` or Atom `link`)."""
    try:
        response = await http.get(topic)
    except httpx.HTTPError as exc:
        raise WebSubError(f"feed {topic} unreachable: {type(exc).__name__}") from exc
    if not response.is_success:
        raise WebSubError(f"feed {topic} answered {response.status_code}")
    header_hub = response.links.get("hub", {}).get("url")
    if header_hub:
        return str(header_hub)
    parsed = parse_feed(response.content, response.headers.get("content-type"), topic)
    for link in parsed.feed.get("links", []):
        if link.get("rel") == "hub" and link.get("href"):
            return str(link["href"])
    raise WebSubError(f"feed {topic} names no WebSub hub; give the hub explicitly")


async def renew_expiring(
    http: httpx.AsyncClient,
    store: WebSubStore,
    public_base_url: str,
    margin: timedelta = timedelta(days=1),
) -> list[str]:
    """Re-subscribe every subscription whose lease ends within `margin`, or within a tenth of
    its lease when that is shorter, so hubs never stop pushing; the ids renewed. A hub that
    fails is logged and asked again on the next round."""
    now = utc_now()
    renewed: list[str] = []
    for subscription in await store.expiring(now + margin):
        lease = subscription.get("lease_seconds") or DEFAULT_LEASE_SECONDS
        if subscription["lease_expires_at"] - now > min(margin, timedelta(seconds=lease / 10)):
            continue  # a short lease is renewed near its end, not on every round
        # Ask again for what was asked first, not for what a hub granted last time.
        asked = subscription.get("requested_lease_seconds") or lease
        try:
            await subscribe(
                http,
                store,
                hub_url=subscription["hub"],
                topic=subscription["topic"],
                public_base_url=public_base_url,
                lease_seconds=asked,
                subscription_id=subscription["_id"],
            )
        except WebSubError as exc:
            log.warning(
                "websub renewal failed", subscription_id=subscription["_id"], error=str(exc)
            )
            continue
        renewed.append(subscription["_id"])
    return renewed
