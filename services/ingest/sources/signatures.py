"""Webhook signature checks of Meta, X, Mastodon and WebSub hubs: HMACs over the raw body.

Pure functions, no I/O: each takes the shared secret, the exact bytes the platform sent and the
header value (None when absent) and returns a `Verification` whose `reason` says what was wrong.
Digests are decoded and compared as bytes with `hmac.compare_digest`, so a mismatch takes the
same time wherever it is and a header in any letter case or with non-ASCII junk is handled.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

MISSING = "missing signature header"
MALFORMED = "malformed signature header"
MISMATCH = "signature does not match the body"
UNSUPPORTED = "unsupported signature method"

#: WebSub §8: the hub signs with one of these (sha1 is allowed for old hubs).
WEBSUB_METHODS: frozenset[str] = frozenset({"sha1", "sha256", "sha384", "sha512"})

_HEX = re.compile(r"^[0-9a-fA-F]+$")
_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")


@dataclass(frozen=True)
class Verification:
    """The outcome of one check; `reason` is empty when `ok`, else safe to log or answer."""

    ok: bool
    reason: str = ""


VALID = Verification(ok=True)


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def hmac_digest(secret: str | bytes, message: bytes, method: str = "sha256") -> bytes:
    """HMAC of `message` under `secret` with the hashlib algorithm `method`."""
    return hmac.new(_key(secret), message, getattr(hashlib, method)).digest()


def _split(header: str | None) -> tuple[str, str] | Verification:
    """`method=value` → (lower-case method, value); a Verification when that is impossible."""
    if header is None or not header.strip():
        return Verification(ok=False, reason=MISSING)
    method, sep, value = header.strip().partition("=")
    if not sep or not method or not value:
        return Verification(ok=False, reason=MALFORMED)
    return method.strip().lower(), value.strip()


def _compare(expected: bytes, received: bytes) -> Verification:
    if hmac.compare_digest(expected, received):
        return VALID
    return Verification(ok=False, reason=MISMATCH)


def _verify_hex(
    secret: str | bytes, body: bytes, header: str | None, methods: frozenset[str]
) -> Verification:
    parsed = _split(header)
    if isinstance(parsed, Verification):
        return parsed
    method, value = parsed
    if method not in methods:
        return Verification(ok=False, reason=f"{UNSUPPORTED} {method[:16]!r}")
    expected = hmac_digest(secret, body, method)
    if not _HEX.match(value) or len(value) != 2 * len(expected):
        return Verification(ok=False, reason=MALFORMED)
    return _compare(expected, bytes.fromhex(value))


def verify_meta(app_secret: str | bytes, body: bytes, header: str | None) -> Verification:
    """Meta (Facebook, Instagram): `X-Hub-Signature-256: sha256=<hex>` under the app secret."""
    return _verify_hex(app_secret, body, header, frozenset({"sha256"}))


def verify_mastodon(secret: str | bytes, body: bytes, header: str | None) -> Verification:
    """Mastodon webhooks: `X-Hub-Signature: sha256=<hex>` under the webhook's secret."""
    return _verify_hex(secret, body, header, frozenset({"sha256"}))


def verify_websub(secret: str | bytes, body: bytes, header: str | None) -> Verification:
    """WebSub content distribution (§8): `X-Hub-Signature: <method>=<hex>`, method sha1..sha512."""
    return _verify_hex(secret, body, header, WEBSUB_METHODS)


def x_crc_response(consumer_secret: str | bytes, crc_token: str) -> str:
    """X Account Activity CRC: `sha256=` + base64 HMAC-SHA256 of the token (the response_token)."""
    digest = hmac_digest(consumer_secret, crc_token.encode())
    return "sha256=" + base64.b64encode(digest).decode()


def verify_x(consumer_secret: str | bytes, body: bytes, header: str | None) -> Verification:
    """X Account Activity: `x-twitter-webhooks-signature: sha256=<base64>` under the secret."""
    parsed = _split(header)
    if isinstance(parsed, Verification):
        return parsed
    method, value = parsed
    if method != "sha256":
        return Verification(ok=False, reason=f"{UNSUPPORTED} {method[:16]!r}")
    if not _BASE64.match(value):
        return Verification(ok=False, reason=MALFORMED)
    try:
        received = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return Verification(ok=False, reason=MALFORMED)
    expected = hmac_digest(consumer_secret, body)
    if len(received) != len(expected):
        return Verification(ok=False, reason=MALFORMED)
    return _compare(expected, received)
