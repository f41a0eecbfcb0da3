"""Manifest PUTs that create tags, 8 clients on one repository, beside distribution.

Usage: .venv/bin/python bench/tags_bench.py [--seconds 8] [--rounds 3] [--only arca,...]
       .venv/bin/python bench/tags_bench.py --profile   # where one PUT spends its time

Starts arca with its default durability (every write fsynced; 1 worker), arca with
`--workers 2`, and Debian's `docker-registry` (CNCF distribution 2.8.2, which never
fsyncs), each on loopback with storage in a temp dir, and measures two workloads with 8
keep-alive connections on one repository, in alternating rounds (median and spread):

- *new images*: every PUT a new manifest under a new tag (a CI pushing builds);
- *retag*: one manifest PUT under a new tag each time (promotion, release tags).

`--profile` runs arca in this process on the filesystem driver (fsync on) with every
driver call and every fsync timed, pushes for a few seconds with 8 clients, and prints
per PUT: storage calls by kind and the time spent in them, fsyncs (file and
directory), time waiting for locks, and the time in the event log and the followers
(the artifact index); then storage calls by kind of path (`path_pattern`).
docs/benchmarks.md has the figures and what they led to.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from registry_bench import OCI_MANIFEST, Server, arca_server, free_port, reference_server, sha256

CLIENTS = 8
REPOSITORY = "bench/tags"


class Connection:
    """One keep-alive HTTP/1.1 connection: PUT small bodies, read small answers."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)

    async def __aenter__(self) -> Connection:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.writer.close()

    async def put(self, target: str, body: bytes, content_type: str) -> int:
        head = (
            f"PUT {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Length: {len(body)}\r\nContent-Type: {content_type}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        await self.writer.drain()
        lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        length = 0
        for line in lines[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return int(lines[0].split()[1])


def manifest(config: str, layer: str, n: int | None) -> bytes:
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": layer, "size": 5}],
    }
    if n is not None:
        document["annotations"] = {"n": str(n)}
    return json.dumps(document).encode()


def prepare(url: str) -> tuple[str, str]:
    """The config and layer blobs every manifest names (monolithic POST + PUT)."""
    with httpx.Client(base_url=url, timeout=30) as client:
        for blob in (b"{}", b"layer"):
            location = client.post(f"/v2/{REPOSITORY}/blobs/uploads/").headers["Location"]
            separator = "&" if "?" in location else "?"
            response = client.put(f"{location}{separator}digest={sha256(blob)}", content=blob)
            if response.status_code != 201:
                raise RuntimeError(f"blob push failed: {response.status_code} {response.text}")
    return sha256(b"{}"), sha256(b"layer")


def tag_puts(url: str, seconds: float, retag: bool, clients: int = CLIENTS) -> float:
    """Tag-creating manifest PUTs per second with `clients` connections."""
    config, layer = prepare(url)
    run_id = uuid.uuid4().hex[:8]
    counter = [0]
    same = manifest(config, layer, None)

    async def run() -> tuple[int, float]:
        done = 0
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal done
            async with Connection(url) as connection:
                while time.monotonic() < deadline:
                    counter[0] += 1
                    n = counter[0]
                    body = same if retag else manifest(config, layer, n)
                    target = f"/v2/{REPOSITORY}/manifests/{run_id}-{n}"
                    status = await connection.put(target, body, OCI_MANIFEST)
                    if status != 201:
                        raise RuntimeError(f"PUT {target}: {status}")
                    done += 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return done, time.monotonic() - started

    done, elapsed = asyncio.run(run())
    return done / elapsed


def servers(workdir: Path, only: set[str] | None, baseline: str | None) -> list[Server]:
    found = [arca_server(workdir, "arca"), arca_server(workdir, "arca-2-workers")]
    found[1].command += ["--workers", "2"]
    if baseline:
        # The same two, running another checkout's code: before/after in one run.
        for label, workers in (("before", "1"), ("before-2-workers", "2")):
            server = arca_server(workdir, label, {"PYTHONPATH": baseline})
            server.command += ["--workers", workers]
            found.append(server)
    reference = reference_server(workdir)
    if reference is not None:
        found.append(reference)
    return [s for s in found if only is None or s.label in only]


def measure(args: argparse.Namespace) -> None:
    only = set(args.only.split(",")) if args.only else None
    with tempfile.TemporaryDirectory(prefix="arca-tags-bench-") as tmp:
        workdir = Path(tmp)
        started = servers(workdir, only, args.baseline_src)
        figures: dict[tuple[str, str], list[float]] = defaultdict(list)
        loads = [os.getloadavg()[0]]
        try:
            for server in started:
                server.start()
            for _ in range(args.rounds):
                for server in started:
                    for workload in ("new images", "retag"):
                        rate = tag_puts(server.url, args.seconds, workload == "retag")
                        figures[(server.label, workload)].append(rate)
                loads.append(os.getloadavg()[0])
        finally:
            for server in started:
                server.stop()
    labels = [server.label for server in started]
    print(f"\n8 clients, one repository, {args.rounds} rounds of {args.seconds:g} s each;")
    print(f"load average (1 min) during the run: {min(loads):.1f}-{max(loads):.1f}\n")
    print("| tag-creating manifest PUTs (req/s) | " + " | ".join(labels) + " |")
    print("| --- |" + " ---: |" * len(labels))
    for workload in ("new images", "retag"):
        cells = []
        for label in labels:
            rates = figures[(label, workload)]
            cells.append(f"{statistics.median(rates):.0f} ({min(rates):.0f}-{max(rates):.0f})")
        print(f"| {workload} | " + " | ".join(cells) + " |")
    if "distribution" in labels:
        for label in labels:
            if label == "distribution":
                continue
            ratios = [
                statistics.median(figures[(label, w)])
                / statistics.median(figures[("distribution", w)])
                for w in ("new images", "retag")
            ]
            print(f"{label} / distribution: " + ", ".join(f"{r:.2f}" for r in ratios))


# -- profile -----------------------------------------------------------------------------


class _Timings:
    def __init__(self) -> None:
        self.calls: dict[str, int] = defaultdict(int)
        self.seconds: dict[str, float] = defaultdict(float)
        self.paths: dict[str, int] = defaultdict(int)

    def add(self, key: str, seconds: float) -> None:
        self.calls[key] += 1
        self.seconds[key] += seconds


def path_pattern(path: str) -> str:
    """A storage path with what differs between PUTs (digests, tags, numbers, index
    keys) replaced by placeholders, so calls can be counted by kind of object."""
    path = re.sub(r"[0-9a-f]{64}", "<hex>", path)
    path = re.sub(r"/[0-9a-f]{2}/<hex>", "/<xx>/<hex>", path)
    path = re.sub(r"/[0-9]{12}", "/<n>", path)
    path = re.sub(r"/_manifests/tags/[^/]+", "/_manifests/tags/<tag>", path)
    path = re.sub(r"/_index/entries/[^/]+", "/_index/entries/<key>", path)
    return re.sub(r"^repositories/.+?/_", "repositories/<name>/_", path)


def _timed_async(timings: _Timings, key: str, function: Callable[..., Any]) -> Callable[..., Any]:
    async def timed(*args: Any, **kwargs: Any) -> Any:
        if len(args) > 1 and isinstance(args[1], str):  # (driver, path, ...): by path too
            timings.paths[f"{key} {path_pattern(args[1])}"] += 1
        start = time.perf_counter()
        try:
            return await function(*args, **kwargs)
        finally:
            timings.add(key, time.perf_counter() - start)

    return timed


def _timed_context(timings: _Timings, key: str, function: Callable[..., Any]) -> Callable[..., Any]:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        async with function(*args, **kwargs):
            timings.add(key, time.perf_counter() - start)
            yield

    return timed


def profile(args: argparse.Namespace) -> None:
    """One process: arca under uvicorn in a thread, clients on this thread's loop."""
    import threading

    import uvicorn

    from arca.app import create_app
    from arca.config import load_settings
    from arca.storage.drivers import filesystem

    timings = _Timings()
    real_fsync = os.fsync
    lock = threading.Lock()

    def fsync(fd: int) -> None:
        import stat

        kind = "fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file"
        start = time.perf_counter()
        real_fsync(fd)
        with lock:
            timings.add(kind, time.perf_counter() - start)

    filesystem.os.fsync = fsync  # type: ignore[attr-defined]
    driver_class = filesystem.FilesystemDriver
    for method in ("get", "put", "stat", "delete", "delete_if", "move", "exists", "writer"):
        setattr(driver_class, method, _timed_async(timings, method, getattr(driver_class, method)))
    driver_class.lock = _timed_context(timings, "lock wait", driver_class.lock)  # type: ignore[method-assign]

    from arca.control.index import ArtifactIndex
    from arca.events.log import EventLog

    EventLog.publish = _timed_async(timings, "event log append", EventLog.publish)  # type: ignore[method-assign]
    ArtifactIndex.publish = _timed_async(timings, "index follower", ArtifactIndex.publish)  # type: ignore[method-assign]

    with tempfile.TemporaryDirectory(prefix="arca-tags-profile-") as tmp:
        settings = load_settings({"ARCA_STORAGE_FILESYSTEM_ROOT": tmp})
        app = create_app(settings)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{port}"
        while not server.started:
            time.sleep(0.05)
        prepare(url)
        tag_puts(url, 1.0, retag=False)  # warm up
        timings.calls.clear()
        timings.seconds.clear()
        timings.paths.clear()
        wall = time.perf_counter()
        rate = tag_puts(url, args.seconds, retag=args.retag)
        wall = time.perf_counter() - wall
        server.should_exit = True
        thread.join(10)
    count = max(round(rate * wall), 1)
    print(f"\n{count} PUTs in {wall:.1f} s ({rate:.0f}/s), 8 clients, fsync on, one process")
    print(f"load average (1 min): {os.getloadavg()[0]:.1f}\n")
    print("| per PUT | calls | ms (summed over concurrent calls) |")
    print("| --- | ---: | ---: |")
    for key in sorted(timings.calls, key=lambda k: -timings.seconds[k]):
        print(
            f"| {key} | {timings.calls[key] / count:.2f} | "
            f"{timings.seconds[key] / count * 1000:.2f} |"
        )
    print("\n| per PUT, by path | calls |")
    print("| --- | ---: |")
    for key in sorted(timings.paths, key=lambda k: (k.split(" ", 1)[1], k)):
        if timings.paths[key] / count >= 0.01:  # not the blobs pushed before
            print(f"| {key} | {timings.paths[key] / count:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--only",
        help="comma-separated: arca, arca-2-workers, before, before-2-workers, distribution",
    )
    parser.add_argument(
        "--baseline-src", help="a src/ directory to run as the 'before' columns (e.g. main's)"
    )
    parser.add_argument("--profile", action="store_true", help="time one process's PUT path")
    parser.add_argument("--retag", action="store_true", help="profile the retag workload")
    args = parser.parse_args()
    if args.profile:
        profile(args)
    else:
        measure(args)


if __name__ == "__main__":
    main()
