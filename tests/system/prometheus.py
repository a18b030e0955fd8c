"""A real Prometheus (Debian's `prometheus` binary) on the deployed configuration, for tests.

`local_config` takes deploy/prometheus/prometheus.yml as it is deployed and changes only where
things are: each scrape target `<service>:<port>` becomes the local port of that service's
process, Prometheus' own target becomes its local address, and the rule files are read from
deploy/prometheus/rules/ (the compose stack mounts that directory at /etc/prometheus/rules/).
Jobs, labels, metrics paths and any relabelling stay as deployed, so the dashboards' label
selectors meet the same series they meet in production. Intervals are shortened (1 s) so a
test sees several scrapes and rule evaluations within seconds.
"""

from __future__ import annotations

import copy
import math
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from shared.local.servers import ManagedProcess, free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
DEPLOYED_CONFIG = DEPLOY / "prometheus.yml"
#: Where the compose stack mounts deploy/prometheus/rules/ (docker-compose.yml).
MOUNTED_RULES = "/etc/prometheus/rules/"
BINARY = "/usr/bin/prometheus"


def deployed_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(DEPLOYED_CONFIG.read_text())
    return config


def local_config(
    deployed: Mapping[str, Any],
    services: Mapping[str, str],
    own_address: str,
    interval: str = "1s",
) -> dict[str, Any]:
    """The deployed configuration pointed at local processes.

    `services` maps a deployed target host (`ingest`) to a local `host:port`; `own_address` is
    where this Prometheus listens (for its own `localhost:9090` job). A target that is neither
    raises: the deployed file changed and this test must learn about it.
    """
    config = copy.deepcopy(dict(deployed))
    config["global"] = {
        **config.get("global", {}),
        "scrape_interval": interval,
        "scrape_timeout": interval,
        "evaluation_interval": interval,
    }
    rule_files = []
    for pattern in config.get("rule_files", []):
        if not pattern.startswith(MOUNTED_RULES):
            raise ValueError(f"rule file outside {MOUNTED_RULES}: {pattern}")
        rule_files.append(str(DEPLOY / "rules" / pattern.removeprefix(MOUNTED_RULES)))
    config["rule_files"] = rule_files
    for job in config["scrape_configs"]:
        job.pop("scrape_interval", None)
        job.pop("scrape_timeout", None)
        for static in job.get("static_configs", []):
            static["targets"] = [_local_target(t, services, own_address) for t in static["targets"]]
    return config


def _local_target(target: str, services: Mapping[str, str], own_address: str) -> str:
    host, _, port = target.rpartition(":")
    if host in services:
        return services[host]
    if host in ("localhost", "127.0.0.1") and port == "9090":
        return own_address
    raise ValueError(f"deployed scrape target {target!r} has no local counterpart")


class PrometheusError(AssertionError):
    """Prometheus refused a query (a broken panel query is a test failure)."""


@dataclass
class Prometheus:
    url: str
    process: ManagedProcess

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query at the current time: the result vector (or matrix) as served."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(f"{expr}\n-> {response.status_code} {body}")
        data = body["data"]
        if data["resultType"] not in ("vector", "matrix"):
            raise PrometheusError(f"{expr}\n-> a {data['resultType']}, not series")
        result: list[dict[str, Any]] = data["result"]
        return result

    def values(self, expr: str, by: str) -> dict[str, float]:
        """{label value: sample value} of an instant query aggregated by one label."""
        return {s["metric"].get(by, ""): float(s["value"][1]) for s in self.query(expr)}

    def label_values(self, label: str, metric: str) -> list[str]:
        """Grafana's `label_values(metric, label)`, as its Prometheus data source asks it."""
        response = httpx.get(
            f"{self.url}/api/v1/label/{label}/values", params={"match[]": metric}, timeout=10
        )
        response.raise_for_status()
        values: list[str] = response.json()["data"]
        return values

    def targets(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/targets", timeout=10)
        response.raise_for_status()
        targets: list[dict[str, Any]] = response.json()["data"]["activeTargets"]
        return targets

    def rule_groups(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/rules", timeout=10)
        response.raise_for_status()
        groups: list[dict[str, Any]] = response.json()["data"]["groups"]
        return groups

    def firing(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/alerts", timeout=10)
        response.raise_for_status()
        alerts: list[dict[str, Any]] = response.json()["data"]["alerts"]
        return [a for a in alerts if a["state"] == "firing"]

    def wait_targets_up(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Until `count` targets were scraped and every one of them is up."""
        deadline = time.monotonic() + timeout
        while True:
            targets = self.targets()
            if len(targets) == count and all(t["health"] == "up" for t in targets):
                return targets
            if time.monotonic() > deadline:
                states = [(t["scrapeUrl"], t["health"], t.get("lastError")) for t in targets]
                raise AssertionError(f"targets not up after {timeout}s: {states}")
            time.sleep(0.2)


@contextmanager
def running_prometheus(
    services: Mapping[str, str], workdir: Path, timeout: float = 30.0
) -> Iterator[Prometheus]:
    """Prometheus on the deployed configuration for the local `services`, ready on return."""
    if not Path(BINARY).exists() and shutil.which("prometheus") is None:
        raise AssertionError(
            "prometheus is missing: `./smm test` installs it (Debian package 'prometheus')"
        )
    binary = BINARY if Path(BINARY).exists() else str(shutil.which("prometheus"))
    port = free_port()
    address = f"127.0.0.1:{port}"
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(local_config(deployed_config(), services, address)))
    argv = [
        binary,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address={address}",
        "--log.level=warn",
    ]
    process = ManagedProcess("prometheus", argv, "127.0.0.1", port, workdir / "prometheus.log")
    process.start()
    try:
        process.wait_port(timeout)
        prometheus = Prometheus(f"http://{address}", process)
        _wait_ready(prometheus, timeout)
        yield prometheus
    finally:
        process.stop()


def _wait_ready(prometheus: Prometheus, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{prometheus.url}/-/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if not prometheus.process.alive() or time.monotonic() > deadline:
            raise AssertionError(f"prometheus not ready:\n{prometheus.process.log_tail()}")
        time.sleep(0.2)


def has_number(series: list[dict[str, Any]]) -> bool:
    """Whether any sample of an instant query is a number (Grafana shows NaN as no value)."""
    return any(not math.isnan(float(s["value"][1])) for s in series if "value" in s)
