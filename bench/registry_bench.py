"""Throughput and request rates of arca, beside the reference registry and the machine.

Usage:
  .venv/bin/python bench/registry_bench.py --compare        # what `make bench` runs
  .venv/bin/python bench/registry_bench.py [--quick] [--repeat N] [--only arca]
  .venv/bin/python bench/registry_bench.py --variant w2:ARCA_SERVER_WORKERS=2 --only arca
  .venv/bin/python bench/registry_bench.py --asgi granian:PYTHONPATH=/dir/with/granian

Starts arca (filesystem storage in a temp dir) with its default configuration, by
default also with `fsync = false` (what distribution does), and, when Debian's
`docker-registry` (CNCF distribution 2.8) is installed, the reference registry with a
config of its own; runs the same workloads against each over loopback:

- one 512 MiB blob pushed in one stream, then pulled in one stream and by 8 clients at once;
- 64 x 4 MiB blobs pushed, then pulled, by 8 concurrent clients;
- manifest PUTs each creating a new tag in one repository, 8 clients;
- manifest GET and HEAD by tag and digest, and the tag list of a 1,000-tag repository
  (4 keep-alive connections, 5 s each);
- the peak RSS of the server's whole process tree (workers included) over the run.

Beside the servers, the machine's own limits, measured in the same run: the same 512
MiB file served with `os.sendfile` by a 40-line server to the same client (the most a
pull can get on this machine), and sha256 and blake3 on one core (what every pushed
byte costs a registry that verifies it).

Each server runs each workload `--repeat` times (3 by default) on fresh storage, the
servers' rounds interleaved so that a change of load on a shared machine hits every
column alike; cells show the median and the spread (min-max). `--compare` runs arca's
and distribution's default configurations and prints the ratio table of issue 15, one
row per goal, met or not. The load generator is a minimal asyncio HTTP/1.1 client so
that the client, not the server, is the cheapest part of the measurement. The servers
and the client share this machine's cores: compare the columns of one run, not absolute
values across runs or machines.
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
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import blake3
import httpx
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from servers import Server, arca_server, drop_large_files, free_port

MiB = 1 << 20
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
REFERENCE_BINARY = "/usr/bin/docker-registry"
REFERENCE = "distribution"
SENDFILE = "sendfile"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Variant:
    """How to start one column's server on fresh storage, once per round."""

    def __init__(self, label: str, make: Callable[[Path, int], Server]) -> None:
        self.label = label
        self.make = make


def arca_variant(label: str, env: dict[str, str]) -> Variant:
    def make(workdir: Path, round_: int) -> Server:
        return arca_server(workdir, label, env, workdir / f"{label}-{round_}-data")

    return Variant(label, make)


ASGI_SERVERS = {
    # What runs arca's app instead of `arca serve` (uvicorn with arca's own protocol:
    # read timeouts, zero-copy sends); each must be importable, e.g. through
    # PYTHONPATH=... in the column's settings. One worker, uvloop, access log off in
    # the server (arca logs each request itself).
    "granian": [
        "-m", "granian", "--interface", "asgi", "--factory", "--loop", "uvloop",
        "--workers", "1", "--host", "127.0.0.1", "--port", "{port}",
        "arca.app:create_app_from_environment",
    ],
    "hypercorn": [
        "-m", "hypercorn", "--worker-class", "uvloop", "--workers", "1",
        "--bind", "127.0.0.1:{port}", "arca.app:create_app_from_environment()",
    ],
}  # fmt: skip


def asgi_variant(text: str) -> Variant:
    """`--asgi NAME[:KEY=VALUE,...]`: arca's app under another ASGI server."""
    name, _, assignments = text.partition(":")
    if name not in ASGI_SERVERS:
        raise SystemExit(f"--asgi: one of {', '.join(ASGI_SERVERS)}, not {name!r}")
    env = dict(a.partition("=")[::2] for a in filter(None, assignments.split(",")))

    def make(workdir: Path, round_: int) -> Server:
        port = free_port()
        data = workdir / f"{name}-{round_}-data"
        data.mkdir(parents=True, exist_ok=True)
        command = [sys.executable] + [a.format(port=port) for a in ASGI_SERVERS[name]]
        settings = {
            "ARCA_STORAGE_DRIVER": '"filesystem"',
            "ARCA_STORAGE_FILESYSTEM_ROOT": json.dumps(str(data)),
            **env,
        }
        return Server(name, command, f"http://127.0.0.1:{port}", workdir, settings)

    return Variant(name, make)


