"""The FastStream Kafka broker every service uses, and how events are written to it.

One factory so that every service talks to Kafka the same way: acks=all (an event is only
"sent" once every in-sync replica has it), compression, SASL/TLS from settings, the dead-letter
and Prometheus middlewares, and the contract's headers on every message.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faststream import BaseMiddleware
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy
from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)

from shared.dlq import DeadLetterMiddleware, apply_or_dead_letter, decode_batch
from shared.events import Event
from shared.metrics import CONSUMER_LAG, EVENT_AGE, EVENTS_PUBLISHED, registry
from shared.settings import Settings
from shared.topics import consumer_group, ensure_topics, topic_name
from shared.tracing import child_traceparent, current_traceparent

CONTENT_TYPE_JSON = "application/json"
E = TypeVar("E", bound=Event)


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
    if settings.kafka_ssl_certfile:
        context.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile)
    return context


def kafka_security(settings: Settings) -> BaseSecurity | None:
    """FastStream security for the configured protocol (None for PLAINTEXT)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = _ssl_context(settings) if protocol.endswith("SSL") else None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context)
    if not settings.kafka_sasl_username or settings.kafka_sasl_password is None:
        raise ValueError(f"{protocol} needs SMM_KAFKA_SASL_USERNAME and SMM_KAFKA_SASL_PASSWORD")
    sasl = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}[
        settings.kafka_sasl_mechanism
    ]
    return sasl(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password.get_secret_value(),
        ssl_context=context,
        use_ssl=context is not None,
    )


class ConsumerLagMiddleware(BaseMiddleware):
    """Sets `smm_consumer_lag_messages` per topic and partition after each processed message
    or batch: the partition's high watermark minus the next offset to process."""

    async def consume_scope(
        self, call_next: Callable[[Any], Awaitable[Any]], msg: StreamMessage[Any]
    ) -> Any:
        result = await call_next(msg)
        highwater = getattr(getattr(msg, "consumer", None), "highwater", None)
        if highwater is not None:
            raw = msg.raw_message
            last: dict[tuple[str, int], int] = {}
            for record in raw if isinstance(raw, tuple) else (raw,):
                key = (record.topic, record.partition)
                last[key] = max(record.offset, last.get(key, -1))
            for (topic, partition), offset in last.items():
                end = highwater(TopicPartition(topic, partition))
                if end is not None:
                    CONSUMER_LAG.labels(topic, str(partition)).set(max(0, end - offset - 1))
        return result


def producer_options(settings: Settings) -> dict[str, Any]:
    """How every producer writes: acks=all, idempotent unless turned off, compressed, lingering."""
    compression = None if settings.kafka_compression == "none" else settings.kafka_compression
    return {
        "acks": "all",
        "compression_type": compression,
        "linger_ms": settings.kafka_linger_ms,
        "enable_idempotence": settings.kafka_enable_idempotence,
    }


def build_broker(
    settings: Settings, service: str, *, extra_middlewares: Sequence[Any] = ()
) -> KafkaBroker:
    """The service's broker. Subscribers and publishers are registered on it by `handlers.py`."""
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=f"{settings.kafka_client_id}-{service}",
        **producer_options(settings),
        # Commit after the work is done; on a transient error seek back and retry.
        ack_policy=AckPolicy.NACK_ON_ERROR,
        security=kafka_security(settings),
        middlewares=[
            DeadLetterMiddleware.with_settings(settings),
            KafkaPrometheusMiddleware(registry=registry, app_name=service),
            ConsumerLagMiddleware,
            *extra_middlewares,
        ],
        description=f"smm {service} service",
    )


def client_options(settings: Settings, client_id: str) -> dict[str, Any]:
    """aiokafka connection options with the same security as the FastStream broker."""
    security = kafka_security(settings)
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "client_id": f"{settings.kafka_client_id}-{client_id}",
        "security_protocol": settings.kafka_security_protocol,
    }
    if security is not None and security.ssl_context is not None:
        options["ssl_context"] = security.ssl_context
    if settings.kafka_security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        password = settings.kafka_sasl_password
        options["sasl_plain_password"] = password.get_secret_value() if password else None
    return options


def admin_client(settings: Settings) -> AIOKafkaAdminClient:
    """An admin client with the same connection settings as the broker (for topic creation)."""
    return AIOKafkaAdminClient(**client_options(settings, "admin"))


async def create_missing_topics(settings: Settings) -> list[str]:
    """Connect an admin client, create the registry's missing topics, disconnect."""
    admin = admin_client(settings)
    await admin.start()
    try:
        return await ensure_topics(settings, admin)
    finally:
        await admin.close()


