"""Every event the services exchange on Kafka, as pydantic v2 models.

These models are the contract (`docs/contract.md`): consumers validate with them on the way in,
producers serialise with them on the way out, and `smm schemas export` writes their JSON Schema
for other systems. Readers are tolerant (unknown fields are ignored) so a producer can add a
field without breaking anyone; changing a field's meaning needs a new `.v2` topic instead.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


#: A timezone-aware datetime, normalised to UTC (naive datetimes are rejected).
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
#: An identifier: printable, no leading `$` (so it can never become a MongoDB operator).
Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^$\s][^\s]*$")
]
ShortText = Annotated[str, StringConstraints(max_length=1_000)]


def _clip_to(limit: int) -> BeforeValidator:
    def clip(value: Any) -> Any:
        if isinstance(value, str) and len(value) > limit:
            return value[: limit - 1] + "…"
        return value

    return BeforeValidator(clip)


#: Prose the platform writes itself (a decision's reason, an error message): cut to fit with
#: an ellipsis instead of failing, so a long text can never make an event invalid and stall
#: the consumer that builds it (hard limits stay: the result still fits the field).
Reason = Annotated[str, _clip_to(2_000), StringConstraints(max_length=2_000)]
ErrorMessage = Annotated[str, _clip_to(4_000), StringConstraints(max_length=4_000)]
HttpUrlText = Annotated[str, StringConstraints(max_length=2_048, pattern=r"^https?://\S+$")]
Count = Annotated[int, Field(ge=0)]

Platform = Literal[
    "x",
    "facebook",
    "instagram",
    "threads",
    "linkedin",
    "tiktok",
    "youtube",
    "mastodon",
    "bluesky",
    "reddit",
    "rss",
    "blog",
    "news",
    "review",
    "forum",
    "generic",
]
PLATFORMS: tuple[str, ...] = Platform.__args__  # type: ignore[attr-defined]
MentionSource = Literal["webhook", "poll", "import", "api"]
Sentiment = Literal["positive", "neutral", "negative"]
Intent = Literal["complaint", "question", "praise", "purchase_intent", "job", "other"]
RoutingAction = Literal["approve", "review", "hide"]
Priority = Literal["low", "normal", "high", "urgent"]
DecisionAction = Literal["approve", "hide", "escalate", "reply"]
PostStatus = Literal[
    "draft",
    "awaiting_approval",
    "scheduled",
    "publishing",
    "published",
    "failed",
    "cancelled",
]


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (the only kind of time on the wire)."""
    return datetime.now(UTC)


class Model(BaseModel):
    """Base for every nested shape: tolerant reader, aliases on the wire."""

    model_config = ConfigDict(
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        str_strip_whitespace=False,
    )


class Event(Model):
    """Fields every event carries (contract: `event_id`, `schema_version`, `occurred_at`)."""

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    schema_version: int = Field(default=1, ge=1)
    occurred_at: UtcDatetime = Field(default_factory=utc_now)

    def to_bytes(self) -> bytes:
        """The UTF-8 JSON value written to Kafka."""
        return self.model_dump_json().encode()


# --- Mentions ------------------------------------------------------------------------------


class Author(Model):
    id: Identifier
    handle: ShortText | None = None
    display_name: ShortText | None = None
    followers: Count | None = None


class MentionMetrics(Model):
    likes: Count | None = None
    shares: Count | None = None
    comments: Count | None = None
    views: Count | None = None


def mention_id_of(platform: str, native_id: str) -> str:
    """The stable id of a post on a platform: the same post seen twice is one mention."""
    return f"{platform}:{native_id}"


class MentionContent(Model):
    """What a source says about a post; ingest adds the rest to make it a Mention."""

    platform: Platform
    native_id: Identifier
    url: HttpUrlText | None = None
    text: Annotated[str, StringConstraints(max_length=40_000)]
    lang: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")] | None = None
    author: Author
    created_at: UtcDatetime
    in_reply_to: Identifier | None = None
    metrics: MentionMetrics = Field(default_factory=MentionMetrics)


class Mention(MentionContent, Event):
    """A post on the web that speaks about one or more tracked brands."""

    mention_id: Identifier
    ingested_at: UtcDatetime
    source: MentionSource
    tracker_ids: list[Identifier] = Field(default_factory=list, max_length=1_000)

    @model_validator(mode="after")
    def _id_matches_platform_and_native_id(self) -> Self:
        expected = mention_id_of(self.platform, self.native_id)
        if self.mention_id != expected:
            raise ValueError(f"mention_id must be '{expected}' (platform:native_id)")
        return self


