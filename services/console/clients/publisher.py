"""The publisher service's API, as the console uses it."""

from __future__ import annotations

from services.console.clients.base import ServiceClient


class PublisherClient(ServiceClient):
    service = "publisher"
