"""The console and Grafana tell the same story: a real Prometheus scrapes the running services.

The four services and the console run as processes on the real servers; Prometheus (Debian's
package) runs on deploy/prometheus/prometheus.yml with its rule files, only pointed at the
local ports (tests/system/prometheus.py), so it scrapes all five as deployed. Traffic is the
marketing afternoon of `scenario.py` plus what some panels need to have anything to show: a
burst of negative mentions (a negative-spike alert), a malformed engagement message (a dead
letter) and a schedule command the publisher refuses (a failed post). Then:

- every query of every panel of deploy/grafana/dashboards/ is evaluated through Prometheus'
  HTTP API with Grafana's variables filled in as a dashboard with "All" selected fills them,
  and each must return series with a value (the few that cannot have data in a healthy run
  are listed in `NO_SERIES_BY_DESIGN`, each with its reason); each template variable lists
  our services, trackers and groups;
- the mention counts agree: per tracker, the "Mentions" stat panel (the KPI gauge) and the
  mention counter behind the "Mention volume" panel equal what the console's overview shows
  (`overview_mention_volume`: the card of the overview page a signed-in admin reads), and all
  equal the count of what moderation did not hide; the
  counters behind "Mentions by platform" and "Spam hidden" agree with moderation too;
- every alerting rule evaluates without error, and the negative-spike and dead-letter alerts
  fire with the labels the scrape configuration gives.

tests/integration/test_dashboards.py checks that the queries parse and name exported metrics;
this test checks what they return on a running system.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.console.cli import create_user
from shared.events import EngagementObservation, ScheduleCommand
from shared.settings import Settings
from shared.topics import ENGAGEMENT, POSTS_COMMANDS, topic_name
from tests.conftest import LocalServers, isolated_settings
from tests.integration.helpers import produce
from tests.processes import TOKEN, service_processes
from tests.system.prometheus import (
    MOUNTED_RULES,
    Prometheus,
    deployed_config,
    has_number,
    local_config,
    running_prometheus,
)
from tests.system.scenario import CHANNEL, TRACKERS, Scenario, mention_item
from tests.system.test_whole_system import _client, _env, _urls, fake_networks

pytestmark = pytest.mark.integration

#: The four backends and the console: the deployed configuration scrapes all five.
SERVICES = ["ingest", "moderation", "publisher", "metrics", "console"]
DASHBOARDS = sorted(
    (Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards").glob("*.json")
)
#: Grafana's own variables for a dashboard showing the last hour at 1 s scrapes: a rate over
#: one minute spans the whole burst of traffic this test sends.
GRAFANA_VARIABLES = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}
#: Panels (dashboard, panel title, refId) whose query has no series in a healthy run, and why.
#: Their queries must still evaluate without error.
NO_SERIES_BY_DESIGN = {
    ("pipeline.json", "Retries", "A"): (
        "smm_consumer_retries_total gets a series only when a consumer's try failed and is "
        "repeated (database or broker away); an undisturbed run has none (the chaos test of "
        "test_whole_system.py makes them)"
    ),
}
#: A tracker of its own with a burst of negative mentions in one hour: at least 10 make a
#: negative spike (services/metrics/alerts.py), so the alerts panel and SmmNegativeSpike have
#: something. Each text classifies as negative, none as spam.
SPIKE_TRACKER = {"id": "kettenwerk", "name": "Kettenwerk", "query": "kettenwerk", "group": "rad"}
SPIKE_TEXTS = [
    ("en", "Terrible service from Kettenwerk, my order arrived broken and nobody answers"),
    ("en", "Kettenwerk ruined my weekend, the chain snapped after one ride"),
    ("en", "Awful experience with Kettenwerk support, still waiting for a refund"),
    ("en", "Kettenwerk sent the wrong part again, very disappointed"),
    ("en", "My Kettenwerk brakes failed on day two, this is terrible quality"),
    ("de", "Kettenwerk Lieferung schon wieder zu spät. Echt enttäuschend."),
    ("de", "Der Kettenwerk Support antwortet nicht, total enttäuscht"),
    ("de", "Kettenwerk Rad nach einer Woche kaputt, schlechte Qualität"),
    ("en", "Worst purchase ever, Kettenwerk gears broke and the shop ignores me"),
    ("en", "Kettenwerk is a disappointment, the bike is broken and support is useless"),
    ("de", "Kettenwerk hat meine Bestellung verloren, sehr ärgerlich"),
    ("en", "Kettenwerk delivery was late and the box was damaged, terrible"),
]
ALL_TRACKERS = [t["id"] for t in TRACKERS] + [SPIKE_TRACKER["id"]]
#: The counter the "Mention volume" panel takes the increase of, read whole: increase() over
#: a counter born with a value extrapolates from its first scrape, so only the counter itself
#: is an exact count to compare.
MENTION_COUNTER = 'sum by (tracker) (smm_mentions_total{tracker=~"$tracker"})'


def _env_for_prometheus() -> dict[str, str]:
    """The afternoon's settings, with KPI gauges and spike checks refreshed every second."""
    return {
        **_env(),
        "SMM_METRICS_KPI_INTERVAL_SECONDS": "1",
        "SMM_METRICS_ALERT_INTERVAL_SECONDS": "1",
    }


