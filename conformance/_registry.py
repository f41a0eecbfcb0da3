"""Registries under test: arca and the reference (CNCF distribution 2.8), started here.

Each target runs as a subprocess on 127.0.0.1 with a free port and a storage
directory of its own; it is stopped by its PID and its directory removed at the
end of the session. A target that cannot start raises, so every test that
needs it errors with the reason (never a silent skip).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

READY_TIMEOUT = 30.0
DEBIAN_TOOLS = ("docker-registry", "skopeo")

_install_lock = threading.Lock()
_install_attempted = False


class TargetUnavailable(RuntimeError):
    """A registry under test could not be started."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_debian_tools() -> None:
    """Install docker-registry and skopeo with apt-get if either is missing (once)."""
    global _install_attempted
    with _install_lock:
        missing = [tool for tool in DEBIAN_TOOLS if shutil.which(tool) is None]
        if not missing or _install_attempted:
            return
        _install_attempted = True
        if shutil.which("apt-get") is None:
            raise TargetUnavailable(f"{missing} missing and apt-get is not available")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", *DEBIAN_TOOLS]):
            result = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=900, check=False
            )
            if result.returncode != 0:
                raise TargetUnavailable(
                    f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-2000:]}"
                )


def require_tool(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        ensure_debian_tools()
        path = shutil.which(tool)
    if path is None:
        raise TargetUnavailable(f"{tool} is not installed and could not be installed")
    return path


@dataclass
class RunningTarget:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    workdir: Path
    log: IO[bytes]
    # Processes the target needs and that stop with it (arca-s3's S3 endpoint).
    companions: list[RunningTarget] = field(default_factory=list)
    # A user the registry knows, for targets with auth on (arca-auth).
    credentials: tuple[str, str] | None = None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.workdir, ignore_errors=True)
        for companion in self.companions:
            companion.stop()


def _log_tail(path: Path, limit: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def _spawn(
    name: str,
    command: list[str],
    workdir: Path,
    url: str,
    extra_env: dict[str, str] | None = None,
    ready_path: str = "/v2/",
    ready_status: int = 200,
) -> RunningTarget:
    log_path = workdir / f"{name}.log"
    log = log_path.open("wb")
    # A fresh target means default settings: no ARCA_* overrides from the caller.
    env = {key: value for key, value in os.environ.items() if not key.startswith("ARCA_")}
    env.update(extra_env or {})
    try:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    except OSError as error:
        log.close()
        raise TargetUnavailable(f"{name}: cannot run {command[0]}: {error}") from error
    target = RunningTarget(name, url, process, workdir, log)
    deadline = time.monotonic() + READY_TIMEOUT
    last_error = "no answer yet"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            try:
                response = client.get(f"{url}{ready_path}")
            except httpx.HTTPError as error:
                last_error = repr(error)
            else:
                if response.status_code == ready_status:
                    return target
                last_error = f"GET {ready_path} answered {response.status_code}"
            time.sleep(0.1)
    code = process.poll()
    tail = _log_tail(log_path)
    target.stop()
    state = f"exited with {code}" if code is not None else f"not ready after {READY_TIMEOUT}s"
    raise TargetUnavailable(
        f"{name} {state} ({last_error})\ncommand: {' '.join(command)}\nlog tail:\n{tail}"
    )


def start_arca(root: Path) -> RunningTarget:
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="arca-", dir=root))
    storage = workdir / "storage"
    storage.mkdir()
    command = [
        sys.executable,
        "-m",
        "arca",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--storage",
        str(storage),
    ]
    return _spawn("arca", command, workdir, f"http://127.0.0.1:{port}")


