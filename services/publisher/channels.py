"""Channels: create, change, re-authorise; and what the scheduler must skip right now."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from services.publisher.adapters.base import ChannelAccess
from services.publisher.credentials import CredentialResolver
from services.publisher.domain.channels import (
    CREDENTIAL_REF_FORMS,
    DEFAULT_API_BASE,
    DESTINATION_FIELDS,
    SELF_HOSTED,
    ChannelIn,
    ChannelPatch,
    SecretDestination,
    binding_problem,
    is_credential_ref,
    retarget_problem,
    secret_destination,
    secret_refs,
)
from services.publisher.errors import DomainError
from services.publisher.storage import ChannelStore, SecretBindings
from shared.events import utc_now
from shared.logging import get_logger
from shared.mongo import Document
from shared.outbound import check_outbound_url

log = get_logger(__name__)


def _plain_http_allowed(url: str, allowed_networks: Sequence[str]) -> bool:
    """http:// only to an address the operator allowed (a test server, a local instance)."""
    host = (urlsplit(url).hostname or "").strip("[]")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(network, strict=False) for network in allowed_networks
    )


class ChannelService:
    def __init__(
        self,
        store: ChannelStore,
        credentials: CredentialResolver,
        *,
        bindings: SecretBindings,
        allowed_networks: Sequence[str] = (),
        api_base_urls: Mapping[str, str] | None = None,
    ) -> None:
        self._store = store
        self._credentials = credentials
        self._bindings = bindings
        self._allowed_networks = tuple(allowed_networks)
        #: Operator overrides of the fixed API hosts (SMM_PUBLISHER_API_BASE_URLS).
        self._fixed_bases = {**DEFAULT_API_BASE, **(api_base_urls or {})}
        self._blocked: tuple[float, list[str]] = (0.0, [])

    def _check_target(self, document: Document) -> None:
        """A channel's own server: a clean http(s) URL; https unless to an allowed network."""
        url = document.get("api_base_url")
        if url is None:
            return
        plain_ok = _plain_http_allowed(url, self._allowed_networks)
        try:
            check_outbound_url(url, require_https=not plain_ok)
        except ValueError as exc:
            raise DomainError(422, "invalid_api_base_url", f"api_base_url: {exc}") from exc

    async def _check_secrets_exclusive(self, document: Document) -> None:
        """A secret sent to a channel's own server belongs to that channel alone.

        Otherwise a new Mastodon channel pointed at any server could name another channel's
        token and receive it. Channels of fixed-host networks may share a secret.
        """
        refs = secret_refs(document)
        if not refs:
            return
        own_server = document.get("api_base_url") is not None
        for other in await self._store.using_secrets(sorted(refs), exclude=document["_id"]):
            if own_server or other.get("api_base_url") is not None:
                shared = sorted(refs & secret_refs(other))
                raise DomainError(
                    409,
                    "secret_in_use",
                    f"{', '.join(shared)} is used by channel '{other['_id']}'; a channel with its "
                    "own api_base_url needs secrets of its own",
                )

    async def _bind_secrets(self, document: Document) -> None:
        """Bind each secret of `document` to its destination, or 409 if one is bound elsewhere.

        Checked on every write of a secret reference or a server, after every other check
        (a refused request binds as little as possible). The inserts decide; the read before
        them only spares a refused request from binding its other references.
        """
        refs = sorted(secret_refs(document))
        if not refs:
            return
        wanted = secret_destination(document)
        known = await self._bindings.of(refs)
        for ref in refs:
            if ref in known:
                self._refuse_unless(ref, known[ref], wanted)
        for ref in refs:
            if ref not in known:
                binding = await self._bindings.bind(
                    {
                        "_id": ref,
                        "platform": wanted.platform,
                        "api_base_url": wanted.api_base_url,
                        "channel_id": document["_id"],
                        "bound_at": utc_now(),
                    }
                )
                self._refuse_unless(ref, binding, wanted)

    @staticmethod
    def _refuse_unless(ref: str, binding: Document, wanted: SecretDestination) -> None:
        bound = SecretDestination(binding["platform"], binding.get("api_base_url"))
        problem = binding_problem(ref, bound, wanted)
        if problem is not None:
            log.warning("secret reference refused elsewhere", ref=ref, wanted=str(wanted))
            raise DomainError(409, "secret_in_use", problem)

    async def bind_existing(self) -> None:
        """Bind the secrets of channels stored before bindings existed (at start, idempotent).

        Oldest channel first; a channel whose secret is already bound elsewhere is parked
        (it would send that secret to a second place).
        """
        channels = sorted(
            await self._store.all(), key=lambda c: (str(c.get("created_at") or ""), c["_id"])
        )
        for channel in channels:
            if channel.get("platform") is None:
                continue
            try:
                await self._bind_secrets(channel)
            except DomainError as refused:
                if channel.get("state") == "active":
                    await self.mark_needs_reauth(channel["_id"], refused.message)

    def credential_problem(self, document: Document) -> str | None:
        """Why the channel's secrets cannot be used now, or None."""
        for field in ("credential_ref", "signing_secret_ref"):
            reference = document.get(field)
            if reference is None:
                continue
            if not is_credential_ref(reference):  # stored before the rule
                return f"{field} {reference} is not read; use {CREDENTIAL_REF_FORMS}"
            if self._credentials.resolve(reference) is None:
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
        self._check_target(document)
        await self._check_secrets_exclusive(document)
        problem = self.credential_problem(document)
        if problem is not None:  # accepted, but nothing is sent until the secret exists
            document.update(state="needs_reauth", state_reason=problem)
        if await self._store.get(channel.id) is not None:  # don't bind for a doomed create
            raise DomainError(409, "conflict", f"channel '{channel.id}' exists; PATCH it instead")
        await self._bind_secrets(document)
        if not await self._store.create(document):
            raise DomainError(409, "conflict", f"channel '{channel.id}' exists; PATCH it instead")
        log.info("channel created", channel_id=channel.id, platform=channel.platform)
        return document

    async def get(self, channel_id: str) -> Document:
        document = await self._store.get(channel_id)
        if document is None:
            raise DomainError(404, "not_found", f"no channel '{channel_id}'")
        return document

    async def page(self, after: str | None, limit: int) -> list[Document]:
        """Up to `limit` channels by id, after the id `after`."""
        return await self._store.page(after, limit)

    async def change(self, channel_id: str, patch: ChannelPatch) -> Document:
        current = await self.get(channel_id)
        changes = patch.model_dump(mode="json", exclude_unset=True)
        merged = {**current, **changes}
        try:
            ChannelIn.model_validate({**merged, "id": channel_id})
        except ValueError as exc:
            raise DomainError(422, "invalid_request", str(exc)) from exc
        problem = retarget_problem(current, changes)
        if problem is not None:
            raise DomainError(409, "credential_required", problem)
        self._check_target(merged)
        await self._check_secrets_exclusive(merged)
        if any(field in changes for field in DESTINATION_FIELDS):
            await self._bind_secrets(merged)
        changes["updated_at"] = utc_now()
        updated = await self._store.update(channel_id, changes, expected=_destination_of(current))
        if updated is None:
            raise DomainError(409, "conflict", f"channel '{channel_id}' changed meanwhile; retry")
        return updated

    async def reauthorise(self, channel_id: str, credential_ref: str | None) -> Document:
        """Set the channel active again (after the token was renewed); its held posts resume."""
        current = await self.get(channel_id)
        changes: Document = {"updated_at": utc_now()}
        if credential_ref is not None:
            changes["credential_ref"] = credential_ref
            await self._check_secrets_exclusive({**current, **changes})
        problem = self.credential_problem({**current, **changes})
        if problem is not None:
            raise DomainError(422, "credential_missing", problem)
        # Always: sending resumes, so the secrets must be bound to where they will go.
        await self._bind_secrets({**current, **changes})
        changes.update(state="active", state_reason=None, paused_until=None)
        updated = await self._store.update(channel_id, changes, expected=_destination_of(current))
        if updated is None:
            raise DomainError(409, "conflict", f"channel '{channel_id}' changed meanwhile; retry")
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
        # A fixed-host network's stored api_base_url (from before the rule) is ignored.
        own = channel.get("api_base_url") if platform in SELF_HOSTED else None
        return ChannelAccess(
            channel_id=channel["_id"],
            platform=platform,
            account=channel["account"],
            api_base_url=own or self._fixed_bases.get(platform) or "",
            credential=self._credentials.resolve(channel.get("credential_ref")),
            signing_secret=self._credentials.resolve(channel.get("signing_secret_ref")),
        )


def _destination_of(channel: Document) -> Document:
    """The fields a write is conditioned on: where the secrets were checked to go."""
    return {field: channel.get(field) for field in DESTINATION_FIELDS}


def public_channel(document: Document) -> dict[str, Any]:
    """A channel as the API shows it: references to secrets, never secrets."""
    shown = {key: value for key, value in document.items() if key != "_id"}
    return {"id": document["_id"], **shown}
