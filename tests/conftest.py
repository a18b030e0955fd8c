"""Fixtures: the real local servers (Tansu for Kafka, SecantusDB for MongoDB), once a session.

Integration tests share the two servers but never each other's data: each test gets its own
topic prefix and database name through `settings`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.local.servers import ManagedProcess, free_port, kafka_process, mongo_process, mongo_uri
from shared.settings import Settings

HOST = "127.0.0.1"
#: The fake networks and feeds of the tests listen on loopback (see shared/outbound.py).
LOOPBACK_NETWORKS = ["127.0.0.0/8", "::1/128"]


@dataclass(frozen=True)
class LocalServers:
    kafka: ManagedProcess
    mongo: ManagedProcess

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.kafka.port}"

    @property
    def mongo_uri(self) -> str:
        return mongo_uri(HOST, self.mongo.port)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServers]:
    logs: Path = tmp_path_factory.mktemp("server-logs")
    kafka = kafka_process(HOST, free_port(), logs / "kafka.log")
    mongo = mongo_process(HOST, free_port(), ":memory:", logs / "mongo.log")
    kafka.start()
    mongo.start()
    try:
        kafka.wait_port(30)
        mongo.wait_port(60)
        yield LocalServers(kafka=kafka, mongo=mongo)
    finally:
        kafka.stop()
        mongo.stop()


@pytest.fixture
def settings(servers: LocalServers) -> Settings:
    """Settings pointing at the real servers, isolated to this test by prefix and database."""
    return isolated_settings(servers)


def isolated_settings(servers: LocalServers) -> Settings:
    """Settings on the real servers with a topic prefix and database of their own."""
    unique = uuid.uuid4().hex[:10]
    return Settings(
        kafka_bootstrap_servers=servers.bootstrap,
        mongodb_uri=servers.mongo_uri,
        mongodb_database=f"test_{unique}",
        topic_prefix=f"t{unique}.",
        topic_partitions=2,
        admin_token="test-admin-token",
        log_format="console",
        retry_backoff_max_seconds=1.0,
        outbound_allowed_networks=LOOPBACK_NETWORKS,
        kafka_enable_idempotence=False,
    )
