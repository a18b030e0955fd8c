"""The image is hadolint-clean, pinned, non-root and health-checked; scripts pass shellcheck."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

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
    node = re.search(r"^ARG NODE_IMAGE=(\S+)$", text, re.MULTILINE)
    assert node, "the console's assets stage is the NODE_IMAGE build argument"
    # The official image: node:<major>.<minor>.<patch>-<debian release>-slim
    assert re.fullmatch(r"node:\d+\.\d+\.\d+-[a-z]+-slim(@sha256:[0-9a-f]{64})?", node[1])
    assert re.findall(r"^FROM (\S+)", text, re.MULTILINE) == [
        "${NODE_IMAGE}",
        "${PYTHON_IMAGE}",
        "${PYTHON_IMAGE}",
    ]


def test_console_assets_are_installed_from_the_lock_file_into_the_image() -> None:
    text = DOCKERFILE.read_text()
    assets = text.split("AS assets", 1)[1].split("\nFROM ", 1)[0]
    assert (
        "COPY services/console/static/package.json services/console/static/package-lock.json"
        in (assets)
    )
    (install,) = re.findall(r"^RUN (npm .*)$", assets, re.MULTILINE)
    # `ci`: exactly the lock file (fails when it disagrees with package.json); no dev packages,
    # no install scripts.
    assert install.split()[:2] == ["npm", "ci"]
    assert {"--omit=dev", "--ignore-scripts"} <= set(install.split())
    builder = text.split("AS builder", 1)[1].split("AS runtime", 1)[0]
    assert "COPY --from=assets /assets/node_modules" in builder
    assert 'static/node_modules"' in builder, "beside the console's own static files"
    lock = json.loads((ROOT / "services/console/static/package-lock.json").read_text())
    pinned = {k.removeprefix("node_modules/") for k in lock["packages"] if k}
    for package in ("htmx.org", "htmx-ext-sse", "chart.js"):
        assert package in pinned
        assert f"node_modules/{package}/package.json" in builder, f"the build checks {package}"
    # A local node_modules is never sent to the builder.
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "**/node_modules" in ignored


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


def _healthcheck_script() -> str:
    """The smm-healthcheck here-document of the Dockerfile."""
    text = DOCKERFILE.read_text()
    match = re.search(r"<<'EOF' /usr/local/bin/smm-healthcheck\n(.*?)\nEOF\n", text, re.S)
    assert match, "the Dockerfile writes /usr/local/bin/smm-healthcheck from a here-document"
    return match[1]


class _Healthz(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_healthcheck_script_passes_on_healthz_and_fails_without_it(tmp_path: Path) -> None:
    script = tmp_path / "smm-healthcheck"
    script.write_text(_healthcheck_script())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Healthz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = str(server.server_address[1])
        env = {**os.environ, "SMM_HEALTH_PORT": port}
        healthy = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, timeout=30, check=False
        )
        assert healthy.returncode == 0, healthy.stderr
    finally:
        server.shutdown()
        server.server_close()
    down = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, timeout=30, check=False
    )
    assert down.returncode != 0
    assert b"smm-healthcheck" in down.stderr
