"""`smm local up|down|status`: the whole platform on one machine, no Docker needed.

The supervisor starts SecantusDB (data kept in the stack folder, so a second start reuses it),
Tansu (in memory), creates the topics, starts the four services as separate processes, waits
until each is ready, runs the demo feed, and restarts a service that crashes. Ctrl-C, SIGTERM or
`smm local down` stop everything; children also get SIGTERM if the supervisor itself dies.

The admin token is a secret: its file and every log the stack writes (the supervisor's log holds
the banner with the token) are created readable by the owner only, in a folder only the owner
may enter, and the services demand it for reads too (`SMM_PROTECT_READS`, unless set to false).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from shared.auth import CONSOLE_TOKEN_SCOPES
from shared.kafka import create_missing_topics
from shared.local.demo_feed import DemoFeed
from shared.local.servers import (
    LOCAL_SERVICE_ENV,
    ManagedProcess,
    kafka_process,
    mongo_process,
    mongo_uri,
    port_open,
)
from shared.settings import SERVICE_NAMES, Settings

HOST = "127.0.0.1"
STATE_FILE = "state.json"
SUPERVISOR_PID = "supervisor.pid"
TOKEN_FILE = "admin-token"  # noqa: S105 - a file name, not a secret
PASSWORD_FILE = "admin-password"  # noqa: S105 - a file name, not a secret
ACTOR_KEY_FILE = "actor-signing-key"
CONSOLE_TOKEN_FILE = "console-token"  # noqa: S105 - a file name, not a secret
#: The console's first user, created at the first start with the password in PASSWORD_FILE.
ADMIN_EMAIL = "admin@smm.local"


@dataclass(frozen=True)
class StackConfig:
    """Where the stack keeps its data and which ports it uses."""

    data_dir: Path
    kafka_port: int = 9092
    mongo_port: int = 27017
    demo: bool = True
    demo_rate: float = 5.0  # mentions per second
    #: The demo's stand-in social network (where replies from the inbox go), with the demo.
    demo_network_port: int = 8009

    @property
    def state_path(self) -> Path:
        return self.data_dir / STATE_FILE

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"


PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def prepare_dirs(config: StackConfig) -> None:
    """The stack folder and its logs folder, for the owner only (also when made by an older
    version: it tightens what it finds)."""
    for folder in (config.data_dir, config.logs):
        folder.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        if folder.stat().st_mode & 0o077:
            folder.chmod(PRIVATE_DIR)
    for log in config.logs.iterdir():
        if log.is_file() and log.stat().st_mode & 0o077:
            log.chmod(PRIVATE_FILE)


def open_private_log(path: Path) -> IO[bytes]:
    """Open a log for appending; a new one is created 0600, never readable by others."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
    return os.fdopen(fd, "ab")


def admin_token(config: StackConfig) -> str:
    """`SMM_ADMIN_TOKEN`, else the token generated at the first start (kept in the stack folder)."""
    return stack_secret(config, TOKEN_FILE, "SMM_ADMIN_TOKEN")


def stack_secret(config: StackConfig, file_name: str, variable: str, size: int = 24) -> str:
    """The environment's `variable`, else a secret generated at the first start and kept in
    the stack folder as `file_name`.

    The file is created 0600 in one step (`O_CREAT | O_EXCL`), so it is never readable by others,
    not even for a moment; a second process racing the first reads the winner's secret.
    """
    configured = os.environ.get(variable)
    if configured:
        return configured
    path = config.data_dir / file_name
    token = secrets.token_urlsafe(size)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        if path.stat().st_mode & 0o077:  # written by an older version
            path.chmod(PRIVATE_FILE)
        for _ in range(50):  # the winner of a race may not have written it yet
            stored = path.read_text().strip()
            if stored:
                return stored
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty; delete it to generate a new one") from None
    with os.fdopen(fd, "w") as file:
        file.write(token + "\n")
    return token


def console_env(config: StackConfig, env: dict[str, str]) -> dict[str, str]:
    """The console's secrets: its act_as token (added to `SMM_API_TOKENS`), the key every
    service verifies user assertions with, and the first admin's password (the console
    creates that user when it has none)."""
    console_token = stack_secret(config, CONSOLE_TOKEN_FILE, "SMM_CONSOLE_SERVICE_TOKEN")
    tokens = json.loads(env.get("SMM_API_TOKENS") or "{}")
    tokens[console_token] = {"user": "console", "scopes": list(CONSOLE_TOKEN_SCOPES)}
    return {
        "SMM_CONSOLE_FIRST_ADMIN_EMAIL": ADMIN_EMAIL,
        "SMM_CONSOLE_FIRST_ADMIN_PASSWORD": stack_secret(
            config, PASSWORD_FILE, "SMM_LOCAL_ADMIN_PASSWORD", size=15
        ),
        "SMM_CONSOLE_SERVICE_TOKEN": console_token,
        "SMM_API_TOKENS": json.dumps(tokens),
        "SMM_ACTOR_SIGNING_KEY": stack_secret(
            config, ACTOR_KEY_FILE, "SMM_ACTOR_SIGNING_KEY", size=32
        ),
    }