class Classification(Model):
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")] | None
    sentiment: Sentiment
    sentiment_score: Annotated[float, Field(ge=-1.0, le=1.0)]
    toxicity: Annotated[float, Field(ge=0.0, le=1.0)]
    spam: Annotated[float, Field(ge=0.0, le=1.0)]
    intent: Intent
    labels: list[ShortText] = Field(default_factory=list, max_length=100)
    model_version: ShortText


class ClassifiedMention(Mention):
    """A mention with its classification and the automatic routing decision."""

    classification: Classification
    action: RoutingAction
    priority: Priority

    @model_validator(mode="after")
    def _negative_or_toxic_never_hidden_unseen(self) -> Self:
        c = self.classification
        if self.action == "hide" and (c.sentiment == "negative" or "toxic" in c.labels):
            raise ValueError("negative or toxic mentions go to review, never hidden automatically")
        return self


class ModerationDecision(Event):
    """What a person (or the automatic rules) decided about a mention."""

    mention_id: Identifier
    action: DecisionAction
    actor: Identifier  # a user id, or "auto"
    reason: Reason = ""
    reply_post_id: Identifier | None = None
    decided_at: UtcDatetime
    #: The mention's trackers, so consumers need no lookup to attribute the decision.
    tracker_ids: list[Identifier] = Field(default_factory=list, max_length=1_000)

    @model_validator(mode="after")
    def _reply_names_its_post(self) -> Self:
        if self.action == "reply" and not self.reply_post_id:
            raise ValueError("a 'reply' decision needs reply_post_id")
        return self


class Correction(Event):
    """A reviewer's correction of a mention's classification: training and quality data.

    Keyed by mention id; each event carries the whole correction so far (a field not
    corrected is null), so the latest event of a mention is its truth.
    """

    mention_id: Identifier
    tracker_ids: list[Identifier] = Field(default_factory=list, max_length=1_000)
    actor: Identifier
    sentiment: Sentiment | None = None
    labels: list[ShortText] | None = Field(default=None, max_length=100)
    intent: Intent | None = None
    note: Reason | None = None
    #: What the classifiers said, and which version of them said it.
    original_sentiment: Sentiment
    original_labels: list[ShortText] = Field(default_factory=list, max_length=100)
    original_intent: Intent
    model_version: ShortText
    corrected_at: UtcDatetime


# --- Posts ---------------------------------------------------------------------------------


def _valid_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA timezone '{name}'") from exc
    return name


TimezoneName = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(_valid_timezone)
]


class _Timing(Model):
    """When a post goes out: once (`publish_at`), recurring (`rrule` or `cron`), or queued."""

    publish_at: UtcDatetime | None = None
    rrule: Annotated[str, StringConstraints(min_length=1, max_length=1_000)] | None = None
    cron: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    timezone: TimezoneName = "UTC"

    @model_validator(mode="after")
    def _one_timing(self) -> Self:
        given = [n for n in ("publish_at", "rrule", "cron") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"give at most one of publish_at, rrule, cron (got {given})")
        return self


class ScheduleCommand(_Timing, Event):
    """Create a post (or a reply). No timing at all means: the channel's next free slot."""

    command: Literal["schedule"] = "schedule"
    post_id: Identifier
    channel_id: Identifier
    text: Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
    media: list[HttpUrlText] = Field(default_factory=list, max_length=20)
    in_reply_to_mention_id: Identifier | None = None
    requires_approval: bool = False
    idempotency_key: Identifier | None = None
    actor: Identifier = "system"


class RescheduleCommand(_Timing, Event):
    command: Literal["reschedule"] = "reschedule"
    post_id: Identifier
    actor: Identifier = "system"


class CancelCommand(Event):
    command: Literal["cancel"] = "cancel"
    post_id: Identifier
    reason: Reason = ""
    actor: Identifier = "system"


class ApproveCommand(Event):
    command: Literal["approve"] = "approve"
    post_id: Identifier
    actor: Identifier = "system"


PostCommand = Annotated[
    ScheduleCommand | RescheduleCommand | CancelCommand | ApproveCommand,
    Field(discriminator="command"),
]
post_command_adapter: TypeAdapter[PostCommand] = TypeAdapter(PostCommand)


class PostError(Model):
    code: ShortText
    message: ErrorMessage
    retryable: bool


