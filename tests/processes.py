"""The services as separate OS processes (`python -m services.<name>`) for system-level tests.

`ServiceProcesses` starts any of the four services against the test's settings, waits until
each reports ready, and can kill (SIGKILL) and restart one on the same port, which the chaos
and end-to-end tests need. Logs go to files beside the test so a failure can show them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shared.auth import CONSOLE_TOKEN_SCOPES
from shared.local.servers import LOCAL_SERVICE_ENV, free_port
from shared.settings import Settings

TOKEN = "process-test-token"
#: The console's act_as token and the key of its user assertions, in every process group.
CONSOLE_TOKEN = "process-console-token"
ACTOR_KEY = "process-test-actor-signing-key-0123456789"


def process_env(settings: Settings, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment that points a service process at the test's servers, prefix and database."""
    return {
        **os.environ,
        "SMM_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "SMM_MONGODB_URI": settings.mongodb_uri.get_secret_value(),
        "SMM_MONGODB_DATABASE": settings.mongodb_database,
        "SMM_TOPIC_PREFIX": settings.topic_prefix,
        "SMM_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "SMM_ADMIN_TOKEN": TOKEN,
        "SMM_API_TOKENS": json.dumps(
            {CONSOLE_TOKEN: {"user": "console", "scopes": list(CONSOLE_TOKEN_SCOPES)}}
        ),
        "SMM_CONSOLE_SERVICE_TOKEN": CONSOLE_TOKEN,
        "SMM_ACTOR_SIGNING_KEY": ACTOR_KEY,
        "SMM_RETRY_BACKOFF_MAX_SECONDS": "1",
        **LOCAL_SERVICE_ENV,
        **(extra or {}),
    }


@dataclass
class ServiceProcess:
    name: str
    port: int
    log: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as log:
            log.write(f"\n--- start {self.starts} ---\n".encode())
            self.process = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.name}"],
                env={**self.env, f"SMM_{self.name.upper()}_PORT": str(self.port)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no commits, no flushes, as a crash or an OOM kill."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


@dataclass
class ServiceProcesses:
    """Several service processes; replicas of one service are named `publisher`, `publisher#2`."""

    members: dict[str, ServiceProcess] = field(default_factory=dict)

    def __getitem__(self, key: str) -> ServiceProcess:
        return self.members[key]

    def url(self, key: str) -> str:
        return self.members[key].url

    def wait_ready(self, keys: Sequence[str] | None = None, timeout: float = 90.0) -> None:
        pending = set(keys or self.members)
        deadline = time.monotonic() + timeout
        while pending:
            for key in list(pending):
                member = self.members[key]
                if member.process is None or member.process.poll() is not None:
                    raise AssertionError(f"{key} exited:\n{member.tail()}")
                try:
                    if httpx.get(member.url + "/readyz", timeout=2).status_code == 200:
                        pending.discard(key)
                except httpx.HTTPError:
                    pass
            if time.monotonic() > deadline:
                tails = "\n".join(f"== {k}\n{self.members[k].tail(1500)}" for k in pending)
                raise AssertionError(f"not ready: {sorted(pending)}\n{tails}")
            time.sleep(0.3)

    def restart(self, key: str) -> None:
        """Kill (SIGKILL) and start again on the same port; returns once it is ready."""
        self.members[key].kill()
        self.members[key].start()
        self.wait_ready([key])


@contextmanager
def service_processes(
    settings: Settings,
    logs: Path,
    names: Sequence[str],
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[ServiceProcesses]:
    """Start `names` (a service name, or `name#2` for a second replica), ready on return."""
    env = process_env(settings, extra_env)
    group = ServiceProcesses()
    for key in names:
        service = key.split("#")[0]
        group.members[key] = ServiceProcess(
            service, free_port(), logs / f"{key.replace('#', '-')}.log", env
        )
    # The console reaches the first replica of each service (the members share this env).
    env["SMM_CONSOLE_SERVICE_URLS"] = json.dumps(
        {key: member.url for key, member in reversed(group.members.items()) if "#" not in key}
    )
    try:
        for member in group.members.values():
            member.start()
        group.wait_ready()
        yield group
    finally:
        for member in group.members.values():
            member.stop()