def reference_variant() -> Variant | None:
    if not Path(REFERENCE_BINARY).exists():
        return None

    def make(workdir: Path, round_: int) -> Server:
        port = free_port()
        config = workdir / f"reference-{round_}.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {workdir / f'reference-{round_}-data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
        )
        return Server(
            REFERENCE, [REFERENCE_BINARY, "serve", str(config)], f"http://127.0.0.1:{port}", workdir
        )

    return Variant(REFERENCE, make)


# -- one-off servers, for the other benches (servers.py has arca_server) ------------------


def reference_server(workdir: Path) -> Server | None:
    """The reference registry on its own storage, or None when it is not installed."""
    variant = reference_variant()
    return variant.make(workdir, 0) if variant is not None else None


# -- the machine's limits ----------------------------------------------------------------


def serve_file(path: str, port: int) -> None:
    """`--serve-file`: answer every GET with the file, by os.sendfile (keep-alive).

    What a pull can get on this machine: the bytes never enter user space. `/v2/`
    answers an empty 200 so that `Server.start` sees it up.
    """
    size = os.path.getsize(path)
    listener = socket.create_server(("127.0.0.1", port))

    def handle(conn: socket.socket) -> None:
        with conn, open(path, "rb") as file:
            pending = b""
            while True:
                while b"\r\n\r\n" not in pending:
                    data = conn.recv(65536)
                    if not data:
                        return
                    pending += data
                head, _, pending = pending.partition(b"\r\n\r\n")
                if head.split(b" ", 2)[1] == b"/v2/":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    continue
                conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
                offset = 0
                while offset < size:
                    offset += os.sendfile(conn.fileno(), file.fileno(), offset, size - offset)

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def sendfile_variant(size_mib: int) -> Variant:
    def make(workdir: Path, round_: int) -> Server:
        path = workdir / "sendfile.bin"
        if not path.exists():
            block = big_block()
            with open(path, "wb") as file:
                for chunk in blob_stream(block, size_mib):
                    file.write(chunk)
        port = free_port()
        command = [sys.executable, __file__, "--serve-file", str(path), "--port", str(port)]
        return Server(SENDFILE, command, f"http://127.0.0.1:{port}", workdir)

    return Variant(SENDFILE, make)


def hash_rates(size_mib: int) -> dict[str, float]:
    """sha256 (hashlib) and blake3 on one core, 1 MiB updates, in MB/s."""
    block = os.urandom(MiB)
    rates = {}
    for name, hasher in (
        ("sha256", hashlib.sha256()),
        ("blake3", blake3.blake3()),  # max_threads=1: one core
    ):
        start = time.perf_counter()
        for _ in range(size_mib):
            hasher.update(block)
        hasher.digest()
        rates[f"{name}, one core (MB/s)"] = size_mib * MiB / 1e6 / (time.perf_counter() - start)
    return rates


# -- workloads ---------------------------------------------------------------------------

_BLOCK: bytes | None = None


def big_block() -> bytes:
    """The 1 MiB pattern of the big blob: the same bytes for every server in a run."""
    global _BLOCK
    if _BLOCK is None:
        _BLOCK = os.urandom(MiB)
    return _BLOCK


def blob_stream(block: bytes, count: int, salt: int = 0) -> Iterator[bytes]:
    for index in range(count):
        yield (salt * count + index).to_bytes(8, "big") + block[8:]


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
        self,
        method: str,
        target: str,
        body: bytes | Iterator[bytes] = b"",
        size: int = 0,
        content_type: str = "application/octet-stream",
    ) -> tuple[int, dict[str, str], int]:
        """Send a request; returns status, headers and how many body bytes were read."""
        assert self.reader is not None
        assert self.writer is not None
        if isinstance(body, bytes):
            size = len(body)
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Length: {size}\r\nContent-Type: {content_type}\r\n\r\n"
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


