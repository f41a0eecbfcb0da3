"""What auth costs per request: manifest GET and blob GET rates with auth off and on.

Usage: .venv/bin/python bench/auth_bench.py [--seconds 3] [--rounds 9] [--control]

Starts arca twice over the same kind of storage, auth off and auth on, and measures
three columns: auth off; auth on, the client sending Basic credentials on every
request (bcrypt once, then the remembered check); auth on, the client sending a
bearer token from the token endpoint (verified once, then remembered until it
expires). `--control` adds a second auth-off server: its column against the first
shows how far two identical servers drift apart, the floor under any ratio here.

After a warm-up (0.5 s per workload and column, not counted), each round runs every
workload once per column, with 4 keep-alive connections, the columns' order rotating
from round to round so that none always goes first. Two figures per run: requests per
second, and the server process's CPU time per request (user + system from
/proc/<pid>/stat before and after the run). On a shared machine req/s follows
whatever else is running; CPU per request is what the server spent, and moves less
(about half as much under a load of 11; for a figure load does not move at all, see
auth_instructions.py). Printed: the median of each over the rounds, its spread
(min-max), and each column's ratio to auth off; the load average before and after.
The load generator is registry_bench's minimal asyncio client, so the client is the
cheapest part of the measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from registry_bench import (
    OCI_MANIFEST,
    Server,
    arca_server,
    image_manifest,
    push_image_blobs,
    read_body,
    sha256,
)

USER, PASSWORD = "bench", "bench-password"


def auth_config(workdir: Path) -> Path:
    from arca.auth.htpasswd import set_user

    htpasswd = workdir / "htpasswd"
    set_user(htpasswd, USER, PASSWORD)
    config = workdir / "auth.toml"
    config.write_text(
        f'[auth]\nenabled = true\nhtpasswd = "{htpasswd}"\n'
        '[[auth.policies]]\nrepositories = ["bench/**"]\n'
        f'users = ["{USER}"]\nactions = ["pull", "push"]\n'
    )
    return config


def seed(url: str, auth: tuple[str, str] | None, blob: bytes, timeout: float) -> None:
    """What both workloads GET: the manifest `bench/app:v1` and the blob `blob`."""
    with httpx.Client(base_url=url, auth=auth, timeout=timeout) as client:
        manifest = image_manifest(*push_image_blobs(client, "bench/app"))
        client.put(
            "/v2/bench/app/manifests/v1",
            content=manifest,
            headers={"Content-Type": OCI_MANIFEST},
        ).raise_for_status()
        client.post(
            f"/v2/bench/app/blobs/uploads/?digest={sha256(blob)}", content=blob
        ).raise_for_status()


def bearer_token(url: str, timeout: float = 30) -> str:
    """A pull token for `bench/app` from the server's token endpoint."""
    token: str = httpx.get(
        f"{url}/auth/token",
        params={"service": "arca", "scope": "repository:bench/app:pull"},
        auth=(USER, PASSWORD),
        timeout=timeout,
    ).json()["token"]
    return token


def _ready(server: Server) -> Server:
    """The server, known to be up when /healthz answers (/v2/ is 401 with auth on)."""
    server.ready_path = "/healthz"
    return server


async def request_rate(
    url: str, path: str, headers: dict[str, str], connections: int, seconds: float
) -> tuple[int, float]:
    """(requests answered, seconds taken) for `seconds` of GETs on `connections`."""
    host, port = url.removeprefix("http://").split(":")
    extra = "".join(f"{key}: {value}\r\n" for key, value in headers.items())
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: {OCI_MANIFEST}\r\n{extra}\r\n"
    ).encode()
    deadline = time.perf_counter() + seconds
    counts = [0] * connections

    async def worker(slot: int) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        while time.perf_counter() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"GET {path}: {head[:80]!r}")
            await read_body(reader, head)
            counts[slot] += 1
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(slot) for slot in range(connections)))
    return sum(counts), time.perf_counter() - start


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14, 15)


@dataclass
class Run:
    rate: float
    """Requests per second."""
    cpu_us: float
    """Server CPU microseconds per request."""


