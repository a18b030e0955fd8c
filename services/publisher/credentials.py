"""Channel secrets by reference: `env:NAME` or `settings:NAME`, resolved only when sending.

The database holds the reference, never the secret, so a database dump or an API response
reveals nothing; rotating a token is a change of environment, not of data.
"""

from __future__ import annotations

import os

from shared.settings import Settings


class CredentialResolver:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def resolve(self, reference: str | None) -> str | None:
        """The secret behind `reference`, or None when it is not set (treated as expired)."""
        if reference is None:
            return None
        kind, _, name = reference.partition(":")
        if kind == "env":
            return os.environ.get(name) or None
        if kind == "settings":
            secret = self._settings.publisher_credentials.get(name)
            return secret.get_secret_value() if secret is not None else None
        return None
