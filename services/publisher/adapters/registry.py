"""The adapter of each network, over one shared HTTP client."""

from __future__ import annotations

import httpx

from services.publisher.adapters.base import Adapter
from services.publisher.adapters.bluesky import BlueskyAdapter
from services.publisher.adapters.facebook import FacebookAdapter
from services.publisher.adapters.linkedin import LinkedInAdapter
from services.publisher.adapters.mastodon import MastodonAdapter
from services.publisher.adapters.webhook import WebhookAdapter
from services.publisher.adapters.x import XAdapter


def build_adapters(client: httpx.AsyncClient) -> dict[str, Adapter]:
    adapters: list[Adapter] = [
        MastodonAdapter(client),
        XAdapter(client),
        FacebookAdapter(client),
        LinkedInAdapter(client),
        BlueskyAdapter(client),
        WebhookAdapter(client),
    ]
    return {adapter.platform: adapter for adapter in adapters}
