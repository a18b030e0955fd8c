"""The console's user assertions: signed, short-lived, capped by the token, refused when forged."""

from __future__ import annotations

import time

import jwt
import pytest

from shared.auth import (
    ACTOR_MAX_AGE_SECONDS,
    Actor,
    ActorError,
    Principal,
    acting_principal,
    sign_actor,
    verify_actor,
)

KEY = "k" * 40
REVIEWER = Actor(user="rita@example.com", role="reviewer", brands=frozenset({"acme"}))


def test_a_signed_actor_verifies_to_the_same_user() -> None:
    assert verify_actor(sign_actor(REVIEWER, KEY), KEY) == REVIEWER


def test_an_assertion_under_another_key_is_refused() -> None:
    with pytest.raises(ActorError, match="Signature"):
        verify_actor(sign_actor(REVIEWER, "x" * 40), KEY)


def test_an_expired_assertion_is_refused() -> None:
    old = time.time() - ACTOR_MAX_AGE_SECONDS - 60
    with pytest.raises(ActorError, match="expired"):
        verify_actor(sign_actor(REVIEWER, KEY, now=old), KEY)


def test_a_long_lived_assertion_is_refused() -> None:
    now = int(time.time())
    claims: dict[str, object] = {"sub": "a", "role": "viewer", "brands": [], "iss": "smm-console"}
    claims |= {"aud": "smm-services", "iat": now, "exp": now + 86_400}
    with pytest.raises(ActorError, match="at most"):
        verify_actor(jwt.encode(claims, KEY, algorithm="HS256"), KEY)


def test_an_unsigned_assertion_is_refused() -> None:
    now = int(time.time())
    claims: dict[str, object] = {"sub": "a", "role": "admin", "brands": None, "iss": "smm-console"}
    claims |= {"aud": "smm-services", "iat": now, "exp": now + 60}
    forged = jwt.encode(claims, key="", algorithm="none")
    with pytest.raises(ActorError):
        verify_actor(forged, KEY)


def test_only_an_admin_has_every_brand() -> None:
    with pytest.raises(ActorError, match="only an admin"):
        verify_actor(sign_actor(Actor("v", "viewer", None), KEY), KEY)


def test_the_users_scopes_are_their_roles_capped_by_the_token() -> None:
    console = Principal(id="console", scopes=frozenset({"read", "review:write", "act_as"}))
    acting = acting_principal(console, Actor("ed", "editor", frozenset({"acme"})))
    assert acting.scopes == {"read", "review:write"}  # posts:write is not the console's
    assert acting.id == "ed"
    assert acting.via == "console"
    assert acting.may_see(["acme", "other"])
    assert not acting.may_see(["other"])
    assert acting.visible(["other", "acme"]) == ["acme"]
    admin = acting_principal(console, Actor("root", "admin", None))
    assert admin.scopes == {"read", "review:write"}
    assert admin.may_see(["any"])
