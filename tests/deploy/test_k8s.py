"""Kubernetes: the dev and prod overlays render (kubectl's kustomize), every built-in resource
validates against the Kubernetes 1.30 and 1.37 schemas (kubernetes-validate, strict: unknown
fields are errors), custom resources against tests/deploy/crd_schemas.py, and the pieces fit
together."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from services.ingest.handlers import GROUP_ID as INGEST_GROUP
from services.metrics.handlers import GROUP_ID as METRICS_GROUP
from services.moderation.handlers import GROUP_ID as MODERATION_GROUP
from services.publisher.handlers import GROUP_ID as PUBLISHER_GROUP
from shared.settings import BACKEND_NAMES, SERVICE_NAMES, Settings
from tests.deploy.crd_schemas import CUSTOM_RESOURCES
from tests.deploy.support import OVERLAYS, by_name, of_kind, rendered

KUBERNETES_VERSION = "1.37.0"
#: The oldest Kubernetes docs/deploy.md promises, and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.30.0", KUBERNETES_VERSION)
GROUPS: dict[str, str | None] = {
    "ingest": INGEST_GROUP,
    "moderation": MODERATION_GROUP,
    "publisher": PUBLISHER_GROUP,
    "metrics": METRICS_GROUP,
    # The console reads without a consumer group (services/console/handlers.py).
    "console": None,
}

#: Secrets made outside the repository: by deploy/k8s/create-secrets.sh (or a secret manager)
#: and by Strimzi (each KafkaUser's and the cluster CA's).
EXTERNAL_SECRETS = {
    "smm-secrets",
    "smm-mongodb",
    "smm-cluster-ca-cert",
    "smm-keda",
    *(f"smm-{name}" for name in SERVICE_NAMES),
}


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]  # type: ignore[no-any-return]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_built_in_resources_match_the_kubernetes_schemas(overlay: str, version: str) -> None:
    checked = 0
    for doc in rendered(overlay):
        if doc["kind"] in CUSTOM_RESOURCES:
            continue
        kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
    assert checked >= 24


def test_the_kubernetes_validation_can_fail() -> None:
    deployment = dict(by_name(rendered("prod"), "Deployment")["smm-ingest"])
    deployment["spec"] = {**deployment["spec"], "replica": 3}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_are_well_formed(overlay: str) -> None:
    kinds = set()
    for doc in rendered(overlay):
        schema = CUSTOM_RESOURCES.get(doc["kind"])
        if schema is not None:
            jsonschema.validate(doc, schema)
            kinds.add(doc["kind"])
    assert {
        "Kafka",
        "KafkaNodePool",
        "KafkaTopic",
        "ScaledObject",
        "ServiceMonitor",
        "PodMonitor",
    } <= kinds


def test_a_misspelt_custom_resource_field_is_caught() -> None:
    topic = of_kind(rendered("prod"), "KafkaTopic")[0]
    broken = {**topic, "spec": {**topic["spec"], "partition": 3}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, CUSTOM_RESOURCES["KafkaTopic"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_are_probed_sized_and_locked_down(overlay: str) -> None:
    deployments = by_name(rendered(overlay), "Deployment")
    assert set(deployments) == {f"smm-{name}" for name in SERVICE_NAMES}
    for name in SERVICE_NAMES:
        deployment = deployments[f"smm-{name}"]
        container = _container(deployment)
        port = Settings.model_fields[f"{name}_port"].default
        assert container["command"] == [f"smm-{name}"]
        assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env[f"SMM_{name.upper()}_PORT"] == str(port)
        resources = container["resources"]
        assert resources["requests"]["cpu"]
        assert resources["requests"]["memory"]
        assert resources["limits"]["memory"]
        assert "replicas" not in deployment["spec"], "the autoscaler owns replicas"
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_has_a_disruption_budget(overlay: str) -> None:
    docs = rendered(overlay)
    budgets = of_kind(docs, "PodDisruptionBudget")
    for workload in of_kind(docs, "Deployment") + of_kind(docs, "StatefulSet"):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        matching = [
            b
            for b in budgets
            if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
            and b["metadata"]["namespace"] == workload["metadata"]["namespace"]
        ]
        assert len(matching) == 1, workload["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaling_never_exceeds_the_partitions(overlay: str) -> None:
    docs = rendered(overlay)
    partitions = {
        t["spec"]["topicName"]: t["spec"]["partitions"] for t in of_kind(docs, "KafkaTopic")
    }
    scaled = by_name(docs, "ScaledObject")
    assert set(scaled) == {"smm-moderation", "smm-metrics", "smm-publisher"}
    for name, scaled_object in scaled.items():
        service = name.removeprefix("smm-")
        spec = scaled_object["spec"]
        assert spec["scaleTargetRef"]["name"] == name
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["consumerGroup"] == GROUPS[service]
        topic = trigger["metadata"].get("topic", "smm.mentions.classified.v1")
        assert spec["maxReplicaCount"] <= partitions[topic], f"{name}: idle consumers"
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        bootstrap = trigger["metadata"]["bootstrapServers"]
        assert bootstrap == _config(docs)["SMM_KAFKA_BOOTSTRAP_SERVERS"]
    # The HTTP-bound ones scale by CPU; every Deployment has one autoscaler.
    hpas = {h["spec"]["scaleTargetRef"]["name"] for h in of_kind(docs, "HorizontalPodAutoscaler")}
    assert hpas == {"smm-ingest", "smm-console"}
    assert hpas | set(scaled) == set(by_name(docs, "Deployment"))


def _config(docs: tuple[dict[str, Any], ...]) -> dict[str, str]:
    (config,) = [
        c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"].startswith("smm-config")
    ]
    data: dict[str, str] = config["data"]
    return data


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_config_is_valid_settings_and_references_resolve(overlay: str) -> None:
    docs = rendered(overlay)
    config = _config(docs)
    unknown = [k for k in config if k.removeprefix("SMM_").lower() not in Settings.model_fields]
    assert not unknown, unknown
    Settings.model_validate({k.removeprefix("SMM_").lower(): v for k, v in config.items()})
    assert config["SMM_CREATE_TOPICS"] == "false", "Strimzi's Topic Operator owns the topics"
    config_maps = {c["metadata"]["name"] for c in of_kind(docs, "ConfigMap")}
    secrets = {s["metadata"]["name"] for s in of_kind(docs, "Secret")} | EXTERNAL_SECRETS
    for workload in (
        of_kind(docs, "Deployment") + of_kind(docs, "StatefulSet") + of_kind(docs, "Job")
    ):
        pod = workload["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_maps
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] in secrets
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps
            if "secret" in volume:
                assert volume["secret"]["secretName"] in secrets


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_values_are_committed(overlay: str) -> None:
    for secret in of_kind(rendered(overlay), "Secret"):
        assert secret["metadata"]["name"] == "smm-kafka-username"
        assert set(secret.get("data", {})) == {"username"}


def test_production_kafka_is_replicated_and_authenticated() -> None:
    docs = rendered("prod")
    (kafka,) = of_kind(docs, "Kafka")
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == 3
    assert config["min.insync.replicas"] == 2
    assert config["unclean.leader.election.enable"] is False
    listeners = kafka["spec"]["kafka"]["listeners"]
    assert all(lis["tls"] and lis["authentication"]["type"] == "scram-sha-512" for lis in listeners)
    pools = {p["metadata"]["name"]: p["spec"] for p in of_kind(docs, "KafkaNodePool")}
    assert pools["controllers"]["roles"] == ["controller"]
    assert pools["controllers"]["replicas"] == 3
    assert pools["brokers"]["roles"] == ["broker"]
    assert pools["brokers"]["replicas"] == 3
    app = _config(docs)
    assert app["SMM_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert app["SMM_KAFKA_BOOTSTRAP_SERVERS"].endswith(":9093")
    for deployment in of_kind(docs, "Deployment"):
        env = {e["name"]: e for e in _container(deployment)["env"]}
        user = deployment["metadata"]["name"]  # its own user: tests/deploy/test_kafka_users.py
        assert env["SMM_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == user
    for scaled_object in of_kind(docs, "ScaledObject"):
        assert scaled_object["spec"]["triggers"][0]["authenticationRef"]["name"] == "smm-kafka"


@pytest.mark.parametrize(("overlay", "members"), [("dev", 1), ("prod", 3)])
def test_mongodb_is_a_replica_set_with_its_init(overlay: str, members: int) -> None:
    docs = rendered(overlay)
    mongodb = by_name(docs, "StatefulSet")["smm-mongodb"]
    assert mongodb["spec"]["replicas"] == members
    services = by_name(docs, "Service")
    assert services[mongodb["spec"]["serviceName"]]["spec"]["clusterIP"] == "None"
    assert "--replSet=rs0" in _container(mongodb)["args"]
    job = by_name(docs, "Job")["smm-mongodb-init"]
    env = {e["name"]: e.get("value") for e in _container(job)["env"]}
    hosts = env["MONGO_MEMBERS"].split(",")
    assert hosts == [f"smm-mongodb-{i}.smm-mongodb:27017" for i in range(members)]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_pod_is_covered_by_network_policies(overlay: str) -> None:
    docs = rendered(overlay)
    policies = of_kind(docs, "NetworkPolicy")

    def selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
        selector = policy["spec"]["podSelector"]
        if not selector.get("matchLabels", {}).items() <= labels.items():
            return False
        return all(
            labels.get(e["key"]) in e["values"]
            for e in selector.get("matchExpressions", [])
            if e["operator"] == "In"
        )

    for workload in of_kind(docs, "Deployment") + of_kind(docs, "StatefulSet"):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        types = {t for p in policies if selects(p, labels) for t in p["spec"]["policyTypes"]}
        assert "Ingress" in types, workload["metadata"]["name"]


def test_service_monitor_scrapes_every_service() -> None:
    docs = rendered("prod")
    (monitor,) = of_kind(docs, "ServiceMonitor")
    (expression,) = monitor["spec"]["selector"]["matchExpressions"]
    assert set(expression["values"]) == set(SERVICE_NAMES)
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http"
    assert endpoint["path"] == "/metrics"
    for service in of_kind(docs, "Service"):
        component = service["metadata"]["labels"].get("app.kubernetes.io/component")
        if component in SERVICE_NAMES:
            assert [p["name"] for p in service["spec"]["ports"]] == ["http"]


def _console(docs: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    return _container(by_name(docs, "Deployment")["smm-console"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_console_reaches_each_service_at_its_service(overlay: str) -> None:
    docs = rendered(overlay)
    env = {e["name"]: e for e in _console(docs)["env"]}
    urls = json.loads(env["SMM_CONSOLE_SERVICE_URLS"]["value"])
    Settings(console_service_urls=urls)  # a valid setting
    assert set(urls) == set(BACKEND_NAMES)
    services = by_name(docs, "Service")
    for name, url in urls.items():
        parts = urlsplit(url)
        port = Settings.model_fields[f"{name}_port"].default
        assert (parts.scheme, parts.hostname, parts.port) == ("http", f"smm-{name}", port)
        assert [p["port"] for p in services[f"smm-{name}"]["spec"]["ports"]] == [port]
    assert env["SMM_CONSOLE_SECURE_COOKIES"]["value"] == "true", "served over TLS only"
    # Behind the ingress controller: its X-Forwarded-For names the browser (sign-in throttling).
    proxies = Settings(trusted_proxies=json.loads(env["SMM_TRUSTED_PROXIES"]["value"]))
    assert proxies.trusted_proxies, "else every browser is the controller's address"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_console_gets_its_secrets_and_not_the_admin_token(overlay: str) -> None:
    docs = rendered(overlay)
    console = _console(docs)
    # Not envFrom smm-secrets: that would hand it SMM_ADMIN_TOKEN and every API token.
    assert not [s for s in console["envFrom"] if "secretRef" in s]
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in console["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    for key in ("SMM_CONSOLE_SERVICE_TOKEN", "SMM_ACTOR_SIGNING_KEY", "SMM_MONGODB_URI"):
        assert refs[key] == {"name": "smm-secrets", "key": key}
    assert "SMM_ADMIN_TOKEN" not in refs
    # The four services verify its assertions with the same key: they read all of smm-secrets.
    for name in BACKEND_NAMES:
        backend = _container(by_name(docs, "Deployment")[f"smm-{name}"])
        assert {"secretRef": {"name": "smm-secrets"}} in backend["envFrom"], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_console_is_served_over_tls_without_proxy_buffering(overlay: str) -> None:
    docs = rendered(overlay)
    (ingress,) = of_kind(docs, "Ingress")
    annotations = ingress["metadata"]["annotations"]
    # Server-sent events reach the browser as they are sent, not when a buffer fills.
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 600
    assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    spec = ingress["spec"]
    hosts = {rule["host"] for rule in spec["rules"]}
    assert hosts <= {host for tls in spec["tls"] for host in tls["hosts"]}, "every host on TLS"
    backends = {
        (path["backend"]["service"]["name"], path["backend"]["service"]["port"]["name"])
        for rule in spec["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {("smm-console", "http")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_console_may_reach_only_what_it_uses(overlay: str) -> None:
    docs = rendered(overlay)
    policy = by_name(docs, "NetworkPolicy")["smm-console"]
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    (inbound,) = policy["spec"]["ingress"]
    sources = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for peer in inbound["from"]
    }
    assert sources == {"ingress-nginx", "monitoring"}, "browsers only through the ingress"
    reached: dict[str, set[int]] = {}
    for rule in policy["spec"]["egress"]:
        for peer in rule["to"]:
            assert "ipBlock" not in peer, "nothing outside the cluster"
            labels = peer["podSelector"]["matchLabels"]
            target = labels.get("app.kubernetes.io/name") or labels.get("k8s-app") or ""
            target = target or f"kafka:{labels.get('strimzi.io/cluster')}"
            reached.setdefault(target, set()).update(p["port"] for p in rule["ports"])
    for name in BACKEND_NAMES:
        assert reached.pop(f"smm-{name}") == {Settings.model_fields[f"{name}_port"].default}
    assert reached == {
        "kube-dns": {53},
        "kafka:smm": {9092, 9093},
        "smm-mongodb": {27017},
    }
    mongodb = by_name(docs, "NetworkPolicy")["smm-mongodb"]
    (expression,) = mongodb["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"]
    assert {f"smm-{name}" for name in SERVICE_NAMES} <= set(expression["values"])
