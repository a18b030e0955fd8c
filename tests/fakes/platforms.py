"""A local server that answers like the networks we post to, over real HTTP.

Mastodon (`/mastodon`, honours `Idempotency-Key`), X (`/x`), Facebook Graph (`/facebook`),
LinkedIn (`/linkedin`), Bluesky PDS (`/bluesky`, record keys are unique) and a signed webhook
receiver (`/webhook`, de-duplicates by `Idempotency-Key`). Tests script the next answers per
network (`script`), e.g. a 429 with Retry-After, a 5xx, a 401, or "create, then hang" (the
post exists but the caller times out). Every post it creates is recorded with its arrival time
so a test or benchmark can count duplicates and measure lateness.

Run alone (for the benchmark): `python -m tests.fakes.platforms --port 9100`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import itertools
import time
import urllib.parse
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

EXPIRED_TOKEN = "expired-token"
WEBHOOK_SECRET = "webhook-signing-secret"


@dataclass
class Created:
    platform: str
    native_id: str
    text: str
    key: str  # our post id as the network sees it (idempotency key, rkey, or the text tag)
    received_at: float
    reply_to: str | None = None


@dataclass
class FakePlatform:
    """The state of the fake networks: scripted answers and what was created."""

    created: list[Created] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    scripts: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    expired_tokens: set[str] = field(default_factory=lambda: {EXPIRED_TOKEN})
    keys: dict[tuple[str, str], Created] = field(default_factory=dict)
    latency: float = 0.0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1_000))

    def script(self, platform: str, *answers: dict[str, Any]) -> None:
        """Queue the next answers of `platform`: {"status", "headers", "body"} or
        {"hang_after_create": seconds} or {"hang": seconds}."""
        self.scripts[platform].extend(answers)

    def created_on(self, platform: str) -> list[Created]:
        return [c for c in self.created if c.platform == platform]

    def by_key(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for item in self.created:
            counts[item.key] += 1
        return counts


def build_fake_app(state: FakePlatform) -> FastAPI:
    app = FastAPI()

    async def gate(platform: str, request: Request) -> tuple[Response | None, float]:
        """A scripted or 401 answer, or None to go on (and how long to hang after creating)."""
        state.requests[platform] += 1
        if state.latency:
            await asyncio.sleep(state.latency)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token in state.expired_tokens:
            return JSONResponse({"error": "The access token expired"}, status_code=401), 0.0
        if state.scripts[platform]:
            answer = state.scripts[platform].pop(0)
            if "hang" in answer:
                await asyncio.sleep(answer["hang"])
            if "hang_after_create" in answer:
                return None, float(answer["hang_after_create"])
            if "status" in answer:
                return (
                    JSONResponse(
                        answer.get("body", {"error": "scripted"}),
                        status_code=answer["status"],
                        headers=answer.get("headers"),
                    ),
                    0.0,
                )
        return None, 0.0

    def create(platform: str, text: str, key: str, reply_to: str | None = None) -> Created:
        existing = state.keys.get((platform, key))
        if existing is not None:
            return existing
        item = Created(platform, str(next(state._ids)), text, key, time.time(), reply_to)
        state.created.append(item)
        state.keys[(platform, key)] = item
        return item

    def tag_of(text: str) -> str:
        return text  # networks without idempotency: the text is the only identity we have

    # --- Mastodon --------------------------------------------------------------------------
    @app.post("/mastodon/api/v1/statuses")
    async def mastodon_status(request: Request) -> Response:
        early, hang = await gate("mastodon", request)
        if early:
            return early
        body = await request.json()
        if not body.get("status"):
            return JSONResponse({"error": "Validation failed: Text can't be blank"}, 422)
        key = request.headers.get("idempotency-key") or f"anon-{time.time_ns()}"
        item = create("mastodon", body["status"], key, body.get("in_reply_to_id"))
        if hang:
            await asyncio.sleep(hang)
        return JSONResponse(
            {"id": item.native_id, "url": f"https://social.example/@brand/{item.native_id}"}
        )

    # --- X ---------------------------------------------------------------------------------
    @app.post("/x/2/tweets")
    async def x_tweet(request: Request) -> Response:
        early, hang = await gate("x", request)
        if early:
            return early
        body = await request.json()
        reply = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        item = create("x", body["text"], f"x-{len(state.created)}-{time.time_ns()}", reply)
        item.key = tag_of(body["text"])
        if hang:
            await asyncio.sleep(hang)
        return JSONResponse({"data": {"id": item.native_id, "text": item.text}}, status_code=201)

    @app.get("/x/2/users/{user_id}/tweets")
    async def x_timeline(user_id: str, request: Request) -> Response:
        early, _ = await gate("x-read", request)
        if early:
            return early
        data = [{"id": c.native_id, "text": c.text} for c in reversed(state.created_on("x"))]
        return JSONResponse({"data": data[:100]})

    # --- Facebook --------------------------------------------------------------------------
    @app.post("/facebook/{target}/{edge}")
    async def facebook_post(target: str, edge: str, request: Request) -> Response:
        early, hang = await gate("facebook", request)
        if early:
            return early
        form = urllib.parse.parse_qs((await request.body()).decode())
        message = (form.get("message") or [""])[0]
        reply = target if edge == "comments" else None
        item = create("facebook", message, f"fb-{time.time_ns()}", reply)
        item.key = tag_of(message)
        if hang:
            await asyncio.sleep(hang)
        return JSONResponse({"id": f"{target}_{item.native_id}"})

    @app.get("/facebook/{target}/{edge}")
    async def facebook_feed(target: str, edge: str, request: Request) -> Response:
        data = [
            {"id": f"{target}_{c.native_id}", "message": c.text}
            for c in reversed(state.created_on("facebook"))
        ]
        return JSONResponse({"data": data[:100]})

    # --- LinkedIn --------------------------------------------------------------------------
    @app.post("/linkedin/rest/posts")
    async def linkedin_post(request: Request) -> Response:
        early, hang = await gate("linkedin", request)
        if early:
            return early
        body = await request.json()
        if request.headers.get("linkedin-version") is None:
            return JSONResponse({"message": "LinkedIn-Version header missing"}, 400)
        item = create("linkedin", body["commentary"], f"li-{time.time_ns()}")
        item.key = tag_of(body["commentary"])
        if hang:
            await asyncio.sleep(hang)
        return Response(status_code=201, headers={"x-restli-id": f"urn:li:share:{item.native_id}"})

    @app.get("/linkedin/rest/posts")
    async def linkedin_posts(request: Request) -> Response:
        elements = [
            {"id": f"urn:li:share:{c.native_id}", "commentary": c.text}
            for c in reversed(state.created_on("linkedin"))
        ]
        return JSONResponse({"elements": elements[:50]})

    # --- Bluesky ---------------------------------------------------------------------------
    @app.post("/bluesky/xrpc/com.atproto.repo.createRecord")
    async def bluesky_create(request: Request) -> Response:
        early, hang = await gate("bluesky", request)
        if early:
            return early
        body = await request.json()
        rkey = body["rkey"]
        if ("bluesky", rkey) in state.keys:
            return JSONResponse(
                {"error": "InvalidRequest", "message": "Record already exists"}, 400
            )
        record = body["record"]
        reply = (record.get("reply") or {}).get("parent", {}).get("uri")
        item = create("bluesky", record["text"], rkey, reply)
        if hang:
            await asyncio.sleep(hang)
        uri = f"at://{body['repo']}/app.bsky.feed.post/{rkey}"
        return JSONResponse({"uri": uri, "cid": f"cid{item.native_id}"})

    @app.get("/bluesky/xrpc/com.atproto.repo.getRecord")
    async def bluesky_get(repo: str, collection: str, rkey: str) -> Response:
        item = state.keys.get(("bluesky", rkey))
        if item is None and rkey.startswith("parent"):
            return JSONResponse(
                {"uri": f"at://{repo}/{collection}/{rkey}", "cid": "cidparent", "value": {}}
            )
        if item is None:
            return JSONResponse(
                {"error": "RecordNotFound", "message": "Could not locate record"}, 400
            )
        return JSONResponse(
            {
                "uri": f"at://{repo}/{collection}/{rkey}",
                "cid": f"cid{item.native_id}",
                "value": {"text": item.text},
            }
        )

    # --- signed webhook --------------------------------------------------------------------
    @app.post("/webhook/hook")
    async def webhook(request: Request) -> Response:
        early, hang = await gate("generic", request)
        if early:
            return early
        body = await request.body()
        timestamp = request.headers.get("x-smm-timestamp", "")
        expected = (
            "sha256="
            + hmac.new(
                WEBHOOK_SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256
            ).hexdigest()
        )
        if not hmac.compare_digest(expected, request.headers.get("x-smm-signature", "")):
            return JSONResponse({"error": "bad signature"}, 401)
        payload = await request.json()
        key = request.headers.get("idempotency-key") or payload["post_id"]
        item = create("generic", payload["text"], key, payload.get("in_reply_to"))
        if hang:
            await asyncio.sleep(hang)
        return JSONResponse({"id": f"hook-{item.native_id}"})

    # --- inspection (benchmark) ------------------------------------------------------------
    @app.get("/_fake/created")
    async def created(after: int = 0) -> Response:
        items = state.created[after:]
        return JSONResponse(
            {
                "total": len(state.created),
                "items": [[c.platform, c.key, c.received_at] for c in items],
            }
        )

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    args = parser.parse_args()
    state = FakePlatform(latency=args.latency)
    uvicorn.run(build_fake_app(state), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
