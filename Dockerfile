# syntax=docker/dockerfile:1
#
# One image for all five services. The container's command picks the service:
#   docker run ... smm-platform smm-ingest    (or smm-moderation, smm-publisher, smm-metrics,
#                                              smm-console)
# Each container sets its own port (SMM_INGEST_PORT, ...) and SMM_HEALTH_PORT to the same value,
# which the HEALTHCHECK probes (docker-compose.yml does both).
#
# Only the runtime dependencies are installed: not the `local` / `dev` extras, so no Tansu and no
# SecantusDB end up in a production image.
#
# The console's front-end packages (htmx, its SSE extension, Chart.js) come from the npm
# registry as services/console/static/package-lock.json pins them, installed in a Node stage;
# only their files reach the image, not Node.
#
# The base images are pinned by tag. Ops should pin them by digest as well, e.g.
#   docker build --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest> .
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG NODE_IMAGE=node:22.21.1-bookworm-slim

# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS assets

WORKDIR /assets
COPY services/console/static/package.json services/console/static/package-lock.json ./
# Exactly the lock file's versions and hashes; no install scripts run.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

# The same pip as ./smm uses; the venv gets no pip or setuptools of its own (pip installs into it
# from outside with --python), so the runtime image carries neither.
RUN python -m pip install --no-cache-dir "pip==26.3" \
 && python -m venv --without-pip /opt/venv

WORKDIR /src

# Dependencies first, in their own layer: a code change does not reinstall them.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && python -m pip --python /opt/venv/bin/python install --no-cache-dir \
        -c constraints.txt -r /tmp/requirements.txt

# Then the project itself (README.md is the package's long description).
COPY README.md ./
COPY shared ./shared
COPY services ./services
RUN python -m pip --python /opt/venv/bin/python install --no-cache-dir -c constraints.txt . \
 && /opt/venv/bin/python -c "import services.ingest.app, services.moderation.app, services.publisher.app, services.metrics.app, services.console.app"

# The console serves its front-end packages from static/node_modules beside its own files.
COPY --from=assets /assets/node_modules /tmp/node_modules
RUN console="$(/opt/venv/bin/python -c 'import pathlib, services.console as c; print(pathlib.Path(c.__file__).parent)')" \
 && test -d "$console/templates" && test -f "$console/static/app/app.js" \
 && cp -R /tmp/node_modules "$console/static/node_modules" \
 && test -f "$console/static/node_modules/htmx.org/package.json" \
 && test -f "$console/static/node_modules/htmx-ext-sse/package.json" \
 && test -f "$console/static/node_modules/chart.js/package.json"

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG PYTHON_IMAGE
ARG VERSION=0.1.0
ARG VCS_REF=unknown
ARG BUILD_DATE=unknown

LABEL org.opencontainers.image.title="smm-platform" \
      org.opencontainers.image.description="Social media marketing platform: ingest, moderation, publisher, metrics and console services (choose one with the container command)." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

RUN groupadd --system --gid 10001 smm \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin smm

COPY --from=builder /opt/venv /opt/venv

# The health probe: GET http://127.0.0.1:<port>/healthz, standard library only (no curl in slim).
# The port is SMM_HEALTH_PORT; without it, the port of the smm-<service> this container runs.
COPY --chmod=0755 <<'EOF' /usr/local/bin/smm-healthcheck
#!/usr/local/bin/python3
"""Docker HEALTHCHECK of an smm service container: exit 0 when /healthz answers 200."""

import os
import sys
import urllib.request

DEFAULT_PORTS = {
    "ingest": 8001,
    "moderation": 8002,
    "publisher": 8003,
    "metrics": 8004,
    "console": 8000,
}


def service_port() -> str:
    if os.environ.get("SMM_HEALTH_PORT"):
        return os.environ["SMM_HEALTH_PORT"]
    try:
        with open("/proc/1/cmdline", "rb") as f:
            args = f.read().decode("utf-8", "replace").split("\0")
    except OSError:
        args = []
    for arg in args:
        name = os.path.basename(arg)
        for service, port in DEFAULT_PORTS.items():
            if name in (f"smm-{service}", f"services.{service}"):
                return os.environ.get(f"SMM_{service.upper()}_PORT", str(port))
    sys.exit("smm-healthcheck: set SMM_HEALTH_PORT to the HTTP port of this container's service")


def main() -> None:
    url = f"http://127.0.0.1:{service_port()}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            status = response.status
    except Exception as exc:  # any failure means unhealthy
        sys.exit(f"smm-healthcheck: {url}: {exc}")
    if status != 200:
        sys.exit(f"smm-healthcheck: {url}: HTTP {status}")


main()
EOF

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SMM_HTTP_HOST=0.0.0.0

USER 10001:10001

EXPOSE 8000 8001 8002 8003 8004

# start-period covers the services' wait for Kafka and MongoDB (SMM_STARTUP_TIMEOUT_SECONDS=120).
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["/usr/local/bin/smm-healthcheck"]

# No default service: the command chooses one.
CMD ["python", "-c", "import sys; sys.exit('choose a service: smm-ingest, smm-moderation, smm-publisher, smm-metrics or smm-console')"]