class PostEvent(Event):
    """A post changed state; one event per change (contract: the post's whole life is here)."""

    post_id: Identifier
    status: PostStatus
    channel_id: Identifier
    platform: Platform | None = None
    native_post_id: ShortText | None = None
    url: HttpUrlText | None = None
    scheduled_for: UtcDatetime | None = None
    published_at: UtcDatetime | None = None
    attempt: Count = 0
    error: PostError | None = None
    in_reply_to_mention_id: Identifier | None = None

    @model_validator(mode="after")
    def _published_has_time(self) -> Self:
        if self.status == "published" and self.published_at is None:
            raise ValueError("a published post needs published_at")
        if self.status == "failed" and self.error is None:
            raise ValueError("a failed post needs an error")
        return self


# --- Engagement and KPIs ------------------------------------------------------------------


class EngagementObservation(Event):
    """Counters of one post at one time. A later observation supersedes earlier ones."""

    post_id: Identifier | None = None
    mention_id: Identifier | None = None
    channel_id: Identifier | None = None
    observed_at: UtcDatetime
    likes: Count = 0
    comments: Count = 0
    shares: Count = 0
    saves: Count = 0
    impressions: Count = 0
    reach: Count = 0
    followers: Count | None = None

    @model_validator(mode="after")
    def _one_subject(self) -> Self:
        if (self.post_id is None) == (self.mention_id is None):
            raise ValueError("give exactly one of post_id and mention_id")
        return self


class SentimentCounts(Model):
    positive: Count = 0
    neutral: Count = 0
    negative: Count = 0


class ResponseTime(Model):
    avg: Annotated[float, Field(ge=0)] | None = None
    median: Annotated[float, Field(ge=0)] | None = None


class FollowerGrowth(Model):
    absolute: int | None = None
    percent: float | None = None


class KpiSnapshot(Event):
    """A tracker's KPIs over [`from`, `to`), by mention event time (formulas: contract)."""

    tracker_id: Identifier
    group: Identifier | None = None
    window_from: UtcDatetime = Field(alias="from")
    window_to: UtcDatetime = Field(alias="to")
    mention_volume: Count = 0
    potential_reach: Count = 0
    sentiment: SentimentCounts = Field(default_factory=SentimentCounts)
    net_sentiment: float | None = None
    share_of_voice: float | None = None
    engagements: Count = 0
    impressions: Count = 0
    reach: Count = 0
    engagement_rate_by_reach: float | None = None
    engagement_rate_by_impressions: float | None = None
    response_time_seconds: ResponseTime = Field(default_factory=ResponseTime)
    response_rate: float | None = None
    follower_growth: FollowerGrowth = Field(default_factory=FollowerGrowth)
    #: The mention volume by platform (the platform mix), and the two counts behind
    #: `response_rate`: counted mentions routed to review, and those of them with a reply.
    platforms: dict[Platform, Count] = Field(default_factory=dict)
    review_volume: Count = 0
    replied_volume: Count = 0

    @model_validator(mode="after")
    def _window_ordered(self) -> Self:
        if self.window_to <= self.window_from:
            raise ValueError("'to' must be after 'from'")
        return self


AlertKind = Literal["negative_spike", "urgent_mention", "volume_spike"]


class Alert(Event):
    """Something a person should look at now."""

    tracker_id: Identifier
    kind: AlertKind
    severity: Literal["info", "warning", "critical"] = "warning"
    message: Reason
    window_start: UtcDatetime | None = None
    window_end: UtcDatetime | None = None
    observed: float | None = None
    threshold: float | None = None
    mention_id: Identifier | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    @field_validator("details")
    @classmethod
    def _no_operator_keys(cls, details: dict[str, Any]) -> dict[str, Any]:
        if any(str(key).startswith("$") for key in details):
            raise ValueError("detail keys must not start with '$'")
        return details


#: Name → model or adapter, for JSON Schema export and the unit tests.
EVENT_SCHEMAS: dict[str, type[BaseModel] | TypeAdapter[Any]] = {
    "Mention": Mention,
    "ClassifiedMention": ClassifiedMention,
    "ModerationDecision": ModerationDecision,
    "Correction": Correction,
    "PostCommand": post_command_adapter,
    "PostEvent": PostEvent,
    "EngagementObservation": EngagementObservation,
    "KpiSnapshot": KpiSnapshot,
    "Alert": Alert,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema (draft 2020-12) of every event, as other systems validate against it."""
    schemas: dict[str, dict[str, Any]] = {}
    for name, model in EVENT_SCHEMAS.items():
        if isinstance(model, TypeAdapter):
            schema = model.json_schema(by_alias=True)
            schema.setdefault("title", name)
        else:
            schema = model.model_json_schema(by_alias=True)
        schemas[name] = schema
    return schemas
