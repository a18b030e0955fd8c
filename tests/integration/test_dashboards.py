"""Every Grafana panel's query parses and names only metrics the running services export.

The four services run as processes (the fixture of `test_service_processes`); their /metrics
pages are scraped and every metric a dashboard panel, a template variable or an alerting rule
names must be among what they expose (Prometheus adds only `up`). Queries are parsed by
promtool, as recording rules in a temporary rules file.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.test_service_processes import service_urls  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
#: Grafana's variables, replaced by something PromQL accepts before parsing.
VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$tracker": ".*",
    "$group": ".*",
    "$service": ".*",
}
#: Series Prometheus itself produces for every target.
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
    "and", "or", "unless", "inf", "nan",
}  # fmt: skip


def panel_queries(dashboard: dict[str, Any]) -> list[str]:
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            queries.append(target["expr"])
    for variable in dashboard.get("templating", {}).get("list", []):
        match = re.fullmatch(r"label_values\((.+),\s*\w+\)", variable["definition"])
        assert match, variable["definition"]
        queries.append(match.group(1))
    return queries


def substituted(query: str) -> str:
    for name, value in VARIABLES.items():
        query = query.replace(name, value)
    assert "$" not in query, query
    return query


def metric_names(query: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords,
    label names (inside {} or after by/without/on/ignoring) or durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', query)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\boffset\s+\w+", "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end() :].lstrip()[:1]
        if following == "(" or match.group(0).lower() in PROMQL_WORDS:
            continue
        names.add(match.group(0))
    return names


def exported_families(text: str) -> set[str]:
    """Every sample name a /metrics page exposes (with _bucket/_sum/_count/_total forms)."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            names.add(name)
            if kind == "counter":
                names |= {name + "_total", name + "_created"}
            if kind == "histogram":
                names |= {name + s for s in ("_bucket", "_sum", "_count", "_created")}
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def rule_queries() -> list[str]:
    queries = []
    for path in sorted((DEPLOY / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            queries += [rule["expr"] for rule in group["rules"]]
    return queries


def test_metric_name_extraction() -> None:
    query = (
        'histogram_quantile(0.99, sum by (service, le) (rate(a_seconds_bucket{x="y"}[5m])))'
        " > 5 and on(tracker) max by (tracker) (b_total offset 1h) unless c"
    )
    assert metric_names(query) == {"a_seconds_bucket", "b_total", "c"}


def test_dashboards_are_provisionable() -> None:
    assert {p.name for p in DASHBOARDS} >= {
        "brand-overview.json",
        "publishing.json",
        "pipeline.json",
    }
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                assert target["datasource"]["uid"] == "prometheus", (path.name, panel["title"])


def test_every_panel_query_parses(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: `./smm test` installs it (Debian package 'prometheus')")
    rules = []
    for path in DASHBOARDS:
        for index, query in enumerate(panel_queries(json.loads(path.read_text()))):
            rules.append({"record": f"dashboard:{path.stem.replace('-', '_')}:{index}",
                          "expr": substituted(query)})  # fmt: skip
    rules_file = tmp_path / "dashboards.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout


def test_panels_and_rules_name_only_exported_metrics(
    service_urls: dict[str, str],  # noqa: F811 (the imported fixture)
) -> None:
    exported = set(PROMETHEUS_OWN)
    for url in service_urls.values():
        exported |= exported_families(httpx.get(url + "/metrics", timeout=10).text)
    wanted: dict[str, set[str]] = {}
    for path in DASHBOARDS:
        for query in panel_queries(json.loads(path.read_text())):
            for name in metric_names(substituted(query)):
                wanted.setdefault(name, set()).add(path.name)
    for query in rule_queries():
        for name in metric_names(query):
            wanted.setdefault(name, set()).add("alerting rules")
    missing = {name: sorted(where) for name, where in wanted.items() if name not in exported}
    assert not missing, f"named but not exported by any service: {missing}"
    assert "smm_kpi_mention_volume" in wanted
