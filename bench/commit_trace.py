"""Where the filesystem driver's group commit spends its time under tag PUTs.

Usage: .venv/bin/python bench/commit_trace.py [--seconds 5] [--clients 8] [--dir /tmp]

Runs the app in-process (httpx over ASGI, no sockets) on a new root under `--dir`,
with `--clients` loops each PUTting a new manifest under a new tag of one repository,
and times the committer's phases: its busy share of the run, puts per batch, and
how its time splits between staging (`FilesystemDriver._stage`, wherever it runs),
`syncfs` and the renames (`_publish`). Before that, it times `syncfs` alone on the
same filesystem, idle and after one new file (the floor of a flush here). Rates are
lower than `tags_bench`'s (the client shares the process); the split is the point
(docs/benchmarks.md, "Tag PUTs", fifth round).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from arca.app import create_app
from arca.config import Settings
from arca.storage.drivers import filesystem

sys.path.insert(0, str(Path(__file__).parent))
from registry_bench import OCI_MANIFEST, sha256
from tags_bench import manifest

phases = dict.fromkeys(("busy", "stage", "syncfs", "publish"), 0.0)
counts = {"batches": 0, "puts": 0}


def timed(phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args)
        finally:
            phases[phase] += time.perf_counter() - started

    return run


def instrument() -> None:
    batch = timed("busy", filesystem._commit_batch)

    def commit_batch(commits: list[Any]) -> None:
        counts["batches"] += 1
        counts["puts"] += len(commits)
        batch(commits)

    filesystem._commit_batch = commit_batch  # type: ignore[assignment]
    filesystem._syncfs = timed("syncfs", filesystem._syncfs)  # type: ignore[assignment]
    driver = filesystem.FilesystemDriver
    driver._stage = timed("stage", driver._stage)  # type: ignore[method-assign]
    driver._publish = timed("publish", driver._publish)  # type: ignore[method-assign]


def syncfs_floor(directory: str, rounds: int = 200) -> tuple[float, float]:
    """Median ms of a `syncfs` with nothing written, and after one new small file."""
    fd = os.open(directory, os.O_RDONLY)
    idle, one = [], []
    try:
        for n in range(rounds):
            started = time.perf_counter()
            filesystem._syncfs(fd)
            idle.append(time.perf_counter() - started)
            with open(os.path.join(directory, f"f{n}"), "wb") as file:
                file.write(b"x" * 300)
            started = time.perf_counter()
            filesystem._syncfs(fd)
            one.append(time.perf_counter() - started)
    finally:
        os.close(fd)
    return 1000 * statistics.median(idle), 1000 * statistics.median(one)


async def run(root: str, clients: int, seconds: float) -> None:
    app = create_app(Settings(), filesystem.FilesystemDriver(root))
    name = "bench/tagging"
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        config, layer = sha256(b"{}"), sha256(b"layer")  # what tags_bench.manifest names
        for blob, digest in ((b"{}", config), (b"layer", layer)):
            response = await client.post(f"/v2/{name}/blobs/uploads/?digest={digest}", content=blob)
            response.raise_for_status()
        counter = [0]
        latencies: list[float] = []

        async def loop(deadline: float) -> None:
            while time.perf_counter() < deadline:
                counter[0] += 1
                tag = f"t{counter[0]}"
                started = time.perf_counter()
                response = await client.put(
                    f"/v2/{name}/manifests/{tag}",
                    content=manifest(config, layer, counter[0]),
                    headers={"content-type": OCI_MANIFEST},
                )
                if response.status_code != 201:
                    raise RuntimeError(f"PUT {tag}: {response.status_code} {response.text}")
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(loop(time.perf_counter() + 1) for _ in range(clients)))  # warm
        latencies.clear()
        for key in phases:
            phases[key] = 0.0
        counts.update(batches=0, puts=0)
        started, cpu = time.perf_counter(), os.times()
        await asyncio.gather(*(loop(time.perf_counter() + seconds) for _ in range(clients)))
        elapsed, cpu_after = time.perf_counter() - started, os.times()
    puts = len(latencies)
    print(
        f"{puts / elapsed:.0f} PUT/s in-process, median latency"
        f" {1000 * statistics.median(latencies):.1f} ms; process CPU per PUT: user"
        f" {1000 * (cpu_after.user - cpu.user) / puts:.2f} ms,"
        f" system {1000 * (cpu_after.system - cpu.system) / puts:.2f} ms"
    )
    busy = phases["busy"]
    print(
        f"committer busy {100 * busy / elapsed:.0f} % of the run,"
        f" {counts['puts'] / max(1, counts['batches']):.2f} puts per batch,"
        f" {counts['puts'] / puts:.1f} durable puts per PUT"
    )
    per_put = {phase: f"{1000 * phases[phase] / counts['puts']:.3f} ms per put" for phase in phases}
    # Small puts stage on the event loop, outside the committer's time.
    limit = filesystem._STAGE_INLINE_BYTES
    print(f"  stage: {per_put['stage']} (puts of <= {limit} bytes: on the loop)")
    for phase in ("syncfs", "publish"):
        share = f"{100 * phases[phase] / busy:.0f} % of the committer's time" if busy else "-"
        print(f"  {phase}: {per_put[phase]}, {share}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the root goes")
    args = parser.parse_args()
    if not filesystem.SYNCFS_AVAILABLE:
        raise SystemExit("no syncfs here: the group commit is off")
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="arca-commit-trace-") as root:
        idle, one = syncfs_floor(root)
        print(f"syncfs alone: {idle:.3f} ms idle, {one:.3f} ms after one new file (median)")
        instrument()
        asyncio.run(run(os.path.join(root, "data"), args.clients, args.seconds))


if __name__ == "__main__":
    main()
