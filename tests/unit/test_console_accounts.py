"""Console accounts: user records that cannot break pages or audit trails; throttle keys."""

from __future__ import annotations

import pytest

from services.console.pages.login import _safe_next, client_key
from services.console.storage import InvalidUserError, check_user


def test_a_user_is_an_email_with_real_groups_zone_and_language() -> None:
    check_user("anna@example.com", ["kaffee", "bikes"], "Europe/Berlin", "de")
    for email in ("auto", "token-0123456789ab", "system", "anna@", "a b@example.com"):
        with pytest.raises(InvalidUserError, match="e-mail"):
            check_user(email, [], "UTC", "en")
    with pytest.raises(InvalidUserError, match="group"):
        check_user("anna@example.com", ["$where"], "UTC", "en")
    with pytest.raises(InvalidUserError, match="time zone"):
        check_user("anna@example.com", [], "Mars/Olympus", "en")
    with pytest.raises(InvalidUserError, match="language"):
        check_user("anna@example.com", [], "UTC", "fr")


def test_ipv6_clients_are_throttled_by_their_64() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("testclient") == "testclient"


@pytest.mark.parametrize("target", ["//evil.example", "/\\evil.example", "https://evil.example"])
def test_sign_in_only_returns_to_this_console(target: str) -> None:
    assert _safe_next(target) == "/overview"
    assert _safe_next("/inbox?brand=acme") == "/inbox?brand=acme"
