"""Settings shared by every service, read from `SMM_*` environment variables.

One model serves all four services so an operator configures the platform in one place;
a service that needs more subclasses `Settings` and keeps the same prefix.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ServiceName = Literal["ingest", "moderation", "publisher", "metrics"]
SERVICE_NAMES: tuple[ServiceName, ...] = ("ingest", "moderation", "publisher", "metrics")

#: Every scope a token can carry. `admin` implies all of them.
SCOPES: frozenset[str] = frozenset(
    {
        "admin",
        "read",
        "trackers:write",
        "mentions:write",
        "rules:write",
        "review:write",
        "posts:write",
        "posts:approve",
        "channels:write",
    }
)


class Settings(BaseSettings):
    """Platform settings; every field is `SMM_<FIELD>` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="SMM_", env_file=None, extra="ignore", frozen=True, populate_by_name=True
    )

    # --- Kafka ---------------------------------------------------------------------------
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_client_id: str = "smm"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
    kafka_compression: Literal["none", "gzip", "lz4", "zstd", "snappy"] = "lz4"
    kafka_linger_ms: int = Field(default=5, ge=0, le=1000)
    #: Prepended to every topic name, so several environments can share one cluster.
    topic_prefix: str = ""
    topic_partitions: int = Field(default=6, ge=1, le=1000)
    topic_replication_factor: int = Field(default=1, ge=1, le=10)
    #: Create missing topics at start. Off in production where topics are managed (Strimzi).
    create_topics: bool = True

    # --- MongoDB -------------------------------------------------------------------------
    mongodb_uri: SecretStr = SecretStr("mongodb://127.0.0.1:27017/?directConnection=true")
    mongodb_database: str = "smm"
    mongodb_timeout_ms: int = Field(default=5000, ge=100)

    # --- HTTP ----------------------------------------------------------------------------
    http_host: str = "127.0.0.1"
    ingest_port: int = Field(default=8001, ge=1, le=65535)
    moderation_port: int = Field(default=8002, ge=1, le=65535)
    publisher_port: int = Field(default=8003, ge=1, le=65535)
    metrics_port: int = Field(default=8004, ge=1, le=65535)
    #: Admin bearer token with every scope. Unset: only `api_tokens` can write.
    #: `smm local up` generates one when it is unset and prints it.
    admin_token: SecretStr | None = None
    #: More tokens: JSON object token → list of scopes, e.g. {"abc": ["read", "posts:write"]}.
    api_tokens: dict[str, list[str]] = Field(default_factory=dict)
    #: When true, read endpoints need a token with the `read` scope as well.
    protect_reads: bool = False
    max_request_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)

    #: How long a service waits at start for Kafka and MongoDB before it gives up and exits.
    startup_timeout_seconds: float = Field(default=120.0, gt=0)

    #: Longest wait for Kafka to acknowledge what an HTTP request produces before a 503.
    publish_timeout_seconds: float = Field(default=10.0, gt=0)

    # --- Ingest --------------------------------------------------------------------------
    ingest_max_batch: int = Field(default=1_000, ge=1, le=100_000)

    # --- Consumers -----------------------------------------------------------------------
    #: Longest pause before a message whose processing failed for a transient reason is retried.
    retry_backoff_max_seconds: float = Field(default=30.0, gt=0)

    # --- Logging -------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"

    @field_validator("api_tokens")
    @classmethod
    def _known_scopes(cls, tokens: dict[str, list[str]]) -> dict[str, list[str]]:
        for token, scopes in tokens.items():
            unknown = set(scopes) - SCOPES
            if unknown:
                raise ValueError(f"token …{token[-4:]} has unknown scopes {sorted(unknown)}")
        return tokens

    def port_of(self, service: ServiceName) -> int:
        """The HTTP port the named service listens on."""
        port: int = getattr(self, f"{service}_port")
        return port
