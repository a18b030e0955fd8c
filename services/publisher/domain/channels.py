"""A channel: one of our accounts on a network, and how and when we may post to it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from services.publisher.domain.text_rules import PUBLISH_PLATFORMS
from services.publisher.domain.timing import Slot, Slots
from shared.events import HttpUrlText, Model, TimezoneName

ChannelId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
]
ChannelState = Literal["active", "needs_reauth"]
PublishPlatform = Literal["x", "mastodon", "bluesky", "facebook", "linkedin", "generic"]
assert set(PublishPlatform.__args__) == set(PUBLISH_PLATFORMS)  # type: ignore[attr-defined]

#: `env:NAME` (an environment variable) or `settings:NAME` (a key of
#: SMM_PUBLISHER_CREDENTIALS). The secret itself is never stored, returned or logged.
CredentialRef = Annotated[
    str,
    StringConstraints(max_length=200, pattern=r"^(env|settings):[A-Za-z_][A-Za-z0-9_.-]{0,127}$"),
]

#: Where each network's API lives unless the channel names another (own Mastodon instance,
#: Bluesky PDS, test servers).
DEFAULT_API_BASE: dict[str, str | None] = {
    "x": "https://api.x.com",
    "mastodon": None,  # every instance is its own server: the channel must say which
    "bluesky": "https://bsky.social",
    "facebook": "https://graph.facebook.com/v21.0",
    "linkedin": "https://api.linkedin.com",
    "generic": None,  # the webhook URL
}


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
    credential_ref: CredentialRef | None = None
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
