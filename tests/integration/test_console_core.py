"""The console's frame on the real stack: sign-in, sessions, CSRF, roles, brands, assertions.

One stack for the module (five processes take ~20 s to start); each test signs in afresh.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from services.console.storage import UserStore
from shared.auth import Actor, sign_actor
from shared.mongo import create_mongo_client, service_database
from shared.settings import Settings
from tests.conftest import isolated_settings
from tests.console_kit import PASSWORD, ConsoleStack, console_stack
from tests.processes import ACTOR_KEY, CONSOLE_TOKEN, TOKEN

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(servers: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    settings = isolated_settings(servers)  # type: ignore[arg-type]
    with console_stack(settings, tmp_path_factory.mktemp("console")) as running:
        yield running


def _login_form(client: httpx.Client) -> str:
    page = client.get("/login")
    marker = 'name="csrf_token" value="'
    start = page.text.index(marker) + len(marker)
    return page.text[start : page.text.index('"', start)]


def test_sign_in_sets_a_protected_session_cookie(stack: ConsoleStack) -> None:
    with httpx.Client(base_url=stack.console_url) as client:
        token = _login_form(client)
        answer = client.post(
            "/login",
            data={"email": "Reviewer@Example.com", "password": PASSWORD, "csrf_token": token},
        )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/overview"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if "smm_session=" in c)
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=lax", "path=/"} <= flags
    assert "secure" not in flags  # plain HTTP here; behind TLS the cookie is Secure


def test_sign_in_without_its_csrf_token_is_refused(stack: ConsoleStack) -> None:
    with httpx.Client(base_url=stack.console_url) as client:
        _login_form(client)
        answer = client.post("/login", data={"email": "reviewer@example.com", "password": PASSWORD})
    assert answer.status_code == 403
    assert "smm_session" not in answer.headers.get("set-cookie", "")


def test_a_state_change_without_the_csrf_token_is_refused(stack: ConsoleStack) -> None:
    client = stack.sign_in("viewer@example.com")
    refused = client.post("/account/language", data={"language": "de"})
    assert refused.status_code == 403
    forged = client.post(
        "/account/language", data={"language": "de"}, headers={"X-CSRF-Token": "not-it"}
    )
    assert forged.status_code == 403
    accepted = client.post(
        "/account/language", data={"language": "de", "csrf_token": client.csrf_token}
    )
    assert accepted.status_code == 303
    assert "Warnungen" in client.get("/alerts").text


def test_pages_need_a_session(stack: ConsoleStack) -> None:
    with httpx.Client(base_url=stack.console_url) as client:
        page = client.get("/alerts")
        fragment = client.get("/alerts", headers={"HX-Request": "true"})
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/alerts"
    assert fragment.status_code == 401
    assert fragment.headers["HX-Redirect"].startswith("/login")


def test_wrong_passwords_are_throttled_per_account(stack: ConsoleStack) -> None:
    with httpx.Client(base_url=stack.console_url) as client:
        statuses = []
        for _ in range(stack.settings.console_login_failures + 1):
            statuses.append(
                client.post(
                    "/login",
                    data={
                        "email": "manager@example.com",
                        "password": "not the password at all",
                        "csrf_token": _login_form(client),
                    },
                ).status_code
            )
        right = client.post(
            "/login",
            data={
                "email": "manager@example.com",
                "password": PASSWORD,
                "csrf_token": _login_form(client),
            },
        )
    assert statuses[:-1] == [401] * stack.settings.console_login_failures
    assert statuses[-1] == 429
    assert right.status_code == 429  # even the right password waits out the window


def _set_disabled(settings: Settings, email: str, disabled: bool) -> None:
    async def change() -> None:
        client = create_mongo_client(settings, "test")
        try:
            store = UserStore(service_database(client, settings))
            await store.update(email, datetime.now(UTC), disabled=disabled)
        finally:
            await client.close()

    asyncio.run(change())


def test_a_disabled_user_is_out_at_once(stack: ConsoleStack) -> None:
    client = stack.sign_in("editor@example.com")
    assert client.get("/alerts").status_code == 200
    _set_disabled(stack.settings, "editor@example.com", True)
    try:
        assert client.get("/alerts").status_code == 303
        with httpx.Client(base_url=stack.console_url) as fresh:
            answer = fresh.post(
                "/login",
                data={
                    "email": "editor@example.com",
                    "password": PASSWORD,
                    "csrf_token": _login_form(fresh),
                },
            )
        assert answer.status_code == 401
    finally:
        _set_disabled(stack.settings, "editor@example.com", False)


def test_a_user_sees_only_their_brands(stack: ConsoleStack) -> None:
    bikes = stack.sign_in("bikes@example.com")
    page = bikes.get("/alerts")
    assert 'value="velo"' in page.text
    assert 'value="acme"' not in page.text
    assert bikes.get("/alerts?brand=acme").status_code == 404
    admin_page = stack.sign_in("admin@example.com").get("/alerts").text
    for tracker in ("acme", "rival", "velo"):
        assert f'value="{tracker}"' in admin_page


def test_services_act_for_the_asserted_user_only_through_the_console_token(
    stack: ConsoleStack,
) -> None:
    viewer = Actor("viewer@example.com", "viewer", frozenset({"acme"}))
    assertion = sign_actor(viewer, ACTOR_KEY)
    trackers = stack.url("ingest") + "/v1/trackers"
    as_console = httpx.get(
        trackers,
        headers={"Authorization": f"Bearer {CONSOLE_TOKEN}", "X-SMM-Actor": assertion},
    )
    assert as_console.status_code == 200
    assert [t["id"] for t in as_console.json()["items"]] == ["acme"]
    # Without a known token, an assertion alone is nobody.
    alone = httpx.get(trackers, headers={"X-SMM-Actor": assertion})
    assert alone.status_code == 401
    # The admin token sees every tracker; the user it carries sees their own only.
    everything = httpx.get(trackers, headers={"Authorization": f"Bearer {TOKEN}"})
    assert {t["id"] for t in everything.json()["items"]} == {"acme", "rival", "velo"}
    expired = sign_actor(viewer, ACTOR_KEY, now=time.time() - 3600)
    late = httpx.get(
        trackers, headers={"Authorization": f"Bearer {CONSOLE_TOKEN}", "X-SMM-Actor": expired}
    )
    assert late.status_code == 401
    forged = sign_actor(Actor("x@example.com", "admin", None), "another-key-" * 4)
    refused = httpx.get(
        trackers, headers={"Authorization": f"Bearer {CONSOLE_TOKEN}", "X-SMM-Actor": forged}
    )
    assert refused.status_code == 401


def test_every_answer_carries_the_security_headers(stack: ConsoleStack) -> None:
    answer = httpx.get(stack.console_url + "/login")
    policy = answer.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert answer.headers["x-content-type-options"] == "nosniff"
    asset = httpx.get(stack.console_url + "/static/vendor/htmx.org/dist/htmx.min.js")
    assert asset.status_code == 200
    assert "content-security-policy" in asset.headers
