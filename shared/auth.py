"""Bearer-token authentication with scopes, for the services' write endpoints.

Tokens and their scopes come from settings (`SMM_ADMIN_TOKEN` has all of them, `SMM_API_TOKENS`
maps more tokens to scopes). Comparison is constant-time; tokens never appear in logs. Reads need
the `read` scope too unless `SMM_PROTECT_READS=false`.

A token given without a user name acts as `token-<fingerprint>` in audit trails: an HMAC-SHA256
of the token under a per-installation key (`SMM_TOKEN_FINGERPRINT_KEY`, else derived from the
configured tokens), never a plain hash that anybody who reads a trail could test guesses against.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request

from shared.errors import ApiError
from shared.settings import Settings, TokenGrant


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a short, non-secret id (for audit trails) and the scopes held."""

    id: str
    scopes: frozenset[str]

    def has(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes


ANONYMOUS = Principal(id="anonymous", scopes=frozenset())


_KEY_CONTEXT = b"smm token fingerprint v1"


def fingerprint_key(settings: Settings) -> bytes:
    """The key of the token fingerprints: the same on every replica with the same settings.

    `SMM_TOKEN_FINGERPRINT_KEY` when set; else an HMAC of the admin token (or, without one, of
    all API tokens), so the key is as secret as the tokens and stable across restarts.
    """
    if settings.token_fingerprint_key is not None:
        return settings.token_fingerprint_key.get_secret_value().encode()
    if settings.admin_token is not None:
        material = settings.admin_token.get_secret_value()
    else:
        material = "\n".join(sorted(settings.api_tokens))
    return hmac.new(material.encode(), _KEY_CONTEXT, hashlib.sha256).digest()


def fingerprint(token: str, key: bytes) -> str:
    """The actor name of an unnamed token: `token-` and 12 hex digits of HMAC-SHA256(key, token)."""
    return "token-" + hmac.new(key, token.encode(), hashlib.sha256).hexdigest()[:12]


class TokenAuthority:
    """Knows the configured tokens and turns an Authorization header into a Principal."""

    def __init__(self, settings: Settings) -> None:
        key = fingerprint_key(settings)
        tokens: dict[str, Principal] = {}
        for token, grant in settings.api_tokens.items():
            if isinstance(grant, TokenGrant):
                tokens[token] = Principal(id=grant.user, scopes=frozenset(grant.scopes))
            else:
                tokens[token] = Principal(id=fingerprint(token, key), scopes=frozenset(grant))
        if settings.admin_token is not None:
            admin = settings.admin_token.get_secret_value()
            tokens[admin] = Principal(id=fingerprint(admin, key), scopes=frozenset({"admin"}))
        self._tokens = [(token.encode(), principal) for token, principal in tokens.items()]
        self.protect_reads = settings.protect_reads

    def authenticate(self, authorization: str | None) -> Principal | None:
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        candidate = token.strip().encode()
        found: Principal | None = None
        for known, principal in self._tokens:  # check all: no early exit, no timing hint
            if hmac.compare_digest(known, candidate):
                found = principal
        return found


def require_scope(scope: str) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the caller must hold `scope` (or `admin`).

    `read` is enforced unless `SMM_PROTECT_READS=false`, which opens the reads to anybody.
    """

    async def dependency(request: Request) -> Principal:
        authority: TokenAuthority = request.app.state.token_authority
        principal = authority.authenticate(request.headers.get("authorization"))
        if scope == "read" and not authority.protect_reads:
            return principal or ANONYMOUS
        if principal is None:
            raise ApiError(
                401,
                "unauthorized",
                "a valid 'Authorization: Bearer <token>' header is required",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not principal.has(scope):
            raise ApiError(403, "forbidden", f"this token lacks the '{scope}' scope")
        return principal

    return dependency
