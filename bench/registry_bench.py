"""Throughput and request rates of arca, beside the reference registry, in one run.

Usage: .venv/bin/python bench/registry_bench.py [--quick] [--only arca]

Starts arca (filesystem storage in a temp dir) and, when Debian's `docker-registry`
(CNCF distribution 2.8) is installed, the reference registry with a config of its
own; runs the same workload against each over loopback and prints one table:

- push and pull of one 512 MiB blob (single stream; pull is the median of 3);
- 64 x 4 MiB blobs pushed, then pulled, by 8 concurrent clients;
- manifest GET and HEAD requests per second (4 keep-alive connections);
- the tag list of a 1,000-tag repository (requests per second).

The load generator for request rates is a minimal asyncio HTTP/1.1 client so that
the client, not the server, is the cheapest part of the measurement. Both servers
and the client share this machine's cores: compare the columns, not absolute values
across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

MiB = 1 << 20
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
REFERENCE_BINARY = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Server:
    label: str
    command: list[str]
    url: str
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.workdir / f"{self.label}.log", "wb")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(
            self.command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/v2/", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.label} did not start; see {self.workdir / self.label}.log")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)


def arca_server(workdir: Path) -> Server:
    port = free_port()
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
        str(workdir / "arca-data"),
    ]
    return Server("arca", command, f"http://127.0.0.1:{port}", workdir)


def reference_server(workdir: Path) -> Server | None:
    if not Path(REFERENCE_BINARY).exists():
        return None
    port = free_port()
    config = workdir / "reference.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'reference-data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    return Server(
        "distribution",
        [REFERENCE_BINARY, "serve", str(config)],
        f"http://127.0.0.1:{port}",
        workdir,
    )


# -- workloads ---------------------------------------------------------------------------


def blob_stream(block: bytes, count: int) -> Iterator[bytes]:
    for index in range(count):
        yield index.to_bytes(8, "big") + block[8:]


def push_blob(
    client: httpx.Client, name: str, chunks: Iterator[bytes], size: int, digest: str
) -> None:
    location = client.post(f"/v2/{name}/blobs/uploads/").headers["Location"]
    separator = "&" if "?" in location else "?"
    response = client.put(
        f"{location}{separator}digest={digest}",
        content=chunks,
        headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
    )
    if response.status_code != 201:
        raise RuntimeError(f"push failed: {response.status_code} {response.text[:200]}")


def pull_blob(client: httpx.Client, name: str, digest: str) -> int:
    size = 0
    with client.stream("GET", f"/v2/{name}/blobs/{digest}") as response:
        for chunk in response.iter_raw(MiB):
            size += len(chunk)
    return size


def big_blob(url: str, size_mib: int) -> tuple[float, float]:
    block = os.urandom(MiB)
    hasher = hashlib.sha256()
    for chunk in blob_stream(block, size_mib):
        hasher.update(chunk)
    digest = f"sha256:{hasher.hexdigest()}"
    with httpx.Client(base_url=url, timeout=300) as client:
        start = time.perf_counter()
        push_blob(client, "bench/big", blob_stream(block, size_mib), size_mib * MiB, digest)
        push = size_mib / (time.perf_counter() - start)
        rates = []
        for _ in range(3):
            start = time.perf_counter()
            assert pull_blob(client, "bench/big", digest) == size_mib * MiB
            rates.append(size_mib / (time.perf_counter() - start))
    return push, statistics.median(rates)


def many_blobs(url: str, count: int, size_mib: int, clients: int) -> tuple[float, float]:
    blobs = [os.urandom(size_mib * MiB) for _ in range(count)]
    digests = [sha256(blob) for blob in blobs]

    def push(index: int) -> None:
        with httpx.Client(base_url=url, timeout=300) as client:
            push_blob(client, "bench/many", iter([blobs[index]]), len(blobs[index]), digests[index])

    def pull(index: int) -> None:
        with httpx.Client(base_url=url, timeout=300) as client:
            assert pull_blob(client, "bench/many", digests[index]) == len(blobs[index])

    total = count * size_mib
    with ThreadPoolExecutor(clients) as pool:
        start = time.perf_counter()
        list(pool.map(push, range(count)))
        pushed = total / (time.perf_counter() - start)
        start = time.perf_counter()
        list(pool.map(pull, range(count)))
        pulled = total / (time.perf_counter() - start)
    return pushed, pulled


def prepare_manifest(client: httpx.Client, name: str, tags: list[str]) -> str:
    config, layer = b"{}", os.urandom(1024)
    for blob in (config, layer):
        push_blob(client, name, iter([blob]), len(blob), sha256(blob))
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": sha256(config),
                "size": 2,
            },
            "layers": [
                {"mediaType": "application/octet-stream", "digest": sha256(layer), "size": 1024}
            ],
        }
    ).encode()
    for tag in tags:
        response = client.put(
            f"/v2/{name}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST}
        )
        if response.status_code != 201:
            raise RuntimeError(
                f"manifest push failed: {response.status_code} {response.text[:200]}"
            )
    return sha256(manifest)


async def request_rate(
    url: str, method: str, path: str, connections: int, seconds: float, accept: str = OCI_MANIFEST
) -> float:
    """Requests per second over keep-alive connections, each answer read in full."""
    host, port = url.removeprefix("http://").split(":")
    request = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: {accept}\r\n\r\n"
    ).encode()
    deadline = time.perf_counter() + seconds
    counts = [0] * connections

    async def worker(slot: int) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        while time.perf_counter() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"{method} {path}: {head[:80]!r}")
            if method != "HEAD":
                await read_body(reader, head)
            counts[slot] += 1
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(slot) for slot in range(connections)))
    return sum(counts) / (time.perf_counter() - start)


async def read_body(reader: asyncio.StreamReader, head: bytes) -> None:
    """Consume a response body framed by Content-Length or chunked encoding."""
    lines = head.lower().split(b"\r\n")
    if b"transfer-encoding: chunked" in lines:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                return
    for line in lines:
        if line.startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":", 1)[1]))


@dataclass
class Figures:
    values: dict[str, float] = field(default_factory=dict)


def run_workload(server: Server, quick: bool) -> Figures:
    figures = Figures()
    big = 128 if quick else 512
    seconds = 3.0 if quick else 8.0
    push, pull = big_blob(server.url, big)
    figures.values[f"push {big} MiB blob (MB/s)"] = push * MiB / 1e6
    figures.values[f"pull {big} MiB blob (MB/s)"] = pull * MiB / 1e6
    count = 16 if quick else 64
    push, pull = many_blobs(server.url, count, 4, 8)
    figures.values[f"push {count} x 4 MiB, 8 clients (MB/s)"] = push * MiB / 1e6
    figures.values[f"pull {count} x 4 MiB, 8 clients (MB/s)"] = pull * MiB / 1e6
    with httpx.Client(base_url=server.url, timeout=60) as client:
        digest = prepare_manifest(client, "bench/manifests", ["v1"])
        tags = [f"t{i:04d}" for i in range(1000)]
        prepare_manifest(client, "bench/tags", tags)
    for method in ("GET", "HEAD"):
        for reference in ("v1", digest):
            kind = "tag" if reference == "v1" else "digest"
            rate = asyncio.run(
                request_rate(
                    server.url, method, f"/v2/bench/manifests/manifests/{reference}", 4, seconds
                )
            )
            figures.values[f"manifest {method} by {kind} (req/s)"] = rate
    rate = asyncio.run(
        request_rate(server.url, "GET", "/v2/bench/tags/tags/list", 4, seconds, "application/json")
    )
    figures.values["tags/list of 1,000 tags (req/s)"] = rate
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes and shorter runs")
    parser.add_argument("--only", choices=["arca", "distribution"], help="run one registry")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="arca-bench-"))
    try:
        servers = [arca_server(workdir), reference_server(workdir)]
        results: dict[str, Figures] = {}
        for server in servers:
            if server is None or (args.only and server.label != args.only):
                continue
            server.start()
            try:
                print(f"running {server.label} ...", file=sys.stderr, flush=True)
                results[server.label] = run_workload(server, args.quick)
            finally:
                server.stop()
        print_table(results)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def print_table(results: dict[str, Figures]) -> None:
    labels = list(results)
    rows = list(next(iter(results.values())).values)
    width = max(len(row) for row in rows)
    header = f"{'figure':<{width}}  " + "  ".join(f"{label:>12}" for label in labels)
    ratio = f"{labels[0][:4]}/{labels[1][:4]}" if len(labels) == 2 else ""
    if ratio:
        header += f"  {ratio:>9}"
    print(header)
    print("-" * len(header))
    for row in rows:
        cells = [results[label].values[row] for label in labels]
        line = f"{row:<{width}}  " + "  ".join(f"{cell:>12.1f}" for cell in cells)
        if len(cells) == 2 and cells[1]:
            line += f"  {cells[0] / cells[1]:>9.2f}"
        print(line)


if __name__ == "__main__":
    main()
