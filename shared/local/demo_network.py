"""A stand-in social network for the local demo, so a reply from the inbox goes somewhere.

The demo's mentions come from X, Mastodon, Facebook and others; a reply must go out on a
channel of the mention's own network. Nothing off this machine may be reached, so the local
stack runs this small server and points the publisher's channels at it: it takes posts the way
those three networks' APIs take them (`POST /x/2/tweets`, `POST /mastodon/api/v1/statuses`,
`POST /facebook/{id}/comments|feed`), with their bearer token and idempotency, and lists what
it received at `/`, so the team can see their answers. Only the local stack starts it.
"""

from __future__ import annotations

import argparse
import hmac
import html
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI, Form, Header, HTTPException, Request
from fastapi.responses import HTMLResponse

TOKEN_VARIABLE = "SMM_DEMO_NETWORK_TOKEN"  # noqa: S105 - the variable's name, not a secret
NETWORKS = ("x", "mastodon", "facebook")
Auth = Annotated[str | None, Header(alias="Authorization")]


@dataclass
class DemoPost:
    id: str
    network: str
    text: str
    in_reply_to: str | None
    at: datetime


@dataclass
class DemoNetwork:
    """What the stand-in received, kept in memory for the life of the process."""

    token: str
    posts: list[DemoPost] = field(default_factory=list)
    by_key: dict[str, DemoPost] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def authorise(self, authorization: str | None) -> None:
        sent = (authorization or "").removeprefix("Bearer ").encode()
        if not hmac.compare_digest(sent, self.token.encode()):
            raise HTTPException(401, "invalid token")

    def post(self, network: str, text: str, reply_to: str | None, key: str | None) -> DemoPost:
        with self.lock:
            if key and key in self.by_key:  # the network's idempotency: the same post again
                return self.by_key[key]
            post = DemoPost(
                str(1_000_000 + len(self.posts)), network, text[:5000], reply_to, datetime.now(UTC)
            )
            self.posts.append(post)
            if key:
                self.by_key[key] = post
            return post


def build_app(network: DemoNetwork) -> FastAPI:
    app = FastAPI(title="smm demo network", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/x/2/tweets")
    async def x_post(request: Request, authorization: Auth = None) -> dict[str, Any]:
        network.authorise(authorization)
        body = await request.json()
        reply = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        post = network.post("x", str(body.get("text", "")), reply, None)
        return {"data": {"id": post.id, "text": post.text}}

    @app.get("/x/2/users/{account}/tweets")
    async def x_timeline(account: str, authorization: Auth = None) -> dict[str, Any]:
        network.authorise(authorization)
        mine = [p for p in network.posts if p.network == "x"][-100:]
        return {"data": [{"id": p.id, "text": p.text} for p in reversed(mine)]}

    @app.post("/mastodon/api/v1/statuses")
    async def mastodon_post(
        request: Request,
        authorization: Auth = None,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> dict[str, Any]:
        network.authorise(authorization)
        body = await request.json()
        reply = body.get("in_reply_to_id")
        post = network.post("mastodon", str(body.get("status", "")), reply, idempotency_key)
        return {"id": post.id, "url": f"{request.base_url}#post-{post.id}"}

    @app.post("/facebook/{target}/{edge}")
    async def facebook_post(
        target: str, edge: str, message: Annotated[str, Form()], authorization: Auth = None
    ) -> dict[str, Any]:
        network.authorise(authorization)
        if edge not in ("comments", "feed"):
            raise HTTPException(404, "unknown edge")
        post = network.post("facebook", message, target if edge == "comments" else None, None)
        return {"id": post.id}

    @app.get("/facebook/{target}/{edge}")
    async def facebook_list(target: str, edge: str, authorization: Auth = None) -> dict[str, Any]:
        network.authorise(authorization)
        mine = [p for p in network.posts if p.network == "facebook"][-100:]
        return {"data": [{"id": p.id, "message": p.text} for p in reversed(mine)]}

    @app.get("/", response_class=HTMLResponse)
    async def received() -> str:
        rows = "".join(
            f"<li id='post-{p.id}'><strong>{p.network}</strong> {p.at:%H:%M:%S} "
            f"{'(reply to ' + html.escape(p.in_reply_to) + ') ' if p.in_reply_to else ''}"
            f"{html.escape(p.text)}</li>"
            for p in reversed(network.posts)
        )
        return (
            "<!doctype html><meta charset=utf-8><title>smm demo network</title>"
            "<h1>What the demo network received</h1><p>Posts and replies the publisher sent "
            f"here instead of a real network, newest first.</p><ol>{rows}</ol>"
        )

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="the local demo's stand-in social network")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    token = os.environ[TOKEN_VARIABLE]
    uvicorn.run(
        build_app(DemoNetwork(token)), host="127.0.0.1", port=args.port, log_level="warning"
    )


if __name__ == "__main__":
    main()
