"""Every event model: a JSON round trip keeps it equal; invalid input is refused readably."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from shared.events import (
    EVENT_SCHEMAS,
    Alert,
    ClassifiedMention,
    EngagementObservation,
    KpiSnapshot,
    Mention,
    ModerationDecision,
    PostEvent,
    ScheduleCommand,
    json_schemas,
    post_command_adapter,
)

NOW = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)

MENTION: dict[str, Any] = {
    "mention_id": "mastodon:1098",
    "platform": "mastodon",
    "native_id": "1098",
    "url": "https://social.example/@lena/1098",
    "text": "Der neue Hafer Flat White von Röstwerk ist richtig gut!",
    "lang": "de",
    "author": {"id": "77", "handle": "@lena", "display_name": "Lena", "followers": 812},
    "created_at": "2026-03-29T01:15:00+01:00",
    "ingested_at": "2026-03-29T00:16:02Z",
    "source": "poll",
    "tracker_ids": ["roestwerk"],
    "in_reply_to": None,
    "metrics": {"likes": 4, "shares": 1, "comments": 0, "views": None},
}
CLASSIFICATION = {
    "language": "de",
    "sentiment": "positive",
    "sentiment_score": 0.8,
    "toxicity": 0.01,
    "spam": 0.02,
    "intent": "praise",
    "labels": ["product"],
    "model_version": "test-1",
}

VALID: dict[str, dict[str, Any]] = {
    "Mention": MENTION,
    "ClassifiedMention": {
        **MENTION,
        "classification": CLASSIFICATION,
        "action": "approve",
        "priority": "normal",
    },
    "ModerationDecision": {
        "mention_id": "mastodon:1098",
        "action": "reply",
        "actor": "reviewer-3",
        "reason": "thanked the customer",
        "reply_post_id": "post-55",
        "decided_at": "2026-03-29T00:20:00Z",
    },
    "Correction": {
        "mention_id": "mastodon:1098",
        "tracker_ids": ["roestwerk"],
        "actor": "rita@example.com",
        "sentiment": "negative",
        "original_sentiment": "positive",
        "original_labels": [],
        "original_intent": "praise",
        "model_version": "suite-1",
        "corrected_at": "2026-03-29T00:21:00Z",
    },
    "PostCommand": {
        "command": "schedule",
        "post_id": "post-55",
        "channel_id": "mastodon-main",
        "text": "Danke dir, Lena!",
        "publish_at": "2026-03-29T02:30:00+02:00",
        "timezone": "Europe/Berlin",
        "in_reply_to_mention_id": "mastodon:1098",
        "idempotency_key": "reply-mastodon-1098",
    },
    "PostEvent": {
        "post_id": "post-55",
        "status": "published",
        "channel_id": "mastodon-main",
        "platform": "mastodon",
        "native_post_id": "1099",
        "url": "https://social.example/@roestwerk/1099",
        "published_at": "2026-03-29T00:30:01Z",
        "attempt": 1,
        "in_reply_to_mention_id": "mastodon:1098",
    },
    "EngagementObservation": {
        "post_id": "post-55",
        "observed_at": "2026-03-29T01:30:00Z",
        "likes": 12,
        "comments": 2,
        "shares": 1,
        "saves": 0,
        "impressions": 900,
        "reach": 640,
        "followers": 5120,
    },
    "KpiSnapshot": {
        "tracker_id": "roestwerk",
        "group": "kaffee",
        "from": "2026-03-28T00:00:00Z",
        "to": "2026-03-29T00:00:00Z",
        "mention_volume": 3,
        "potential_reach": 1200,
        "sentiment": {"positive": 2, "neutral": 0, "negative": 1},
        "net_sentiment": 33.333,
        "share_of_voice": 60.0,
    },
    "Alert": {
        "tracker_id": "roestwerk",
        "kind": "negative_spike",
        "severity": "critical",
        "message": "14 negative mentions in the last hour",
        "observed": 14,
        "threshold": 10,
    },
}


def _validate(name: str, data: Any) -> BaseModel:
    model = EVENT_SCHEMAS[name]
    if isinstance(model, TypeAdapter):
        result: BaseModel = model.validate_python(data)
        return result
    return model.model_validate(data)


@pytest.mark.parametrize("name", sorted(EVENT_SCHEMAS))
def test_json_round_trip_keeps_the_event(name: str) -> None:
    event = _validate(name, VALID[name])
    wire = event.model_dump_json()
    again = _validate(name, json.loads(wire))
    assert again == event
    assert isinstance(event.event_id, uuid.UUID)  # type: ignore[attr-defined]
    assert event.schema_version == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(EVENT_SCHEMAS))
def test_json_schema_accepts_what_the_model_writes(name: str) -> None:
    schema = json_schemas()[name]
    jsonschema.Draft202012Validator.check_schema(schema)
    wire = json.loads(_validate(name, VALID[name]).model_dump_json())
    jsonschema.validate(wire, schema)


def test_times_are_utc_on_the_wire() -> None:
    mention = Mention.model_validate(MENTION)
    assert mention.created_at == datetime(2026, 3, 29, 0, 15, tzinfo=UTC)
    assert mention.created_at.utcoffset() == timedelta(0)
    assert json.loads(mention.model_dump_json())["created_at"] == "2026-03-29T00:15:00Z"


def test_kpi_window_uses_from_and_to_on_the_wire() -> None:
    kpi = KpiSnapshot.model_validate(VALID["KpiSnapshot"])
    wire = json.loads(kpi.model_dump_json())
    assert wire["from"] == "2026-03-28T00:00:00Z"
    assert "window_from" not in wire


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    mention = Mention.model_validate({**MENTION, "added_later": {"x": 1}})
    assert "added_later" not in mention.model_dump()


def _errors(model: Any, data: dict[str, Any]) -> str:
    adapter = model if isinstance(model, TypeAdapter) else TypeAdapter(model)
    with pytest.raises(ValidationError) as info:
        adapter.validate_python(data)
    return str(info.value)


@pytest.mark.parametrize(
    ("model", "change", "expected"),
    [
        (Mention, {"created_at": "2026-03-29T01:15:00"}, "timezone info"),
        (Mention, {"mention_id": "x:1098"}, "mention_id must be 'mastodon:1098'"),
        (Mention, {"platform": "myspace"}, "platform"),
        (Mention, {"lang": "deu"}, "lang"),
        (Mention, {"author": {"id": "$where"}}, "author.id"),
        (Mention, {"author": {"id": "a", "followers": -3}}, "followers"),
        (Mention, {"source": "carrier-pigeon"}, "source"),
        (Mention, {"url": "javascript:alert(1)"}, "url"),
        (Mention, {"text": "x" * 40_001}, "text"),
        (ModerationDecision, {"action": "delete"}, "action"),
        (EngagementObservation, {"mention_id": "x:1"}, "exactly one of post_id and mention_id"),
        (PostEvent, {"status": "published", "published_at": None}, "needs published_at"),
        (PostEvent, {"status": "failed"}, "needs an error"),
        (KpiSnapshot, {"to": "2026-03-27T00:00:00Z"}, "'to' must be after 'from'"),
        (Alert, {"details": {"$gt": 1}}, "must not start with '$'"),
    ],
)
def test_invalid_input_is_refused_with_a_readable_reason(
    model: type[BaseModel], change: dict[str, Any], expected: str
) -> None:
    name = model.__name__
    assert expected in _errors(model, {**VALID[name], **change})


def test_negative_mention_cannot_be_hidden_automatically() -> None:
    data = {
        **VALID["ClassifiedMention"],
        "classification": {**CLASSIFICATION, "sentiment": "negative", "sentiment_score": -0.7},
        "action": "hide",
    }
    assert "never hidden automatically" in _errors(ClassifiedMention, data)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"timezone": "Europe/Atlantis"}, "unknown IANA timezone"),
        ({"cron": "0 9 * * 1"}, "at most one of publish_at, rrule, cron"),
        ({"command": "publish-twice"}, "command"),
        ({"text": ""}, "text"),
    ],
)
def test_post_commands_are_validated(change: dict[str, Any], expected: str) -> None:
    assert expected in _errors(post_command_adapter, {**VALID["PostCommand"], **change})


def test_post_command_is_discriminated_by_command() -> None:
    command = post_command_adapter.validate_python(VALID["PostCommand"])
    assert isinstance(command, ScheduleCommand)
    assert command.publish_at == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    cancel = post_command_adapter.validate_json(b'{"command": "cancel", "post_id": "p1"}')
    assert cancel.command == "cancel"


def test_other_offsets_are_normalised_to_utc() -> None:
    event = EngagementObservation(
        post_id="p", observed_at=datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=5)))
    )
    assert event.observed_at == datetime(2026, 1, 1, 7, tzinfo=UTC)
    assert NOW.tzinfo is UTC