# --- the console's figures -------------------------------------------------------------------


CONSOLE_USER = "grafana-check@example.com"
CONSOLE_PASSWORD = "the console and grafana agree"
_LOGIN_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_VOLUME_CARD = re.compile(r'data-kpi="mention_volume" data-value="([^"]*)"')


async def console_session(settings: Settings, console_url: str) -> httpx.AsyncClient:
    """A console admin signed in through the sign-in form, as a person would be."""
    await create_user(settings, CONSOLE_USER, CONSOLE_PASSWORD, "admin")
    client = httpx.AsyncClient(base_url=console_url, timeout=30)
    form = await client.get("/login")
    token = _LOGIN_TOKEN.search(form.text)
    assert token, form.text[:300]
    signed = await client.post(
        "/login",
        data={"email": CONSOLE_USER, "password": CONSOLE_PASSWORD, "csrf_token": token[1]},
    )
    assert signed.status_code == 303, signed.text[:300]
    return client


async def overview_mention_volume(
    tracker_id: str, scenario: Scenario, console: httpx.AsyncClient
) -> int | None:
    """The mention count the console's overview card shows for a tracker, over the days that
    hold the scenario's window (its mentions are all inside it; nothing else is stored)."""
    first, last = scenario.window_from.date(), scenario.window_to.date()
    answer = await console.get(
        "/overview",
        params={"brand": tracker_id, "period": "custom", "from": str(first), "to": str(last)},
        headers={"HX-Request": "true"},
    )
    if answer.status_code != 200:
        return None
    found = _VOLUME_CARD.search(answer.text)
    return int(found[1]) if found and found[1] else None


# --- the dashboards --------------------------------------------------------------------------


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside collapsed rows."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def panel_queries() -> list[tuple[tuple[str, str, str], str]]:
    """((dashboard file, panel title, refId), expr) of every panel target."""
    found = []
    for path in DASHBOARDS:
        for panel in panels(json.loads(path.read_text())):
            for target in panel.get("targets", []):
                found.append(((path.name, panel["title"], target["refId"]), target["expr"]))
    return found


def template_variables() -> list[tuple[str, str, str, str]]:
    """(dashboard file, variable, metric, label) of every `label_values` template variable."""
    found = []
    for path in DASHBOARDS:
        for variable in json.loads(path.read_text()).get("templating", {}).get("list", []):
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["definition"])
            assert match, (path.name, variable["definition"])
            found.append((path.name, variable["name"], match.group(1), match.group(2)))
    return found


