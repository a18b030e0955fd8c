"""Password hashing (argon2id, argon2-cffi's defaults) and the password policy."""

from __future__ import annotations

import asyncio
import os

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
#: Verified when the account does not exist, so a wrong e-mail costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("not a password of anybody's")

MIN_LENGTH = 12
MAX_LENGTH = 1024


class WeakPasswordError(ValueError):
    pass


def check_policy(password: str) -> None:
    """Refuse passwords that are too short or absurdly long (argon2 costs grow with length)."""
    if len(password) < MIN_LENGTH:
        raise WeakPasswordError(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPasswordError(f"a password has at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    check_policy(password)
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether `password` matches; always does the work of one verification."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


#: At most this many verifications at once (each takes ~0.2 s of a core and 64 MiB): beyond
#: that a sign-in waits its turn instead of stalling every page of every user.
#: One core is left to the event loop.
_VERIFYING = asyncio.Semaphore(max(1, (os.cpu_count() or 2) - 1))
#: Sign-ins waiting for a verification slot beyond which the console answers "busy".
MAX_WAITING = 32
_waiting = 0


class BusyError(Exception):
    """Too many sign-ins at once: the caller should answer 503 and let the user retry."""


async def verify_password_off_loop(stored_hash: str | None, password: str) -> bool:
    """`verify_password` in a worker thread, a few at a time, so the event loop (and every
    other user's pages and live streams) keeps running during a burst of sign-ins."""
    global _waiting
    if _waiting >= MAX_WAITING:
        raise BusyError
    _waiting += 1
    try:
        async with _VERIFYING:
            return await asyncio.to_thread(verify_password, stored_hash, password)
    finally:
        _waiting -= 1
