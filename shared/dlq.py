"""Dead-letter handling, exactly as the contract says.

A message that cannot be parsed or validated, or whose processing fails for good, goes to
`<topic>.dlq` as the original bytes with the headers `x-error`, `x-source-topic`,
`x-source-partition`, `x-source-offset`; it is counted and the partition moves on.

Two kinds of failure, told apart by `is_transient`:
- **The infrastructure** (database or broker unreachable, a timeout): the message is not
  committed, the consumer seeks back and retries after a growing pause, without end, since
  dead-lettering a whole topic during an outage would help nobody. The partition's
  `smm_consumer_failing_since_timestamp_seconds` says since when (alert: SmmConsumerStalled).
- **The message** (a `PermanentError`, an invalid event the handler builds, a bug that one
  record triggers): a batch is applied in halves until the records at fault are alone
  (`apply_or_dead_letter`); each gets `SMM_CONSUMER_MAX_ATTEMPTS` tries, then goes to the
  `.dlq` with its reason, and the rest of the batch is applied. A single-message subscriber
  counts the attempts per offset the same way. When every record of a batch fails alone, the
  cause is not in the records: nothing is dead-lettered, and the batch is retried as above.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from aiokafka.errors import KafkaError
from pydantic import BaseModel, ValidationError
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from shared.errors import validation_summary
from shared.logging import get_logger
from shared.metrics import CONSUMER_FAILING_SINCE, CONSUMER_RETRIES, DLQ_MESSAGES
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
#: Tries of one record whose processing fails for a reason of its own, before its dead letter.
DEFAULT_MAX_ATTEMPTS = 3


def is_transient(exc: BaseException) -> bool:
    """Whether the failure is the infrastructure's (it comes back by itself: retry the same
    message) rather than the message's (retrying cannot help: dead-letter it, in the end)."""
    if isinstance(exc, DEAD_LETTER_ERRORS):
        return False
    if isinstance(exc, ConnectionFailure | KafkaError | httpx.TransportError | TimeoutError):
        return True
    if isinstance(exc, OperationFailure) and exc.code in _UNAVAILABLE_CODES:
        return True
    if isinstance(exc, PyMongoError):
        return exc.timeout or exc.has_error_label("RetryableWriteError")
    return isinstance(exc, OSError)


#: MongoDB error codes that say the server or our access to it is away for now (rotated
#: credentials, a shutdown, a primary stepping down), not that the message is at fault: every
#: message would fail alike, and a batch of one cannot show that by its siblings succeeding.
_UNAVAILABLE_CODES = frozenset(
    {
        6,  # HostUnreachable
        7,  # HostNotFound
        13,  # Unauthorized
        18,  # AuthenticationFailed
        89,  # NetworkTimeout
        91,  # ShutdownInProgress
        189,  # PrimarySteppedDown
        10107,  # NotWritablePrimary
        11600,  # InterruptedAtShutdown
        11602,  # InterruptedDueToReplStateChange
        13435,  # NotPrimaryNoSecondaryOk
        13436,  # NotPrimaryOrSecondary
    }
)


def _pause_before_try(attempt: int, max_pause: float = 2.0) -> float:
    return float(min(max_pause, 0.1 * 2**attempt) * random.uniform(0.5, 1.0))


R = TypeVar("R")


