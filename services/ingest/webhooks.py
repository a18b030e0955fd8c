"""Platform webhooks under `/webhooks/{platform}`: handshakes, signature checks, hand-off.

Every delivery is read once as raw bytes and its signature checked on exactly those bytes
before anything parses them; a missing or bad signature is 401 and nothing reaches the intake.
A platform whose secret is not configured answers 404 `webhook_disabled`, so unsigned data is
never accepted. Valid deliveries are mapped per item (a bad item is reported in `rejected`,
not a reason to refuse the rest) and handed to the intake; if Kafka does not acknowledge, the
answer is 503 with `Retry-After`, and the platform redelivers (they all retry on non-2xx).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, SecretStr

from services.ingest.domain.batch import BadPayloadError, Mapped, MentionSink, RejectedItem
from services.ingest.domain.handshakes import crc_token_problem
from services.ingest.sources import signatures
from services.ingest.sources.instagram import documents_of
from services.ingest.sources.mastodon import map_mastodon_event
from services.ingest.sources.meta import map_meta_delivery
from services.ingest.sources.websub import map_feed, token_matches, verify_intent
from services.ingest.sources.x import map_x_delivery
from services.ingest.storage import LookupQueue, WebSubStore
from shared.errors import ApiError
from shared.logging import get_logger
from shared.ratelimit import TokenBuckets, retry_after
from shared.settings import Settings

log = get_logger(__name__)

META_SIGNATURE = "X-Hub-Signature-256"
X_SIGNATURE = "x-twitter-webhooks-signature"
HUB_SIGNATURE = "X-Hub-Signature"  # Mastodon and WebSub
_SUBSCRIPTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ECHO_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}

Verifier = Callable[[bytes, str | None], signatures.Verification]


class WebhookResult(BaseModel):
    """What became of a delivery (the intake's counts, plus what the mapping ignored)."""

    accepted: int
    duplicates: int
    unmatched: int
    ignored: int
    rejected: list[RejectedItem]
    #: Mentions announced without text, queued for a platform API lookup (Instagram).
    deferred: int = 0


class CrcResponse(BaseModel):
    response_token: str


def _configured(secret: SecretStr | None) -> str | None:
    """The secret's value, or None when unset or empty (an empty HMAC key protects nothing)."""
    value = secret.get_secret_value() if secret is not None else ""
    return value or None


def _disabled(platform: str) -> ApiError:
    return ApiError(
        404, "webhook_disabled", f"the {platform} webhook is not configured on this installation"
    )


def _verify(platform: str, verifier: Verifier, body: bytes, header: str | None) -> None:
    verdict = verifier(body, header)
    if not verdict.ok:
        log.warning("webhook signature rejected", platform=platform, reason=verdict.reason)
        raise ApiError(401, "invalid_signature", verdict.reason)


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(400, "bad_request", "body is not valid JSON") from exc


def _map(platform: str, mapper: Callable[[Any], Mapped], payload: Any) -> Mapped:
    try:
        return mapper(payload)
    except BadPayloadError as exc:
        raise ApiError(400, "bad_payload", f"not a {platform} webhook delivery: {exc}") from exc


def _echo(challenge: str) -> PlainTextResponse:
    return PlainTextResponse(challenge, headers=_ECHO_HEADERS)


def _client_key(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def build_webhook_router(
    settings: Settings,
    sink: MentionSink,
    websub: WebSubStore,
    http: httpx.AsyncClient,
    lookups: LookupQueue | None = None,
) -> APIRouter:
    """The `/webhooks` routes. `http` is the client for hub requests (`websub.subscribe`);
    the routes themselves make no outbound calls, so a slow hub never delays a delivery.
    Mentions that need a platform lookup go to `lookups` (None: no token, so they are
    rejected with that reason)."""
    router = APIRouter(prefix="/webhooks", tags=["webhooks"])
    meta_secret = _configured(settings.meta_app_secret)
    meta_token = _configured(settings.meta_verify_token)
    x_secret = _configured(settings.x_consumer_secret)
    mastodon_secret = _configured(settings.mastodon_webhook_secret)
    websub_enabled = bool(settings.public_base_url)
    verify_window = timedelta(seconds=settings.websub_verify_window_seconds)
    handshake_limits = {
        name: TokenBuckets(
            rate=settings.ingest_handshake_rate_per_minute / 60.0,
            capacity=settings.ingest_handshake_burst,
        )
        for name in ("meta", "x")
    }

    def limit_handshake(platform: str, request: Request) -> None:
        """429 once a client has made too many handshake GETs (one bucket per platform and
        client address). Every GET is charged, answered or refused: the endpoint signs or
        echoes for anyone, and guessing Meta's verify token must stay slow. The client is the
        real one behind an ingress listed in SMM_TRUSTED_PROXIES, so one client's requests
        never use up the platform's own (X disables a webhook whose CRC checks fail)."""
        wait = handshake_limits[platform].take(_client_key(request), 1, time.monotonic())
        if wait:
            log.warning("webhook handshake rate-limited", platform=platform)
            raise ApiError(
                429,
                "rate_limited",
                f"too many {platform} handshake requests; retry later",
                headers={"Retry-After": retry_after(wait)},
            )

    async def signed_json(
        request: Request,
        platform: str,
        secret: str | None,
        verify: Callable[[str, bytes, str | None], signatures.Verification],
        signature_header: str,
        mapper: Callable[[Any], Mapped],
    ) -> WebhookResult:
        """The common path: enabled? raw body, signature, then JSON, mapping and delivery."""
        if secret is None:
            raise _disabled(platform)
        body = await request.body()
        _verify(
            platform,
            lambda raw, header: verify(secret, raw, header),
            body,
            request.headers.get(signature_header),
        )
        return await deliver(platform, _map(platform, mapper, _parse_json(body)))

    async def defer(platform: str, mapped: Mapped) -> int:
        """Queue the lookups (or reject them when no token can fetch them); how many queued."""
        if not mapped.lookups:
            return 0
        if lookups is None:
            mapped.rejected.extend(
                RejectedItem(
                    index=lookup.index,
                    reason="mention without text: set SMM_META_ACCESS_TOKEN so ingest can "
                    "fetch it with the Graph API",
                )
                for lookup in mapped.lookups
            )
            return 0
        try:
            await lookups.enqueue(documents_of(mapped.lookups))
        except Exception as exc:  # the database is down: the platform must redeliver
            log.error("queueing lookups failed", platform=platform, error=type(exc).__name__)
            raise ApiError(
                503,
                "store_unavailable",
                "the delivery could not be stored; redeliver it",
                headers={"Retry-After": "5"},
            ) from exc
        return len(mapped.lookups)

    async def deliver(platform: str, mapped: Mapped) -> WebhookResult:
        deferred = await defer(platform, mapped)
        if mapped.items or mapped.rejected:
            try:
                outcome = await sink(mapped.items, "webhook", mapped.rejected)
            except Exception as exc:  # Kafka did not acknowledge: the platform must redeliver
                log.error(
                    "webhook delivery not acknowledged",
                    platform=platform,
                    items=len(mapped.items),
                    error=type(exc).__name__,
                )
                raise ApiError(
                    503,
                    "broker_unavailable",
                    "the delivery could not be stored; redeliver it",
                    headers={"Retry-After": "5"},
                ) from exc
            accepted, duplicates, unmatched = (
                outcome.accepted,
                outcome.duplicates,
                outcome.unmatched,
            )
        else:
            accepted = duplicates = unmatched = 0
        log.info(
            "webhook delivery",
            platform=platform,
            items=len(mapped.items),
            accepted=accepted,
            duplicates=duplicates,
            unmatched=unmatched,
            rejected=len(mapped.rejected),
            ignored=mapped.ignored,
            deferred=deferred,
        )
        return WebhookResult(
            accepted=accepted,
            duplicates=duplicates,
            unmatched=unmatched,
            ignored=mapped.ignored,
            rejected=mapped.rejected,
            deferred=deferred,
        )

    # --- Meta (Facebook Pages, Instagram) -------------------------------------------------

    @router.get(
        "/meta",
        response_class=PlainTextResponse,
        summary="Meta subscription handshake: echo hub.challenge for our verify token",
    )
    async def meta_handshake(
        request: Request,
        mode: Annotated[str | None, Query(alias="hub.mode")] = None,
        verify_token: Annotated[str | None, Query(alias="hub.verify_token")] = None,
        challenge: Annotated[str | None, Query(alias="hub.challenge", max_length=1024)] = None,
    ) -> PlainTextResponse:
        if meta_secret is None or meta_token is None:
            raise _disabled("meta")
        limit_handshake("meta", request)
        if (
            mode != "subscribe"
            or verify_token is None
            or not hmac.compare_digest(verify_token.encode(), meta_token.encode())
        ):
            log.warning("meta handshake refused", platform="meta")
            raise ApiError(403, "forbidden", "hub.mode or hub.verify_token is wrong")
        if not challenge:
            raise ApiError(400, "bad_request", "hub.challenge is missing")
        return _echo(challenge)

    @router.post(
        "/meta",
        response_model=WebhookResult,
        summary="Meta change notifications (X-Hub-Signature-256)",
    )
    async def meta_delivery(request: Request) -> WebhookResult:
        secret = meta_secret if meta_token is not None else None
        return await signed_json(
            request, "meta", secret, signatures.verify_meta, META_SIGNATURE, map_meta_delivery
        )

    # --- X Account Activity ---------------------------------------------------------------

    @router.get(
        "/x",
        response_model=CrcResponse,
        summary="X challenge-response check (CRC)",
        description=(
            "Answers the HMAC of `crc_token` only for a token in the form X sends (1-255 "
            "base64/base64url characters, not JSON): that HMAC is also the signature of a "
            "delivery whose body is the token, so nothing that could be a delivery is signed."
        ),
    )
    async def x_crc(
        request: Request,
        crc_token: Annotated[str, Query(min_length=1, max_length=1024)],
    ) -> CrcResponse:
        if x_secret is None:
            raise _disabled("x")
        limit_handshake("x", request)
        problem = crc_token_problem(crc_token)
        if problem is not None:
            log.warning("x crc token refused", platform="x", length=len(crc_token))
            raise ApiError(400, "invalid_crc_token", problem)
        return CrcResponse(response_token=signatures.x_crc_response(x_secret, crc_token))

    @router.post(
        "/x",
        response_model=WebhookResult,
        summary="X Account Activity events (x-twitter-webhooks-signature)",
    )
    async def x_delivery(request: Request) -> WebhookResult:
        return await signed_json(
            request, "x", x_secret, signatures.verify_x, X_SIGNATURE, map_x_delivery
        )

    # --- Mastodon -------------------------------------------------------------------------

    @router.post(
        "/mastodon",
        response_model=WebhookResult,
        summary="Mastodon webhook events status.created / status.updated (X-Hub-Signature)",
    )
    async def mastodon_delivery(request: Request) -> WebhookResult:
        return await signed_json(
            request,
            "mastodon",
            mastodon_secret,
            signatures.verify_mastodon,
            HUB_SIGNATURE,
            map_mastodon_event,
        )

    # --- WebSub ---------------------------------------------------------------------------

    def websub_subscription_id(subscription_id: str) -> str:
        if not websub_enabled:
            raise _disabled("websub")
        if not _SUBSCRIPTION_ID.match(subscription_id):
            raise ApiError(404, "unknown_subscription", "no such WebSub subscription")
        return subscription_id

    @router.get(
        "/websub/{subscription_id}/{callback_token}",
        response_class=PlainTextResponse,
        summary="WebSub intent verification: echo hub.challenge for our pending intent",
        description=(
            "Only for the callback URL we gave the hub (it carries a random token), the mode "
            "we asked for, and within SMM_WEBSUB_VERIFY_WINDOW_SECONDS of our request."
        ),
    )
    async def websub_verify(
        subscription_id: str, callback_token: str, request: Request
    ) -> PlainTextResponse:
        # Not rate-limited: the token already shuts strangers out, and a hub renewing many
        # subscriptions verifies them in a burst from one address.
        subscription_id = websub_subscription_id(subscription_id)
        answer = await verify_intent(
            subscription_id, callback_token, request.query_params, websub, verify_window
        )
        if answer.status == 200:
            return _echo(answer.body)
        log.warning(
            "websub verification refused", subscription_id=subscription_id, reason=answer.reason
        )
        code = "unknown_subscription" if answer.status == 404 else "bad_request"
        raise ApiError(answer.status, code, answer.reason)

    @router.get(
        "/websub/{subscription_id}",
        response_class=PlainTextResponse,
        summary="Callback URL without its token (from before tokens): never verifies anything",
        include_in_schema=False,
    )
    async def websub_verify_untokened(subscription_id: str) -> PlainTextResponse:
        subscription_id = websub_subscription_id(subscription_id)
        raise ApiError(404, "unknown_subscription", "no such pending intent")

    async def websub_push(
        subscription_id: str, callback_token: str | None, request: Request
    ) -> WebhookResult:
        subscription_id = websub_subscription_id(subscription_id)
        subscription = await websub.get(subscription_id)
        # A subscription made before callback tokens existed is still pushed to its old
        # URL until its lease ends (renewal moves it); the signature is checked either way.
        legacy = subscription is not None and not subscription.get("callback_token")
        if subscription is None or not (
            (legacy and callback_token is None) or token_matches(subscription, callback_token)
        ):
            raise ApiError(404, "unknown_subscription", "no such WebSub subscription")
        body = await request.body()
        secret = subscription.get("secret")
        if not secret:
            log.warning(
                "websub push to a subscription without secret", subscription_id=subscription_id
            )
            raise ApiError(401, "invalid_signature", "the subscription has no secret")
        _verify(
            "websub",
            lambda b, h: signatures.verify_websub(secret, b, h),
            body,
            request.headers.get(HUB_SIGNATURE),
        )
        topic = str(subscription.get("topic") or "")
        try:
            mapped = await asyncio.to_thread(
                map_feed, body, topic, request.headers.get("content-type")
            )
        except BadPayloadError as exc:
            raise ApiError(400, "bad_payload", str(exc)) from exc
        return await deliver("rss", mapped)

    @router.post(
        "/websub/{subscription_id}/{callback_token}",
        response_model=WebhookResult,
        summary="WebSub content distribution (X-Hub-Signature with the subscription's secret)",
    )
    async def websub_delivery(
        subscription_id: str, callback_token: str, request: Request
    ) -> WebhookResult:
        return await websub_push(subscription_id, callback_token, request)

    @router.post(
        "/websub/{subscription_id}",
        response_model=WebhookResult,
        summary="WebSub content distribution to a callback URL from before callback tokens",
        include_in_schema=False,
    )
    async def websub_delivery_untokened(subscription_id: str, request: Request) -> WebhookResult:
        return await websub_push(subscription_id, None, request)

    return router
