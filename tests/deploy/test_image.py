"""The image is hadolint-clean, pinned, non-root and health-checked; scripts pass shellcheck."""

from __future__ import annotations

import re

from tests.deploy.support import ROOT, run, tool

DOCKERFILE = ROOT / "Dockerfile"


def test_dockerfile_passes_hadolint() -> None:
    result = run(tool("hadolint"), "--failure-threshold", "info", str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_image_is_pinned_to_an_exact_version() -> None:
    text = DOCKERFILE.read_text()
    default = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    assert default, "the base image is the PYTHON_IMAGE build argument"
    # python:<major>.<minor>.<patch>-slim-<debian release>, optionally @sha256:<digest>
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", default[1])
    assert re.findall(r"^FROM (\S+)", text, re.MULTILINE) == ["${PYTHON_IMAGE}"] * 2


def test_image_runs_as_non_root_with_a_healthcheck() -> None:
    runtime = DOCKERFILE.read_text().split("AS runtime", 1)[1]
    users = re.findall(r"^USER (\S+)", runtime, re.MULTILINE)
    assert users, "the runtime stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "a numeric user, so Kubernetes can check runAsNonRoot"
    assert int(uid) >= 10000, "an unprivileged user"
    assert re.search(r"^HEALTHCHECK .*\n?.*CMD", runtime, re.MULTILINE)


def test_build_context_holds_what_the_dockerfile_copies() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".venv", ".git", ".smm", "tests"} <= ignored
    for sources in re.findall(
        r"^COPY (?!--from)(?:--\S+ )*(.+) \S+$", DOCKERFILE.read_text(), re.M
    ):
        for source in sources.split():
            if source.startswith("<<"):
                continue  # a here-document
            assert (ROOT / source).exists(), f"COPY {source}: no such file"
            assert source not in ignored, f"COPY {source}: excluded by .dockerignore"


def test_shell_scripts_pass_shellcheck() -> None:
    scripts = [ROOT / "smm", *sorted((ROOT / "deploy").rglob("*.sh"))]
    assert len(scripts) >= 3
    result = run(tool("shellcheck"), *map(str, scripts))
    assert result.returncode == 0, result.stdout + result.stderr
