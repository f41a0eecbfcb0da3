"""Starting what the benches measure, in one place: a free port, a server process
that is up once it answers, and `arca serve` on storage of its own (or shared with
another server, or on the driver the environment chooses).

registry_bench builds its columns from these; the other benches (auth, events, gc,
storage, tags) import them, directly or through registry_bench, which re-exports
them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def drop_large_files(directory: Path, at_least: int = 1 << 20) -> None:
    """Delete the files of `directory` of `at_least` bytes, leaving the small ones (and
    the tree) for the bench's final cleanup.

    Between servers a bench frees the disk a finished run filled, but not its
    thousands of small files: ext4 does not reuse an inode freed in the last minute
    (up to six while its inode-table block is dirty), and every file or directory
    created meanwhile in the same block group first steps over each of them
    (`recently_deleted` in `find_inode_bit`). Removing a 2,000-PUT tree halved the
    tag-PUT rate of the next server; four in a row took it from 220 to 87 PUT/s
    (docs/benchmarks.md, "Fifth round"). So whichever server ran after a deletion was
    measured against the bench's own rm -rf.
    """
    for path in directory.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink() and path.stat().st_size >= at_least:
                path.unlink()
        except FileNotFoundError:
            pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, seconds: float = 60) -> None:
    """Until something listens on `port` (for servers with no /v2/ to ask)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def answers(url: str, seconds: float, timeout: float = 1, pause: float = 0.1) -> bool:
    """Whether `url` answers 200 within `seconds` (asked until it does)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=timeout).status_code == 200:
                return True
        except httpx.TransportError:
            time.sleep(pause)
    return False


@dataclass
class Server:
    """One server process; up once `GET /v2/` answers 200. Its output goes to
    `<workdir>/<label>.log`."""

    label: str
    command: list[str]
    url: str
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    storage: Path | None = None
    """arca's filesystem storage, when it has one."""
    ready_path: str = "/v2/"
    """What answers 200 once the server is up (`/healthz` with auth on: /v2/ is 401)."""

    def start(self) -> None:
        log = open(self.workdir / f"{self.label}.log", "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(
            self.command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
        )
        if not answers(f"{self.url}{self.ready_path}", seconds=60):
            raise RuntimeError(f"{self.label} did not start; see {self.workdir / self.label}.log")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            self.process = None


def arca_server(
    workdir: Path,
    label: str = "arca",
    env: dict[str, str] | None = None,
    storage: Path | None = None,
) -> Server:
    """`arca serve` on a port of its own (not started yet), with `env` over the
    environment: on the filesystem at `storage` (default `<workdir>/<label>-data`;
    give another server's to share it, as replicas do), or on the driver `env` names
    with ARCA_STORAGE_DRIVER."""
    env = env or {}
    port = free_port()
    command = [sys.executable, "-m", "arca", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if "ARCA_STORAGE_DRIVER" not in env:
        storage = storage or workdir / f"{label}-data"
        command += ["--storage", str(storage)]
    # The access log on (arca's default), written to a file as an operator would.
    return Server(label, command, f"http://127.0.0.1:{port}", workdir, env, storage=storage)
