"""Hostile input on every HTTP endpoint of the four running backend services.

Schemathesis generates requests from each service's own OpenAPI document, valid and invalid
(wrong types, missing fields, odd strings, huge numbers), and sends them with a valid token to
the services running as processes on the real broker and database. Every answer must be a
success or a clear 4xx in the contract's error body; never a 5xx, never a dead process. Then
nothing stored may carry a MongoDB operator, and every write endpoint must refuse a caller
without a token.

`SMM_FUZZ_EXAMPLES` sets the examples per operation (default 25; CI's long run uses more).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from pymongo import MongoClient
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from shared.settings import BACKEND_NAMES, Settings
from tests.conftest import LocalServers, isolated_settings
from tests.processes import TOKEN, ServiceProcesses, service_processes

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("SMM_FUZZ_EXAMPLES", "25"))
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WRITE_METHODS = ("post", "put", "patch", "delete")
#: Routes that authenticate by the platform's signature, not by our bearer token.
SIGNED_ROUTES = ("/webhooks/",)
#: POSTs with no side effects, readable like GETs (contract: "so other systems can use the
#: classifiers directly"); they need the `read` scope only when reads are protected.
SIDE_EFFECT_FREE = {("post", "/v1/classify")}
#: Only the four JSON APIs have an OpenAPI document to fuzz from: the console (the fifth of
#: SERVICE_NAMES) serves HTML with openapi_url=None, and its forms need a session and a CSRF
#: token; its hostile-input tests belong with the console's own tests.
SERVICES = BACKEND_NAMES


@pytest.fixture(scope="module")
def fuzz_settings(servers: LocalServers) -> Settings:
    return isolated_settings(servers)


@pytest.fixture(scope="module")
def running(
    fuzz_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcesses]:
    logs: Path = tmp_path_factory.mktemp("fuzz-logs")
    with service_processes(fuzz_settings, logs, SERVICES) as group:
        yield group


def _schema(running: ServiceProcesses, name: str) -> Any:
    return schemathesis.openapi.from_url(running.url(name) + "/openapi.json")


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)


def _assert_clear_answer(case: Any, running: ServiceProcesses, service: str) -> None:
    response = case.call(headers=AUTH, timeout=30)
    where = f"{case.method} {case.formatted_path} -> {response.status_code}"
    assert response.status_code < 500, f"{where}: {response.text[:500]}"
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, f"{where}: {body}"
        assert body["error"]["code"], where
        assert body["error"]["message"], where
    process = running[service].process
    assert process is not None
    assert process.poll() is None, running[service].tail()


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda mode: mode.value)
def test_every_endpoint_answers_hostile_input_clearly(
    service: str, mode: GenerationMode, running: ServiceProcesses
) -> None:
    """Valid (positive) and invalid (negative) requests for every operation of `service`."""
    schema = schemathesis.openapi.from_url(running.url(service) + "/openapi.json")
    results = list(schema.get_all_operations())
    invalid = [result for result in results if not isinstance(result, Ok)]
    assert not invalid, f"{service}'s OpenAPI document has invalid operations: {invalid}"
    fuzzed = 0
    for result in results:
        assert isinstance(result, Ok)
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @FUZZ
        def fuzz(case: Any) -> None:
            _assert_clear_answer(case, running, service)

        try:
            fuzz()
        except Unsatisfiable:
            # Only in negative mode: an operation without inputs cannot be sent invalid ones.
            assert mode is GenerationMode.NEGATIVE, operation.label
            continue
        fuzzed += 1
    if mode is GenerationMode.POSITIVE:
        assert fuzzed == len(results), f"{service}: only {fuzzed} of {len(results)} fuzzed"


def _write_operations(spec: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (method, path)
        for path, item in spec["paths"].items()
        for method in item
        if method in WRITE_METHODS
        and not path.startswith(SIGNED_ROUTES)
        and (method, path) not in SIDE_EFFECT_FREE
    ]


@pytest.mark.parametrize("service", SERVICES)
def test_every_write_endpoint_needs_a_token(service: str, running: ServiceProcesses) -> None:
    spec = httpx.get(running.url(service) + "/openapi.json").json()
    operations = _write_operations(spec)
    for method, path in operations:
        url = running.url(service) + path.replace("{", "").replace("}", "")
        for headers in ({}, {"Authorization": "Bearer not-a-valid-token-at-all"}):
            response = httpx.request(method.upper(), url, json={}, headers=headers, timeout=10)
            assert response.status_code == 401, f"{method} {path}: {response.status_code}"
            assert response.json()["error"]["code"] == "unauthorized"


def _operator_keys(value: Any, path: str = "") -> list[str]:
    if isinstance(value, dict):
        found = [f"{path}.{k}" for k in value if isinstance(k, str) and k.startswith("$")]
        for key, inner in value.items():
            found += _operator_keys(inner, f"{path}.{key}")
        return found
    if isinstance(value, list):
        return [hit for index, inner in enumerate(value) for hit in _operator_keys(inner, path)]
    return []


def test_nothing_stored_carries_a_mongodb_operator(
    fuzz_settings: Settings, running: ServiceProcesses
) -> None:
    """Runs after the fuzzing above (same module): scan every document it left behind."""
    client: MongoClient[dict[str, Any]] = MongoClient(
        fuzz_settings.mongodb_uri.get_secret_value(), tz_aware=True
    )
    try:
        database = client[fuzz_settings.mongodb_database]
        names = database.list_collection_names()
        assert names, "the fuzzing stored nothing at all"
        for name in names:
            assert not name.startswith("$"), name
            for document in database[name].find({}).limit(5000):
                assert not _operator_keys(document), (name, document.get("_id"))
                assert not str(document.get("_id", "")).startswith("$"), (name, document["_id"])
    finally:
        client.close()
