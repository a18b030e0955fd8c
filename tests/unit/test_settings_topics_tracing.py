"""Settings from SMM_* variables, the topic registry, and trace context."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.settings import Settings
from shared.topics import DLQ_SUFFIX, KPI, MENTIONS_RAW, TOPICS, physical_topics
from shared.tracing import (
    child_traceparent,
    current_traceparent,
    use_traceparent,
    valid_traceparent,
)


def test_settings_come_from_smm_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMM_KAFKA_BOOTSTRAP_SERVERS", "kafka-0:9092,kafka-1:9092")
    monkeypatch.setenv("SMM_MONGODB_URI", "mongodb://db:27017/?replicaSet=rs0")
    monkeypatch.setenv("SMM_INGEST_PORT", "9001")
    monkeypatch.setenv("SMM_API_TOKENS", '{"abc-token-0001": ["read", "posts:write"]}')
    settings = Settings()
    assert settings.kafka_bootstrap_servers == "kafka-0:9092,kafka-1:9092"
    assert settings.mongodb_uri.get_secret_value().endswith("replicaSet=rs0")
    assert "replicaSet" not in repr(settings)  # secrets never printed
    assert settings.port_of("ingest") == 9001
    assert settings.port_of("metrics") == 8004
    assert settings.api_tokens == {"abc-token-0001": ["read", "posts:write"]}


def test_unknown_scope_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMM_API_TOKENS", '{"abcd-token-0002": ["root"]}')
    with pytest.raises(ValidationError, match="unknown scopes"):
        Settings()


def test_a_publisher_lease_shorter_than_a_send_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMM_PUBLISHER_LEASE_SECONDS", "8")
    with pytest.raises(ValidationError, match="publisher_lease_seconds"):
        Settings()
    monkeypatch.setenv("SMM_PUBLISHER_SEND_TIMEOUT_SECONDS", "5")
    assert Settings().publisher_lease_seconds == 8


def test_every_topic_has_a_dlq_twin_and_the_prefix() -> None:
    settings = Settings(topic_prefix="staging.", topic_partitions=6)
    names = {t.name: t for t in physical_topics(settings)}
    for name in TOPICS:
        assert f"staging.{name}" in names
        assert f"staging.{name}{DLQ_SUFFIX}" in names
    assert names[f"staging.{MENTIONS_RAW}"].num_partitions == 6
    assert names[f"staging.{KPI}"].topic_configs["cleanup.policy"] == "compact"
    assert names[f"staging.{MENTIONS_RAW}{DLQ_SUFFIX}"].num_partitions == 1


def test_traceparent_is_validated_and_continued() -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert valid_traceparent(parent) == parent
    assert valid_traceparent("garbage") is None
    assert valid_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01") is None
    child = child_traceparent(parent)
    assert child.split("-")[1] == parent.split("-")[1]
    assert child.split("-")[2] != parent.split("-")[2]
    with use_traceparent(parent):
        assert current_traceparent() == parent
    assert current_traceparent() is None


def test_producers_are_idempotent_unless_the_local_stand_in_turns_it_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared.kafka import producer_options
    from shared.local.servers import LOCAL_SERVICE_ENV

    assert producer_options(Settings())["enable_idempotence"] is True
    assert producer_options(Settings())["acks"] == "all"
    for key, value in LOCAL_SERVICE_ENV.items():
        monkeypatch.setenv(key, value)
    local = Settings()
    assert producer_options(local)["enable_idempotence"] is False
    assert local.outbound_allowed_networks == ["127.0.0.0/8", "::1/128"]