def admin_password(config: StackConfig) -> str:
    """The console admin's first password, as kept in the stack folder ('' if not there)."""
    configured = os.environ.get("SMM_LOCAL_ADMIN_PASSWORD")
    if configured:
        return configured
    path = config.data_dir / PASSWORD_FILE
    return path.read_text().strip() if path.exists() else ""


DEMO_NETWORK_TOKEN_FILE = "demo-network-token"  # noqa: S105 - a file name, not a secret


def demo_network_env(config: StackConfig, env: dict[str, str]) -> dict[str, str]:
    """Where the publisher's demo channels post: the stand-in network on loopback."""
    if not config.demo:
        return {}
    token = stack_secret(config, DEMO_NETWORK_TOKEN_FILE, "SMM_DEMO_NETWORK_TOKEN")
    base = f"http://{HOST}:{config.demo_network_port}"
    bases = json.loads(env.get("SMM_PUBLISHER_API_BASE_URLS") or "{}")
    bases.setdefault("x", f"{base}/x")
    bases.setdefault("facebook", f"{base}/facebook")
    return {
        "SMM_DEMO_NETWORK_TOKEN": token,
        "SMM_CHANNEL_SECRET_DEMO": token,
        "SMM_PUBLISHER_API_BASE_URLS": json.dumps(bases),
    }


