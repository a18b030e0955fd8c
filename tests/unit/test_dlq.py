"""Dead-letter reasons and headers, as the contract defines them."""

from __future__ import annotations

import json

import pytest
from aiokafka import ConsumerRecord
from pydantic import ValidationError

from shared.dlq import PermanentError, dead_letter_headers, reason_of
from shared.events import Mention


def _record() -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="smm.mentions.raw.v1",
        partition=2,
        offset=41,
        timestamp=0,
        timestamp_type=0,
        key=b"x:1",
        value=b"{}",
        checksum=None,
        serialized_key_size=3,
        serialized_value_size=2,
        headers=(("content-type", b"application/json"), ("x-error", b"old")),
    )


def test_validation_error_reason_names_the_fields() -> None:
    with pytest.raises(ValidationError) as info:
        Mention.model_validate({"platform": "x"})
    label, text = reason_of(info.value)
    assert label == "invalid_event"
    assert "native_id: Field required" in text


def test_json_and_permanent_reasons() -> None:
    with pytest.raises(json.JSONDecodeError) as info:
        json.loads("{nope")
    assert reason_of(info.value)[0] == "invalid_json"
    assert reason_of(PermanentError("unknown channel"))[0] == "permanent_error"


def test_headers_carry_source_and_reason() -> None:
    headers = dead_letter_headers(_record(), "broken " * 1000)
    assert headers["x-source-topic"] == "smm.mentions.raw.v1"
    assert headers["x-source-partition"] == "2"
    assert headers["x-source-offset"] == "41"
    assert headers["content-type"] == "application/json"
    assert len(headers["x-error"]) == 2000


def test_infrastructure_failures_are_transient_and_the_messages_own_are_not() -> None:
    from aiokafka.errors import KafkaConnectionError
    from pymongo.errors import (
        AutoReconnect,
        DuplicateKeyError,
        OperationFailure,
        ServerSelectionTimeoutError,
    )

    from shared.dlq import is_transient

    for transient in (
        AutoReconnect("primary stepped down"),
        ServerSelectionTimeoutError("no server"),
        KafkaConnectionError(),
        OperationFailure("Authentication failed.", code=18),  # rotated credentials
        OperationFailure("not authorized on smm", code=13),
        OperationFailure("not primary", code=10107),
        TimeoutError(),
        ConnectionResetError(),
    ):
        assert is_transient(transient), transient
    with pytest.raises(ValidationError) as info:
        Mention.model_validate({})
    for own in (
        info.value,
        PermanentError("unknown channel"),
        ValueError("a bug one record triggers"),
        KeyError("x"),
        DuplicateKeyError("E11000"),
        OperationFailure("document too large", code=10334),
    ):
        assert not is_transient(own), own


def test_prose_the_platform_writes_is_cut_to_fit_not_refused() -> None:
    from shared.events import ModerationDecision, PostError, utc_now

    decision = ModerationDecision(
        mention_id="x:1", action="hide", actor="auto", reason="hide: " * 2000, decided_at=utc_now()
    )
    assert len(decision.reason) == 2000
    assert decision.reason.endswith("…")
    assert ModerationDecision.model_validate_json(decision.to_bytes()).reason == decision.reason
    assert len(PostError(code="x", message="m" * 10_000, retryable=False).message) == 4000
