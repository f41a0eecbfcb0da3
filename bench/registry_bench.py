"""Throughput and request rates of arca, beside the reference registry, in one run.

Usage: .venv/bin/python bench/registry_bench.py [--quick] [--only arca]

Starts arca (filesystem storage in a temp dir) twice, with its default durability
(every write fsynced) and with `fsync = false` (what distribution does), and, when
Debian's `docker-registry` (CNCF distribution 2.8) is installed, the reference
registry with a config of its own; runs the same workload against each over loopback
and prints one table, with each arca column's ratio to the reference:

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


def arca_server(workdir: Path, label: str = "arca", env: dict[str, str] | None = None) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "arca", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--storage", str(workdir / f"{label}-data")]
    return Server(label, command, f"http://127.0.0.1:{port}", workdir, env or {})


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


class Connection:
    """One keep-alive HTTP/1.1 connection with just enough protocol for blob transfers.

    The transfer figures are meant to measure the servers: on two shared cores a
    general-purpose Python client (httpx in threads) burns as much CPU as the server
    it measures and caps every figure. This one writes bodies with single large
    writes and reads answers in 1 MiB pieces without parsing more than it must.
    """

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Connection:
        self.reader, self.writer = await asyncio.open_connection(
            self.host, self.port, limit=4 * MiB
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.writer is not None
        self.writer.close()

    async def request(
        self, method: str, target: str, body: bytes | Iterator[bytes] = b"", size: int = 0
    ) -> tuple[int, dict[str, str], int]:
        """Send a request; returns status, headers and how many body bytes were read."""
        assert self.reader is not None
        assert self.writer is not None
        if isinstance(body, bytes):
            size = len(body)
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Length: {size}\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        self.writer.write(head.encode())
        if isinstance(body, bytes):
            if body:
                self.writer.write(body)
        else:
            for block in body:
                self.writer.write(block)
                await self.writer.drain()
        await self.writer.drain()
        return await self._answer()

    async def _answer(self) -> tuple[int, dict[str, str], int]:
        assert self.reader is not None
        lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
        read = 0
        if headers.get("transfer-encoding") == "chunked":
            while (size := int((await self.reader.readuntil(b"\r\n")).strip(), 16)) > 0:
                await self.reader.readexactly(size + 2)
                read += size
            await self.reader.readexactly(2)
        else:
            remaining = int(headers.get("content-length", "0"))
            while remaining:
                piece = await self.reader.read(min(remaining, MiB))
                if not piece:
                    raise RuntimeError("connection closed mid-body")
                remaining -= len(piece)
                read += len(piece)
        return status, headers, read


def _path(location: str) -> str:
    """Location may be absolute (distribution) or relative (arca)."""
    if location.startswith("http"):
        return "/" + location.split("/", 3)[3]
    return location


async def push_blob(
    connection: Connection, name: str, body: bytes | Iterator[bytes], size: int, digest: str
) -> None:
    status, headers, _ = await connection.request("POST", f"/v2/{name}/blobs/uploads/")
    if status != 202:
        raise RuntimeError(f"upload did not open: {status}")
    location = _path(headers["location"])
    separator = "&" if "?" in location else "?"
    status, _, _ = await connection.request(
        "PUT", f"{location}{separator}digest={digest}", body, size
    )
    if status != 201:
        raise RuntimeError(f"push failed: {status}")


async def pull_blob(connection: Connection, name: str, digest: str) -> int:
    status, _, size = await connection.request("GET", f"/v2/{name}/blobs/{digest}")
    if status != 200:
        raise RuntimeError(f"pull failed: {status}")
    return size


def big_blob(url: str, size_mib: int) -> tuple[float, float]:
    block = os.urandom(MiB)
    hasher = hashlib.sha256()
    for chunk in blob_stream(block, size_mib):
        hasher.update(chunk)
    digest = f"sha256:{hasher.hexdigest()}"

    async def run() -> tuple[float, float]:
        async with Connection(url) as connection:
            start = time.perf_counter()
            stream = blob_stream(block, size_mib)
            await push_blob(connection, "bench/big", stream, size_mib * MiB, digest)
            push = size_mib / (time.perf_counter() - start)
            rates = []
            for _ in range(3):
                start = time.perf_counter()
                assert await pull_blob(connection, "bench/big", digest) == size_mib * MiB
                rates.append(size_mib / (time.perf_counter() - start))
        return push, statistics.median(rates)

    return asyncio.run(run())


def many_blobs(url: str, count: int, size_mib: int, clients: int) -> tuple[float, float]:
    blobs = [os.urandom(size_mib * MiB) for _ in range(count)]
    digests = [sha256(blob) for blob in blobs]

    async def run(pushing: bool) -> float:
        queue = list(range(count))

        async def worker() -> None:
            async with Connection(url) as connection:
                while queue:
                    index = queue.pop()
                    if pushing:
                        await push_blob(connection, "bench/many", blobs[index], 0, digests[index])
                    else:
                        assert await pull_blob(connection, "bench/many", digests[index]) == len(
                            blobs[index]
                        )

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return count * size_mib / (time.perf_counter() - start)

    return asyncio.run(run(True)), asyncio.run(run(False))


def prepare_manifest(client: httpx.Client, name: str, tags: list[str]) -> str:
    config, layer = b"{}", os.urandom(1024)
    for blob in (config, layer):
        location = client.post(f"/v2/{name}/blobs/uploads/").headers["Location"]
        separator = "&" if "?" in location else "?"
        response = client.put(f"{location}{separator}digest={sha256(blob)}", content=blob)
        if response.status_code != 201:
            raise RuntimeError(f"blob push failed: {response.status_code}")
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
    parser.add_argument(
        "--only", choices=["arca", "distribution"], help="run arca's or the reference's"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="arca-bench-"))
    try:
        servers = [
            arca_server(workdir),
            arca_server(workdir, "arca-nofsync", {"ARCA_STORAGE_FILESYSTEM_FSYNC": "false"}),
            reference_server(workdir),
        ]
        results: dict[str, Figures] = {}
        for server in servers:
            if server is None or (args.only and not server.label.startswith(args.only)):
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


def print_table(results: dict[str, Figures], reference: str = "distribution") -> None:
    """One column per server, then each other server's figure over the reference's."""
    labels = list(results)
    rows = list(next(iter(results.values())).values)
    compared = [label for label in labels if label != reference] if reference in labels else []
    width = max(len(row) for row in rows)
    header = f"{'figure':<{width}}" + "".join(f"  {label:>12}" for label in labels)
    header += "".join(f"  {label + '/ref':>16}" for label in compared)
    print(header)
    print("-" * len(header))
    for row in rows:
        line = f"{row:<{width}}" + "".join(
            f"  {results[label].values[row]:>12.1f}" for label in labels
        )
        for label in compared:
            line += f"  {results[label].values[row] / results[reference].values[row]:>16.2f}"
        print(line)


if __name__ == "__main__":
    main()
