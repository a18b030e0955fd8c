"""Review inbox vocabulary, canned replies, and the API's input validation (no servers)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from services.moderation.app import build_app
from services.moderation.domain.classifiers import TextItem
from services.moderation.domain.replies import (
    CannedReply,
    TemplateError,
    placeholders_of,
    render,
)
from services.moderation.domain.review import (
    DecisionRequest,
    InvalidCursorError,
    QueuePosition,
    reply_post_id,
)
from services.moderation.domain.rules import PRIORITIES, PRIORITY_RANK
from services.moderation.inbox import Inbox
from services.moderation.pipeline import ModerationPublishers
from services.moderation.storage import QUEUE_ORDER
from shared.auth import TokenAuthority
from shared.events import Classification, ModerationDecision
from shared.settings import Settings, TokenGrant


def test_queue_order_is_priority_then_age_then_id() -> None:
    assert [PRIORITY_RANK[p] for p in PRIORITIES] == [0, 1, 2, 3]
    assert QUEUE_ORDER == [("rank", -1), ("created_at", 1), ("_id", 1)]
    items = [
        ("normal", 3, "c"),
        ("urgent", 5, "a"),
        ("normal", 1, "b"),
        ("low", 0, "d"),
        ("urgent", 5, "0"),
    ]
    ordered = sorted(items, key=lambda i: (-PRIORITY_RANK[i[0]], i[1], i[2]))
    assert [i[2] for i in ordered] == ["0", "a", "b", "c", "d"]


def test_cursor_round_trip_and_tampering() -> None:
    position = QueuePosition(
        rank=2, created_at=datetime(2026, 11, 22, 9, tzinfo=UTC), mention_id="x:1"
    )
    assert QueuePosition.decode(position.encode()) == position
    for bad in ("nonsense", "e30", position.encode()[:-4] + "AAAA"):
        with pytest.raises(InvalidCursorError):
            QueuePosition.decode(bad)


def test_decision_requests_need_a_reason_and_a_reply_only_for_replies() -> None:
    DecisionRequest.model_validate({"action": "hide", "reason": "spam link"})
    invalid = [
        {"action": "hide", "reason": "   "},
        {"action": "hide"},
        {"action": "delete", "reason": "x"},
        {"action": "reply", "reason": "x"},
        {"action": "approve", "reason": "x", "reply": {"text": "hi"}},
        {"action": "reply", "reason": "x", "reply": {"text": "hi", "canned_reply_id": "a"}},
        {"action": "hide", "reason": "x", "actor": "someone-else"},
    ]
    for body in invalid:
        with pytest.raises(ValidationError):
            DecisionRequest.model_validate(body)


def test_reply_post_id_is_stable_per_mention() -> None:
    assert reply_post_id("x:1") == reply_post_id("x:1")
    assert reply_post_id("x:1") != reply_post_id("x:2")
    assert reply_post_id("x:1").startswith("reply-")


def test_canned_replies_render_known_placeholders_only() -> None:
    template = "Hallo {author}, danke! Ihr {brand}-Team ({{Service}})"
    assert placeholders_of(template) == ["author", "brand"]
    text = render(template, {"author": "{brand} Fan", "brand": "Röstwerk"})
    assert text == "Hallo {brand} Fan, danke! Ihr Röstwerk-Team ({Service})"  # values are inert
    for bad in ("Hi {nme}", "Hi {author.__class__}", "Hi {author!r}", "Hi {author:>10}", "Hi {"):
        with pytest.raises(TemplateError):
            placeholders_of(bad)
    with pytest.raises(ValidationError, match="unknown placeholder"):
        CannedReply(id="a", language="de", title="t", text="Hallo {kunde}")
    with pytest.raises(ValidationError):
        CannedReply(id="a", language="deu", title="t", text="Hallo")


def test_named_tokens_are_the_actor_of_audit_entries() -> None:
    settings = Settings(
        api_tokens={
            "reviewer-alice-token": TokenGrant(user="alice", scopes=["review:write"]),
            "anonymous-writer-1": ["review:write"],
        }
    )
    authority = TokenAuthority(settings)
    alice = authority.authenticate("Bearer reviewer-alice-token")
    assert alice is not None
    assert alice.id == "alice"
    assert alice.has("review:write")
    other = authority.authenticate("Bearer anonymous-writer-1")
    assert other is not None
    assert other.id.startswith("token-")
    with pytest.raises(ValidationError, match="unknown scopes"):
        Settings(api_tokens={"reviewer-bob-token": {"user": "bob", "scopes": ["delete"]}})


class FakeSuite:
    """Stands in for the trained classifiers: positive when the text says so."""

    model_version = "fake-2"

    def classify(self, items: Sequence[TextItem]) -> list[Classification]:
        return [
            Classification(
                language=item.lang,
                sentiment="positive" if "gut" in item.text else "neutral",
                sentiment_score=0.5 if "gut" in item.text else 0.0,
                toxicity=0.0,
                spam=0.0,
                intent="other",
                model_version=self.model_version,
            )
            for item in items
        ]


@pytest.fixture
def api() -> TestClient:
    """The app without its lifespan: endpoints that refuse input never reach a server."""
    settings = Settings(admin_token="unit-admin-token", moderation_classify_max_items=3)
    app = build_app(settings, suite=FakeSuite())  # type: ignore[arg-type]
    return TestClient(app, headers={"Authorization": "Bearer unit-admin-token"})


def test_classify_uses_the_suite_in_order_and_limits_batches(api: TestClient) -> None:
    answer = api.post("/v1/classify", json={"items": [{"text": "gut"}, {"text": "na ja"}]})
    assert answer.status_code == 200
    body = answer.json()
    assert [r["sentiment"] for r in body["results"]] == ["positive", "neutral"]
    assert body["model_version"] == "fake-2"
    too_many = api.post("/v1/classify", json={"items": [{"text": "a"}] * 4})
    assert too_many.status_code == 413
    assert api.post("/v1/classify", json={"items": [{"text": "a", "x": 1}]}).status_code == 422
    assert api.post("/v1/classify", content=b"{not json").status_code == 400


@pytest.mark.parametrize(
    ("method", "url", "body", "code"),
    [
        ("GET", "/v1/review?intent=gossip", None, "invalid_request"),
        ("GET", "/v1/review?platform=myspace", None, "invalid_request"),
        ("GET", "/v1/review?language=deu", None, "invalid_request"),
        ("GET", "/v1/review?limit=1000", None, "invalid_request"),
        ("GET", "/v1/review?tracker_id=%24gt", None, "invalid_request"),
        ("GET", "/v1/review?cursor=abc", None, "invalid_cursor"),
        ("POST", "/v1/review/%24where/claim", None, "invalid_request"),
        ("POST", "/v1/review/x:1/decision", {"action": "hide"}, "invalid_request"),
        ("PUT", "/v1/rules/roestwerk", {"patterns": [{"pattern": r"(a)\1"}]}, "invalid_rules"),
        ("PUT", "/v1/rules/roestwerk", {"follower_threshold": -1}, "invalid_rules"),
        ("PUT", "/v1/rules/roestwerk", {"tracker_id": "other"}, "invalid_request"),
        ("PUT", "/v1/rules/roestwerk", ["not", "an", "object"], "invalid_request"),
        ("PUT", "/v1/canned-replies/a", {"id": "b", "language": "de"}, "invalid_request"),
    ],
)
def test_bad_input_is_refused_with_a_reason(
    api: TestClient, method: str, url: str, body: object, code: str
) -> None:
    response = api.request(method, url, json=body)
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]


def test_writes_need_the_right_scope() -> None:
    settings = Settings(api_tokens={"only-a-reader-1": ["read"]})
    client = TestClient(build_app(settings, suite=FakeSuite()))  # type: ignore[arg-type]
    assert client.post("/v1/review/x:1/claim").status_code == 401
    forbidden = client.put(
        "/v1/rules/a", json={}, headers={"Authorization": "Bearer only-a-reader-1"}
    )
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "forbidden"


class MemoryOutbox:
    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.entries = {entry["_id"]: entry for entry in entries}

    async def older_than(self, moment: datetime, limit: int = 100) -> list[dict[str, Any]]:
        return list(self.entries.values())

    async def remove(self, event_id: str) -> None:
        self.entries.pop(event_id, None)


class MemoryReview:
    def __init__(self, items: dict[str, dict[str, Any]]) -> None:
        self.items = items

    async def get(self, mention_id: str) -> dict[str, Any] | None:
        return self.items.get(mention_id)


class SentEvents:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def publish(self, event: Any, key: str) -> None:
        self.sent.append((type(event).__name__, key))


def _stored_decision(mention_id: str) -> dict[str, Any]:
    event = ModerationDecision(
        mention_id=mention_id,
        action="approve",
        actor="alice",
        reason="fine",
        decided_at=datetime(2026, 11, 22, 9, tzinfo=UTC),
    )
    return {"event": event.model_dump(mode="json"), "command": None}


async def test_outbox_sweep_publishes_applied_decisions_and_drops_lost_ones() -> None:
    applied, lost = _stored_decision("x:1"), _stored_decision("x:2")
    outbox = MemoryOutbox(
        [
            {"_id": applied["event"]["event_id"], "mention_id": "x:1", "decision": applied},
            {"_id": lost["event"]["event_id"], "mention_id": "x:2", "decision": lost},
        ]
    )
    review = MemoryReview(
        {"x:1": {"decision": applied}, "x:2": {"decision": None}}  # x:2 lost its lease
    )
    sent = SentEvents()
    inbox = Inbox(
        review=review,  # type: ignore[arg-type]
        mentions=None,  # type: ignore[arg-type]
        audit=None,  # type: ignore[arg-type]
        outbox=outbox,  # type: ignore[arg-type]
        canned=None,  # type: ignore[arg-type]
        rules=None,  # type: ignore[arg-type]
        out=ModerationPublishers(sent, sent, sent, sent),  # type: ignore[arg-type]
        lease=timedelta(minutes=5),
    )
    assert await inbox.republish_stale() == 1
    assert sent.sent == [("ModerationDecision", "x:1")]
    assert outbox.entries == {}
