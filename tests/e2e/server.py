"""A real `arca serve` process on 127.0.0.1 for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ArcaServer:
    """Start, stop and restart one arca process; sample its memory on demand."""

    def __init__(self, storage: Path, env: dict[str, str] | None = None) -> None:
        """Filesystem storage at `storage`, unless `env` chooses another driver
        (then `storage` only names where the log goes)."""
        self.storage = storage
        self.env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        storage.parent.mkdir(parents=True, exist_ok=True)
        self.log = storage.parent / f"arca-{self.port}.log"

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "arca", "serve"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        if "ARCA_STORAGE_DRIVER" not in self.env:
            command += ["--storage", str(self.storage)]
        return command

    @property
    def cwd(self) -> Path | None:
        return None

    def start(self) -> ArcaServer:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                cwd=self.cwd,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"arca exited: {self.log.read_text()}")
            try:
                # /healthz, not /v2/: with auth on, /v2/ answers 401 to anonymous.
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"arca did not start: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a machine dies."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


def s3_environment(endpoint: str, bucket: str, **options: str) -> dict[str, str]:
    """`ARCA_*` settings for an arca process on the S3 driver against `endpoint`."""
    env = {
        "ARCA_STORAGE_DRIVER": "s3",
        "ARCA_STORAGE_S3_BUCKET": bucket,
        "ARCA_STORAGE_S3_ENDPOINT_URL": endpoint,
        "ARCA_STORAGE_S3_REGION": "us-east-1",
        "ARCA_STORAGE_S3_ACCESS_KEY_ID": "testing",
        "ARCA_STORAGE_S3_SECRET_ACCESS_KEY": "testing",
        "ARCA_STORAGE_S3_ADDRESSING_STYLE": "path",
    }
    env.update({f"ARCA_STORAGE_S3_{key.upper()}": value for key, value in options.items()})
    return env


def gcs_environment(endpoint: str, bucket: str, **options: str) -> dict[str, str]:
    """`ARCA_*` settings for an arca process on the GCS driver against an emulator."""
    env = {
        "ARCA_STORAGE_DRIVER": "gcs",
        "ARCA_STORAGE_GCS_BUCKET": bucket,
        "ARCA_STORAGE_GCS_ENDPOINT_URL": endpoint,
        "ARCA_STORAGE_GCS_ANONYMOUS": "true",
    }
    env.update({f"ARCA_STORAGE_GCS_{key.upper()}": value for key, value in options.items()})
    return env


def azure_environment(connection_string: str, container: str, **options: str) -> dict[str, str]:
    """`ARCA_*` settings for an arca process on the Azure driver."""
    env = {
        "ARCA_STORAGE_DRIVER": "azure",
        "ARCA_STORAGE_AZURE_CONTAINER": container,
        "ARCA_STORAGE_AZURE_CONNECTION_STRING": connection_string,
    }
    env.update({f"ARCA_STORAGE_AZURE_{key.upper()}": value for key, value in options.items()})
    return env


class PeakRss:
    """Samples a process's resident memory in a thread; `peak` is the maximum seen."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self.peak = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(self._interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
