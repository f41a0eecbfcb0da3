"""Garbage collection at scale, and what a collector every second costs pushes.

Usage: .venv/bin/python bench/gc_bench.py [--blobs 100000] [--manifests 10000]
                                          [--push-seconds 20] [--skip-push]

1. Builds a filesystem registry (written straight through the driver, fsync off, so
   setup takes seconds, not an hour): `--blobs` blobs, `--manifests` manifests of 5
   blobs each over 100 repositories, half of the manifests tagged; `untagged =
   "delete"`, so the untagged half and the blobs only they use are garbage.
2. Runs the collector in a child process (the sweep), then in another child twice
   (nothing to do: once cold, once with the parsed manifests the first of those runs
   remembered, as the server's loop does), and reports wall time, the child's peak
   RSS, and storage operations by kind, per run.
3. Push throughput: 8 clients pushing small 3-layer images for `--push-seconds`
   against `arca serve` with `[gc] interval_seconds = 0`, then `= 1` (grace 3 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from servers import arca_server

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha256(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- 1. a big registry, written fast ------------------------------------------------------


async def build(root: str, blobs: int, manifests: int) -> None:
    from arca.formats.digest import Digest
    from arca.registry.blobs import BlobMeta
    from arca.registry.manifests import Revision
    from arca.storage import layout
    from arca.storage.drivers.filesystem import FilesystemDriver

    driver = FilesystemDriver(root, fsync=False)
    old = time.time() - 7200  # older than the grace period: everything is judged
    pool = [os.urandom(16) + i.to_bytes(4, "big") for i in range(blobs)]
    digests = [Digest.parse(sha256(data)) for data in pool]

    async def put_blob(data: bytes, digest: Digest) -> None:
        await driver.put(layout.blob_data(digest), data)
        meta = BlobMeta(digest, len(data), digest, None, old)
        await driver.put(layout.blob_meta(digest), meta.encode())

    async def batches(calls: list[Any]) -> None:
        for start in range(0, len(calls), 256):
            await asyncio.gather(*calls[start : start + 256])

    await batches([put_blob(d, digest) for d, digest in zip(pool, digests, strict=True)])
    calls = []
    for number in range(manifests):
        name = f"team{number % 10}/app{number % 100}"
        used = [digests[(number * 5 + k) % blobs] for k in range(5)]
        document = {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {"mediaType": "application/json", "digest": str(used[0]), "size": 20},
            "layers": [
                {"mediaType": "application/octet-stream", "digest": str(d), "size": 20}
                for d in used[1:]
            ],
        }
        data = json.dumps(document).encode()
        digest = Digest.parse(sha256(data))
        calls.append(put_blob(data, digest))
        revision = Revision(digest, MANIFEST, len(data))
        calls.append(driver.put(layout.revision_link(name, digest), revision.encode()))
        for blob in used:
            calls.append(driver.put(layout.layer_link(name, blob), str(blob).encode()))
        if number % 2 == 0:
            calls.append(driver.put(layout.tag_current(name, f"v{number}"), str(digest).encode()))
    await batches(calls)
    await driver.close()
    # Age everything past the grace period (the driver writes "now").
    for path in Path(root).rglob("*"):
        if path.is_file():
            os.utime(path, (old, old))


# -- 2. the collector in a child process --------------------------------------------------


async def collect(root: str, runs: int) -> list[dict[str, Any]]:
    """In the child: `runs` GC runs by one collector (as the server's loop keeps one),
    each with its own counted storage operations and wall time."""
    import dataclasses

    from arca.config import GcSettings, Settings
    from arca.lifecycle.gc import PARSED, Collector
    from arca.registry.registry import Registry
    from arca.storage.drivers.filesystem import FilesystemDriver

    counts: Counter[str] = Counter()
    driver = FilesystemDriver(root, fsync=False)
    for method in ("get", "put", "stat", "delete", "move", "list", "walk", "delete_if"):
        original = getattr(driver, method)
        setattr(driver, method, _counted(method, original, counts))
    settings = dataclasses.replace(Settings(), gc=GcSettings(grace_seconds=3600, untagged="delete"))
    collector = Collector(Registry(driver, settings), settings)
    figures = []
    for _ in range(runs):
        counts.clear()
        hits = PARSED.hits
        started = time.perf_counter()
        report = await collector.run()
        wall = time.perf_counter() - started
        figures.append(
            {
                "wall_seconds": round(wall, 2),
                "swept": len(report.swept),
                "bytes_swept": report.bytes_swept,
                "live": sum(report.live.values()),
                "deferred": report.deferred,
                "manifests_from_cache": PARSED.hits - hits,
                "operations": dict(counts),
                "peak_rss_mib": _peak_rss_mib(),
            }
        )
    return figures


def _peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM). Not `getrusage().ru_maxrss`: Linux
    keeps that across `execve`, so a child reports its parent's peak if higher (the
    build, here), which made earlier figures of this bench the builder's, not GC's."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _counted(method: str, original: Any, counts: Counter[str]) -> Any:
    if method in ("list", "walk"):

        def iterate(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            counts[method] += 1
            return original(*args, **kwargs)  # type: ignore[no-any-return]

        return iterate

    async def call(*args: Any, **kwargs: Any) -> Any:
        counts[method] += 1
        return await original(*args, **kwargs)

    return call


def run_child(root: str, runs: int = 1) -> list[dict[str, Any]]:
    output = subprocess.run(
        [sys.executable, __file__, "--collect", root, "--runs", str(runs)],
        capture_output=True,
        check=True,
        text=True,
    )
    figures: list[dict[str, Any]] = json.loads(output.stdout)
    return figures


# -- 3. push throughput with and without a collector every second -------------------------


async def push_for(url: str, seconds: float, clients: int = 8) -> int:
    pushed = 0
    until = time.monotonic() + seconds

    async def client(number: int) -> None:
        nonlocal pushed
        async with httpx.AsyncClient(timeout=60) as http:
            while time.monotonic() < until:
                name = f"bench{number}"
                blobs = [os.urandom(random.randint(1024, 65536)) for _ in range(3)]
                for blob in blobs:
                    digest = sha256(blob)
                    if (await http.head(f"{url}/v2/{name}/blobs/{digest}")).status_code != 200:
                        await http.post(
                            f"{url}/v2/{name}/blobs/uploads/?digest={digest}", content=blob
                        )
                document = {
                    "schemaVersion": 2,
                    "mediaType": MANIFEST,
                    "config": {
                        "mediaType": "application/json",
                        "digest": sha256(blobs[0]),
                        "size": len(blobs[0]),
                    },
                    "layers": [
                        {
                            "mediaType": "application/octet-stream",
                            "digest": sha256(b),
                            "size": len(b),
                        }
                        for b in blobs[1:]
                    ],
                }
                response = await http.put(
                    f"{url}/v2/{name}/manifests/latest",
                    content=json.dumps(document).encode(),
                    headers={"Content-Type": MANIFEST},
                )
                response.raise_for_status()
                pushed += 1

    await asyncio.gather(*(client(n) for n in range(clients)))
    return pushed


def push_throughput(workdir: Path, seconds: float, interval: int) -> float:
    server = arca_server(
        workdir,
        f"push-{interval}",
        {
            "ARCA_GC_INTERVAL_SECONDS": str(interval),
            "ARCA_GC_GRACE_SECONDS": "3",
            "ARCA_GC_UNTAGGED": "delete",
        },
    )
    server.start()
    try:
        pushed = asyncio.run(push_for(server.url, seconds))
    finally:
        server.stop()
    return pushed / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--blobs", type=int, default=100_000)
    parser.add_argument("--manifests", type=int, default=10_000)
    parser.add_argument("--push-seconds", type=float, default=20)
    parser.add_argument("--skip-push", action="store_true")
    parser.add_argument("--collect", metavar="ROOT", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.collect:
        print(json.dumps(asyncio.run(collect(args.collect, args.runs))))
        return
    workdir = Path(tempfile.mkdtemp(prefix="arca-gc-bench-"))
    try:
        root = str(workdir / "registry")
        started = time.perf_counter()
        asyncio.run(build(root, args.blobs, args.manifests))
        took = time.perf_counter() - started
        print(f"built {args.blobs} blobs, {args.manifests} manifests in {took:.0f} s")
        [first] = run_child(root)
        print("gc run 1 (sweeps the untagged half):", json.dumps(first))
        if first["deferred"]:
            [rest] = run_child(root)
            print("gc run 1b (the candidates over one run's cap):", json.dumps(rest))
        second, third = run_child(root, runs=2)
        print("gc run 2 (nothing to sweep, new process):", json.dumps(second))
        print("gc run 3 (nothing to sweep, same process: manifests cached):", json.dumps(third))
        if not args.skip_push:
            without = push_throughput(workdir, args.push_seconds, 0)
            with_gc = push_throughput(workdir, args.push_seconds, 1)
            print(
                f"push throughput, 8 clients: {without:.1f} images/s without GC,"
                f" {with_gc:.1f} images/s with GC every second"
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
