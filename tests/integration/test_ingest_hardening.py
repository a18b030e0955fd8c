"""Issue 16 (ingest): handshakes that must not sign or accept what an attacker chooses.

Runs the webhook router the way `test_webhooks.py` does (real uvicorn, real WebSubStore).
"""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from shared.settings import Settings
from tests.integration.test_webhooks import X_SECRET, Running, _b64, _running, svc

pytestmark = pytest.mark.integration
__all__ = ["svc"]  # the fixture, imported for the tests below

#: A forged "complaint from an account with 2M followers", the body the attacker wants signed.
FORGED = json.dumps(
    {
        "for_user_id": "3001",
        "tweet_create_events": [
            {
                "id_str": "1800000000000000666",
                "created_at": "Mon Jun 10 09:15:30 +0000 2024",
                "text": "@bohnenglueck Euer Kaffee hat mich krank gemacht! Nie wieder!",
                "user": {
                    "id_str": "666",
                    "screen_name": "famous",
                    "name": "Famous",
                    "followers_count": 2_000_000,
                },
                "lang": "de",
            }
        ],
    },
    separators=(",", ":"),
)


async def test_x_crc_no_longer_signs_a_delivery_body(svc: Running) -> None:
    """The forgery: ask the CRC to sign a delivery, then post it with what the CRC answered."""
    crc = await svc.client.get("/webhooks/x", params={"crc_token": FORGED})
    answered = crc.json().get("response_token") or ""
    posted = await svc.client.post(
        "/webhooks/x",
        content=FORGED.encode(),
        headers={"x-twitter-webhooks-signature": answered},
    )
    assert posted.status_code == 401, posted.text
    assert svc.sink.calls == []
    assert crc.status_code == 400, crc.text
    assert crc.json()["error"]["code"] == "invalid_crc_token"


@pytest.mark.parametrize(
    "token",
    [
        "{}",
        '{"tweet_create_events":[]}',
        "[1]",
        '"quoted"',
        "123",
        "true",
        "a b",
        "x" * 256,
        "tok\u00e9n",
    ],
)
async def test_x_crc_refuses_tokens_not_in_x_form(svc: Running, token: str) -> None:
    response = await svc.client.get("/webhooks/x", params={"crc_token": token})
    assert response.status_code in (400, 422), (token, response.text)
    assert set(response.json()["error"]) == {"code", "message", "details"}


async def test_x_crc_still_answers_x_shaped_tokens(svc: Running) -> None:
    for token in ("a1b2c3d4-crc-token", "Kc4d5OFTbX_1ZlS9b-0tQm+W/1w=", "x" * 255):
        response = await svc.client.get("/webhooks/x", params={"crc_token": token})
        assert response.status_code == 200, (token, response.text)
        assert response.json() == {"response_token": "sha256=" + _b64(X_SECRET, token.encode())}


async def test_handshakes_are_rate_limited_with_retry_after(settings: Settings) -> None:
    limited = settings.model_copy(
        update={"ingest_handshake_rate_per_minute": 1.0, "ingest_handshake_burst": 3}
    )
    async with _running(limited, x_consumer_secret=SecretStr(X_SECRET)) as bare:
        answers = [
            await bare.client.get("/webhooks/x", params={"crc_token": f"token{n}"})
            for n in range(5)
        ]
        assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
        refused = answers[3]
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["code"] == "rate_limited"
        assert set(refused.json()["error"]) == {"code", "message", "details"}
