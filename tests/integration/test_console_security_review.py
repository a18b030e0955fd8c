"""Findings of the console's security review, each as a test that fails while the hole is open.

One stack for the module (the five processes, the team of tests/console_kit.py). Each test
names the finding it demonstrates; it passes once the fix is in.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from services.console.cli import create_user
from tests.conftest import isolated_settings
from tests.console_kit import PASSWORD, ConsoleStack, console_stack, eventually, mention

pytestmark = pytest.mark.integration

_LOGIN_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def stack(servers: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    settings = isolated_settings(servers)  # type: ignore[arg-type]
    with console_stack(settings, tmp_path_factory.mktemp("console-review")) as running:
        yield running


async def _login_token(client: httpx.AsyncClient) -> str:
    page = await client.get("/login")
    found = _LOGIN_CSRF.search(page.text)
    assert found, page.text[:300]
    return found.group(1)


async def _wrong_sign_in(client: httpx.AsyncClient, email: str, token: str) -> int:
    answer = await client.post(
        "/login",
        data={"email": email, "password": "certainly not the password", "csrf_token": token},
    )
    return answer.status_code


def test_a_burst_of_sign_ins_does_not_stall_everybody_else(stack: ConsoleStack) -> None:
    """Finding: argon2 verification runs on the event loop (pages/login.py, passwords.py).

    Each sign-in blocks the whole console for one verification (0.15-0.5 s at argon2-cffi's
    defaults on a busy 2-CPU machine), so a few concurrent POST /login stall every other
    user's pages, SSE streams and health checks. Health checks during a burst of eight
    sign-ins must each answer in well under one verification's time.
    """

    async def scenario() -> float:
        async with httpx.AsyncClient(base_url=stack.console_url, timeout=60) as client:
            token = await _login_token(client)
            burst = [
                asyncio.create_task(
                    _wrong_sign_in(client, f"nobody-{uuid.uuid4().hex[:8]}@example.com", token)
                )
                for _ in range(8)
            ]
            await asyncio.sleep(0.2)  # the burst is being verified now
            slowest = 0.0
            while not all(task.done() for task in burst):
                started = time.perf_counter()
                health = await client.get("/healthz")
                slowest = max(slowest, time.perf_counter() - started)
                assert health.status_code == 200
            assert set(await asyncio.gather(*burst)) == {401}
            return slowest

    slowest = asyncio.run(scenario())
    # On the event loop, a health check waited 0.9-1.0 s behind the burst; off it, it waits
    # for a core only (0.26 s seen with the two cores also running the tests' other work).
    assert slowest < 0.5, f"a health check waited {slowest:.2f} s behind the sign-in burst"


def test_concurrent_wrong_passwords_stay_within_the_account_limit(stack: ConsoleStack) -> None:
    """Finding: the throttle checks before it counts (LoginThrottle.blocked, record_failure).

    Requests sent together all pass `blocked()` before any failure is recorded, so one
    account gets far more guesses than `SMM_CONSOLE_LOGIN_FAILURES` in the window.
    """
    limit = stack.settings.console_login_failures

    async def scenario() -> list[int]:
        async with httpx.AsyncClient(base_url=stack.console_url, timeout=60) as client:
            token = await _login_token(client)
            return list(
                await asyncio.gather(
                    *(_wrong_sign_in(client, "editor@example.com", token) for _ in range(limit + 8))
                )
            )

    statuses = asyncio.run(scenario())
    guesses = statuses.count(401)
    assert guesses <= limit, f"{guesses} password guesses checked, the limit is {limit}"


def test_a_group_named_none_does_not_grant_the_trackers_without_a_group(
    stack: ConsoleStack,
) -> None:
    """Finding: BrandDirectory.all turns a missing group into the string "None" (web.py).

    A tracker without a group becomes a brand of group "None", so a user granted a group
    called "None" (a valid identifier, or a typo in `smm users create --groups`) sees every
    ungrouped tracker. A tracker without a group should be nobody's but the admins'.
    """
    api = stack.api()
    created = api.post(
        stack.url("ingest") + "/v1/trackers",
        json={"id": "loose", "name": "Loose Ends", "query": "looseends"},
    )
    assert created.status_code in (201, 409), created.text
    asyncio.run(create_user(stack.settings, "nonegroup@example.com", PASSWORD, "viewer", ["None"]))
    client = stack.sign_in("nonegroup@example.com")
    page = client.get("/alerts", params={"brand": "loose"})
    assert page.status_code == 404, "a user of group 'None' reads the ungrouped tracker"


def test_a_reply_goes_out_on_the_repliers_brand_channel_only(stack: ConsoleStack) -> None:
    """Finding: moderation picks a reply's channel from the rules of every tracker the mention
    matched (inbox.py `_reply_command`), not of the brands of the user who replies.

    A mention of both Acme (coffee) and Velo (bikes) sits in the bikes reviewer's inbox; their
    reply is counted on Velo's channel by the console, but moderation sends it from the first
    tracker with a channel for the network: Acme's account answers in a bikes reviewer's name.
    """
    api = stack.api()
    for brand in ("acme", "velo"):
        channel = api.post(
            stack.url("publisher") + "/v1/channels",
            json={
                "id": f"{brand}-x",
                "platform": "x",
                "account": f"42{brand}",
                "name": f"{brand} on X",
                "credential_ref": f"env:SMM_CHANNEL_SECRET_{brand.upper()}_X",
            },
        )
        assert channel.status_code in (201, 409), channel.text
        rules = api.put(
            stack.url("moderation") + f"/v1/rules/{brand}",
            json={
                "brand": brand.title(),
                "auto_approve": False,
                "reply_channels": {"x": f"{brand}-x"},
            },
        )
        assert rules.status_code == 200, rules.text
    [shared] = stack.send_mentions(
        [mention("acme coffee spilled on my velo bike, awful", author="eve", platform="x")]
    )

    def queued() -> bool:
        found = api.get(
            stack.url("moderation") + "/v1/review",
            params={"status": "waiting", "limit": 200, "tracker_id": "velo"},
        ).json()["items"]
        return shared in {item["mention_id"] for item in found}

    eventually(queued)
    reviewer = stack.sign_in("bikes@example.com")
    claimed = reviewer.htmx("POST", f"/inbox/{shared}/claim", data={"brand": "velo", "tab": "all"})
    assert claimed.status_code == 200, claimed.text
    replied = reviewer.htmx(
        "POST",
        f"/inbox/{shared}/decision",
        data={"brand": "velo", "tab": "all", "action": "reply", "reply": "Sorry about that!"},
    )
    assert replied.status_code == 200, replied.text

    def posts() -> list[dict[str, Any]]:
        answer = api.get(
            stack.url("publisher") + "/v1/posts", params={"in_reply_to_mention_id": shared}
        )
        found: list[dict[str, Any]] = answer.json()["posts"] if answer.status_code == 200 else []
        return found

    [post] = eventually(posts)
    assert post["channel_id"] == "velo-x", (
        f"the bikes reviewer's reply went out on {post['channel_id']}"
    )
