"""Channels: create, change, re-authorise; and what the scheduler must skip right now."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from services.publisher.adapters.base import ChannelAccess
from services.publisher.credentials import CredentialResolver
from services.publisher.domain.channels import (
    DEFAULT_API_BASE,
    ChannelIn,
    ChannelPatch,
)
from services.publisher.errors import DomainError
from services.publisher.storage import ChannelStore
from shared.events import utc_now
from shared.logging import get_logger
from shared.mongo import Document

log = get_logger(__name__)


class ChannelService:
    def __init__(self, store: ChannelStore, credentials: CredentialResolver) -> None:
        self._store = store
        self._credentials = credentials
        self._blocked: tuple[float, list[str]] = (0.0, [])

    def _credential_problem(self, document: Document) -> str | None:
        for field in ("credential_ref", "signing_secret_ref"):
            reference = document.get(field)
            if reference is not None and self._credentials.resolve(reference) is None:
                return f"{field} {reference} is not set"
        return None

    async def create(self, channel: ChannelIn, actor: str) -> Document:
        now = utc_now()
        document: Document = {
            "_id": channel.id,
            **channel.model_dump(mode="json", exclude={"id"}),
            "state": "active",
            "state_reason": None,
            "paused_until": None,
            "created_at": now,
            "updated_at": now,
            "created_by": actor,
        }
        problem = self._credential_problem(document)
        if problem is not None:  # accepted, but nothing is sent until the secret exists
            document.update(state="needs_reauth", state_reason=problem)
        if not await self._store.create(document):
            raise DomainError(409, "conflict", f"channel '{channel.id}' exists; PATCH it instead")
        log.info("channel created", channel_id=channel.id, platform=channel.platform)
        return document

    async def get(self, channel_id: str) -> Document:
        document = await self._store.get(channel_id)
        if document is None:
            raise DomainError(404, "not_found", f"no channel '{channel_id}'")
        return document

    async def all(self) -> list[Document]:
        return await self._store.all()

    async def change(self, channel_id: str, patch: ChannelPatch) -> Document:
        current = await self.get(channel_id)
        changes = patch.model_dump(mode="json", exclude_unset=True)
        merged = {**current, **changes}
        try:
            ChannelIn.model_validate({**merged, "id": channel_id})
        except ValueError as exc:
            raise DomainError(422, "invalid_request", str(exc)) from exc
        changes["updated_at"] = utc_now()
        updated = await self._store.update(channel_id, changes)
        if updated is None:
            raise DomainError(404, "not_found", f"no channel '{channel_id}'")
        return updated

    async def reauthorise(self, channel_id: str, credential_ref: str | None) -> Document:
        """Set the channel active again (after the token was renewed); its held posts resume."""
        current = await self.get(channel_id)
        changes: Document = {"updated_at": utc_now()}
        if credential_ref is not None:
            changes["credential_ref"] = credential_ref
        problem = self._credential_problem({**current, **changes})
        if problem is not None:
            raise DomainError(422, "credential_missing", problem)
        changes.update(state="active", state_reason=None, paused_until=None)
        updated = await self._store.update(channel_id, changes)
        assert updated is not None
        self._blocked = (0.0, [])
        log.info("channel re-authorised", channel_id=channel_id)
        return updated

    async def mark_needs_reauth(self, channel_id: str, reason: str) -> bool:
        """Park the channel; True when this call changed its state."""
        updated = await self._store.update(
            channel_id,
            {"state": "needs_reauth", "state_reason": reason[:500], "updated_at": utc_now()},
            expected_state="active",
        )
        self._blocked = (0.0, [])
        if updated is not None:
            log.warning("channel needs re-authorisation", channel_id=channel_id)
        return updated is not None

    async def pause(self, channel_id: str, until: datetime) -> None:
        await self._store.pause(channel_id, until)
        self._blocked = (0.0, [])

    async def blocked(self, now: datetime, max_age: float = 1.0) -> list[str]:
        """Channels to skip: parked for re-authorisation or paused by a 429 (cached briefly)."""
        fetched_at, blocked = self._blocked
        if time.monotonic() - fetched_at < max_age:
            return blocked
        blocked = [
            c["_id"]
            for c in await self._store.all()
            if c.get("state") != "active"
            or (c.get("paused_until") is not None and c["paused_until"] > now)
        ]
        self._blocked = (time.monotonic(), blocked)
        return blocked

    def access(self, channel: Document) -> ChannelAccess:
        """The channel with its secrets resolved, for one send (never stored or logged)."""
        platform = channel["platform"]
        return ChannelAccess(
            channel_id=channel["_id"],
            platform=platform,
            account=channel["account"],
            api_base_url=channel.get("api_base_url") or DEFAULT_API_BASE[platform] or "",
            credential=self._credentials.resolve(channel.get("credential_ref")),
            signing_secret=self._credentials.resolve(channel.get("signing_secret_ref")),
        )


def public_channel(document: Document) -> dict[str, Any]:
    """A channel as the API shows it: references to secrets, never secrets."""
    shown = {key: value for key, value in document.items() if key != "_id"}
    return {"id": document["_id"], **shown}
