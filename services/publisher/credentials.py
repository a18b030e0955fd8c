"""Channel secrets by reference, resolved only when sending.

Two stores, both meant for channel secrets only: `settings:NAME` (a key of
SMM_PUBLISHER_CREDENTIALS) and `env:SMM_CHANNEL_SECRET_<NAME>` (one environment variable per
secret, e.g. a Kubernetes secretKeyRef). No other environment variable is ever read: a
channel must not be able to borrow the admin token, the database URI or the Kafka password.

The database holds the reference, never the secret, so a database dump or an API response
reveals nothing; rotating a token is a change of environment, not of data.
"""

from __future__ import annotations

import os

from services.publisher.domain.channels import is_credential_ref
from shared.settings import Settings


class CredentialResolver:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def resolve(self, reference: str | None) -> str | None:
        """The secret behind `reference`, or None when it is not set (treated as expired).

        A reference in neither form (a channel stored before the rule) resolves to nothing.
        """
        if reference is None or not is_credential_ref(reference):
            return None
        kind, _, name = reference.partition(":")
        if kind == "env":
            return os.environ.get(name) or None
        secret = self._settings.publisher_credentials.get(name)
        return secret.get_secret_value() if secret is not None else None
