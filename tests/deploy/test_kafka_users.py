"""Kafka in production: one user per service, allowed exactly its topics.

What a service may do is derived, not hand-written: its AsyncAPI document (what its code
subscribes to and publishes), its consumer group (`GROUP_ID`) and the registry's `.dlq` twins
give the expected ACLs; the rendered prod overlay must grant those and nothing more, and each
Deployment must connect as its own user. A service that may write a topic it does not produce,
or read one it does not consume, fails here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from functools import cache
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shared.settings import SERVICE_NAMES, Settings
from shared.topics import DLQ_SUFFIX, TOPICS
from tests.deploy.support import by_name, of_kind, rendered
from tests.deploy.test_k8s import GROUPS
from tests.deploy.test_topics import _generator

#: One permission: (resource type, resource name, operation).
Grant = tuple[str, str, str]


@cache
def asyncapi_topics(service: str) -> tuple[frozenset[str], frozenset[str]]:
    """(consumed, produced) topics, from the AsyncAPI document the service serves."""
    module = importlib.import_module(f"services.{service}.app")
    settings = Settings(
        admin_token="deploy-test-token",
        # The console's own credentials (the backends ignore them).
        console_service_token="deploy-test-console-token",
        actor_signing_key="deploy-test-actor-signing-key-0123456789",
    )
    app = module.build_app(settings)
    spec = TestClient(app).get("/asyncapi.json").json()  # the lifespan is not run: no servers
    consumed: set[str] = set()
    produced: set[str] = set()
    for operation in spec["operations"].values():
        channel = spec["channels"][operation["channel"]["$ref"].rsplit("/", 1)[1]]
        {"receive": consumed, "send": produced}[operation["action"]].add(channel["address"])
    return frozenset(consumed), frozenset(produced)


@cache
def consumer_groups(service: str) -> frozenset[str]:
    """Every consumer group the service's handlers name (`GROUP_ID`, `..._GROUP_ID`)."""
    module = importlib.import_module(f"services.{service}.handlers")
    return frozenset(
        value
        for name, value in vars(module).items()
        if name.endswith("GROUP_ID") and isinstance(value, str)
    )


def expected_grants(service: str) -> set[Grant]:
    consumed, produced = asyncapi_topics(service)
    groups = consumer_groups(service)
    grants: set[Grant] = {("group", group, "Read") for group in groups}
    for topic in consumed:
        grants |= {("topic", topic, "Read"), ("topic", topic, "Describe")}
        if groups:
            # A consumer in a group dead-letters what it cannot parse. One without a group (the
            # console's live feed) only skips it: the topic's real consumers dead-letter it.
            dead_letters = topic + DLQ_SUFFIX
            grants |= {("topic", dead_letters, "Write"), ("topic", dead_letters, "Describe")}
    for topic in produced:
        grants |= {("topic", topic, "Write"), ("topic", topic, "Describe")}
    return grants


def granted(user: dict[str, Any]) -> set[Grant]:
    """Every (type, name, operation) a KafkaUser's ACLs allow; only literal, allowing ACLs."""
    grants: set[Grant] = set()
    for acl in user["spec"]["authorization"]["acls"]:
        resource = acl["resource"]
        assert resource.get("patternType", "literal") == "literal", f"a wildcard ACL: {acl}"
        assert acl.get("type", "allow") == "allow"
        assert acl.get("host", "*") == "*"
        grants |= {(resource["type"], resource.get("name", ""), op) for op in acl["operations"]}
    return grants


def surplus_and_missing(user: dict[str, Any], service: str) -> tuple[set[Grant], set[Grant]]:
    have, want = granted(user), expected_grants(service)
    return have - want, want - have


def _env(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container.get("env", [])}


def _users() -> dict[str, dict[str, Any]]:
    return by_name(rendered("prod"), "KafkaUser")