async def apply_or_dead_letter(
    broker: KafkaBroker,
    items: Sequence[tuple[ConsumerRecord[Any, Any], R]],
    apply: Callable[[Sequence[tuple[ConsumerRecord[Any, Any], R]]], Awaitable[None]],
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> None:
    """`apply(items)`, so that a record that cannot be processed holds back none of the others.

    `apply` must be idempotent (the contract asks it of every consumer) and keep the order of
    what it is given: on a failure of the message's own, the batch is applied again in halves,
    down to single records; a single record failing `max_attempts` times goes to the `.dlq`
    with its reason. A transient failure is raised at once (the batch is retried whole, after
    a pause). If no record succeeds alone, the first failure is raised: it is not theirs.
    """
    try:
        await apply(items)
        return
    except Exception as exc:
        if is_transient(exc):
            raise
        first = exc
    failed: list[tuple[ConsumerRecord[Any, Any], Exception]] = []
    if len(items) > 1:
        log.warning(
            "batch failed; applying it in parts to find the records at fault",
            topic=items[0][0].topic,
            records=len(items),
            error=f"{type(first).__name__}: {first}"[:500],
        )
    applied = await _apply_in_parts(items, apply, failed, max_attempts, first)
    if len(items) > 1 and applied == 0:
        raise first
    for record, error in failed:
        await send_to_dlq(broker, record, error)


async def _apply_in_parts(
    items: Sequence[tuple[ConsumerRecord[Any, Any], R]],
    apply: Callable[[Sequence[tuple[ConsumerRecord[Any, Any], R]]], Awaitable[None]],
    failed: list[tuple[ConsumerRecord[Any, Any], Exception]],
    max_attempts: int,
    known: Exception | None = None,
) -> int:
    """Apply halves of a failed batch (recursively); return how many records were applied."""
    if len(items) == 1:
        error = known
        for attempt in range(max_attempts):
            if error is None:
                try:
                    await apply(items)
                    return 1
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    error = exc
            if isinstance(error, DEAD_LETTER_ERRORS) or attempt == max_attempts - 1:
                break
            await asyncio.sleep(_pause_before_try(attempt))
            error = None
        assert error is not None
        failed.append((items[0][0], error))
        return 0
    if known is None:
        try:
            await apply(items)
            return len(items)
        except Exception as exc:
            if is_transient(exc):
                raise
    middle = len(items) // 2
    applied = await _apply_in_parts(items[:middle], apply, failed, max_attempts)
    return applied + await _apply_in_parts(items[middle:], apply, failed, max_attempts)


@dataclass
class _RetryState:
    """Consecutive failures per partition (for the pause before the next try and the
    stalled-consumer gauge) and per record (for a single message's bounded attempts)."""

    max_pause: float
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    failures: dict[tuple[str, int], int] = field(default_factory=dict)
    failing_since: dict[tuple[str, int], float] = field(default_factory=dict)
    attempts: dict[tuple[str, int, int], int] = field(default_factory=dict)

    def pause_after_failure(self, keys: Sequence[tuple[str, int]]) -> float:
        count = 0
        for key in keys:
            count = max(count, self.failures.get(key, 0) + 1)
            self.failures[key] = count
            if key not in self.failing_since:
                self.failing_since[key] = time.time()
                CONSUMER_FAILING_SINCE.labels(key[0], str(key[1])).set(self.failing_since[key])
        return float(min(self.max_pause, 0.2 * 2 ** min(count, 16)) * random.uniform(0.5, 1.0))

    def attempt_failed(self, record: ConsumerRecord[Any, Any]) -> bool:
        """Count a failed attempt at one record; True when it has had all its attempts."""
        key = (record.topic, record.partition, record.offset)
        self.attempts[key] = self.attempts.get(key, 0) + 1
        if self.attempts[key] < self.max_attempts:
            return False
        del self.attempts[key]
        return True

    def succeeded(self, keys: Sequence[tuple[str, int]]) -> None:
        for key in keys:
            self.failures.pop(key, None)
            if self.failing_since.pop(key, None) is not None:
                CONSUMER_FAILING_SINCE.labels(key[0], str(key[1])).set(0)
        for topic, partition in keys:
            for done in [k for k in self.attempts if k[:2] == (topic, partition)]:
                del self.attempts[done]


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
        retry = _RetryState(
            max_pause=settings.retry_backoff_max_seconds,
            max_attempts=settings.consumer_max_attempts,
        )

        def build(msg: Any, /, *, context: ContextRepo) -> DeadLetterMiddleware:
            return cls(msg, context=context, retry=retry)

        return build

    async def consume_scope(
        self, call_next: Callable[[Any], Awaitable[Any]], msg: StreamMessage[Any]
    ) -> Any:
        raw = msg.raw_message
        records: Sequence[ConsumerRecord[Any, Any]] = raw if isinstance(raw, tuple) else (raw,)
        first = records[0]
        partitions = sorted({(record.topic, record.partition) for record in records})
        traceparent = msg.headers.get("traceparent") if len(records) == 1 else None
        with use_traceparent(traceparent):
            try:
                result = await call_next(msg)
            except Exception as exc:
                single = len(records) == 1 and not first.topic.endswith(DLQ_SUFFIX)
                if (
                    single
                    and not is_transient(exc)
                    and (isinstance(exc, DEAD_LETTER_ERRORS) or self._retry.attempt_failed(first))
                ):
                    broker: KafkaBroker = self.context.get("broker")
                    await send_to_dlq(broker, first, exc)
                    self._retry.succeeded(partitions)
                    return None
                pause = self._retry.pause_after_failure(partitions)
                CONSUMER_RETRIES.labels(first.topic).inc()
                log.exception(
                    "processing failed; will retry",
                    topic=first.topic,
                    partition=first.partition,
                    offset=first.offset,
                    records=len(records),
                    transient=is_transient(exc),
                    retry_in_seconds=round(pause, 2),
                )
                await asyncio.sleep(pause)
                raise
        self._retry.succeeded(partitions)
        return result
