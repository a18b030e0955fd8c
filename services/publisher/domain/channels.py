"""A channel: one of our accounts on a network, and how and when we may post to it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, field_validator, model_validator

from services.publisher.domain.text_rules import PUBLISH_PLATFORMS
from services.publisher.domain.timing import Slot, Slots
from shared.events import HttpUrlText, Identifier, Model, TimezoneName

ChannelId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
]
ChannelState = Literal["active", "needs_reauth"]
PublishPlatform = Literal["x", "mastodon", "bluesky", "facebook", "linkedin", "generic"]
assert set(PublishPlatform.__args__) == set(PUBLISH_PLATFORMS)  # type: ignore[attr-defined]

#: Only a store meant for channel secrets, never an arbitrary environment variable (which
#: would let a `channels:write` token send `SMM_ADMIN_TOKEN` or the database URI anywhere).
CHANNEL_SECRET_ENV_PREFIX = "SMM_CHANNEL_SECRET_"  # noqa: S105 - a name prefix, not a secret
_SETTINGS_REF = re.compile(r"^settings:[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
_ENV_REF = re.compile(rf"^env:{CHANNEL_SECRET_ENV_PREFIX}[A-Z0-9_]{{1,100}}$")
CREDENTIAL_REF_FORMS = (
    "`settings:NAME` (a key of SMM_PUBLISHER_CREDENTIALS) or "
    f"`env:{CHANNEL_SECRET_ENV_PREFIX}<NAME>` (an environment variable with that prefix)"
)


def is_credential_ref(reference: str) -> bool:
    """True for the two forms a channel may reference a secret by (nothing else is read)."""
    return bool(_SETTINGS_REF.match(reference) or _ENV_REF.match(reference))


def _credential_ref(reference: str) -> str:
    if not is_credential_ref(reference):
        raise ValueError(f"a secret reference must be {CREDENTIAL_REF_FORMS}")
    return reference


#: The secret itself is never stored, returned or logged.
CredentialRef = Annotated[str, StringConstraints(max_length=200), AfterValidator(_credential_ref)]

#: Where each network's API lives. X, Facebook and LinkedIn have one API host, which a
#: channel cannot change (an operator can, with SMM_PUBLISHER_API_BASE_URLS, for tests or an
#: egress proxy); Mastodon instances, a Bluesky PDS and a webhook are wherever the channel says.
DEFAULT_API_BASE: dict[str, str | None] = {
    "x": "https://api.x.com",
    "mastodon": None,  # every instance is its own server: the channel must say which
    "bluesky": "https://bsky.social",
    "facebook": "https://graph.facebook.com/v21.0",
    "linkedin": "https://api.linkedin.com",
    "generic": None,  # the webhook URL
}
#: The networks whose channels may name their own API server.
SELF_HOSTED: frozenset[str] = frozenset({"mastodon", "bluesky", "generic"})


class RateLimit(Model):
    """At most `max_posts` per `per_seconds` on this channel, across all replicas."""

    max_posts: int = Field(ge=1, le=100_000)
    per_seconds: int = Field(ge=1, le=86_400)


class ChannelSettings(Model):
    """The fields a client may set on create and change with PATCH."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    timezone: TimezoneName = "UTC"
    slots: list[Slot] = Field(default_factory=list, max_length=200)
    rate_limit: RateLimit | None = None
    approval_required: bool = False
    #: Lets the author of a post approve it (four eyes is the default).
    allow_self_approval: bool = False
    #: The trackers (brands) whose mentions this channel may answer; with none here nor in
    #: SMM_METRICS_CHANNEL_TRACKERS, the channel answers any mention of its network.
    tracker_ids: list[Identifier] = Field(default_factory=list, max_length=1_000)
    credential_ref: CredentialRef | None = None
    #: Only for Mastodon, Bluesky (a PDS) and webhooks; changing it needs a new credential_ref.
    api_base_url: HttpUrlText | None = None
    #: Signing secret of a generic webhook channel (same reference syntax as credentials).
    signing_secret_ref: CredentialRef | None = None

    @field_validator("slots")
    @classmethod
    def _distinct_slots(cls, slots: list[Slot]) -> list[Slot]:
        return Slots(slots=slots).slots


class ChannelIn(ChannelSettings):
    """Body of `POST /v1/channels`."""

    id: ChannelId
    platform: PublishPlatform
    #: The account on the network: Mastodon/X user id, Facebook page id, LinkedIn author URN,
    #: Bluesky DID, or a label for a webhook.
    account: Annotated[str, StringConstraints(min_length=1, max_length=300)]

    @model_validator(mode="after")
    def _reachable(self) -> ChannelIn:
        if self.api_base_url is not None and self.platform not in SELF_HOSTED:
            raise ValueError(
                f"api_base_url cannot be set for {self.platform}: its API host is fixed "
                f"({DEFAULT_API_BASE[self.platform]})"
            )
        if self.api_base_url is None and DEFAULT_API_BASE[self.platform] is None:
            what = "the instance URL" if self.platform == "mastodon" else "the webhook URL"
            raise ValueError(f"api_base_url is required for {self.platform} ({what})")
        if self.platform != "generic" and self.credential_ref is None:
            raise ValueError(f"credential_ref is required for {self.platform}")
        if self.platform == "generic" and self.signing_secret_ref is None:
            raise ValueError("signing_secret_ref is required for a generic webhook")
        return self


