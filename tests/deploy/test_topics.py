"""Topic definitions of compose and Kubernetes are the registry's (shared/topics.py), exactly."""

from __future__ import annotations

import importlib.util
import os
import shlex
import stat
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from shared.settings import Settings
from shared.topics import TOPICS, physical_topics
from tests.deploy.support import DEPLOY, K8S, of_kind, rendered, run


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_generate", K8S / "generate.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _registry(partitions: int, prefix: str = "") -> dict[str, tuple[int, dict[str, str]]]:
    settings = Settings(topic_partitions=partitions, topic_prefix=prefix)
    return {t.name: (t.num_partitions, dict(t.topic_configs)) for t in physical_topics(settings)}


def test_generated_files_are_current() -> None:
    stale = _generator().stale_files()
    assert not stale, (
        f"out of date: {[str(p.relative_to(DEPLOY.parent)) for p in stale]}; "
        "run .venv/bin/python deploy/k8s/generate.py and commit the result"
    )


@pytest.mark.parametrize(("partitions", "prefix"), [(6, ""), (5, "staging."), (1, "")])
def test_create_topics_script_creates_the_registry(
    tmp_path: Path, partitions: int, prefix: str
) -> None:
    """Run the compose job's script against a stand-in kafka-topics.sh that records its calls."""
    calls = tmp_path / "calls"
    fake = tmp_path / "kafka-topics.sh"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {shlex.quote(str(calls))}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {
        **os.environ,
        "KAFKA_TOPICS": str(fake),
        "SMM_TOPIC_PARTITIONS": str(partitions),
        "SMM_TOPIC_PREFIX": prefix,
        "SMM_TOPIC_REPLICATION_FACTOR": "1",
    }
    result = run_script(DEPLOY / "kafka" / "create-topics.sh", env)
    assert result.returncode == 0, result.stderr
    created: dict[str, tuple[int, dict[str, str]]] = {}
    for line in calls.read_text().splitlines():
        args = line.split()
        if "--create" not in args:
            continue
        name = args[args.index("--topic") + 1]
        configs = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--config")
        created[name] = (int(args[args.index("--partitions") + 1]), configs)
        assert "--if-not-exists" in args
    assert created == _registry(partitions, prefix)


def run_script(script: Path, env: dict[str, str]) -> Any:
    import subprocess

    return subprocess.run(
        ["sh", str(script)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_kafka_topics_are_the_registry(overlay: str) -> None:
    topics = of_kind(rendered(overlay), "KafkaTopic")
    defined = {
        t["spec"]["topicName"]: (
            t["spec"]["partitions"],
            {k: str(v) for k, v in t["spec"]["config"].items() if k != "min.insync.replicas"},
        )
        for t in topics
    }
    assert defined == _registry(6)
    assert len(topics) == 2 * len(TOPICS)
    replicas, min_insync = (1, 1) if overlay == "dev" else (3, 2)
    for topic in topics:
        assert topic["spec"]["replicas"] == replicas
        assert topic["spec"]["config"]["min.insync.replicas"] == min_insync
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "smm"


def test_the_check_notices_a_hand_edit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generator = _generator()
    copy = tmp_path / "topics.yaml"
    copy.write_text(
        generator.KAFKA_TOPICS_YAML.read_text().replace("partitions: 6", "partitions: 7")
    )
    monkeypatch.setattr(generator, "KAFKA_TOPICS_YAML", copy)
    assert copy in generator.stale_files()


def test_generator_runs_as_a_script() -> None:
    import sys

    result = run(sys.executable, str(K8S / "generate.py"), "--check")
    assert result.returncode == 0, result.stderr