def start_arca_s3(root: Path) -> RunningTarget:
    """arca on its S3 driver, against a moto S3 server of its own on loopback."""
    moto_port = free_port()
    moto_dir = Path(tempfile.mkdtemp(prefix="moto-", dir=root))
    moto_server = str(Path(sys.executable).with_name("moto_server"))
    endpoint = f"http://127.0.0.1:{moto_port}"
    moto = _spawn(
        "moto",
        [moto_server, "-H", "127.0.0.1", "-p", str(moto_port)],
        moto_dir,
        endpoint,
        ready_path="/moto-api/",
    )
    bucket = "arca-conformance"
    create = httpx.put(f"{endpoint}/{bucket}", timeout=10)  # moto takes unsigned requests
    if create.status_code != 200:
        moto.stop()
        raise TargetUnavailable(
            f"arca-s3: cannot create bucket: {create.status_code} {create.text}"
        )
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="arca-s3-", dir=root))
    env = {
        "ARCA_STORAGE_DRIVER": "s3",
        "ARCA_STORAGE_S3_BUCKET": bucket,
        "ARCA_STORAGE_S3_ENDPOINT_URL": endpoint,
        "ARCA_STORAGE_S3_REGION": "us-east-1",
        "ARCA_STORAGE_S3_ACCESS_KEY_ID": "conformance",
        "ARCA_STORAGE_S3_SECRET_ACCESS_KEY": "conformance",
        "ARCA_STORAGE_S3_ADDRESSING_STYLE": "path",
    }
    command = [sys.executable, "-m", "arca", "serve", "--host", "127.0.0.1", "--port", str(port)]
    try:
        target = _spawn("arca-s3", command, workdir, f"http://127.0.0.1:{port}", env)
    except TargetUnavailable:
        moto.stop()
        raise
    target.companions.append(moto)
    return target


REPO_ROOT = Path(__file__).resolve().parents[1]
AZURITE_VERSION = "3.37.0"
# Azurite's published development key.
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def _azurite() -> str:
    """`azurite-blob` from the project's `.cache/azurite`, installed with npm if missing."""
    folder = REPO_ROOT / ".cache" / "azurite"
    binary = folder / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        folder.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(folder),
             f"azurite@{AZURITE_VERSION}"],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if result.returncode != 0 or not binary.exists():
            raise TargetUnavailable(f"npm install azurite failed: {result.stderr[-2000:]}")
    return str(binary)


def _with_companion(
    root: Path, name: str, env: dict[str, str], companion: RunningTarget
) -> RunningTarget:
    """arca with `env`, stopped together with the `companion` that holds its storage."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root))
    command = [sys.executable, "-m", "arca", "serve", "--host", "127.0.0.1", "--port", str(port)]
    try:
        target = _spawn(name, command, workdir, f"http://127.0.0.1:{port}", env)
    except TargetUnavailable:
        companion.stop()
        raise
    target.companions.append(companion)
    return target


def start_arca_azure(root: Path) -> RunningTarget:
    """arca on its Azure Blob driver, against an Azurite of its own on loopback."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="azurite-", dir=root))
    endpoint = f"http://127.0.0.1:{port}"
    azurite = _spawn(
        "azurite",
        [_azurite(), "--blobHost", "127.0.0.1", "--blobPort", str(port),
         "--location", str(workdir / "data"), "--skipApiVersionCheck",
         "--disableTelemetry", "--silent"],
        workdir,
        endpoint,
        ready_path="/devstoreaccount1?comp=list",
        ready_status=403,  # Azurite is up: it refuses an unsigned listing
    )  # fmt: skip
    connection_string = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={AZURITE_KEY};BlobEndpoint={endpoint}/devstoreaccount1;"
    )
    try:
        from azure.storage.blob import BlobServiceClient

        with BlobServiceClient.from_connection_string(connection_string) as service:
            service.create_container("arca-conformance")
    except Exception as error:
        azurite.stop()
        raise TargetUnavailable(f"arca-azure: cannot create the container: {error}") from error
    env = {
        "ARCA_STORAGE_DRIVER": "azure",
        "ARCA_STORAGE_AZURE_CONTAINER": "arca-conformance",
        "ARCA_STORAGE_AZURE_CONNECTION_STRING": connection_string,
    }
    return _with_companion(root, "arca-azure", env, azurite)


