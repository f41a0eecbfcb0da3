"""What auth costs per request, in instructions: a count that load does not move.

Usage: .venv/bin/python bench/auth_instructions.py [--requests 300]   (needs valgrind)

Starts arca twice under valgrind's callgrind, auth off and auth on (the same htpasswd
user and policy as bench/auth_bench.py), and for each column (auth off; auth on with
Basic credentials; auth on with a bearer token) sends `--requests` manifest GETs and
as many 4 KiB blob GETs on one keep-alive connection, after a warm-up. The counters
are zeroed (`callgrind_control -z`) before and dumped (`-d`) after each batch, so a
figure is every instruction the server process executed for those requests: uvicorn
and httptools, the ASGI layers, arca's handler, the access log line, the kernel
excepted. Divided by the number of requests, and beside each auth column its ratio to
auth off. req/s on a shared two-core machine swings by tens of percent from one run
to the next; these counts repeat to a fraction of a percent, so a difference of a
few percent between columns is visible here when auth_bench.py cannot show it.
Under valgrind the server runs ~50 times slower: a run takes a few minutes.
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from auth_bench import PASSWORD, USER, auth_config, bearer_token, seed
from registry_bench import (
    OCI_MANIFEST,
    free_port,
    sha256,
)
from servers import answers


class Callgrind:
    """`arca serve` under callgrind, counters zeroed and dumped on demand."""

    def __init__(self, workdir: Path, label: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.out = workdir / f"callgrind.{label}"
        log = open(workdir / f"{label}.log", "wb")  # noqa: SIM115 - lives with the process
        command = ["valgrind", "--tool=callgrind", "--trace-children=yes"]
        command += [f"--callgrind-out-file={self.out}"]  # `arca serve` execs its server
        command += [sys.executable, "-m", "arca", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--storage", str(workdir / f"{label}-data")]
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env}
        )
        self.dumps = 0
        if not answers(f"{self.url}/healthz", seconds=600, timeout=5, pause=1):
            raise RuntimeError(f"{label} did not start under valgrind")

    def control(self, option: str) -> None:
        subprocess.run(
            ["callgrind_control", option, str(self.process.pid)],
            check=True,
            capture_output=True,
            timeout=300,
        )

    def dumped_instructions(self) -> int:
        """The instruction count of the dump just made (`-d`)."""
        self.dumps += 1
        path = Path(f"{self.out}.{self.dumps}")
        for line in path.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
        raise RuntimeError(f"no totals in {path}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(120)


def get(sock: socket.socket, request: bytes) -> None:
    """One GET on a keep-alive connection; the whole answer read."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"{request[:60]!r}: {head[:80]!r}")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)


def per_request(server: Callgrind, path: str, headers: dict[str, str], count: int) -> float:
    extra = "".join(f"{key}: {value}\r\n" for key, value in headers.items())
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Accept: {OCI_MANIFEST}\r\n{extra}\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        for _ in range(20):  # warm: caches filled, the connection's objects built
            get(sock, request)
        server.control("-z")
        for _ in range(count):
            get(sock, request)
        server.control("-d")
    return server.dumped_instructions() / count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    arguments = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="arca-auth-instructions-"))
    config = auth_config(workdir)
    blob = os.urandom(4096)
    basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    servers: dict[str, Callgrind] = {}
    columns: dict[str, tuple[Callgrind, dict[str, str]]] = {}
    try:
        servers["off"] = Callgrind(workdir, "off", {})
        servers["on"] = Callgrind(workdir, "on", {"ARCA_CONFIG": str(config)})
        for label, server in servers.items():
            auth = (USER, PASSWORD) if label == "on" else None
            seed(server.url, auth, blob, timeout=300)
        token = bearer_token(servers["on"].url, timeout=300)
        columns["auth off"] = (servers["off"], {})
        columns["auth on, Basic"] = (servers["on"], {"Authorization": basic})
        columns["auth on, bearer"] = (servers["on"], {"Authorization": f"Bearer {token}"})
        workloads = {
            "manifest GET by tag": "/v2/bench/app/manifests/v1",
            "blob GET, 4 KiB": f"/v2/bench/app/blobs/{sha256(blob)}",
        }
        figures = {
            workload: {
                column: per_request(server, path, headers, arguments.requests)
                for column, (server, headers) in columns.items()
            }
            for workload, path in workloads.items()
        }
    finally:
        for server in servers.values():
            server.stop()
    modes = list(columns)
    print(f"instructions per request (callgrind), {arguments.requests} requests per figure")
    print()
    print(
        "| workload | "
        + " | ".join(modes)
        + " | "
        + " | ".join(f"{mode} / off" for mode in modes[1:])
        + " |"
    )
    print("| --- " + "| ---: " * (len(modes) * 2 - 1) + "|")
    for workload, by_mode in figures.items():
        base = by_mode["auth off"]
        cells = [f"{by_mode[mode] / 1000:,.0f} k" for mode in modes]
        ratios = [f"{by_mode[mode] / base:.3f}" for mode in modes[1:]]
        print(f"| {workload} | " + " | ".join(cells + ratios) + " |")


if __name__ == "__main__":
    main()
