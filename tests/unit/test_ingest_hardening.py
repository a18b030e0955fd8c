"""Issue 16 (ingest), pure rules: which CRC tokens are signed, the handshake rate limiter."""

from __future__ import annotations

import json

import pytest

from services.ingest.domain.handshakes import RateLimiter, crc_token_problem, retry_after_header


@pytest.mark.parametrize(
    "token",
    ["a1b2c3d4-crc-token", "Kc4d5OFTbX_1ZlS9b-0tQm+W/1w=", "A" * 255, "abc123"],
)
def test_x_shaped_crc_tokens_are_signed(token: str) -> None:
    assert crc_token_problem(token) is None


@pytest.mark.parametrize(
    "token",
    [
        json.dumps({"tweet_create_events": []}),
        "{}",
        "[]",
        "123",
        "-1",
        "1e5",
        "true",
        "null",
        "",
        "A" * 256,
        "a b",
        "a\nb",
        "tok\u00e9n",
    ],
)
def test_anything_that_could_be_a_delivery_is_refused(token: str) -> None:
    assert crc_token_problem(token)


def test_rate_limiter_allows_a_burst_then_refills_per_client() -> None:
    limiter = RateLimiter(rate=1.0, burst=2)
    assert limiter.acquire("a", 0.0) == 0.0
    assert limiter.acquire("a", 0.0) == 0.0
    wait = limiter.acquire("a", 0.0)
    assert wait == pytest.approx(1.0)
    assert limiter.acquire("b", 0.0) == 0.0  # another client has its own bucket
    assert limiter.acquire("a", 1.0) == 0.0  # refilled one token in a second
    assert limiter.acquire("a", 1.0) > 0


def test_rate_limiter_forgets_the_longest_idle_client_first() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, max_keys=2)
    limiter.acquire("a", 0.0)
    limiter.acquire("b", 0.0)
    limiter.acquire("c", 0.0)  # "a" is forgotten: it would start full again
    assert limiter.acquire("a", 0.0) == 0.0
    assert limiter.acquire("c", 0.0) > 0


def test_retry_after_is_whole_seconds_and_never_zero() -> None:
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(2.2) == "3"
