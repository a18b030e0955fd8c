"""The alerting rules parse and behave as their promtool unit tests say."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: `./smm test` installs it (Debian package 'prometheus')")
    return path


def test_rules_parse(promtool: str) -> None:
    files = sorted(str(p) for p in RULES.glob("*.yml"))
    assert files
    result = subprocess.run(
        [promtool, "check", "rules", *files], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_unit_tests_pass(promtool: str) -> None:
    tests = sorted(str(p) for p in (RULES / "tests").glob("*_test.yml"))
    assert len(tests) >= 2
    result = subprocess.run(
        [promtool, "test", "rules", *tests], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