def big_blob(url: str, size_mib: int, clients: int, push: bool = True) -> dict[str, float]:
    """Push one blob in one stream; pull it in one stream, then by `clients` at once.

    `push=False` (the sendfile server) only pulls."""
    block = big_block()
    hasher = hashlib.sha256()
    for chunk in blob_stream(block, size_mib):
        hasher.update(chunk)
    digest = f"sha256:{hasher.hexdigest()}"
    figures = {}

    async def pull_all() -> float:
        async def one() -> None:
            async with Connection(url) as connection:
                assert await pull_blob(connection, "bench/big", digest) == size_mib * MiB

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(clients)))
        return clients * size_mib * MiB / 1e6 / (time.perf_counter() - start)

    async def run() -> None:
        async with Connection(url) as connection:
            if push:
                start = time.perf_counter()
                stream = blob_stream(block, size_mib)
                await push_blob(connection, "bench/big", stream, size_mib * MiB, digest)
                figures[f"push {size_mib} MiB, one stream (MB/s)"] = (
                    size_mib * MiB / 1e6 / (time.perf_counter() - start)
                )
            start = time.perf_counter()
            assert await pull_blob(connection, "bench/big", digest) == size_mib * MiB
            figures[f"pull {size_mib} MiB, one stream (MB/s)"] = (
                size_mib * MiB / 1e6 / (time.perf_counter() - start)
            )
        figures[f"pull {clients} x {size_mib} MiB at once (MB/s)"] = await pull_all()

    asyncio.run(run())
    return figures


def many_blobs(url: str, count: int, size_mib: int, clients: int) -> dict[str, float]:
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
        return count * size_mib * MiB / 1e6 / (time.perf_counter() - start)

    label = f"{count} x {size_mib} MiB, {clients} clients (MB/s)"
    return {f"push {label}": asyncio.run(run(True)), f"pull {label}": asyncio.run(run(False))}


def push_image_blobs(client: httpx.Client, name: str) -> tuple[dict[str, object], ...]:
    """An empty config and a 1 KiB layer in `name`; their descriptors."""
    config, layer = b"{}", os.urandom(1024)
    for blob in (config, layer):
        location = client.post(f"/v2/{name}/blobs/uploads/").headers["Location"]
        separator = "&" if "?" in location else "?"
        response = client.put(f"{location}{separator}digest={sha256(blob)}", content=blob)
        if response.status_code != 201:
            raise RuntimeError(f"blob push failed: {response.status_code}")
    return (
        {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(config), "size": 2},
        {"mediaType": "application/octet-stream", "digest": sha256(layer), "size": 1024},
    )


def image_manifest(config: dict[str, object], layer: dict[str, object], note: str = "") -> bytes:
    manifest: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": [layer],
    }
    if note:
        manifest["annotations"] = {"bench.note": note}
    return json.dumps(manifest).encode()


def prepare_manifest(url: str, name: str, tags: list[str], clients: int = 8) -> str:
    """One manifest in `name` under every tag of `tags` (PUT by `clients` at once)."""
    with httpx.Client(base_url=url, timeout=60) as client:
        manifest = image_manifest(*push_image_blobs(client, name))
    queue = list(tags)

    async def worker() -> None:
        async with Connection(url) as connection:
            while queue:
                tag = queue.pop()
                status, _, _ = await connection.request(
                    "PUT", f"/v2/{name}/manifests/{tag}", manifest, content_type=OCI_MANIFEST
                )
                if status != 201:
                    raise RuntimeError(f"manifest push failed: {status}")

    async def run() -> None:
        await asyncio.gather(*(worker() for _ in range(clients)))

    asyncio.run(run())
    return sha256(manifest)


def tag_puts(url: str, clients: int, seconds: float) -> dict[str, float]:
    """Manifest PUTs by `clients` keep-alive connections for `seconds`, each PUT a new
    manifest (its own annotation) under a new tag of one repository."""
    name = "bench/tagging"
    with httpx.Client(base_url=url, timeout=60) as client:
        config, layer = push_image_blobs(client, name)
    counts = [0] * clients

    async def worker(slot: int, deadline: float) -> None:
        async with Connection(url) as connection:
            while time.perf_counter() < deadline:
                tag = f"c{slot}-{counts[slot]}"
                body = image_manifest(config, layer, tag)
                status, _, _ = await connection.request(
                    "PUT", f"/v2/{name}/manifests/{tag}", body, content_type=OCI_MANIFEST
                )
                if status != 201:
                    raise RuntimeError(f"manifest PUT failed: {status}")
                counts[slot] += 1

    async def run() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(worker(slot, start + seconds) for slot in range(clients)))
        return sum(counts) / (time.perf_counter() - start)

    return {f"manifest PUTs creating tags, {clients} clients (req/s)": asyncio.run(run())}


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


