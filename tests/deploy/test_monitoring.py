"""Prometheus config and rules pass promtool; Grafana's provisioning files and dashboards parse.

Rule files and dashboards are globbed: whatever deploy/prometheus/rules/ and
deploy/grafana/dashboards/ hold is checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from shared.settings import SERVICE_NAMES, Settings
from tests.deploy.support import DEPLOY, ROOT, load_yaml, run, tool

PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.y*ml"))
DASHBOARDS = sorted((GRAFANA / "dashboards").rglob("*.json"))


def test_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    # The container path of the rules (compose mounts them there) -> the repository's.
    container_dir = "/etc/prometheus/rules/"
    assert all(pattern.startswith(container_dir) for pattern in config["rule_files"])
    patterns = [p.removeprefix(container_dir) for p in config["rule_files"]]
    loaded = {path for pattern in patterns for path in (PROMETHEUS / "rules").glob(pattern)}
    assert loaded == set(RULE_FILES), "every rule file is loaded by the config"
    config["rule_files"] = [str(PROMETHEUS / "rules" / pattern) for pattern in patterns]
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(config))
    result = run(tool("promtool"), "check", "config", str(checked))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_pass_promtool() -> None:
    assert RULE_FILES, "deploy/prometheus/rules/ holds the alerting rules"
    result = run(tool("promtool"), "check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: rate(\n")
    assert run(tool("promtool"), "check", "rules", str(broken)).returncode != 0


def test_scrape_config_covers_every_service_on_its_port() -> None:
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "smm"]
    targets = {group["labels"]["service"]: group["targets"] for group in job["static_configs"]}
    assert set(targets) == set(SERVICE_NAMES)
    for name in SERVICE_NAMES:
        port = Settings.model_fields[f"{name}_port"].default
        assert targets[name] == [f"{name}:{port}"]


def _provisioning(kind: str) -> list[dict[str, Any]]:
    files = sorted((GRAFANA / "provisioning" / kind).glob("*.y*ml"))
    assert files, f"no Grafana {kind} provisioning"
    docs = [load_yaml(f) for f in files]
    for doc in docs:
        assert doc["apiVersion"] == 1
    return docs


def test_grafana_datasource_points_at_prometheus() -> None:
    datasources = [d for doc in _provisioning("datasources") for d in doc["datasources"]]
    for source in datasources:
        assert {"name", "type", "uid", "url", "access"} <= set(source)
    (default,) = [d for d in datasources if d.get("isDefault")]
    assert default["type"] == "prometheus"
    assert default["url"] == "http://prometheus:9090"


def test_grafana_dashboard_provider_reads_the_mounted_folder() -> None:
    providers = [p for doc in _provisioning("dashboards") for p in doc["providers"]]
    compose = load_yaml(ROOT / "docker-compose.yml")["services"]["grafana"]["volumes"]
    mounted = {v.split(":")[1] for v in compose if v.startswith("./deploy/grafana/dashboards")}
    for provider in providers:
        assert {"name", "type", "options"} <= set(provider)
        assert provider["type"] == "file"
        assert provider["options"]["path"] in mounted


def _datasource_uids(node: Any) -> set[str]:
    """Every datasource uid a dashboard refers to, in panels, targets and variables."""
    found: set[str] = set()
    if isinstance(node, dict):
        source = node.get("datasource")
        if isinstance(source, dict) and isinstance(source.get("uid"), str):
            found.add(source["uid"])
        for value in node.values():
            found |= _datasource_uids(value)
    elif isinstance(node, list):
        for value in node:
            found |= _datasource_uids(value)
    return found


def test_dashboards_parse_and_use_the_provisioned_datasource() -> None:
    known = {d["uid"] for doc in _provisioning("datasources") for d in doc["datasources"]}
    known |= {"grafana", "-- Grafana --", "-- Mixed --", "-- Dashboard --"}
    uids: list[str] = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert dashboard.get("title"), path.name
        assert isinstance(dashboard.get("panels", []), list), path.name
        uids.append(dashboard.get("uid") or path.stem)
        unknown = {
            uid for uid in _datasource_uids(dashboard) if uid not in known and "$" not in uid
        }
        assert not unknown, f"{path.name} refers to datasources {unknown}"
    assert len(uids) == len(set(uids)), "dashboard uids must be unique"
