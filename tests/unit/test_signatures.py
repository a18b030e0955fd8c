"""Webhook signatures: known answers computed independently, header parsing, constant time.

The RFC 4231 / RFC 2202 vectors (key "Jefe") are published values, so a mistake shared by the
module and these tests (e.g. swapped key and message) cannot make both agree.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from services.ingest.sources import signatures
from services.ingest.sources.signatures import (
    MALFORMED,
    MISMATCH,
    MISSING,
    verify_mastodon,
    verify_meta,
    verify_websub,
    verify_x,
    x_crc_response,
)

JEFE_KEY = "Jefe"
JEFE_DATA = b"what do ya want for nothing?"
JEFE_HMAC = {  # RFC 2202 §3 test case 2 (sha1), RFC 4231 §4.3 test case 2 (sha2)
    "sha1": "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
    "sha256": "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    "sha384": "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47"
    "e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
    "sha512": "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
    "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
}

SECRET = "app-secret-für-tests"
BODY = '{"object":"page","entry":[{"id":"1","changes":[]}],"text":"Grüße"}'.encode()


def _hex(secret: str, body: bytes, method: str = "sha256") -> str:
    return hmac.new(secret.encode(), body, getattr(hashlib, method)).hexdigest()


def _b64(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


# --- known answers --------------------------------------------------------------------------


def test_meta_accepts_the_rfc_4231_vector_and_an_independently_computed_one() -> None:
    assert verify_meta(JEFE_KEY, JEFE_DATA, f"sha256={JEFE_HMAC['sha256']}").ok
    assert verify_meta(SECRET, BODY, f"sha256={_hex(SECRET, BODY)}").ok


def test_mastodon_uses_the_same_hex_sha256_scheme() -> None:
    assert verify_mastodon(JEFE_KEY, JEFE_DATA, f"sha256={JEFE_HMAC['sha256']}").ok
    assert verify_mastodon(SECRET, BODY, f"sha256={_hex(SECRET, BODY)}").ok


@pytest.mark.parametrize("method", ["sha1", "sha256", "sha384", "sha512"])
def test_websub_accepts_every_method_of_section_8(method: str) -> None:
    assert verify_websub(JEFE_KEY, JEFE_DATA, f"{method}={JEFE_HMAC[method]}").ok
    assert verify_websub(SECRET, BODY, f"{method}={_hex(SECRET, BODY, method)}").ok


def test_x_crc_response_token_is_sha256_base64_of_the_token() -> None:
    expected = "sha256=" + base64.b64encode(bytes.fromhex(JEFE_HMAC["sha256"])).decode()
    assert expected == "sha256=W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
    assert x_crc_response(JEFE_KEY, JEFE_DATA.decode()) == expected
    # The shape X's own sample code computes, for a realistic token.
    token = "9b4507b3-9040-4669-9ba5-9b9d8e0e3e0f"
    assert x_crc_response(SECRET, token) == "sha256=" + _b64(SECRET, token.encode())


def test_x_post_signature_is_base64_over_the_raw_body() -> None:
    assert verify_x(SECRET, BODY, f"sha256={_b64(SECRET, BODY)}").ok
    assert verify_x(JEFE_KEY, JEFE_DATA, x_crc_response(JEFE_KEY, JEFE_DATA.decode())).ok


def test_secret_may_be_given_as_bytes() -> None:
    assert verify_meta(SECRET.encode(), BODY, f"sha256={_hex(SECRET, BODY)}").ok


# --- mismatches -----------------------------------------------------------------------------


def test_any_change_to_body_or_secret_is_a_mismatch() -> None:
    header = f"sha256={_hex(SECRET, BODY)}"
    assert verify_meta(SECRET, BODY + b" ", header).reason == MISMATCH
    assert verify_meta(SECRET, BODY.replace(b"1", b"2"), header).reason == MISMATCH
    assert verify_meta("other-secret", BODY, header).reason == MISMATCH
    x_header = f"sha256={_b64(SECRET, BODY)}"
    assert verify_x(SECRET, BODY[:-1], x_header).reason == MISMATCH


def test_a_re_serialised_body_does_not_verify() -> None:
    """The raw bytes count: the same JSON with other white space is a different message."""
    spaced = (
        b'{"object": "page", "entry": [{"id": "1", "changes": []}], "text": "Gr\\u00fc\\u00dfe"}'
    )
    assert verify_meta(SECRET, spaced, f"sha256={_hex(SECRET, BODY)}").reason == MISMATCH


# --- header parsing -------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_header(header: str | None) -> None:
    for verify in (verify_meta, verify_mastodon, verify_websub, verify_x):
        assert verify(SECRET, BODY, header).reason == MISSING


@pytest.mark.parametrize(
    "header",
    [
        "sha256",  # no value
        "sha256=",  # empty value
        "=abcdef",  # no method
        "sha256=xyz",  # not hex
        "sha256=" + "ab" * 31,  # too short
        "sha256=" + "ab" * 33,  # too long
        "sha256=" + "ä" * 64,  # non-ASCII (Starlette decodes headers as latin-1)
    ],
)
def test_malformed_hex_headers(header: str) -> None:
    assert verify_meta(SECRET, BODY, header).reason == MALFORMED
    assert verify_websub(SECRET, BODY, header).reason == MALFORMED


def test_hex_header_tolerates_case_and_surrounding_space() -> None:
    assert verify_meta(SECRET, BODY, f"  SHA256={_hex(SECRET, BODY).upper()} ").ok


def test_unknown_or_unexpected_methods_are_refused() -> None:
    md5 = hmac.new(SECRET.encode(), BODY, hashlib.md5).hexdigest()
    verdict = verify_websub(SECRET, BODY, f"md5={md5}")
    assert not verdict.ok
    assert verdict.reason.startswith(signatures.UNSUPPORTED)
    # Meta and Mastodon sign with sha256 only: a valid sha1 signature is not enough.
    sha1 = f"sha1={_hex(SECRET, BODY, 'sha1')}"
    assert verify_meta(SECRET, BODY, sha1).reason.startswith(signatures.UNSUPPORTED)
    assert verify_mastodon(SECRET, BODY, sha1).reason.startswith(signatures.UNSUPPORTED)
    assert verify_x(SECRET, BODY, "sha1=" + _b64(SECRET, BODY)).reason.startswith(
        signatures.UNSUPPORTED
    )


@pytest.mark.parametrize(
    "header",
    [
        "sha256=not base64!",
        "sha256=" + _b64(SECRET, BODY)[:-2],  # padding cut: not valid base64
        "sha256=" + base64.b64encode(b"short").decode(),  # wrong digest length
        "sha256=" + _hex(SECRET, BODY),  # hex is base64 alphabet but 48 bytes
    ],
)
def test_malformed_x_headers(header: str) -> None:
    assert verify_x(SECRET, BODY, header).reason == MALFORMED


def test_digests_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # the module calls hmac.compare_digest
    assert verify_meta(SECRET, BODY, f"sha256={_hex(SECRET, BODY)}").ok
    assert not verify_x(SECRET, BODY, f"sha256={_b64('x', BODY)}").ok
    assert not verify_websub(SECRET, BODY, f"sha512={_hex('x', BODY, 'sha512')}").ok
    assert len(calls) == 3
    assert all(isinstance(a, bytes) and len(a) == len(b) for a, b in calls)