class ChannelPatch(Model):
    """Body of `PATCH /v1/channels/{id}`: only the given fields change."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    timezone: TimezoneName | None = None
    slots: list[Slot] | None = Field(default=None, max_length=200)
    rate_limit: RateLimit | None = None
    approval_required: bool | None = None
    allow_self_approval: bool | None = None
    tracker_ids: list[Identifier] | None = Field(default=None, max_length=1_000)
    credential_ref: CredentialRef | None = None
    api_base_url: HttpUrlText | None = None
    signing_secret_ref: CredentialRef | None = None

    @field_validator("slots")
    @classmethod
    def _distinct_slots(cls, slots: list[Slot] | None) -> list[Slot] | None:
        return None if slots is None else Slots(slots=slots).slots


class ReauthIn(Model):
    """Body of `POST /v1/channels/{id}/reauth`: optionally a new credential reference."""

    credential_ref: CredentialRef | None = None


def secret_refs(channel: Mapping[str, object]) -> set[str]:
    """The secret references a channel document holds."""
    return {
        str(ref)
        for ref in (channel.get("credential_ref"), channel.get("signing_secret_ref"))
        if ref is not None
    }


#: The fields that decide where a channel's secrets go: a write of the channel is conditioned
#: on them being what was checked.
DESTINATION_FIELDS = ("api_base_url", "credential_ref", "signing_secret_ref")


@dataclass(frozen=True, slots=True)
class SecretDestination:
    """Where a secret is sent: a fixed-host network as a whole, or one channel's own server."""

    platform: str
    #: None for x, facebook and linkedin: their host is fixed, so the network is the place.
    api_base_url: str | None

    def __str__(self) -> str:
        if self.api_base_url is None:
            return self.platform
        return f"{self.platform} at {self.api_base_url}"


def secret_destination(channel: Mapping[str, object]) -> SecretDestination:
    """Where `channel` sends its secrets (a fixed-host network's stored URL is ignored)."""
    platform = str(channel["platform"])
    url = channel.get("api_base_url") if platform in SELF_HOSTED else None
    return SecretDestination(platform, None if url is None else str(url))


def binding_problem(
    reference: str, bound: SecretDestination, wanted: SecretDestination
) -> str | None:
    """Why `reference`, bound to `bound` for good, may not be sent to `wanted`, or None.

    A secret is bound to the first place it is used and never released: otherwise a
    `channels:write` token could move it off its channel (a new server with a dummy secret,
    or another channel given a new one) and then name it for its own server.
    """
    if bound == wanted:
        return None
    return (
        f"{reference} is bound to {bound} (a secret only ever goes where it was first used); "
        f"{wanted} needs a secret of its own: {CREDENTIAL_REF_FORMS}"
    )


def retarget_problem(current: Mapping[str, object], changes: Mapping[str, object]) -> str | None:
    """Why a change of the channel's API server is refused, or None.

    A new server must come with a new secret: otherwise a `channels:write` token could
    point a working channel at its own server and receive the channel's token there.
    """
    new_url = changes.get("api_base_url", current.get("api_base_url"))
    if new_url == current.get("api_base_url"):
        return None
    fresh = [
        field
        for field in ("credential_ref", "signing_secret_ref")
        if current.get(field) is not None
    ]
    stale = [f for f in fresh if changes.get(f, current.get(f)) == current.get(f)]
    if stale:
        return (
            "changing api_base_url needs a new " + " and ".join(stale) + " in the same request: "
            "the current secret stays with the server it was issued for"
        )
    return None


def reply_channel_problem(
    channel_id: str, channel_trackers: set[str], mention_trackers: list[str] | None
) -> str | None:
    """Why a reply to a mention may not go out on this channel, or None.

    A channel mapped to trackers answers only their mentions, so a reviewer of one brand
    cannot answer on another brand's account. An unmapped channel answers any mention.
    """
    if not channel_trackers:
        return None
    if mention_trackers is None:
        return (
            f"channel '{channel_id}' answers mentions of its trackers only, and this mention "
            "is not one the publisher has seen routed to review"
        )
    if channel_trackers.isdisjoint(mention_trackers):
        return (
            f"channel '{channel_id}' answers mentions of {sorted(channel_trackers)}; this "
            f"mention belongs to {sorted(mention_trackers) or 'no tracker'}"
        )
    return None
