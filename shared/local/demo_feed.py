"""The demo feed of the local stack: a steady stream of German and English mentions.

It posts through ingest's public `POST /v1/mentions`, exactly as an integration would, so a
newcomer sees the whole pipeline move. The texts come from `demo_corpus` (written for the
project, not copied from anywhere).
"""

from __future__ import annotations

import json
import random
import threading
from datetime import UTC, datetime
from pathlib import Path

import httpx

from shared.local.demo_corpus import DEMO_TRACKERS, generate_mentions

CANNED_REPLIES = Path(__file__).with_name("demo_canned_replies.json")


class DemoFeed:
    """Posts about `rate` mentions per second to ingest from a background thread."""

    def __init__(
        self,
        ingest_url: str,
        token: str,
        rate: float = 5.0,
        seed: int = 7,
        moderation_url: str | None = None,
        publisher_url: str | None = None,
        network_url: str | None = None,
    ) -> None:
        self.ingest_url = ingest_url.rstrip("/")
        self.moderation_url = moderation_url.rstrip("/") if moderation_url else None
        self.publisher_url = publisher_url.rstrip("/") if publisher_url else None
        self.network_url = network_url.rstrip("/") if network_url else None
        self.token = token
        self.rate = rate
        self.rng = random.Random(seed)
        self.sent = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def ensure_trackers(self, client: httpx.Client) -> None:
        """Create the demo brands' trackers (two coffee brands in one group, one bike brand)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        for tracker in DEMO_TRACKERS:
            response = client.post(f"{self.ingest_url}/v1/trackers", json=tracker, headers=headers)
            if response.status_code == 409:  # kept from an earlier start: leave it as it is
                continue
            response.raise_for_status()

    def ensure_canned_replies(self, client: httpx.Client) -> None:
        """The demo's canned replies (apology and thanks, German and English), for the inbox."""
        if self.moderation_url is None:
            return
        headers = {"Authorization": f"Bearer {self.token}"}
        for reply in json.loads(CANNED_REPLIES.read_text(encoding="utf-8")):
            response = client.post(
                f"{self.moderation_url}/v1/canned-replies", json=reply, headers=headers
            )
            if response.status_code == 409:  # kept from an earlier start
                continue
            response.raise_for_status()

    def ensure_reply_channels(self, client: httpx.Client) -> None:
        """Channels on the demo network for the networks it stands in for, and each demo
        brand's rules naming them, so a reviewer can answer X, Mastodon and Facebook
        mentions from the inbox (other networks' mentions are approved, hidden or escalated)."""
        if self.publisher_url is None or self.moderation_url is None or self.network_url is None:
            return
        headers = {"Authorization": f"Bearer {self.token}"}
        channels = {
            "x": {"account": "1000001"},
            "mastodon": {"account": "demo", "api_base_url": f"{self.network_url}/mastodon"},
            "facebook": {"account": "demo-page"},
        }
        for platform, fields in channels.items():
            channel = {
                "id": f"demo-{platform}",
                "platform": platform,
                "name": f"Demo {platform} (local stand-in)",
                "timezone": "Europe/Berlin",
                "credential_ref": "env:SMM_CHANNEL_SECRET_DEMO",
                **fields,
            }
            answer = client.post(f"{self.publisher_url}/v1/channels", json=channel, headers=headers)
            if answer.status_code != 409:
                answer.raise_for_status()
        for tracker in DEMO_TRACKERS:
            url = f"{self.moderation_url}/v1/rules/{tracker['id']}"
            current = client.get(url, headers=headers)
            current.raise_for_status()
            if not current.json().get("default"):
                continue  # rules someone set: theirs
            rules = {
                "brand": tracker["name"],
                "reply_channels": {platform: f"demo-{platform}" for platform in channels},
            }
            client.put(url, json=rules, headers=headers).raise_for_status()

    def send_batch(self, client: httpx.Client, count: int) -> int:
        """Post one batch; return how many ingest accepted."""
        batch = generate_mentions(self.rng, datetime.now(UTC), count)
        response = client.post(
            f"{self.ingest_url}/v1/mentions",
            json=batch,
            headers={"Authorization": f"Bearer {self.token}"},
        )
        response.raise_for_status()
        accepted: int = response.json()["accepted"]
        return accepted

    def _run(self) -> None:
        interval = 2.0
        with httpx.Client(timeout=15) as client:
            while not self._stop.is_set():
                try:
                    self.ensure_trackers(client)
                    self.ensure_canned_replies(client)
                    self.ensure_reply_channels(client)
                    break
                except httpx.HTTPError:
                    self.failures += 1
                    self._stop.wait(interval)
            while not self._stop.is_set():
                count = max(1, round(self.rate * interval * self.rng.uniform(0.5, 1.5)))
                try:
                    self.sent += self.send_batch(client, count)
                except httpx.HTTPError:
                    self.failures += 1  # ingest restarting or the broker busy: try again
                self._stop.wait(interval)
