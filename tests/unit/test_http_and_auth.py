"""The HTTP app every service shares: auth with scopes, the error body, size limits.

The app is built but its lifespan is not run, so nothing connects to a server here.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient
from pydantic import BaseModel

from shared.auth import Principal, TokenAuthority, require_scope
from shared.http import create_http_app
from shared.service import ServiceRuntime
from shared.settings import Settings


class Payload(BaseModel):
    name: str
    count: int


def _router() -> APIRouter:
    router = APIRouter()

    @router.post("/v1/things")
    async def create(
        payload: Payload, principal: Annotated[Principal, Depends(require_scope("posts:write"))]
    ) -> dict[str, str]:
        return {"by": principal.id, "name": payload.name}

    @router.get("/v1/things")
    async def read(
        principal: Annotated[Principal, Depends(require_scope("read"))],
    ) -> dict[str, str]:
        return {"by": principal.id}

    @router.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    return router


def _client(**overrides: Any) -> TestClient:
    settings = Settings(
        admin_token="admin-secret-0001",
        api_tokens={"writer-token-01": ["posts:write"], "reader-token-01": ["read"]},
        max_request_bytes=2048,
        **overrides,
    )
    runtime = ServiceRuntime(name="publisher", settings=settings)
    return TestClient(create_http_app(runtime, [_router()]), raise_server_exceptions=False)


@pytest.fixture
def client() -> TestClient:
    return _client()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_write_without_token_is_401_in_the_contract_shape(client: TestClient) -> None:
    response = client.post("/v1/things", json={"name": "a", "count": 1})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"


def test_wrong_token_and_missing_scope(client: TestClient) -> None:
    assert client.post("/v1/things", json={}, headers=_auth("nope")).status_code == 401
    response = client.post(
        "/v1/things", json={"name": "a", "count": 1}, headers=_auth("reader-token-01")
    )
    assert response.status_code == 403
    assert "posts:write" in response.json()["error"]["message"]


def test_scoped_and_admin_tokens_may_write(client: TestClient) -> None:
    for token in ("writer-token-01", "admin-secret-0001"):
        response = client.post("/v1/things", json={"name": "a", "count": 1}, headers=_auth(token))
        assert response.status_code == 200
        assert response.json()["by"].startswith("token-")
        assert token not in response.json()["by"]


def test_reads_need_a_token_unless_opened_on_purpose(client: TestClient) -> None:
    assert Settings().protect_reads is True
    assert client.get("/v1/things").status_code == 401
    assert client.get("/v1/things", headers=_auth("nope")).status_code == 401
    assert client.get("/v1/things", headers=_auth("reader-token-01")).status_code == 200
    assert client.get("/v1/things", headers=_auth("writer-token-01")).status_code == 403
    opened = _client(protect_reads=False)
    assert opened.get("/v1/things").json() == {"by": "anonymous"}


def test_probes_metrics_and_asyncapi_stay_open_while_reads_are_protected(
    client: TestClient,
) -> None:
    # Kubernetes' probes, Prometheus' scrapes and AsyncAPI readers carry no token.
    for path in ("/healthz", "/metrics", "/asyncapi.json", "/asyncapi"):
        assert client.get(path).status_code == 200, path


def _principal_id(token: str, **settings: Any) -> str:
    principal = TokenAuthority(Settings(**settings)).authenticate(f"Bearer {token}")
    assert principal is not None
    return principal.id


def test_unnamed_token_fingerprints_are_keyed_not_plain_hashes() -> None:
    tokens = {"api_tokens": {"reader-token-01": ["read"]}, "admin_token": "admin-secret-0001"}
    actor = _principal_id("reader-token-01", **tokens)
    assert actor.startswith("token-")
    assert len(actor) == len("token-") + 12
    for digest in (hashlib.sha256, hashlib.sha1, hashlib.md5, hashlib.blake2b):
        assert digest(b"reader-token-01").hexdigest()[:12] not in actor
    # Stable: every replica and every restart with the same settings names the token alike.
    assert _principal_id("reader-token-01", **tokens) == actor
    # Keyed: another installation (another admin token, or another key) gives another name.
    assert _principal_id("reader-token-01", **{**tokens, "admin_token": "other-admin-001"}) != actor
    keyed = {**tokens, "token_fingerprint_key": "k" * 32}
    assert _principal_id("reader-token-01", **keyed) != actor
    # With an explicit key, rotating the admin token keeps the other tokens' names.
    rotated = {**keyed, "admin_token": "rotated-admin-01"}
    assert _principal_id("reader-token-01", **rotated) == _principal_id("reader-token-01", **keyed)
    # Without an admin token the key comes from the API tokens, still not a plain hash.
    alone = _principal_id("reader-token-01", api_tokens={"reader-token-01": ["read"]})
    assert hashlib.sha256(b"reader-token-01").hexdigest()[:12] not in alone


def test_a_placeholder_fingerprint_key_is_refused() -> None:
    for key in ("change-me-to-a-long-random-key", "short"):
        with pytest.raises(ValueError, match="SMM_TOKEN_FINGERPRINT_KEY"):
            Settings(token_fingerprint_key=key)


def test_invalid_body_is_422_with_details(client: TestClient) -> None:
    response = client.post("/v1/things", json={"name": 5}, headers=_auth("writer-token-01"))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert {tuple(d["loc"]) for d in error["details"]} >= {("body", "count")}


def test_oversized_body_is_413(client: TestClient) -> None:
    response = client.post(
        "/v1/things",
        content=b"x" * 5000,
        headers={**_auth("writer-token-01"), "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_unknown_route_and_unexpected_error_keep_the_shape(client: TestClient) -> None:
    missing = client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    boom = client.get("/v1/boom")
    assert boom.status_code == 500
    assert "secret internals" not in boom.text


def test_health_metrics_and_asyncapi_need_no_servers(client: TestClient) -> None:
    assert client.get("/healthz").json()["service"] == "publisher"
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert 'smm_http_requests_total{method="GET",route="/healthz",status="200"}' in metrics.text
    spec = client.get("/asyncapi.json").json()
    assert spec["asyncapi"].startswith("3.")
    assert "<html" in client.get("/asyncapi").text.lower()


def test_token_authority_ignores_other_schemes() -> None:
    authority = TokenAuthority(Settings(admin_token="t0ken-long-enough"))
    assert authority.authenticate("Basic t0ken-long-enough") is None
    assert authority.authenticate("Bearer ") is None
    principal = authority.authenticate("bearer t0ken-long-enough")
    assert principal is not None
    assert principal.has("anything")
