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