def request_rates(url: str, seconds: float) -> dict[str, float]:
    figures = {}
    digest = prepare_manifest(url, "bench/manifests", ["v1"])
    prepare_manifest(url, "bench/tags", [f"t{i:04d}" for i in range(1000)])
    for method in ("GET", "HEAD"):
        for reference in ("v1", digest):
            kind = "tag" if reference == "v1" else "digest"
            path = f"/v2/bench/manifests/manifests/{reference}"
            rate = asyncio.run(request_rate(url, method, path, 4, seconds))
            figures[f"manifest {method} by {kind} (req/s)"] = rate
    path = "/v2/bench/tags/tags/list"
    rate = asyncio.run(request_rate(url, "GET", path, 4, seconds, "application/json"))
    figures["tags/list of 1,000 tags (req/s)"] = rate
    return figures


class PeakRss:
    """The peak of the summed RSS of a process and all its descendants, sampled."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self._root = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self.peak = 0
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            total = 0
            try:
                for process in [self._root, *self._root.children(recursive=True)]:
                    total += process.memory_info().rss
            except psutil.Error:
                pass
            self.peak = max(self.peak, total)
            self._stop.wait(self._interval)


@dataclass
class Sizes:
    big_mib: int = 512
    clients: int = 8
    many: int = 64
    seconds: float = 5.0
    tag_seconds: float = 5.0


WORKLOADS = ("big", "many", "tags", "rates")


def run_workload(server: Server, sizes: Sizes, workloads: set[str]) -> dict[str, float]:
    if server.label == SENDFILE:
        if "big" not in workloads:
            return {}
        return big_blob(server.url, sizes.big_mib, sizes.clients, push=False)
    assert server.process is not None
    figures: dict[str, float] = {}
    with PeakRss(server.process.pid) as rss:
        if "big" in workloads:
            figures |= big_blob(server.url, sizes.big_mib, sizes.clients)
        if "many" in workloads:
            figures |= many_blobs(server.url, sizes.many, 4, sizes.clients)
        if "tags" in workloads:
            figures |= tag_puts(server.url, sizes.clients, sizes.tag_seconds)
        if "rates" in workloads:
            figures |= request_rates(server.url, sizes.seconds)
    figures["peak RSS of the process tree (MB)"] = rss.peak / 1e6
    return figures


# -- the tables --------------------------------------------------------------------------


@dataclass
class Goal:
    """One row of the ratio table: arca's figure over `against`'s, at least `at_least`
    (at most `at_most` for costs such as memory)."""

    row: str
    against: str = REFERENCE
    at_least: float | None = None
    at_most: float | None = None


def goals(sizes: Sizes) -> list[Goal]:
    big, clients, many = sizes.big_mib, sizes.clients, sizes.many
    return [
        Goal(f"manifest PUTs creating tags, {clients} clients (req/s)", at_least=1.5),
        Goal(f"pull {clients} x {big} MiB at once (MB/s)", at_least=1.2),
        Goal(f"push {many} x 4 MiB, {clients} clients (MB/s)", at_least=1.2),
        Goal(f"pull {many} x 4 MiB, {clients} clients (MB/s)", at_least=1.2),
        Goal(f"pull {big} MiB, one stream (MB/s)", against=SENDFILE, at_least=0.9),
        Goal(f"pull {big} MiB, one stream (MB/s)", at_least=1.2),
        Goal(f"push {big} MiB, one stream (MB/s)", at_least=2.5),
        Goal("manifest GET by tag (req/s)", at_least=2.0),
        Goal("manifest GET by digest (req/s)", at_least=2.0),
        Goal("manifest HEAD by tag (req/s)", at_least=2.0),
        Goal("manifest HEAD by digest (req/s)", at_least=2.0),
        Goal("tags/list of 1,000 tags (req/s)", at_least=2.0),
        Goal("peak RSS of the process tree (MB)", at_most=1.5),
    ]


Results = dict[str, dict[str, list[float]]]  # column -> row -> one value per round


def cell(values: list[float]) -> str:
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.1f}"
    return f"{median:.1f} ({min(values):.0f}-{max(values):.0f})"


def print_figures(results: Results, machine: dict[str, float]) -> None:
    """Every figure: one column per server, median (min-max) of the rounds."""
    labels = list(results)
    rows: list[str] = []
    for label in labels:
        rows += [row for row in results[label] if row not in rows]
    width = max(len(row) for row in [*rows, *machine])
    widths = [
        max(len(label), *(len(cell(results[label].get(row, [0]))) for row in rows))
        for label in labels
    ]
    header = f"{'figure':<{width}}" + "".join(
        f"  {label:>{w}}" for label, w in zip(labels, widths, strict=True)
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        line = f"{row:<{width}}"
        for label, w in zip(labels, widths, strict=True):
            values = results[label].get(row)
            line += f"  {cell(values) if values else '-':>{w}}"
        print(line)
    for row, value in machine.items():
        print(f"{row:<{width}}  {value:>{widths[0]}.1f}")


def print_compare(results: Results, sizes: Sizes, arca: str = "arca") -> bool:
    """Issue 15's ratio table from the medians; True when every goal is met."""
    print()
    print(f"{'figure':<52} {'against':>12} {'value':>10} {arca:>10} {'ratio':>6} {'goal':>7}  met")
    print("-" * 108)
    every = True
    for goal in goals(sizes):
        mine = results.get(arca, {}).get(goal.row)
        theirs = results.get(goal.against, {}).get(goal.row)
        if not mine or not theirs:
            print(f"{goal.row:<52} {goal.against:>12} {'-':>10} {'-':>10} {'-':>6}")
            every = False
            continue
        ratio = statistics.median(mine) / statistics.median(theirs)
        if goal.at_least is not None:
            met, target = ratio >= goal.at_least, f">={goal.at_least:.2f}"
        else:
            assert goal.at_most is not None
            met, target = ratio <= goal.at_most, f"<={goal.at_most:.2f}"
        every &= met
        print(
            f"{goal.row:<52} {goal.against:>12} {statistics.median(theirs):>10.1f}"
            f" {statistics.median(mine):>10.1f} {ratio:>6.2f} {target:>7}  {'yes' if met else 'NO'}"
        )
    return every


