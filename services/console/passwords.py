"""Password hashing (argon2id, argon2-cffi's defaults) and the password policy."""

from __future__ import annotations

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