def substituted(expr: str, chosen: dict[str, str] | None = None) -> str:
    """`expr` as Grafana sends it: its variables replaced, a template variable by the regex
    of the chosen value or, as with "All" selected, by the variable's allValue `.*`."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in GRAFANA_VARIABLES:
            return GRAFANA_VARIABLES[name]
        if chosen and name in chosen:
            return re.escape(chosen[name])
        return ".*"

    result = re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)
    assert "$" not in result, result
    return result


def dashboard_expr(dashboard: str, title: str, ref_id: str = "A") -> str:
    return dict(panel_queries())[(dashboard, title, ref_id)]


# --- traffic ---------------------------------------------------------------------------------


async def send_traffic(scenario: Scenario, client: httpx.AsyncClient) -> None:
    """The afternoon (mentions, a reply, posts, engagement) and what some panels need more."""
    await scenario.configure(client)
    created = await client.post(f"{scenario.urls.ingest}/v1/trackers", json=SPIKE_TRACKER)
    assert created.status_code == 201, created.text
    await refuse_a_post(scenario.settings)
    accepted = await scenario.send_mentions(client)
    accepted += await send_negative_burst(scenario, client)
    await scenario.await_classified(client, accepted)
    await scenario.answer_one_complaint(client)
    await scenario.schedule_posts(client)
    await scenario.await_published(client)
    await send_engagement(scenario)


async def send_negative_burst(scenario: Scenario, client: httpx.AsyncClient) -> list[str]:
    at = datetime.now(UTC) - timedelta(seconds=1)  # one instant: all in the same hour
    items = [
        mention_item(f"k{i:02d}", f"rider{i}", 50 + i, lang, text, at)
        for i, (lang, text) in enumerate(SPIKE_TEXTS)
    ]
    response = await client.post(f"{scenario.urls.ingest}/v1/mentions", json=items)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == len(items), body
    ids: list[str] = body["mention_ids"]
    return ids


async def refuse_a_post(settings: Settings) -> None:
    """A schedule command for a channel that does not exist: the publisher keeps it as a
    failed post and announces it, as it does with every post that fails."""
    command = ScheduleCommand(
        post_id="grafana-refused", channel_id="no-such-channel", text="Nie gesendet"
    )
    await produce(
        settings.kafka_bootstrap_servers,
        topic_name(POSTS_COMMANDS, settings),
        [(command.post_id.encode(), command.to_bytes())],
    )


async def send_engagement(scenario: Scenario) -> None:
    """Observations of our three posts taken in the last seconds (the KPI gauges cover the
    window up to now, so none may lie ahead), and one malformed message (a dead letter)."""
    now = datetime.now(UTC)
    posts = [*scenario.scheduled_post_ids, scenario.observed.reply_post_id]
    messages = []
    for index, post_id in enumerate(posts):
        assert post_id is not None
        observation = EngagementObservation(
            post_id=post_id,
            channel_id=CHANNEL,
            observed_at=now - timedelta(seconds=3 - index),
            likes=4 + index,
            comments=1,
            shares=index,
            saves=0,
            impressions=300 * (index + 1),
            reach=200 * (index + 1),
            followers=1_000 + 6 * index,
        )
        messages.append((post_id.encode(), observation.to_bytes()))
    messages.append((b"e2e-post-1", b'{"post_id": "e2e-post-1", "likes": "many"}'))
    await produce(
        scenario.settings.kafka_bootstrap_servers,
        topic_name(ENGAGEMENT, scenario.settings),
        messages,
    )


# --- the checks ------------------------------------------------------------------------------


def counted_by_moderation(scenario: Scenario, tracker_id: str) -> int:
    """Mentions of the tracker that moderation did not hide (the KPIs leave hidden spam out)."""
    return sum(
        1
        for mention in scenario.observed.mentions.values()
        if tracker_id in mention["tracker_ids"] and mention["action"] != "hide"
    )


async def assert_mentions_agree(
    scenario: Scenario, console: httpx.AsyncClient, prometheus: Prometheus
) -> None:
    expected = {t: counted_by_moderation(scenario, t) for t in ALL_TRACKERS}
    hidden = [m for m in scenario.observed.mentions.values() if m["action"] == "hide"]
    assert hidden, "no mention was hidden as spam: the spam rule is not exercised"
    assert expected["roestwerk"] >= 7, expected
    assert expected[SPIKE_TRACKER["id"]] == len(SPIKE_TEXTS), expected
    # The "Mentions by platform" and "Spam hidden" panels' counters, over all trackers (each
    # mention here names one brand, so the platform total is the sum of the trackers').
    expected_totals = {"by platform": sum(expected.values()), "hidden": len(hidden)}
    stat_panel = dashboard_expr("brand-overview.json", "Mentions")
    assert "smm_mentions_total" in dashboard_expr("brand-overview.json", "Mention volume")
    deadline = time.monotonic() + 45
    while True:
        seen: dict[str, dict[str, float | int | None]] = {}
        for tracker in ALL_TRACKERS:
            chosen = {"tracker": tracker}
            seen[tracker] = {
                "overview": await overview_mention_volume(tracker, scenario, console),
                "stat panel": prometheus.values(substituted(stat_panel, chosen), "tracker").get(
                    tracker
                ),
                "counter": prometheus.values(substituted(MENTION_COUNTER, chosen), "tracker").get(
                    tracker
                ),
            }
        totals = {
            "by platform": prometheus.values("sum(smm_mentions_by_platform_total)", "").get(""),
            "hidden": prometheus.values("sum(smm_mentions_hidden_total)", "").get(""),
        }
        agree = all(v == expected[t] for t, by in seen.items() for v in by.values())
        if agree and totals == expected_totals:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"mention counts disagree; expected {expected} {expected_totals}, "
                f"saw {seen} {totals}"
            )
        await asyncio.sleep(0.5)


def assert_every_panel_has_data(prometheus: Prometheus, timeout: float = 30.0) -> None:
    """Every panel's query returns series with a value (Grafana's "All" selection)."""
    queries = panel_queries()
    assert set(NO_SERIES_BY_DESIGN) <= {key for key, _ in queries}, "stale exemptions"
    deadline = time.monotonic() + timeout
    while True:
        empty = {}
        for key, expr in queries:
            series = prometheus.query(substituted(expr))  # raises if Prometheus refuses it
            if key not in NO_SERIES_BY_DESIGN and not has_number(series):
                empty[key] = substituted(expr)
        if not empty:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"panels without data after {timeout}s: {empty}")
        time.sleep(0.5)
    for _, variable, metric, label in template_variables():
        values = set(prometheus.label_values(label, metric))
        wanted = {
            "service": set(SERVICES),
            "tracker": set(ALL_TRACKERS),
            "group": {t["group"] for t in [*TRACKERS, SPIKE_TRACKER]},
        }[variable]
        assert wanted <= values, (variable, metric, sorted(values))


def assert_rules_evaluate(
    prometheus: Prometheus, settings: Settings, timeout: float = 30.0
) -> None:
    """Every deployed alerting rule evaluates cleanly; the spike and dead-letter alerts fire
    with the labels the scrape configuration and the services give them."""
    groups = prometheus.rule_groups()
    assert {g["name"] for g in groups} >= {"smm-kpis", "smm-consumers", "smm-pipeline"}, groups
    deadline = time.monotonic() + timeout
    while True:
        rules = [r for g in prometheus.rule_groups() for r in g["rules"]]
        unhealthy = [(r["name"], r["health"], r.get("lastError")) for r in rules]
        unhealthy = [u for u in unhealthy if u[1] != "ok"]
        firing = {
            (a["labels"]["alertname"], a["labels"].get("tracker", "")): a
            for a in prometheus.firing()
        }
        wanted = {("SmmNegativeSpike", SPIKE_TRACKER["id"]), ("SmmDeadLetters", "")}
        if not unhealthy and wanted <= set(firing):
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"rules unhealthy {unhealthy}; firing {sorted(firing)}")
        time.sleep(0.5)
    dead = firing[("SmmDeadLetters", "")]["labels"]
    assert dead["service"] == "metrics", dead
    assert dead["topic"] == topic_name(ENGAGEMENT, settings), dead
    assert dead["reason"] == "invalid_event", dead


def test_local_config_moves_only_addresses() -> None:
    """Jobs, labels and rules stay as deployed; each target is its service's local port."""
    deployed = deployed_config()
    local = {name: f"127.0.0.1:{9500 + i}" for i, name in enumerate(SERVICES)}
    config = local_config(deployed, local, "127.0.0.1:9499")
    assert config["global"]["scrape_interval"] == config["global"]["evaluation_interval"] == "1s"
    assert [p.removeprefix(MOUNTED_RULES) for p in deployed["rule_files"]] == [
        Path(p).name for p in config["rule_files"]
    ]
    assert all(Path(p).parent.is_dir() for p in config["rule_files"])
    for before, after in zip(deployed["scrape_configs"], config["scrape_configs"], strict=True):
        assert {k: v for k, v in after.items() if k != "static_configs"} == {
            k: v
            for k, v in before.items()
            if k not in ("static_configs", "scrape_interval", "scrape_timeout")
        }
        for old, new in zip(before["static_configs"], after["static_configs"], strict=True):
            assert new.get("labels") == old.get("labels")
            for target, moved in zip(old["targets"], new["targets"], strict=True):
                host = target.rpartition(":")[0]
                assert moved == local.get(host, "127.0.0.1:9499"), (target, moved)
    with pytest.raises(ValueError, match="no local counterpart"):
        local_config(deployed, {"ingest": "127.0.0.1:1"}, "127.0.0.1:2")


async def test_every_panel_has_data_and_mentions_agree_with_the_overview(
    servers: LocalServers, tmp_path: Path
) -> None:
    settings = isolated_settings(servers)
    with (
        fake_networks(tmp_path) as fake,
        service_processes(settings, tmp_path, SERVICES, _env_for_prometheus()) as group,
        running_prometheus(
            {name: group.url(name).removeprefix("http://") for name in SERVICES}, tmp_path
        ) as prometheus,
    ):
        targets = prometheus.wait_targets_up(len(SERVICES) + 1)
        assert {t["labels"].get("service") for t in targets if t["labels"]["job"] == "smm"} == set(
            SERVICES
        )
        scenario = Scenario(_urls(group), settings, TOKEN, fake)
        async with _client() as client:
            await send_traffic(scenario, client)
            console = await console_session(settings, group.url("console"))
            try:
                await assert_mentions_agree(scenario, console, prometheus)
            finally:
                await console.aclose()
        assert_every_panel_has_data(prometheus)
        assert_rules_evaluate(prometheus, settings)