def start_arca_gcs(root: Path) -> RunningTarget:
    """arca on its GCS driver, against a gcp-storage-emulator of its own on loopback."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="gcs-", dir=root))
    endpoint = f"http://127.0.0.1:{port}"
    # The emulator minus two costs that grow with what it holds (see the launcher).
    emulator = str(Path(__file__).resolve().parents[1] / "tests" / "gcs_emulator.py")
    gcs = _spawn(
        "gcs",
        [
            sys.executable,
            emulator,
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--in-memory",
            "-q",
        ],
        workdir,
        endpoint,
        ready_path="/",
    )
    bucket = "arca-conformance"
    create = httpx.post(
        f"{endpoint}/storage/v1/b", params={"project": "arca"}, json={"name": bucket}, timeout=10
    )
    if create.status_code != 200:
        gcs.stop()
        raise TargetUnavailable(f"arca-gcs: cannot create bucket: {create.status_code}")
    env = {
        "ARCA_STORAGE_DRIVER": "gcs",
        "ARCA_STORAGE_GCS_BUCKET": bucket,
        "ARCA_STORAGE_GCS_ENDPOINT_URL": endpoint,
        "ARCA_STORAGE_GCS_ANONYMOUS": "true",
    }
    return _with_companion(root, "arca-gcs", env, gcs)


AUTH_CONFIG = """\
[auth]
enabled = true
htpasswd = "{htpasswd}"
admins = ["conformance"]
"""


def start_arca_auth(root: Path) -> RunningTarget:
    """arca with auth on: every request goes through the token flow as user `conformance`."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="arca-auth-", dir=root))
    storage = workdir / "storage"
    storage.mkdir()
    password = secrets.token_urlsafe(16)
    htpasswd = workdir / "htpasswd"
    add = subprocess.run(
        [
            sys.executable,
            "-m",
            "arca",
            "user",
            "add",
            "conformance",
            "--password-stdin",
            "--file",
            str(htpasswd),
        ],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if add.returncode != 0:
        raise TargetUnavailable(f"arca-auth: arca user add failed: {add.stderr[-2000:]}")
    config = workdir / "arca.toml"
    config.write_text(AUTH_CONFIG.format(htpasswd=htpasswd))
    command = [
        sys.executable,
        "-m",
        "arca",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--storage",
        str(storage),
        "--config",
        str(config),
    ]
    target = _spawn(
        "arca-auth", command, workdir, f"http://127.0.0.1:{port}", ready_path="/healthz"
    )
    target.credentials = ("conformance", password)
    return target


REFERENCE_CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: {secret}
"""


def start_reference(root: Path) -> RunningTarget:
    binary = require_tool("docker-registry")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="reference-", dir=root))
    storage = workdir / "storage"
    storage.mkdir()
    config = workdir / "config.yml"
    config.write_text(
        REFERENCE_CONFIG.format(storage=storage, port=port, secret=secrets.token_hex(16))
    )
    return _spawn("reference", [binary, "serve", str(config)], workdir, f"http://127.0.0.1:{port}")


STARTERS = {
    "arca": start_arca,
    "arca-s3": start_arca_s3,
    "arca-gcs": start_arca_gcs,
    "arca-azure": start_arca_azure,
    "arca-auth": start_arca_auth,
    "reference": start_reference,
}


@dataclass
class Targets:
    """Starts targets on first use, remembers failures, stops everything at close."""

    root: Path
    external_url: str | None = None
    external_credentials: tuple[str, str] | None = None
    _running: dict[str, RunningTarget] = field(default_factory=dict)
    _failed: dict[str, TargetUnavailable] = field(default_factory=dict)

    def url(self, name: str) -> str:
        if name == "external":
            assert self.external_url is not None
            return self.external_url
        if name in self._failed:
            raise self._failed[name]
        if name not in self._running:
            try:
                self._running[name] = STARTERS[name](self.root)
            except TargetUnavailable as error:
                self._failed[name] = error
                raise
        return self._running[name].url

    def credentials(self, name: str) -> tuple[str, str] | None:
        running = self._running.get(name)
        return running.credentials if running is not None else self.external_credentials

    def check_alive(self, name: str) -> None:
        """Raise if a target we started has died since (its tests must not pass vacuously)."""
        running = self._running.get(name)
        if running is not None and running.process.poll() is not None:
            raise TargetUnavailable(
                f"{name} exited with {running.process.returncode} during the session\n"
                f"log tail:\n{_log_tail(running.workdir / f'{name}.log')}"
            )

    def close(self) -> None:
        for running in self._running.values():
            running.stop()
        self._running.clear()
        shutil.rmtree(self.root, ignore_errors=True)
