"""`smm local up --detach` / `smm local down`, as a newcomer runs them.

The whole stack starts from an empty folder, demo mentions flow through ingest and Kafka into
moderation, `down` leaves no process behind, and a second start reuses the stored data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from shared.local.servers import free_port, mongo_uri

pytestmark = pytest.mark.integration


def _smm(
    args: list[str], env: dict[str, str], timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def _stored_mentions(uri: str) -> int:
    client: MongoClient[dict[str, Any]]
    with MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
        return client["smm"]["moderation_mentions"].count_documents({})


def test_local_stack_up_demo_down_and_restart(tmp_path: Path) -> None:
    data = tmp_path / "stack"
    kafka_port, mongo_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("SMM_")}
    env.update(
        {
            "SMM_LOCAL_KAFKA_PORT": str(kafka_port),
            "SMM_LOCAL_MONGO_PORT": str(mongo_port),
            "SMM_LOCAL_DEMO_RATE": "20",
            **{
                f"SMM_{name}_PORT": str(free_port())
                for name in ("INGEST", "MODERATION", "PUBLISHER", "METRICS")
            },
        }
    )
    up = _smm(["local", "up", "--detach", "--data-dir", str(data)], env)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "admin token" in up.stdout
    state = json.loads((data / "state.json").read_text())
    pids = list(state["pids"].values())
    try:
        for url in state["services"].values():
            assert httpx.get(url + "/readyz", timeout=5).status_code == 200
        uri = mongo_uri("127.0.0.1", mongo_port)
        deadline = time.monotonic() + 60
        while _stored_mentions(uri) < 20:
            assert time.monotonic() < deadline, "demo mentions did not reach moderation"
            time.sleep(1)
        token = (data / "admin-token").read_text().strip()
        assert token in up.stdout
    finally:
        down = _smm(["local", "down", "--data-dir", str(data)], env, timeout=90)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not [pid for pid in pids if _alive(pid)], "processes left behind"
    before = _stored_mentions_after_restart(data, env, uri)
    assert before >= 20


def _stored_mentions_after_restart(data: Path, env: dict[str, str], uri: str) -> int:
    again = _smm(["local", "up", "--detach", "--no-demo", "--data-dir", str(data)], env)
    assert again.returncode == 0, again.stdout + again.stderr
    try:
        return _stored_mentions(uri)
    finally:
        assert _smm(["local", "down", "--data-dir", str(data)], env, timeout=90).returncode == 0
