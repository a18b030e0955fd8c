"""deploy/k8s/create-secrets.sh makes the Secrets the manifests refer to, with matching values."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from pathlib import Path

import pytest

from shared.auth import ROLE_SCOPES
from shared.settings import Settings, TokenGrant
from tests.deploy.support import K8S


def _run(tmp_path: Path, *args: str, existing: bool = False) -> list[list[str]]:
    calls = tmp_path / "calls"
    fake = tmp_path / "kubectl"
    get_status = 0 if existing else 1
    log = shlex.quote(str(calls))
    fake.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\0" "$@" >> {log}; printf "\\n" >> {log}\n'
        f'case "$3" in get) [ "$5" = smm-mongodb ] && [ {get_status} = 0 ] && printf c2VjcmV0; '
        f"exit {get_status} ;; esac\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    result = subprocess.run(
        ["sh", str(K8S / "create-secrets.sh"), *args],
        env={**os.environ, "KUBECTL": str(fake)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = calls.read_text().splitlines() if calls.exists() else []
    return [line.rstrip("\0").split("\0") for line in lines]


def _literals(call: list[str]) -> dict[str, str]:
    return dict(a.removeprefix("--from-literal=").split("=", 1) for a in call if "literal" in a)


@pytest.mark.parametrize("members", [1, 3])
def test_creates_both_secrets_with_the_same_app_password(tmp_path: Path, members: int) -> None:
    calls = _run(tmp_path, "smm-test", str(members))
    creates = {c[5]: c for c in calls if c[2:5] == ["create", "secret", "generic"]}
    assert set(creates) == {"smm-mongodb", "smm-secrets"}
    assert all(c[:2] == ["-n", "smm-test"] for c in calls)
    mongodb, services = _literals(creates["smm-mongodb"]), _literals(creates["smm-secrets"])
    assert set(mongodb) == {"root-username", "root-password", "app-password"}
    assert any(a.startswith("--from-file=keyfile=") for a in creates["smm-mongodb"])
    assert len(services["SMM_ADMIN_TOKEN"]) == 64
    # Every replica names unnamed tokens alike in audit trails, also after the admin token changes.
    assert len(services["SMM_TOKEN_FINGERPRINT_KEY"]) == 64
    assert services["SMM_TOKEN_FINGERPRINT_KEY"] != services["SMM_ADMIN_TOKEN"]
    hosts = ",".join(f"smm-mongodb-{i}.smm-mongodb:27017" for i in range(members))
    assert services["SMM_MONGODB_URI"] == (
        f"mongodb://smm:{mongodb['app-password']}@{hosts}/smm?replicaSet=rs0&authSource=smm"
    )
    assert mongodb["root-password"] != mongodb["app-password"]
    # The console: its token, which the four services know, and the key of its user assertions.
    assert len(services["SMM_ACTOR_SIGNING_KEY"]) == 64
    assert len(services["SMM_CONSOLE_SERVICE_TOKEN"]) == 64
    distinct = {services[k] for k in ("SMM_ADMIN_TOKEN", "SMM_TOKEN_FINGERPRINT_KEY")}
    assert not {services["SMM_ACTOR_SIGNING_KEY"], services["SMM_CONSOLE_SERVICE_TOKEN"]} & distinct
    # As the services read them: from the environment.
    with pytest.MonkeyPatch.context() as patch:
        for key in ("SMM_API_TOKENS", "SMM_ACTOR_SIGNING_KEY", "SMM_CONSOLE_SERVICE_TOKEN"):
            patch.setenv(key, services[key])
        settings = Settings()
    grant = settings.api_tokens[services["SMM_CONSOLE_SERVICE_TOKEN"]]
    assert isinstance(grant, TokenGrant)
    assert grant.user == "console"
    # act_as and every scope a role below admin has: no user is capped below their role, and
    # the console holds no `admin` (an admin user acts with all of the token's scopes).
    roles = set().union(*(scopes for role, scopes in ROLE_SCOPES.items() if role != "admin"))
    assert set(grant.scopes) == roles | {"act_as"}


def test_existing_secrets_are_left_alone(tmp_path: Path) -> None:
    calls = _run(tmp_path, "smm-test", existing=True)
    assert not [c for c in calls if "create" in c]