def service_env(config: StackConfig, token: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SMM_LOCAL")}
    env.update(console_env(config, env))
    env.update(demo_network_env(config, env))
    env.update(
        {
            "SMM_KAFKA_BOOTSTRAP_SERVERS": f"{HOST}:{config.kafka_port}",
            "SMM_MONGODB_URI": mongo_uri(HOST, config.mongo_port),
            "SMM_ADMIN_TOKEN": token,
            # Reads need the token too, unless the developer opened them on purpose.
            "SMM_PROTECT_READS": env.get("SMM_PROTECT_READS", "true"),
            "SMM_TOPIC_PARTITIONS": env.get("SMM_TOPIC_PARTITIONS", "3"),
            "SMM_HTTP_HOST": HOST,
            "PYTHONUNBUFFERED": "1",
            **{key: env.get(key, value) for key, value in LOCAL_SERVICE_ENV.items()},
        }
    )
    return env


def _write_state(config: StackConfig, state: dict[str, Any]) -> None:
    tmp = config.state_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(config.state_path)


def read_state(config: StackConfig) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(config.state_path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return state


def _pid_alive(pid: int) -> bool:
    """True while the process runs (a zombie waiting to be reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def running_supervisor(config: StackConfig) -> int | None:
    path = config.data_dir / SUPERVISOR_PID
    try:
        pid = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


class Supervisor:
    """Runs the stack in the foreground until asked to stop."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.token = ""
        self.settings: Settings | None = None
        self.servers: list[ManagedProcess] = []
        self.services: dict[str, ManagedProcess] = {}
        self.stopping = threading.Event()
        self.demo: DemoFeed | None = None

    # --- life cycle ---------------------------------------------------------------------

    def run(self) -> int:
        config = self.config
        # Whatever the supervisor and its children write (logs, data) is the owner's only.
        os.umask(0o077)
        prepare_dirs(config)
        if running_supervisor(config):
            print(f"a local stack already runs from {config.data_dir}", file=sys.stderr)
            return 1
        (config.data_dir / SUPERVISOR_PID).write_text(str(os.getpid()))
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, lambda *_: self.stopping.set())
        self.token = admin_token(config)
        env = service_env(config, self.token)
        self.settings = Settings(
            kafka_bootstrap_servers=env["SMM_KAFKA_BOOTSTRAP_SERVERS"],
            topic_partitions=int(env["SMM_TOPIC_PARTITIONS"]),
            kafka_enable_idempotence=False,
        )
        _write_state(config, {"status": "starting", "supervisor_pid": os.getpid()})
        try:
            self._start(env)
            self._announce()
            self._watch(env)
            return 0
        except Exception as exc:  # report, then stop whatever did start
            print(f"local stack failed: {exc}", file=sys.stderr)
            _write_state(config, {"status": "failed", "error": str(exc)})
            return 1
        finally:
            self._stop()

    def _start(self, env: dict[str, str]) -> None:
        config = self.config
        for port, what in ((config.kafka_port, "Kafka"), (config.mongo_port, "MongoDB")):
            if port_open(HOST, port):
                raise RuntimeError(
                    f"port {port} for {what} is taken; set SMM_LOCAL_KAFKA_PORT / "
                    "SMM_LOCAL_MONGO_PORT or stop what listens there"
                )
        mongo = mongo_process(
            HOST, config.mongo_port, str(config.data_dir / "mongo"), config.logs / "mongodb.log"
        )
        kafka = kafka_process(HOST, config.kafka_port, config.logs / "kafka.log")
        self.servers = [mongo, kafka]
        if config.demo:
            if port_open(HOST, config.demo_network_port):
                raise RuntimeError(
                    f"port {config.demo_network_port} for the demo network is taken; set "
                    "SMM_LOCAL_DEMO_NETWORK_PORT or start with --no-demo"
                )
            self.servers.append(
                ManagedProcess(
                    "demo-network",
                    [
                        sys.executable,
                        "-m",
                        "shared.local.demo_network",
                        "--port",
                        str(config.demo_network_port),
                    ],
                    HOST,
                    config.demo_network_port,
                    config.logs / "demo-network.log",
                    env,
                )
            )
        for server in self.servers:
            server.start()
        for server in self.servers:
            server.wait_port(60)
        self._step(
            "servers up", kafka=f"{HOST}:{config.kafka_port}", mongodb=env["SMM_MONGODB_URI"]
        )
        assert self.settings is not None
        asyncio.run(create_missing_topics(self.settings))
        for name in SERVICE_NAMES:
            self.services[name] = self._service_process(name, env)
            self.services[name].start()
        self._wait_ready(timeout=120)
        if config.demo:
            self.demo = DemoFeed(
                ingest_url=self._url("ingest"),
                token=self.token,
                rate=config.demo_rate,
                moderation_url=self._url("moderation"),
                publisher_url=self._url("publisher"),
                network_url=f"http://{HOST}:{config.demo_network_port}",
            )
            self.demo.start()

    def _service_process(self, name: str, env: dict[str, str]) -> ManagedProcess:
        port = Settings().port_of(name)  # type: ignore[arg-type]
        return ManagedProcess(
            name,
            [sys.executable, "-m", f"services.{name}"],
            HOST,
            port,
            self.config.logs / f"{name}.log",
            env,
        )

    def _url(self, name: str) -> str:
        return f"http://{HOST}:{self.services[name].port}"

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = set(self.services)
        with httpx.Client(timeout=2) as client:
            while pending and time.monotonic() < deadline and not self.stopping.is_set():
                for name in sorted(pending):
                    process = self.services[name]
                    if not process.alive():
                        raise RuntimeError(f"{name} exited during start\n{process.log_tail()}")
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(self._url(name) + "/readyz").status_code == 200:
                            pending.discard(name)
                            self._step(f"{name} ready", url=self._url(name))
                time.sleep(0.3)
        if pending and not self.stopping.is_set():
            raise TimeoutError(f"not ready after {timeout}s: {sorted(pending)}")

    def _announce(self) -> None:
        urls = {name: self._url(name) for name in self.services}
        state = {
            "status": "ready",
            "supervisor_pid": os.getpid(),
            "data_dir": str(self.config.data_dir),
            "kafka": f"{HOST}:{self.config.kafka_port}",
            "mongodb": mongo_uri(HOST, self.config.mongo_port),
            "services": urls,
            "pids": {p.name: p.pid for p in [*self.servers, *self.services.values()]},
            "demo": self.config.demo,
            "demo_network": (
                f"http://{HOST}:{self.config.demo_network_port}" if self.config.demo else None
            ),
        }
        _write_state(self.config, state)
        print(render_banner(state, self.token, admin_password(self.config)), flush=True)

    def _watch(self, env: dict[str, str]) -> None:
        restarts: dict[str, float] = {}
        while not self.stopping.wait(1.0):
            for server in self.servers:
                if not server.alive():
                    raise RuntimeError(f"{server.name} died\n{server.log_tail()}")
            for name, process in self.services.items():
                if process.alive():
                    continue
                last = restarts.get(name, 0.0)
                if time.monotonic() - last < 5:
                    continue
                self._step(f"{name} exited; restarting", log=str(process.log_path))
                restarts[name] = time.monotonic()
                self.services[name] = self._service_process(name, env)
                self.services[name].start()

    def _stop(self) -> None:
        if self.demo is not None:
            self.demo.stop()
        for process in reversed(list(self.services.values())):
            process.stop(timeout=25)
        for server in reversed(self.servers):
            server.stop()
        with contextlib.suppress(FileNotFoundError):
            (self.config.data_dir / SUPERVISOR_PID).unlink()
        if self.config.state_path.exists():
            _write_state(self.config, {"status": "stopped"})
        self._step("stopped")

    def _step(self, message: str, **fields: str) -> None:
        extra = "  ".join(f"{key}={value}" for key, value in fields.items())
        print(f"[smm local] {message}  {extra}".rstrip(), flush=True)


def render_banner(state: dict[str, Any], token: str, password: str = "") -> str:
    services = state["services"]
    lines = [
        "",
        "smm local stack is ready",
        "",
        f"  console         {services.get('console', '')}",
        f"  sign in as      {ADMIN_EMAIL}",
        f"  password        {password or '(in ' + PASSWORD_FILE + ' of the data folder)'}",
        "",
        f"  data folder     {state['data_dir']}",
        f"  Kafka           {state['kafka']}",
        f"  MongoDB         {state['mongodb']}",
        "",
        "  service      API docs                               metrics",
    ]
    for name, url in services.items():
        if name == "console":
            continue
        lines.append(f"  {name:<12} {url + '/docs':<38} {url}/metrics")
    lines += [
        "",
        f"  KPIs          {services['metrics']}/v1/kpis?tracker_id=roestwerk&from=…&to=…",
        f"  admin token   {token}",
        f"  example       curl -H 'Authorization: Bearer <token>' {services['moderation']}"
        "/v1/review",
        "",
        "  demo feed     " + ("on" if state.get("demo") else "off (--no-demo)"),
        *(
            [f"  demo network  {state['demo_network']} (where replies from the inbox go)"]
            if state.get("demo_network")
            else []
        ),
        "  stop with     Ctrl-C, or `./smm local down` from another terminal",
        "",
    ]
    return "\n".join(lines)


def up(config: StackConfig, detach: bool) -> int:
    """Start the stack; with `detach`, return once it is ready and leave it running."""
    if not detach:
        return Supervisor(config).run()
    prepare_dirs(config)
    if running_supervisor(config):
        print(f"a local stack already runs from {config.data_dir}", file=sys.stderr)
        return 1
    with contextlib.suppress(FileNotFoundError):
        config.state_path.unlink()
    argv = [sys.executable, "-m", "shared.cli", "local", "up", "--data-dir", str(config.data_dir)]
    argv += [] if config.demo else ["--no-demo"]
    env = dict(os.environ)
    env["SMM_LOCAL_KAFKA_PORT"] = str(config.kafka_port)
    env["SMM_LOCAL_MONGO_PORT"] = str(config.mongo_port)
    env["SMM_LOCAL_DEMO_NETWORK_PORT"] = str(config.demo_network_port)
    with open_private_log(config.logs / "supervisor.log") as log:  # it gets the banner
        child = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        state = read_state(config) or {}
        if state.get("status") == "ready":
            print(render_banner(state, admin_token(config), admin_password(config)))
            return 0
        if state.get("status") == "failed" or child.poll() is not None:
            print(f"local stack failed: {state.get('error', 'see logs')}", file=sys.stderr)
            print((config.logs / "supervisor.log").read_text()[-3000:], file=sys.stderr)
            return 1
        time.sleep(0.5)
    print("local stack did not become ready in 180 s; see " + str(config.logs), file=sys.stderr)
    return 1


def down(config: StackConfig, timeout: float = 60) -> int:
    """Stop a detached stack and wait until every process of it is gone."""
    pid = running_supervisor(config)
    state = read_state(config) or {}
    if pid is None:
        leftovers = [p for p in (state.get("pids") or {}).values() if p and _pid_alive(p)]
        for leftover in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover, signal.SIGTERM)
        print("no local stack is running" + (" (cleaned up leftovers)" if leftovers else ""))
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.2)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    for child in (state.get("pids") or {}).values():
        if child and _pid_alive(child):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
    print("local stack stopped")
    return 0


def status(config: StackConfig) -> int:
    state = read_state(config)
    if state is None or running_supervisor(config) is None:
        print("no local stack is running")
        return 1
    print(json.dumps(state, indent=2))
    return 0
