"""The local demo's stand-in network takes posts as X, Mastodon and Facebook do."""

from __future__ import annotations

from fastapi.testclient import TestClient

from shared.local.demo_network import DemoNetwork, build_app

TOKEN = "demo-network-token-0001"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_it_takes_posts_and_replies_like_the_networks_it_stands_in_for() -> None:
    network = DemoNetwork(TOKEN)
    client = TestClient(build_app(network))
    tweet = client.post(
        "/x/2/tweets", json={"text": "Hi", "reply": {"in_reply_to_tweet_id": "17"}}, headers=AUTH
    )
    assert tweet.json()["data"]["text"] == "Hi"
    keyed = {**AUTH, "Idempotency-Key": "post-1"}
    first = client.post("/mastodon/api/v1/statuses", json={"status": "Hallo"}, headers=keyed)
    again = client.post("/mastodon/api/v1/statuses", json={"status": "Hallo"}, headers=keyed)
    assert first.json()["id"] == again.json()["id"]  # the same post once, as Mastodon does
    comment = client.post("/facebook/123_456/comments", data={"message": "Danke"}, headers=AUTH)
    assert comment.json()["id"]
    assert [(p.network, p.in_reply_to) for p in network.posts] == [
        ("x", "17"),
        ("mastodon", None),
        ("facebook", "123_456"),
    ]
    assert "Danke" in client.get("/").text


def test_it_refuses_a_wrong_token() -> None:
    client = TestClient(build_app(DemoNetwork(TOKEN)))
    answer = client.post("/x/2/tweets", json={"text": "x"}, headers={"Authorization": "Bearer no"})
    assert answer.status_code == 401