def parse_variant(text: str) -> Variant:
    label, _, assignments = text.partition(":")
    env = {}
    for assignment in filter(None, assignments.split(",")):
        key, _, value = assignment.partition("=")
        env[key] = value
    return arca_variant(label, env)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes and shorter runs")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of every workload")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="arca's and distribution's defaults only, then issue 15's ratio table",
    )
    parser.add_argument(
        "--only", help="run only the columns whose label starts with one of these (a,b,...)"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL:KEY=VALUE,...",
        help="another arca column with these environment settings (repeatable)",
    )
    parser.add_argument(
        "--asgi",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE,...",
        help=f"arca's app under another ASGI server ({', '.join(ASGI_SERVERS)}), repeatable",
    )
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated subset of {','.join(WORKLOADS)} (default: all)",
    )
    parser.add_argument("--serve-file", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_file:
        serve_file(args.serve_file, args.port)
        return
    sizes = Sizes(big_mib=128, many=16, seconds=3.0, tag_seconds=3.0) if args.quick else Sizes()
    variants = [arca_variant("arca", {})]
    if not args.compare:
        variants.append(arca_variant("arca-nofsync", {"ARCA_STORAGE_FILESYSTEM_FSYNC": "false"}))
    variants += [parse_variant(text) for text in args.variant]
    variants += [asgi_variant(text) for text in args.asgi]
    variants += [v for v in (reference_variant(), sendfile_variant(sizes.big_mib)) if v]
    if args.only:
        wanted = args.only.split(",")
        variants = [v for v in variants if v.label.startswith(tuple(wanted))]
    workloads = set(args.workloads.split(","))
    if unknown := workloads - set(WORKLOADS):
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    workdir = Path(tempfile.mkdtemp(prefix="arca-bench-"))
    results: Results = {variant.label: {} for variant in variants}
    started = time.monotonic()
    try:
        for round_ in range(args.repeat):
            for variant in variants:
                server = variant.make(workdir, round_)
                load = os.getloadavg()[0]
                print(
                    f"round {round_ + 1}/{args.repeat}: {variant.label} (load {load:.1f}) ...",
                    file=sys.stderr,
                    flush=True,
                )
                server.start()
                try:
                    figures = run_workload(server, sizes, workloads)
                finally:
                    server.stop()
                for row, value in figures.items():
                    results[variant.label].setdefault(row, []).append(value)
                # The small files stay until the end: deleting them now would slow
                # the next server's file creation (servers.drop_large_files).
                for data in (f"{variant.label}-{round_}-data", f"reference-{round_}-data"):
                    if (workdir / data).is_dir():
                        drop_large_files(workdir / data)
        machine = hash_rates(sizes.big_mib)
        load = os.getloadavg()
        print(
            f"{args.repeat} rounds in {time.monotonic() - started:.0f} s;"
            f" load average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
        )
        print_figures(results, machine)
        if args.compare or REFERENCE in results:
            print_compare(results, sizes)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
