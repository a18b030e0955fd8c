"""Helpers for integration tests on the real broker and database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from fastapi import FastAPI

T = TypeVar("T")


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    """Run a service app's lifespan (broker, database, consumers) around the block."""
    async with app.router.lifespan_context(app):
        yield app


async def eventually(
    probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], timeout: float = 30.0
) -> T:
    """Poll `probe` until `ok(result)`; fail with the last result after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    result = await probe()
    while not ok(result):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met after {timeout}s; last result: {result!r}")
        await asyncio.sleep(0.2)
        result = await probe()
    return result


async def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    """Write (key, value) pairs with acks=all, in order."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(
                topic, value, key=key, headers=[("content-type", b"application/json")]
            )
    finally:
        await producer.stop()


async def consume(
    bootstrap: str, topic: str, count: int, timeout: float = 30.0
) -> list[ConsumerRecord[Any, Any]]:
    """Read `count` records from the start of `topic` (no consumer group)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    records: list[ConsumerRecord[Any, Any]] = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for partition_records in batch.values():
                records.extend(partition_records)
    finally:
        await consumer.stop()
    return records
