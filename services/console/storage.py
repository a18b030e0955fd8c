"""The console's own data: users, sessions and failed sign-ins (MongoDB).

Everything else the console shows belongs to the four services and is read through their APIs.
A session id is a random 256-bit value in the cookie; the database keeps only its SHA-256, so a
leaked database cannot be replayed as sessions. Expired sessions and old failed sign-ins are
removed by TTL indexes.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.auth import Actor, Role
from shared.mongo import Document

USERS = "console_users"
SESSIONS = "console_sessions"
LOGIN_FAILURES = "console_login_failures"

#: How long a failed sign-in counts against its account and its client address.
FAILURE_WINDOW = timedelta(minutes=15)


def indexes() -> dict[str, list[IndexModel]]:
    return {
        USERS: [],
        SESSIONS: [
            IndexModel([("expires_at", ASCENDING)], name="expire_sessions", expireAfterSeconds=0),
            IndexModel([("user", ASCENDING)], name="sessions_of_user"),
        ],
        LOGIN_FAILURES: [
            IndexModel(
                [("at", ASCENDING)],
                name="forget_old_failures",
                expireAfterSeconds=int(FAILURE_WINDOW.total_seconds()),
            ),
            IndexModel([("key", ASCENDING), ("at", ASCENDING)], name="failures_by_key"),
        ],
    }


@dataclass(frozen=True, slots=True)
class User:
    """A person who signs in to the console."""

    email: str
    name: str
    role: Role
    #: Brand groups granted (tracker `group`s); admins see every brand whatever this holds.
    groups: tuple[str, ...]
    disabled: bool
    language: str
    time_zone: str

    @property
    def all_brands(self) -> bool:
        return self.role == "admin"

    def actor(self, tracker_ids: frozenset[str] | None) -> Actor:
        """This user as the services see them; `tracker_ids` are their groups' trackers."""
        return Actor(
            user=self.email, role=self.role, brands=None if self.all_brands else tracker_ids
        )


def _user(document: Document) -> User:
    return User(
        email=document["_id"],
        name=document.get("name") or document["_id"],
        role=document["role"],
        groups=tuple(document.get("groups", [])),
        disabled=bool(document.get("disabled", False)),
        language=document.get("language", "en"),
        time_zone=document.get("time_zone", "UTC"),
    )


class UserExistsError(Exception):
    pass


class InvalidUserError(ValueError):
    """A user record that would break pages or audit trails (reason in words)."""


_EMAIL = re.compile(
    r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$"
)
_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def check_user(email: str, groups: list[str], time_zone: str, language: str) -> None:
    """An e-mail address (so no user can be named like `auto` or a token in an audit trail),
    group names shaped like tracker groups, a time zone that exists, a language we speak."""
    if len(email) > 254 or not _EMAIL.match(email):
        raise InvalidUserError(f"not an e-mail address: {email!r}")
    bad = [group for group in groups if not _GROUP.match(group)]
    if bad:
        raise InvalidUserError(f"not a group name: {bad}")
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidUserError(f"unknown time zone {time_zone!r}") from exc
    if language not in ("en", "de"):
        raise InvalidUserError(f"unknown language {language!r}")


class UserStore:
    """Users, keyed by their lower-cased e-mail. Password hashes never leave this class."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._users = db[USERS]
        self._sessions = db[SESSIONS]

    async def create(
        self,
        email: str,
        password_hash: str,
        role: Role,
        groups: list[str],
        now: datetime,
        name: str | None = None,
        language: str = "en",
        time_zone: str = "UTC",
    ) -> User:
        check_user(email, groups, time_zone, language)
        document = {
            "_id": email,
            "name": name or email,
            "password_hash": password_hash,
            "role": role,
            "groups": groups,
            "disabled": False,
            "language": language,
            "time_zone": time_zone,
            "created_at": now,
            "updated_at": now,
        }
        try:
            await self._users.insert_one(document)
        except DuplicateKeyError as exc:
            raise UserExistsError(email) from exc
        return _user(document)

    async def get(self, email: str) -> User | None:
        document = await self._users.find_one({"_id": email}, {"password_hash": 0})
        return None if document is None else _user(document)

    async def password_hash(self, email: str) -> str | None:
        document = await self._users.find_one({"_id": email}, {"password_hash": 1})
        return None if document is None else str(document["password_hash"])

    async def list(self) -> list[User]:
        cursor = self._users.find({}, {"password_hash": 0}).sort("_id", ASCENDING).limit(10_000)
        return [_user(document) async for document in cursor]

    async def update(self, email: str, now: datetime, **fields: Any) -> User | None:
        """Change a user's fields; a new password or disabling ends all their sessions."""
        document = await self._users.find_one_and_update(
            {"_id": email},
            {"$set": {**fields, "updated_at": now}},
            projection={"password_hash": 0},
            return_document=ReturnDocument.AFTER,
        )
        if document is None:
            return None
        if "password_hash" in fields or fields.get("disabled"):
            await self._sessions.delete_many({"user": email})
        return _user(document)

    async def count(self) -> int:
        return await self._users.count_documents({})


