"""The local stack keeps its admin token secret: the token file and the logs that hold it are
the owner's only from the moment they exist, and the services demand the token for reads.

Every test runs with umask 000, the worst a developer's shell may have, so a file that relies on
a later chmod (or on a friendly umask) would show up as readable by others.
"""

from __future__ import annotations

import json
import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.local import stack
from shared.local.stack import (
    ACTOR_KEY_FILE,
    CONSOLE_TOKEN_FILE,
    PASSWORD_FILE,
    TOKEN_FILE,
    StackConfig,
    admin_token,
    prepare_dirs,
    service_env,
)


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StackConfig:
    monkeypatch.delenv("SMM_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("SMM_PROTECT_READS", raising=False)
    return StackConfig(data_dir=tmp_path / "stack")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_token_file_is_created_private_not_chmod_ed_afterwards(
    config: StackConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    config.data_dir.mkdir(parents=True)
    # A chmod after the write would leave a window in which others can read the token: make
    # every chmod a no-op, so only a file created private passes.
    monkeypatch.setattr(Path, "chmod", lambda *_a, **_k: None)
    monkeypatch.setattr(os, "chmod", lambda *_a, **_k: None)
    token = admin_token(config)
    path = config.data_dir / TOKEN_FILE
    assert _mode(path) == 0o600
    assert path.read_text().strip() == token
    assert len(token) >= 24


def test_the_token_is_generated_once_and_kept(config: StackConfig) -> None:
    config.data_dir.mkdir(parents=True)
    first = admin_token(config)
    assert admin_token(config) == first
    assert _mode(config.data_dir / TOKEN_FILE) == 0o600


def test_a_token_file_of_an_older_version_is_tightened(config: StackConfig) -> None:
    config.data_dir.mkdir(parents=True)
    path = config.data_dir / TOKEN_FILE
    path.write_text("older-token-0001\n")
    path.chmod(0o644)
    assert admin_token(config) == "older-token-0001"
    assert _mode(path) == 0o600


def test_a_configured_token_writes_no_file(
    config: StackConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMM_ADMIN_TOKEN", "configured-token-01")
    config.data_dir.mkdir(parents=True)
    assert admin_token(config) == "configured-token-01"
    assert not (config.data_dir / TOKEN_FILE).exists()


def test_the_stack_folders_and_old_logs_become_private(config: StackConfig) -> None:
    config.logs.mkdir(parents=True, mode=0o777)
    config.data_dir.chmod(0o755)
    old_log = config.logs / "supervisor.log"
    old_log.write_text("admin token   abc\n")
    old_log.chmod(0o644)
    stack.prepare_dirs(config)
    assert _mode(config.data_dir) == 0o700
    assert _mode(config.logs) == 0o700
    assert _mode(old_log) == 0o600


class _ExitedChild:
    """What `subprocess.Popen` returns for a supervisor that failed at once."""

    def __init__(self, argv: list[str], *, stdout: Any, **_: Any) -> None:
        stdout.write(b"admin token   printed-by-the-banner\n")

    def poll(self) -> int:
        return 1


def test_the_supervisor_log_that_gets_the_banner_is_created_private(
    config: StackConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shared.local.stack.subprocess.Popen", _ExitedChild)
    assert stack.up(config, detach=True) == 1
    log = config.logs / "supervisor.log"
    assert "printed-by-the-banner" in log.read_text()
    assert _mode(log) == 0o600


def test_everything_the_supervisor_and_its_children_write_is_private(
    config: StackConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[Path] = []

    def start(self: stack.Supervisor, env: dict[str, str]) -> None:
        # Service logs are opened by ManagedProcess with a plain open(): the umask decides.
        path = self.config.logs / "ingest.log"
        with path.open("ab") as log:
            log.write(b"started\n")
        written.append(path)
        raise RuntimeError("stop here")

    monkeypatch.setattr(stack.Supervisor, "_start", start)
    monkeypatch.setattr(stack.Supervisor, "_stop", lambda self: None)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        assert stack.Supervisor(config).run() == 1
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert written
    assert _mode(written[0]) == 0o600
    assert _mode(config.data_dir / TOKEN_FILE) == 0o600
    assert _mode(config.data_dir) == 0o700


def test_the_services_of_the_stack_protect_reads(
    config: StackConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepare_dirs(config)
    assert service_env(config, "a-local-token-01")["SMM_PROTECT_READS"] == "true"
    monkeypatch.setenv("SMM_PROTECT_READS", "false")  # a developer's explicit choice stays
    assert service_env(config, "a-local-token-01")["SMM_PROTECT_READS"] == "false"


def test_the_console_secrets_are_generated_once_and_private(config: StackConfig) -> None:
    prepare_dirs(config)
    first = service_env(config, "a-local-token-01")
    again = service_env(config, "a-local-token-01")
    for variable in (
        "SMM_CONSOLE_SERVICE_TOKEN",
        "SMM_ACTOR_SIGNING_KEY",
        "SMM_CONSOLE_FIRST_ADMIN_PASSWORD",
    ):
        assert first[variable] == again[variable]
        assert len(first[variable]) >= 20
    assert len(first["SMM_ACTOR_SIGNING_KEY"]) >= 32
    tokens = json.loads(first["SMM_API_TOKENS"])
    assert "act_as" in tokens[first["SMM_CONSOLE_SERVICE_TOKEN"]]["scopes"]
    for name in (CONSOLE_TOKEN_FILE, ACTOR_KEY_FILE, PASSWORD_FILE):
        assert (config.data_dir / name).stat().st_mode & 0o077 == 0
