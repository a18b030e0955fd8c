"""Bearer-token authentication with scopes, for the services' write endpoints.

Tokens and their scopes come from settings (`SMM_ADMIN_TOKEN` has all of them, `SMM_API_TOKENS`
maps more tokens to scopes). Comparison is constant-time; tokens never appear in logs.
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


def _fingerprint(token: str) -> str:
    return "token-" + hashlib.sha256(token.encode()).hexdigest()[:12]


class TokenAuthority:
    """Knows the configured tokens and turns an Authorization header into a Principal."""

    def __init__(self, settings: Settings) -> None:
        tokens: dict[str, Principal] = {}
        for token, grant in settings.api_tokens.items():
            if isinstance(grant, TokenGrant):
                tokens[token] = Principal(id=grant.user, scopes=frozenset(grant.scopes))
            else:
                tokens[token] = Principal(id=_fingerprint(token), scopes=frozenset(grant))
        if settings.admin_token is not None:
            admin = settings.admin_token.get_secret_value()
            tokens[admin] = Principal(id=_fingerprint(admin), scopes=frozenset({"admin"}))
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

    `read` is only enforced when `SMM_PROTECT_READS` is set; otherwise reads are open.
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