@dataclass(frozen=True, slots=True)
class Session:
    user: str
    csrf_token: str
    created_at: datetime
    last_seen: datetime


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    """Server-side sessions: the cookie holds a random id, the database its digest."""

    def __init__(self, db: AsyncDatabase[Document], idle: timedelta, lifetime: timedelta) -> None:
        self._sessions = db[SESSIONS]
        self._idle = idle
        self._lifetime = lifetime

    async def open(self, user: str, now: datetime) -> tuple[str, Session]:
        """A new session for `user`: its cookie value and the session."""
        session_id = secrets.token_urlsafe(32)
        session = Session(user, secrets.token_urlsafe(32), now, now)
        await self._sessions.insert_one(
            {
                "_id": _digest(session_id),
                "user": user,
                "csrf": session.csrf_token,
                "created_at": now,
                "last_seen": now,
                "expires_at": min(now + self._idle, now + self._lifetime),
            }
        )
        return session_id, session

    async def find(self, session_id: str, now: datetime) -> Session | None:
        """The live session behind a cookie value, its idle time extended (once a minute)."""
        if not 20 <= len(session_id) <= 100:
            return None
        document = await self._sessions.find_one({"_id": _digest(session_id)})
        if document is None or document["expires_at"] <= now:
            return None
        if now - document["last_seen"] >= timedelta(minutes=1):
            expires = min(now + self._idle, document["created_at"] + self._lifetime)
            await self._sessions.update_one(
                {"_id": document["_id"]}, {"$set": {"last_seen": now, "expires_at": expires}}
            )
        return Session(
            document["user"], document["csrf"], document["created_at"], document["last_seen"]
        )

    async def peek(self, session_id: str, now: datetime) -> bool:
        """Whether the session is live, without counting this as activity."""
        document = await self._sessions.find_one({"_id": _digest(session_id)}, {"expires_at": 1})
        return document is not None and document["expires_at"] > now

    async def close(self, session_id: str) -> None:
        await self._sessions.delete_one({"_id": _digest(session_id)})


#: A client address may fail this many times the per-account limit: an office behind one NAT
#: address holds many people, while one guesser trying many accounts is still slowed down.
ADDRESS_FACTOR = 10


class LoginThrottle:
    """Failed sign-ins per account (`user:` keys) and per client address (`ip:` keys) in the
    last `FAILURE_WINDOW`."""

    def __init__(self, db: AsyncDatabase[Document], limit: int) -> None:
        self._failures = db[LOGIN_FAILURES]
        self.limit = limit

    def _limit_of(self, key: str) -> int:
        return self.limit * ADDRESS_FACTOR if key.startswith("ip:") else self.limit

    async def attempt(self, keys: list[str], now: datetime) -> tuple[bool, list[Any]]:
        """Count an attempt before its password is checked; whether it is within the limits.

        Recorded first and counted with itself, so parallel guesses cannot all pass a check
        made before any of them was recorded. A successful sign-in forgets its attempt
        (`succeeded`); a failed one stays counted for `FAILURE_WINDOW`.
        """
        inserted = await self._failures.insert_many([{"key": key, "at": now} for key in keys])
        ids = list(inserted.inserted_ids)
        since = now - FAILURE_WINDOW
        for key in keys:
            limit = self._limit_of(key)
            attempts = await self._failures.count_documents(
                {"key": key, "at": {"$gt": since}}, limit=limit + 1
            )
            if attempts > limit:
                return False, ids
        return True, ids

    async def succeeded(self, account_key: str, attempt_ids: list[Any]) -> None:
        """A right password: forget this attempt and the account's earlier failures."""
        await self._failures.delete_many({"_id": {"$in": attempt_ids}})
        await self._failures.delete_many({"key": account_key})
