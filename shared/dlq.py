"""Dead-letter handling, exactly as the contract says.

A message that cannot be parsed or validated, or whose processing fails for good
(`PermanentError`), goes to `<topic>.dlq` as the original bytes with the headers `x-error`,
`x-source-topic`, `x-source-partition`, `x-source-offset`; it is counted and the partition moves
on. Any other failure is transient (database down, broker hiccup): the message is not committed,
the consumer seeks back to it and retries after a growing pause, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from shared.errors import validation_summary
from shared.logging import get_logger
from shared.metrics import CONSUMER_RETRIES, DLQ_MESSAGES
from shared.topics import DLQ_SUFFIX
from shared.tracing import use_traceparent

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord
    from faststream._internal.context.repository import ContextRepo
    from faststream.kafka import KafkaBroker
    from faststream.message import StreamMessage

    from shared.settings import Settings

from faststream import BaseMiddleware

log = get_logger(__name__)

MAX_ERROR_HEADER_CHARS = 2_000
E = TypeVar("E", bound=BaseModel)


class PermanentError(Exception):
    """Processing this message can never succeed (e.g. it names a thing that cannot exist)."""


def reason_of(exc: BaseException) -> tuple[str, str]:
    """A bounded reason label for metrics and a readable text for the `x-error` header."""
    if isinstance(exc, ValidationError):
        problems = validation_summary(exc)
        return "invalid_event", f"{exc.error_count()} validation error(s): {problems}"
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
        return "invalid_json", f"not UTF-8 JSON: {exc}"
    return "permanent_error", f"{type(exc).__name__}: {exc}"


def dead_letter_headers(record: ConsumerRecord[Any, Any], error: str) -> dict[str, str]:
    """The contract's dead-letter headers, plus the original headers (minus our own)."""
    headers = {
        key: value.decode("utf-8", "replace")
        for key, value in (record.headers or ())
        if not key.startswith("x-")
    }
    headers.update(
        {
            "x-error": error[:MAX_ERROR_HEADER_CHARS],
            "x-source-topic": record.topic,
            "x-source-partition": str(record.partition),
            "x-source-offset": str(record.offset),
        }
    )
    return headers


async def send_to_dlq(
    broker: KafkaBroker, record: ConsumerRecord[Any, Any], exc: Exception
) -> None:
    """Write the original bytes of `record` to its topic's `.dlq` twin and count it."""
    label, error = reason_of(exc)
    await broker.publish(
        record.value,
        topic=record.topic + DLQ_SUFFIX,
        key=record.key,
        headers=dead_letter_headers(record, error),
    )
    DLQ_MESSAGES.labels(record.topic, label).inc()
    log.warning(
        "message dead-lettered",
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        reason=label,
        error=error[:500],
    )


async def decode_batch(
    broker: KafkaBroker, records: Sequence[ConsumerRecord[Any, Any]], model: type[E]
) -> list[tuple[ConsumerRecord[Any, Any], E]]:
    """Validate a batch record by record; dead-letter the bad ones, return the good ones."""
    valid: list[tuple[ConsumerRecord[Any, Any], E]] = []
    for record in records:
        try:
            valid.append((record, model.model_validate_json(record.value)))
        except ValidationError as exc:
            await send_to_dlq(broker, record, exc)
    return valid


DEAD_LETTER_ERRORS = (ValidationError, json.JSONDecodeError, UnicodeDecodeError, PermanentError)


@dataclass
class _RetryState:
    """Consecutive transient failures per partition, for the pause before the next try."""

    max_pause: float
    failures: dict[tuple[str, int], int] = field(default_factory=dict)

    def pause_after_failure(self, key: tuple[str, int]) -> float:
        count = self.failures.get(key, 0) + 1
        self.failures[key] = count
        return float(min(self.max_pause, 0.2 * 2 ** min(count, 16)) * random.uniform(0.5, 1.0))

    def succeeded(self, key: tuple[str, int]) -> None:
        self.failures.pop(key, None)


class DeadLetterMiddleware(BaseMiddleware):
    """FastStream middleware: dead-letter bad messages, retry transient failures.

    Batch subscribers receive records they validate one by one (`split_batch`), so a bad record
    never takes its good neighbours down with it; this middleware only retries their failures.
    """

    def __init__(
        self, msg: Any, /, *, context: ContextRepo, retry: _RetryState | None = None
    ) -> None:
        super().__init__(msg, context=context)
        self._retry = retry or _RetryState(max_pause=30.0)

    @classmethod
    def with_settings(cls, settings: Settings) -> Callable[..., DeadLetterMiddleware]:
        retry = _RetryState(max_pause=settings.retry_backoff_max_seconds)

        def build(msg: Any, /, *, context: ContextRepo) -> DeadLetterMiddleware:
            return cls(msg, context=context, retry=retry)

        return build

    async def consume_scope(
        self, call_next: Callable[[Any], Awaitable[Any]], msg: StreamMessage[Any]
    ) -> Any:
        raw = msg.raw_message
        records: Sequence[ConsumerRecord[Any, Any]] = raw if isinstance(raw, tuple) else (raw,)
        first = records[0]
        partition_key = (first.topic, first.partition)
        traceparent = msg.headers.get("traceparent") if len(records) == 1 else None
        with use_traceparent(traceparent):
            try:
                result = await call_next(msg)
            except DEAD_LETTER_ERRORS as exc:
                if len(records) != 1 or first.topic.endswith(DLQ_SUFFIX):
                    raise
                broker: KafkaBroker = self.context.get("broker")
                await send_to_dlq(broker, first, exc)
                self._retry.succeeded(partition_key)
                return None
            except Exception:
                pause = self._retry.pause_after_failure(partition_key)
                CONSUMER_RETRIES.labels(first.topic).inc()
                log.exception(
                    "processing failed; will retry",
                    topic=first.topic,
                    partition=first.partition,
                    offset=first.offset,
                    retry_in_seconds=round(pause, 2),
                )
                await asyncio.sleep(pause)
                raise
        self._retry.succeeded(partition_key)
        return result