def pin(pid: int, cpus: set[int]) -> None:
    """Every thread of process `pid` onto `cpus` (a thread keeps the CPUs it had)."""
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task), cpus)


def measure(
    server: Server, path: str, headers: dict[str, str], seconds: float, pinned: bool = False
) -> Run:
    assert server.process is not None
    if pinned:  # the server on CPU 0, this client on CPU 1: neither takes the other's
        pin(server.process.pid, {0})
    before = cpu_seconds(server.process.pid)
    count, elapsed = asyncio.run(request_rate(server.url, path, headers, 4, seconds))
    spent = cpu_seconds(server.process.pid) - before
    return Run(count / elapsed, spent / count * 1e6)


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument(
        "--control", action="store_true", help="a second auth-off server, as a noise floor"
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="the measured server on CPU 0, the client on CPU 1 (the scheduler's moves are"
        " then no part of the spread)",
    )
    arguments = parser.parse_args()
    if arguments.pin:
        os.sched_setaffinity(0, {1})
    workdir = Path(tempfile.mkdtemp(prefix="arca-auth-bench-"))
    config = auth_config(workdir)
    servers = {
        "auth off": _ready(arca_server(workdir, "off")),
        "auth on": _ready(arca_server(workdir, "on", {"ARCA_CONFIG": str(config)})),
    }
    if arguments.control:
        servers["auth off (2)"] = _ready(arca_server(workdir, "off2"))
    basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    blob = os.urandom(4096)
    results: dict[str, dict[str, list[Run]]] = {}
    load_before = load()
    try:
        for server in servers.values():
            server.start()
        headers_by_mode: dict[str, tuple[Server, dict[str, str]]] = {}
        for label, server in servers.items():
            auth = (USER, PASSWORD) if label == "auth on" else None
            seed(server.url, auth, blob, timeout=30)
            if label != "auth on":
                headers_by_mode[label] = (server, {})
                continue
            token = bearer_token(server.url)
            headers_by_mode["auth on, Basic"] = (server, {"Authorization": basic})
            headers_by_mode["auth on, bearer"] = (server, {"Authorization": f"Bearer {token}"})
        workloads = {
            "manifest GET by tag": "/v2/bench/app/manifests/v1",
            "blob GET, 4 KiB": f"/v2/bench/app/blobs/{sha256(blob)}",
        }
        modes = list(headers_by_mode)
        for path in workloads.values():  # warm-up, not counted: the first requests
            for mode in modes:  # specialise the interpreter's code and fill the caches
                server, headers = headers_by_mode[mode]
                measure(server, path, headers, 0.5, arguments.pin)
        for round_ in range(arguments.rounds):
            turn = modes[round_ % len(modes) :] + modes[: round_ % len(modes)]
            for workload, path in workloads.items():
                for mode in turn:
                    server, headers = headers_by_mode[mode]
                    run = measure(server, path, headers, arguments.seconds, arguments.pin)
                    results.setdefault(workload, {}).setdefault(mode, []).append(run)
    finally:
        for server in servers.values():
            server.stop()
    print(
        f"{arguments.rounds} rounds of {arguments.seconds:g} s per column"
        f"{' (server on CPU 0, client on CPU 1)' if arguments.pin else ''};"
        f" load average {load_before} before, {load()} after"
    )
    print()
    print(
        "| workload | "
        + " | ".join(modes)
        + " | "
        + " | ".join(f"{m} / off" for m in modes[1:])
        + " |"
    )
    print("| --- " + "| ---: " * (len(modes) * 2 - 1) + "|")
    for workload, by_mode in results.items():
        for figure, attr in (("req/s", "rate"), ("server CPU µs/request", "cpu_us")):
            values = {m: [getattr(run, attr) for run in runs] for m, runs in by_mode.items()}
            medians = {m: statistics.median(v) for m, v in values.items()}
            cells = [f"{medians[m]:.0f} ({min(values[m]):.0f}-{max(values[m]):.0f})" for m in modes]
            ratios = [f"{medians[m] / medians['auth off']:.3f}" for m in modes[1:]]
            print(f"| {workload} ({figure}) | " + " | ".join(cells + ratios) + " |")


if __name__ == "__main__":
    main()