class BatchProducer:
    """A plain aiokafka producer for high-volume writes (ingest's intake).

    FastStream's publish path costs about 250 µs a message (middlewares, codec); a batch of a
    thousand mentions needs one `send` each and a single wait for all acknowledgements.
    Same settings as the broker (`producer_options`, security).
    """

    def __init__(self, settings: Settings, service: str) -> None:
        self._settings = settings
        self._service = service
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Connect (aiokafka objects must be created inside the running event loop)."""
        settings = self._settings
        producer = AIOKafkaProducer(
            **client_options(settings, f"{self._service}-batch"),
            **producer_options(settings),
            max_batch_size=256 * 1024,
        )
        await producer.start()
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send_all(
        self, topic: str, messages: Sequence[tuple[bytes, bytes]], headers: dict[str, str]
    ) -> None:
        """Send (key, value) pairs; return once Kafka acknowledged every one of them."""
        if self._producer is None:
            raise RuntimeError("BatchProducer.start() was not called")
        producer = self._producer
        encoded = [(key, value.encode()) for key, value in headers.items()]
        futures = [
            await producer.send(topic, value, key=key, headers=encoded) for key, value in messages
        ]
        await asyncio.gather(*futures)


def event_headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The contract's headers: content type, and trace context when one exists."""
    headers = {"content-type": CONTENT_TYPE_JSON}
    parent = current_traceparent()
    if parent is not None:
        headers["traceparent"] = child_traceparent(parent)
    if extra:
        headers.update(extra)
    return headers


class EventPublisher:
    """Writes one kind of event to one topic, keyed as the contract says.

    Built from a FastStream publisher so the AsyncAPI document lists what the service produces.
    `publish` returns once Kafka acknowledged the event (acks=all).
    """

    def __init__(
        self,
        broker: KafkaBroker,
        topic: str,
        model: type[Event],
        settings: Settings,
        batch: BatchProducer | None = None,
    ):
        self.topic = topic
        self._batch = batch
        self.physical_topic = topic_name(topic, settings)
        self._publisher = broker.publisher(
            self.physical_topic,
            schema=model,
            title=f"{self.physical_topic}:publish",
            description=f"{model.__name__} events, keyed as the contract says.",
        )

    async def publish(self, event: Event, key: str) -> None:
        await self._publisher.publish(event.to_bytes(), key=key.encode(), headers=event_headers())
        EVENTS_PUBLISHED.labels(self.topic).inc()

    async def publish_many(self, events: Sequence[E], key: Callable[[E], str]) -> None:
        """Publish many events at once; needs the `batch` producer given at construction."""
        if not events:
            return
        if self._batch is None:
            await asyncio.gather(*(self.publish(event, key(event)) for event in events))
            return
        await self.publish_encoded([(key(event), event.to_bytes()) for event in events])

    async def publish_encoded(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Publish (key, already encoded event) pairs, for events the caller encoded anyway
        (to store them); needs the `batch` producer given at construction."""
        if not messages:
            return
        if self._batch is None:
            raise RuntimeError(f"{self.topic}: publish_encoded needs a batch producer")
        encoded = [(key.encode(), value) for key, value in messages]
        await self._batch.send_all(self.physical_topic, encoded, event_headers())
        EVENTS_PUBLISHED.labels(self.topic).inc(len(messages))


async def _raw_values(msg: Any) -> list[bytes]:
    """Decoder for batch consumers: keep the bytes, so one bad record cannot fail the batch."""
    raw = msg.raw_message
    records = raw if isinstance(raw, tuple) else (raw,)
    return [record.value for record in records]


def batch_consumer(
    broker: KafkaBroker,
    settings: Settings,
    topic: str,
    model: type[E],
    *,
    group_id: str,
    max_records: int = 500,
    description: str = "",
) -> Callable[[Callable[[list[E]], Awaitable[None]]], None]:
    """Register `handler(events)` for batches of `topic`, validated record by record.

    Bad records go to the `.dlq` twin; the handler gets the valid events of the batch, and the
    batch is committed only after it returns. A transient failure rewinds and retries the
    whole batch; one of the records' own is narrowed down to them (`apply_or_dead_letter`),
    so handlers must be idempotent, as the contract requires anyway.
    """

    def register(handler: Callable[[list[E]], Awaitable[None]]) -> None:
        physical = topic_name(topic, settings)

        @broker.subscriber(
            physical,
            group_id=consumer_group(group_id, settings),
            auto_offset_reset="earliest",
            batch=True,
            max_records=max_records,
            batch_timeout_ms=100,
            decoder=_raw_values,
            title=f"{physical}:consume",
            description=description or f"Batches of {model.__name__} events.",
        )
        async def consume(values: list[bytes], msg: KafkaMessage) -> None:
            raw = msg.raw_message
            records = raw if isinstance(raw, tuple) else (raw,)
            valid = await decode_batch(broker, records, model)

            async def apply(part: Sequence[tuple[Any, E]]) -> None:
                await handler([event for _, event in part])

            if valid:
                await apply_or_dead_letter(
                    broker, valid, apply, max_attempts=settings.consumer_max_attempts
                )
            events = [event for _, event in valid]
            now = time.time()
            for event in events:
                EVENT_AGE.labels(topic).observe(max(0.0, now - event.occurred_at.timestamp()))

    return register
