"""Settings shared by every service, read from `SMM_*` environment variables.

One model serves all four services so an operator configures the platform in one place;
a service that needs more subclasses `Settings` and keeps the same prefix.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ServiceName = Literal["ingest", "moderation", "publisher", "metrics", "console"]
#: The four services behind the console, each with its own HTTP API and database.
BACKEND_NAMES: tuple[ServiceName, ...] = ("ingest", "moderation", "publisher", "metrics")
#: Every process of the platform: the backends and the console (the web UI).
SERVICE_NAMES: tuple[ServiceName, ...] = (*BACKEND_NAMES, "console")

#: Every scope a token can carry. `admin` implies all of them.
SCOPES: frozenset[str] = frozenset(
    {
        "admin",
        "read",
        "trackers:write",
        "mentions:write",
        "rules:write",
        "review:write",
        "classify",
        "posts:write",
        "posts:approve",
        "channels:write",
        # a service credential (the console's) that may act for a signed-in user: see shared/auth
        "act_as",
    }
)


class TokenGrant(BaseModel):
    """A token held by a named person or system, e.g. a reviewer: the name is the actor in
    audit trails and decisions (a token given only as a scope list acts as `token-<hash>`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")
    scopes: list[str]


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
    #: Idempotent producer (no duplicate or reordered writes when a send is retried). Apache
    #: Kafka supports it; only the local Tansu stand-in does not, so the local stack and the
    #: tests turn it off (`shared/local/servers.py`, LOCAL_SERVICE_ENV).
    kafka_enable_idempotence: bool = True
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
    console_port: int = Field(default=8000, ge=1, le=65535)
    #: Admin bearer token with every scope. Unset: only `api_tokens` can write.
    #: `smm local up` generates one when it is unset and prints it.
    admin_token: SecretStr | None = None
    #: More tokens: JSON object token → list of scopes, e.g. {"abc": ["read", "posts:write"]},
    #: or → {"user": "alice", "scopes": [...]} to name who holds it (audit trails).
    api_tokens: dict[str, list[str] | TokenGrant] = Field(default_factory=dict)
    #: Read endpoints (review queue, mentions, authors, posts, audit trails, KPIs) need a token
    #: with the `read` scope. `false` opens them to anybody who reaches the port; /healthz,
    #: /readyz, /metrics and the AsyncAPI document are open either way.
    protect_reads: bool = True
    #: Key of the `token-<fingerprint>` actor that unnamed tokens get in audit trails (an HMAC of
    #: the token, so the trail reveals nothing to guess tokens with). Give every replica the same
    #: value; unset, it is derived from `admin_token` (or, without one, from all `api_tokens`),
    #: so fingerprints change when those are rotated.
    token_fingerprint_key: SecretStr | None = None
    #: Key (HS256) of the user assertions the console sends in `X-SMM-Actor` with its `act_as`
    #: token; every service verifies them with the same key. Unset, no assertion is accepted.
    actor_signing_key: SecretStr | None = None
    max_request_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    #: Networks (CIDR) that outbound calls to user-given URLs may reach although they are
    #: private, loopback or link-local (`shared/outbound.py`), e.g. ["10.20.0.0/16"] for a
    #: self-hosted Mastodon. Empty: only public addresses. Tests and the local stack allow
    #: loopback, where the fake networks and the demo feed listen.
    outbound_allowed_networks: list[str] = Field(default_factory=list)
    #: Reverse proxies (CIDR) in front of the services, e.g. ["10.0.0.0/8"] for a cluster's
    #: ingress, whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed (uvicorn's
    #: `forwarded_allow_ips`), so a request's client is the address the proxy saw, not the
    #: proxy's. Empty: only loopback is believed. Never list a network that clients reach the
    #: services from directly: they could claim any address.
    trusted_proxies: list[str] = Field(default_factory=list)

    #: How long a service waits at start for Kafka and MongoDB before it gives up and exits.
    startup_timeout_seconds: float = Field(default=120.0, gt=0)

    #: Longest a service's shutdown may take, all steps together: a step still running when
    #: the time is up is logged by name and left, so the process exits before the orchestrator's
    #: kill (compose 30 s, Kubernetes 45 s). Kafka redelivers whatever was not committed.
    shutdown_timeout_seconds: float = Field(default=25.0, gt=0, le=600)

    #: Longest wait for Kafka to acknowledge what an HTTP request produces before a 503.
    publish_timeout_seconds: float = Field(default=10.0, gt=0)

    # --- Languages -----------------------------------------------------------------------
    #: ISO 639-1 codes the platform detects and classifies; detection picks among these only.
    languages: list[str] = Field(default_factory=lambda: ["de", "en"], min_length=1)

    # --- Ingest --------------------------------------------------------------------------
    ingest_max_batch: int = Field(default=1_000, ge=1, le=100_000)
    #: How long a seen mention_id is remembered for de-duplication (TTL index).
    ingest_dedup_days: int = Field(default=90, ge=1, le=3650)
    #: Most trackers one installation may define (the matcher is compiled over all of them).
    ingest_max_trackers: int = Field(default=2_000, ge=1, le=100_000)
    #: Meta (Facebook/Instagram) webhooks: app secret for X-Hub-Signature-256, verify token.
    meta_app_secret: SecretStr | None = None
    meta_verify_token: SecretStr | None = None
    #: Instagram account access token: fetches the text of @mentions (Graph API lookups).
    meta_access_token: SecretStr | None = None
    meta_graph_url: str = Field(
        default="https://graph.facebook.com/v21.0", pattern=r"^https?://\S+$"
    )
    #: X Account Activity API: consumer secret for the CRC and the signature header.
    x_consumer_secret: SecretStr | None = None
    #: Mastodon webhooks: the secret shown when the webhook was created (X-Hub-Signature).
    mastodon_webhook_secret: SecretStr | None = None
    #: Reddit app (https://www.reddit.com/prefs/apps) for application-only OAuth polling.
    reddit_client_id: str | None = None
    reddit_client_secret: SecretStr | None = None
    #: Public base URL of ingest, for WebSub callbacks (e.g. https://smm.example.com/ingest).
    public_base_url: str | None = None
    #: Poll sources as JSON list, e.g. [{"kind": "rss", "url": "https://…/feed"}] (see docs).
    poll_sources: list[dict[str, Any]] = Field(default_factory=list)
    #: Poll our published posts' engagement for this long after publishing.
    engagement_poll_days: float = Field(default=7.0, gt=0, le=90)
    #: Webhook handshakes (X CRC and Meta verification GETs) each client may make per
    #: minute, and how many it may make at once; more answers 429 with Retry-After.
    ingest_handshake_rate_per_minute: float = Field(default=30.0, gt=0, le=60_000)
    ingest_handshake_burst: int = Field(default=10, ge=1, le=10_000)
    #: A hub's WebSub verification is accepted only this long after our own request.
    websub_verify_window_seconds: float = Field(default=600.0, ge=10, le=86_400)
    #: Largest response ingest reads from a feed, hub or platform API (pollers included).
    ingest_max_response_bytes: int = Field(
        default=20 * 1024 * 1024, ge=64 * 1024, le=512 * 1024 * 1024
    )

    # --- Moderation ----------------------------------------------------------------------
    #: How long a reviewer's claim on an inbox item lasts; an abandoned claim then expires.
    moderation_lease_seconds: float = Field(default=600.0, ge=5, le=86_400)
    #: Mentions per consumed batch (one classifier call and three bulk writes per batch).
    moderation_batch_size: int = Field(default=500, ge=1, le=10_000)
    #: How often a replica re-reads the tracker rules changed through another replica.
    moderation_rules_refresh_seconds: float = Field(default=5.0, gt=0, le=3_600)
    #: Most texts per `POST /v1/classify` request.
    moderation_classify_max_items: int = Field(default=1_000, ge=1, le=100_000)
    #: Time all tracker patterns together may take on one mention; past it the remaining
    #: patterns are skipped and the mention goes to review (RE2 is linear; this caps the sum).
    moderation_pattern_budget_ms: float = Field(default=50.0, gt=0, le=10_000)
    #: `POST /v1/classify` per token: texts per second refilled, and the most at once (a full
    #: batch of `moderation_classify_max_items` always fits); more answers 429 + Retry-After.
    moderation_classify_rate_per_second: float = Field(default=200.0, gt=0, le=1_000_000)
    moderation_classify_burst: int = Field(default=2_000, ge=1, le=1_000_000)
    # --- Publisher -----------------------------------------------------------------------
    #: How often each replica looks for due posts (also the floor of dispatch lateness).
    publisher_poll_interval_seconds: float = Field(default=0.25, gt=0, le=60)
    #: How long a claimed post belongs to one replica; a crashed replica's posts are
    #: reconciled with the network and retried after this.
    publisher_lease_seconds: float = Field(default=60.0, gt=0, le=3600)
    #: Claim posts this long before they are due (hides the database round trips from the
    #: lateness); from then on the post is `publishing` and edits or cancels answer 409.
    publisher_claim_ahead_seconds: float = Field(default=0.5, ge=0, le=30)
    #: Most due posts one replica claims per database round trip.
    publisher_claim_batch: int = Field(default=100, ge=1, le=5_000)
    #: Concurrent requests to the networks per replica.
    publisher_send_concurrency: int = Field(default=32, ge=1, le=1_000)
    #: Timeout of one request to a network.
    publisher_send_timeout_seconds: float = Field(default=15.0, gt=0, le=300)
    #: Attempts before a post that keeps failing for a retryable reason is marked failed.
    publisher_max_attempts: int = Field(default=8, ge=1, le=100)
    #: Exponential backoff between attempts: base * 2^(attempt-1), jittered, capped.
    publisher_retry_base_seconds: float = Field(default=5.0, gt=0)
    publisher_retry_max_seconds: float = Field(default=900.0, gt=0)
    #: Channel secrets referenced as `settings:NAME` (JSON object NAME → secret; never logged).
    publisher_credentials: dict[str, SecretStr] = Field(default_factory=dict)
    #: Where the networks with a fixed API host (x, facebook, linkedin) are reached instead
    #: of their public API, as JSON {"x": "http://127.0.0.1:9000/x"}: for tests, a local stack
    #: with fake networks, or an egress proxy. Only operators set it; a channel cannot.
    publisher_api_base_urls: dict[str, str] = Field(default_factory=dict)
    #: Shortest gap between two occurrences of a recurring post (an RRULE with FREQ=SECONDLY
    #: or a dense BYSECOND list is refused below it; cron cannot go under 60 s anyway).
    publisher_min_recurrence_seconds: int = Field(default=60, ge=1, le=86_400)
    #: How long a reply command from Kafka waits for its mention to arrive on
    #: smm.mentions.classified.v1 (the two topics are read independently) before the reply is
    #: refused for a channel mapped to trackers.
    publisher_reply_mention_wait_seconds: float = Field(default=30.0, ge=0, le=600)
    # --- Metrics -------------------------------------------------------------------------
    #: Most records the metrics service aggregates per consumed batch (one journal each).
    metrics_batch_size: int = Field(default=10_000, ge=1, le=50_000)
    #: How often KPI snapshots go to `smm.kpi.v1` (and the KPI gauges are refreshed).
    metrics_kpi_interval_seconds: float = Field(default=300.0, gt=0)
    #: The window of the scheduled snapshots and KPI gauges: the last this many hours.
    metrics_kpi_window_hours: int = Field(default=24, ge=1, le=24 * 90)
    #: How often the negative-spike check runs.
    metrics_alert_interval_seconds: float = Field(default=60.0, gt=0)
    #: Longest window the KPI API answers (days).
    metrics_max_window_days: int = Field(default=400, ge=1, le=3650)
    #: Our channels per tracker, as JSON: {"<channel_id>": ["<tracker_id>", ...]}; a tracker's
    #: engagement and follower KPIs cover these channels' posts plus our replies to its mentions.
    metrics_channel_trackers: dict[str, list[str]] = Field(default_factory=dict)

    # --- Consumers -----------------------------------------------------------------------
    #: Longest pause before a message whose processing failed for a transient reason is retried.
    retry_backoff_max_seconds: float = Field(default=30.0, gt=0)
    #: Tries of a record whose processing fails for a reason of its own (not the database's or
    #: the broker's) before it goes to the topic's `.dlq` with the reason (`shared/dlq.py`).
    consumer_max_attempts: int = Field(default=3, ge=1, le=100)

    # --- Console (the web UI) ---------------------------------------------------------------
    #: Where the console reaches each service's API; unset, http://127.0.0.1:<its port>.
    console_service_urls: dict[str, str] = Field(default_factory=dict)
    #: The console's own bearer token for the services: it must hold `act_as`, and the scopes
    #: the console's users may use (a user never gets more than this token holds).
    console_service_token: SecretStr | None = None
    #: How long a console session lives without activity, and at most.
    console_session_idle_minutes: int = Field(default=120, ge=5, le=7 * 24 * 60)
    console_session_max_hours: int = Field(default=12, ge=1, le=30 * 24)
    #: Session cookies are `Secure` when the request came over TLS (or via a trusted proxy
    #: that says so); `true` forces it, for a console that is only ever served over TLS.
    console_secure_cookies: bool = False
    #: The first user, an admin the console creates at start while it has no user at all
    #: (the local stack sets both; elsewhere, or later, use `smm users create`).
    console_first_admin_email: str = "admin@smm.local"
    console_first_admin_password: SecretStr | None = None
    #: Failed sign-ins allowed per account and per client address in 15 minutes.
    console_login_failures: int = Field(default=5, ge=1, le=100)

    # --- Logging -------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"

    @field_validator("admin_token")
    @classmethod
    def _not_a_placeholder(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None:
            value = token.get_secret_value()
            if value.startswith("change-me") or len(value) < 12:
                raise ValueError(
                    "SMM_ADMIN_TOKEN is a placeholder or shorter than 12 characters; "
                    "generate one: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
                )
        return token

    @field_validator("token_fingerprint_key")
    @classmethod
    def _a_real_key(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None:
            value = key.get_secret_value()
            if value.startswith("change-me") or len(value) < 16:
                raise ValueError(
                    "SMM_TOKEN_FINGERPRINT_KEY is a placeholder or shorter than 16 characters; "
                    "generate one: openssl rand -hex 32"
                )
        return key

    @field_validator("actor_signing_key")
    @classmethod
    def _a_real_signing_key(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None:
            value = key.get_secret_value()
            if value.startswith("change-me") or len(value) < 32:
                raise ValueError(
                    "SMM_ACTOR_SIGNING_KEY is a placeholder or shorter than 32 characters; "
                    "generate one: openssl rand -hex 32"
                )
        return key

    @field_validator("api_tokens")
    @classmethod
    def _known_scopes(
        cls, tokens: dict[str, list[str] | TokenGrant]
    ) -> dict[str, list[str] | TokenGrant]:
        for token, grant in tokens.items():
            scopes = grant.scopes if isinstance(grant, TokenGrant) else grant
            if token.startswith("change-me") or len(token) < 12:
                raise ValueError(
                    f"token …{token[-4:]} is a placeholder or shorter than 12 characters"
                )
            unknown = set(scopes) - SCOPES
            if unknown:
                raise ValueError(f"token …{token[-4:]} has unknown scopes {sorted(unknown)}")
        return tokens

    @field_validator("outbound_allowed_networks")
    @classmethod
    def _cidr_networks(cls, networks: list[str]) -> list[str]:
        for network in networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"outbound_allowed_networks: {exc}") from exc
        return networks

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, networks: list[str]) -> list[str]:
        try:
            return [str(ipaddress.ip_network(network, strict=False)) for network in networks]
        except ValueError as exc:
            raise ValueError(f"trusted_proxies: {exc}") from exc

    @field_validator("languages")
    @classmethod
    def _iso_639_1(cls, languages: list[str]) -> list[str]:
        bad = [code for code in languages if len(code) != 2 or not code.isalpha()]
        if bad:
            raise ValueError(f"languages must be ISO 639-1 codes, got {bad}")
        return [code.lower() for code in languages]

    @model_validator(mode="after")
    def _lease_outlasts_a_send(self) -> Settings:
        """A publisher lease must cover claiming ahead plus one whole send, or no post could
        ever be sent safely (each would go back unsent, again and again)."""
        needed = self.publisher_send_timeout_seconds + self.publisher_claim_ahead_seconds
        if self.publisher_lease_seconds <= needed:
            raise ValueError(
                f"publisher_lease_seconds ({self.publisher_lease_seconds:g}) must exceed "
                f"publisher_send_timeout_seconds + publisher_claim_ahead_seconds ({needed:g})"
            )
        return self

    def port_of(self, service: ServiceName) -> int:
        """The HTTP port the named service listens on."""
        port: int = getattr(self, f"{service}_port")
        return port

    def service_url(self, service: ServiceName) -> str:
        """Where the console reaches `service`: `console_service_urls`, else loopback."""
        return self.console_service_urls.get(service) or f"http://127.0.0.1:{self.port_of(service)}"