def test_the_services_topics_are_the_registrys() -> None:
    for service in SERVICE_NAMES:
        consumed, produced = asyncapi_topics(service)
        assert consumed, f"{service} consumes nothing?"
        assert consumed | produced <= set(TOPICS), service


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_each_service_connects_as_its_own_user(service: str) -> None:
    deployment = by_name(rendered("prod"), "Deployment")[f"smm-{service}"]
    env = _env(deployment)
    user = env["SMM_KAFKA_SASL_USERNAME"]["value"]
    assert user == f"smm-{service}"
    assert user in _users()
    # Strimzi's User Operator writes the password into a Secret named like the user.
    secret = env["SMM_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert secret == {"name": user, "key": "password"}


def test_no_user_is_shared() -> None:
    deployments = of_kind(rendered("prod"), "Deployment")
    users = [_env(d)["SMM_KAFKA_SASL_USERNAME"]["value"] for d in deployments]
    assert len(users) == len(set(users)) == len(SERVICE_NAMES)
    config = next(c for c in of_kind(rendered("prod"), "ConfigMap") if "smm-config" in str(c))
    assert "SMM_KAFKA_SASL_USERNAME" not in config["data"], "one name for every service"


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_a_services_acls_are_exactly_what_its_code_reads_and_writes(service: str) -> None:
    user = _users()[f"smm-{service}"]
    assert user["spec"]["authentication"]["type"] == "scram-sha-512"
    surplus, missing = surplus_and_missing(user, service)
    assert not surplus, f"smm-{service} may do more than it needs: {sorted(surplus)}"
    assert not missing, f"smm-{service} lacks what its code does: {sorted(missing)}"


def _with_acl(user: dict[str, Any], acl: dict[str, Any]) -> dict[str, Any]:
    authorization = user["spec"]["authorization"]
    spec = {
        **user["spec"],
        "authorization": {**authorization, "acls": [*authorization["acls"], acl]},
    }
    return {**user, "spec": spec}


def _topic_acl(name: str, operations: Iterable[str], pattern: str = "literal") -> dict[str, Any]:
    resource = {"type": "topic", "name": name, "patternType": pattern}
    return {"resource": resource, "operations": list(operations)}


def test_the_check_catches_a_write_to_a_topic_the_service_does_not_produce() -> None:
    user = _users()["smm-publisher"]
    # The publisher consumes commands; writing them would let it forge its own work.
    forged = _with_acl(user, _topic_acl("smm.posts.commands.v1", ["Write"]))
    surplus, _ = surplus_and_missing(forged, "publisher")
    assert surplus == {("topic", "smm.posts.commands.v1", "Write")}
    with pytest.raises(AssertionError, match="wildcard"):
        granted(_with_acl(user, _topic_acl("smm.", ["Read"], pattern="prefix")))


def test_a_missing_grant_is_caught_too() -> None:
    user = _users()["smm-moderation"]
    acls = [
        acl
        for acl in user["spec"]["authorization"]["acls"]
        if acl["resource"].get("name") != "smm.mentions.raw.v1.dlq"
    ]
    trimmed = {**user, "spec": {**user["spec"], "authorization": {"type": "simple", "acls": acls}}}
    _, missing = surplus_and_missing(trimmed, "moderation")
    assert ("topic", "smm.mentions.raw.v1.dlq", "Write") in missing


def test_the_generators_table_matches_the_services() -> None:
    generator = _generator()
    for service in SERVICE_NAMES:
        table = generator.SERVICE_TOPICS[service]
        assert (frozenset(table.consumes), frozenset(table.produces)) == asyncapi_topics(service)
        assert table.group == GROUPS[service]
        assert set(table.groups) == consumer_groups(service)


def test_keda_may_only_describe() -> None:
    docs = rendered("prod")
    keda = _users()["smm-keda"]
    grants = granted(keda)
    assert {op for _, _, op in grants} == {"Describe"}
    for scaled_object in of_kind(docs, "ScaledObject"):
        metadata = scaled_object["spec"]["triggers"][0]["metadata"]
        assert ("group", metadata["consumerGroup"], "Describe") in grants
        if "topic" in metadata:
            assert ("topic", metadata["topic"], "Describe") in grants
    (auth,) = of_kind(docs, "TriggerAuthentication")
    refs = {r["parameter"]: r for r in auth["spec"]["secretTargetRef"]}
    assert refs["password"]["name"] == "smm-keda"
    (username,) = [
        s for s in of_kind(docs, "Secret") if s["metadata"]["name"] == "smm-kafka-username"
    ]
    assert username["data"]["username"] == "c21tLWtlZGE="  # base64 of smm-keda


def test_only_the_users_above_exist() -> None:
    assert set(_users()) == {f"smm-{s}" for s in SERVICE_NAMES} | {"smm-keda"}
    assert not by_name(rendered("dev"), "KafkaUser"), "dev has no authentication"
