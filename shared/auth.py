"""Bearer-token authentication with scopes, for the services' write endpoints.

Tokens and their scopes come from settings (`SMM_ADMIN_TOKEN` has all of them, `SMM_API_TOKENS`
maps more tokens to scopes). Comparison is constant-time; tokens never appear in logs. Reads need
the `read` scope too unless `SMM_PROTECT_READS=false`.

A token given without a user name acts as `token-<fingerprint>` in audit trails: an HMAC-SHA256
of the token under a per-installation key (`SMM_TOKEN_FINGERPRINT_KEY`, else derived from the
configured tokens), never a plain hash that anybody who reads a trail could test guesses against.

The console acts for the person signed in to it. It calls with its own token, which holds the
`act_as` scope, and an `X-SMM-Actor` header: a short-lived JWT (HS256 under
`SMM_ACTOR_SIGNING_KEY`) that names the user, their role and their brands (tracker ids). The
service then acts as that user: audit trails name them, their scopes are their role's (never
more than the token's), and data outside their brands is not theirs to see. A token without
`act_as` that sends the header is refused, so no other client can claim to be a user.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal, get_args

import jwt
from fastapi import Request

from shared.errors import ApiError
from shared.settings import Settings, TokenGrant

Role = Literal["admin", "manager", "editor", "reviewer", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)

#: What each console role may do, in token scopes. A user acting through the console gets the
#: scopes of their role that the console's own token also holds.
ROLE_SCOPES: dict[Role, frozenset[str]] = {
    "admin": frozenset({"admin"}),
    "manager": frozenset(
        {
            "read",
            "review:write",
            "posts:write",
            "posts:approve",
            "trackers:write",
            "rules:write",
            "channels:write",
        }
    ),
    "editor": frozenset({"read", "review:write", "posts:write"}),
    "reviewer": frozenset({"read", "review:write"}),
    "viewer": frozenset({"read"}),
}

#: The scopes to give the console's own token: every role's below admin, and `act_as`. A
#: console admin then acts with these (never `admin`: users and settings live in the console).
CONSOLE_TOKEN_SCOPES: tuple[str, ...] = (*sorted(ROLE_SCOPES["manager"]), "act_as")

ACTOR_HEADER = "X-SMM-Actor"
#: The longest an assertion may live: the console signs one per call, so a stolen one is short.
ACTOR_MAX_AGE_SECONDS = 300
_ACTOR_AUDIENCE = "smm-services"
_ACTOR_ISSUER = "smm-console"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a short, non-secret id (for audit trails), the scopes held and, for a
    user acting through the console, the brands (tracker ids) they may see (None: all)."""

    id: str
    scopes: frozenset[str]
    brands: frozenset[str] | None = None
    #: The service credential a user acts through (the console's token id), for audit trails.
    via: str | None = None

    def has(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes

    def may_see(self, tracker_ids: Iterable[str]) -> bool:
        """Whether data matched to these trackers is this caller's to see (one is enough)."""
        if self.brands is None:
            return True
        return not self.brands.isdisjoint(tracker_ids)

    def visible(self, tracker_ids: Iterable[str]) -> list[str]:
        """The given tracker ids this caller may see, in their order."""
        return [t for t in tracker_ids if self.brands is None or t in self.brands]


ANONYMOUS = Principal(id="anonymous", scopes=frozenset())


@dataclass(frozen=True, slots=True)
class Actor:
    """A console user, as the console asserts them to the services."""

    user: str
    role: Role
    #: Tracker ids the user is granted; None for every brand (admins).
    brands: frozenset[str] | None


class ActorError(Exception):
    """An `X-SMM-Actor` assertion that is malformed, forged, expired or not for us."""


def sign_actor(actor: Actor, key: str, now: float | None = None) -> str:
    """The `X-SMM-Actor` value for one call: a JWT that lives `ACTOR_MAX_AGE_SECONDS` at most."""
    issued = int(now if now is not None else time.time())
    claims = {
        "sub": actor.user,
        "role": actor.role,
        "brands": None if actor.brands is None else sorted(actor.brands),
        "iss": _ACTOR_ISSUER,
        "aud": _ACTOR_AUDIENCE,
        "iat": issued,
        "exp": issued + ACTOR_MAX_AGE_SECONDS,
    }
    return jwt.encode(claims, key, algorithm="HS256")


def verify_actor(assertion: str, key: str, now: float | None = None) -> Actor:
    """The actor of a valid assertion; `ActorError` with the reason otherwise."""
    if len(assertion) > 16_384:
        raise ActorError("the assertion is too long")
    try:
        claims = jwt.decode(
            assertion,
            key,
            algorithms=["HS256"],
            audience=_ACTOR_AUDIENCE,
            issuer=_ACTOR_ISSUER,
            options={"require": ["sub", "role", "iat", "exp", "iss", "aud"]},
            leeway=5,
        )
    except jwt.PyJWTError as exc:
        raise ActorError(str(exc)) from exc
    issued_at, expires = claims["iat"], claims["exp"]
    if not isinstance(issued_at, int) or not isinstance(expires, int):
        raise ActorError("iat and exp must be integers")
    if expires - issued_at > ACTOR_MAX_AGE_SECONDS:
        raise ActorError(f"the assertion may live {ACTOR_MAX_AGE_SECONDS} s at most")
    if now is not None and not issued_at - 5 <= now < expires + 5:
        raise ActorError("the assertion is not valid at this time")
    user, role, brands = claims["sub"], claims["role"], claims.get("brands")
    if not isinstance(user, str) or not 0 < len(user) <= 254:
        raise ActorError("sub must be a user name of 1 to 254 characters")
    if role not in ROLES:
        raise ActorError(f"unknown role {role!r}")
    if brands is not None and not (
        isinstance(brands, list) and all(isinstance(b, str) for b in brands)
    ):
        raise ActorError("brands must be a list of tracker ids or null")
    if brands is None and role != "admin":
        raise ActorError("only an admin is granted every brand")
    return Actor(user=user, role=role, brands=None if brands is None else frozenset(brands))


def acting_principal(token: Principal, actor: Actor) -> Principal:
    """The principal of a user acting through a service token: their role's scopes, capped by
    the token's own, and their brands."""
    role_scopes = ROLE_SCOPES[actor.role]
    if "admin" in token.scopes:
        scopes = role_scopes
    elif "admin" in role_scopes:
        scopes = token.scopes - {"act_as"}
    else:
        scopes = role_scopes & token.scopes
    return Principal(id=actor.user, scopes=frozenset(scopes), brands=actor.brands, via=token.id)


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
        self._actor_key = (
            settings.actor_signing_key.get_secret_value()
            if settings.actor_signing_key is not None
            else None
        )

    def act_for(self, token: Principal, assertion: str) -> Principal:
        """The user a valid `X-SMM-Actor` assertion names, acting through `token`.

        Raises `ApiError` 403 when the token may not act for users, 401 when the assertion is
        not valid (forged, expired, malformed or no key configured).
        """
        if not token.has("act_as"):
            raise ApiError(403, "forbidden", "this token may not act for a user (no 'act_as')")
        if self._actor_key is None:
            raise ApiError(401, "unauthorized", "user assertions are not configured here")
        try:
            actor = verify_actor(assertion, self._actor_key)
        except ActorError as exc:
            raise ApiError(401, "unauthorized", f"invalid {ACTOR_HEADER}: {exc}") from exc
        return acting_principal(token, actor)

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

    `read` is enforced unless `SMM_PROTECT_READS=false`, which opens the reads to anybody. With
    an `X-SMM-Actor` header, the caller is the user it asserts (see the module docstring).
    """

    async def dependency(request: Request) -> Principal:
        authority: TokenAuthority = request.app.state.token_authority
        principal = authority.authenticate(request.headers.get("authorization"))
        assertion = request.headers.get(ACTOR_HEADER)
        if assertion is not None:
            if principal is None:
                raise ApiError(
                    401,
                    "unauthorized",
                    f"{ACTOR_HEADER} needs the bearer token of a service that may act for users",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            principal = authority.act_for(principal, assertion)
            if not principal.has(scope):
                raise ApiError(403, "forbidden", f"the user's role lacks the '{scope}' scope")
            return principal
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
