"""The console and the four services as processes on the real servers, with a team of users.

`console_stack` starts all five services (`tests/processes.py`), creates two brand groups of
trackers (coffee: acme and rival; bikes: velo) and one user per role, and gives signed-in
clients: what a browser does, cookie, CSRF token and all. Page and browser tests share it.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from services.console.cli import create_user
from shared.auth import Role
from shared.settings import SERVICE_NAMES, Settings
from tests.processes import TOKEN, ServiceProcesses, service_processes

PASSWORD = "correct horse battery staple"
TRACKERS = [
    {"id": "acme", "name": "Acme Coffee", "query": "acme", "group": "coffee"},
    {"id": "rival", "name": "Rival Roasters", "query": "rival", "group": "coffee"},
    {"id": "velo", "name": "Velo Bikes", "query": "velo", "group": "bikes"},
]
#: One user per role on the coffee brands, and a reviewer who only has the bikes.
USERS: dict[str, tuple[Role, list[str]]] = {
    "admin@example.com": ("admin", []),
    "manager@example.com": ("manager", ["coffee"]),
    "editor@example.com": ("editor", ["coffee"]),
    "reviewer@example.com": ("reviewer", ["coffee"]),
    "viewer@example.com": ("viewer", ["coffee"]),
    "bikes@example.com": ("reviewer", ["bikes"]),
}
_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]*)"')
_LOGIN_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browserless(httpx.Client):
    """A signed-in client: sends the page's CSRF token on every state change, as htmx does."""

    csrf_token: str = ""

    def htmx(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {"HX-Request": "true", "X-CSRF-Token": self.csrf_token}
        headers.update(kwargs.pop("headers", {}))
        return self.request(method, url, headers=headers, **kwargs)


@dataclass
class ConsoleStack:
    processes: ServiceProcesses
    settings: Settings
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def console_url(self) -> str:
        return self.processes.url("console")

    def url(self, service: str) -> str:
        return self.processes.url(service)

    def api(self) -> httpx.Client:
        """The services' APIs with the admin token (for arranging data and checking it)."""
        client = httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        self.clients.append(client)
        return client

    def sign_in(self, email: str, password: str = PASSWORD) -> Browserless:
        client = Browserless(base_url=self.console_url, timeout=30)
        self.clients.append(client)
        page = client.get("/login")
        token = _LOGIN_CSRF.search(page.text)
        assert token, page.text[:500]
        answer = client.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": token.group(1)},
        )
        assert answer.status_code == 303, answer.text[:500]
        overview = client.get("/alerts")
        found = _CSRF.search(overview.text)
        assert found, overview.text[:500]
        client.csrf_token = found.group(1)
        return client

    def send_mentions(self, items: list[dict[str, Any]]) -> list[str]:
        """Mentions into ingest (the Mention shape; ids and trackers filled by the service)."""
        answer = self.api().post(self.url("ingest") + "/v1/mentions", json=items)
        assert answer.status_code == 202, answer.text
        assert not answer.json()["rejected"], answer.text
        return [f"{m['platform']}:{m['native_id']}" for m in items]


def eventually(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """The first truthy answer of `check`, polled until `timeout` (the pipeline is async)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.3)


def mention(text: str, author: str = "ann", followers: int = 100, **fields: Any) -> dict[str, Any]:
    """A mention as a network would give it (each call a new native id)."""
    return {
        "platform": fields.pop("platform", "mastodon"),
        "native_id": fields.pop("native_id", uuid.uuid4().hex[:12]),
        "url": fields.pop("url", "https://social.example/@ann/1"),
        "text": text,
        "author": {
            "id": author,
            "handle": author,
            "display_name": author.title(),
            "followers": followers,
        },
        "created_at": fields.pop("created_at", datetime.now(UTC).isoformat()),
        **fields,
    }


@contextmanager
def console_stack(settings: Settings, logs: Path) -> Iterator[ConsoleStack]:
    """All five services on `settings`' servers, the trackers and users above in place."""
    with service_processes(settings, logs, SERVICE_NAMES) as group:
        stack = ConsoleStack(group, settings)
        api = stack.api()
        for tracker in TRACKERS:
            created = api.post(stack.url("ingest") + "/v1/trackers", json=tracker)
            assert created.status_code in (201, 409), created.text

        async def create_users() -> None:
            for email, (role, groups) in USERS.items():
                await create_user(
                    settings,
                    email,
                    PASSWORD,
                    role,
                    groups,
                    language="en",
                    time_zone="Europe/Berlin",
                )

        asyncio.run(create_users())
        try:
            yield stack
        finally:
            for client in stack.clients:
                client.close()
