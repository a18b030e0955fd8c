"""One typed client per service API: the console's only way to data.

Every call carries the console's own token and the signed-in user's assertion (`X-SMM-Actor`),
so the services authorise the user, record them in audit trails and keep other brands out.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from services.console.clients.base import ServiceError
from services.console.clients.ingest import IngestClient
from services.console.clients.metrics import MetricsClient
from services.console.clients.moderation import ModerationClient
from services.console.clients.publisher import PublisherClient
from shared.settings import Settings

__all__ = ["ServiceClients", "ServiceError"]


@dataclass(frozen=True, slots=True)
class ServiceClients:
    ingest: IngestClient
    moderation: ModerationClient
    publisher: PublisherClient
    metrics: MetricsClient

    @classmethod
    def build(cls, settings: Settings, http: httpx.AsyncClient) -> ServiceClients:
        token = settings.console_service_token
        key = settings.actor_signing_key
        if token is None or key is None:
            raise RuntimeError(
                "the console needs SMM_CONSOLE_SERVICE_TOKEN (a token with act_as) and "
                "SMM_ACTOR_SIGNING_KEY"
            )
        args = (http, token.get_secret_value(), key.get_secret_value())
        return cls(
            ingest=IngestClient(settings.service_url("ingest"), *args),
            moderation=ModerationClient(settings.service_url("moderation"), *args),
            publisher=PublisherClient(settings.service_url("publisher"), *args),
            metrics=MetricsClient(settings.service_url("metrics"), *args),
        )
