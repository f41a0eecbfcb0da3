"""Streaming end to end: a 2 GiB blob goes through a real server in bounded memory."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.server import ArcaServer, PeakRss

MiB = 1 << 20
SIZE = 2048 * MiB
RSS_LIMIT = 150 * MiB


def payload(block: bytes, count: int) -> Iterator[bytes]:
    for index in range(count):
        # Vary each block so that no layer of the stack could dedupe or compress it.
        yield index.to_bytes(8, "big") + block[8:]


@pytest.mark.slow
def test_2gib_blob_push_and_pull_in_bounded_memory(arca: ArcaServer) -> None:
    block = os.urandom(MiB)
    expected = hashlib.sha256()
    for chunk in payload(block, SIZE // MiB):
        expected.update(chunk)
    digest = f"sha256:{expected.hexdigest()}"
    assert arca.process is not None
    with PeakRss(arca.process.pid) as rss, httpx.Client(base_url=arca.url, timeout=120) as client:
        location = client.post("/v2/big/blobs/uploads/").headers["Location"]
        response = client.put(
            f"{location}?digest={digest}",
            content=payload(block, SIZE // MiB),
            headers={"Content-Length": str(SIZE), "Content-Type": "application/octet-stream"},
        )
        assert response.status_code == 201, response.text
        pulled = hashlib.sha256()
        size = 0
        with client.stream("GET", f"/v2/big/blobs/{digest}") as stream:
            assert stream.status_code == 200
            for chunk in stream.iter_bytes(MiB):
                pulled.update(chunk)
                size += len(chunk)
    assert size == SIZE
    assert f"sha256:{pulled.hexdigest()}" == digest
    print(f"2 GiB push+pull, filesystem: server peak RSS {rss.peak / MiB:.0f} MiB")
    assert rss.peak < RSS_LIMIT, f"server peak RSS {rss.peak / MiB:.0f} MiB"


def test_an_aborted_pull_stops_reading_storage(arca: ArcaServer) -> None:
    """A client that hangs up after the first bytes must not cost a read of the whole blob."""
    import socket

    import psutil

    size = 256 * MiB
    block = os.urandom(MiB)
    expected = hashlib.sha256()
    for chunk in payload(block, size // MiB):
        expected.update(chunk)
    digest = f"sha256:{expected.hexdigest()}"
    with httpx.Client(base_url=arca.url, timeout=120) as client:
        location = client.post("/v2/abort/blobs/uploads/").headers["Location"]
        headers = {"Content-Length": str(size)}
        put = client.put(
            f"{location}?digest={digest}", content=payload(block, size // MiB), headers=headers
        )
        assert put.status_code == 201
    assert arca.process is not None
    server = psutil.Process(arca.process.pid)
    before = server.io_counters().read_chars
    with socket.create_connection(("127.0.0.1", arca.port)) as sock:
        sock.sendall(f"GET /v2/abort/blobs/{digest} HTTP/1.1\r\nHost: arca\r\n\r\n".encode())
        assert sock.recv(1000).startswith(b"HTTP/1.1 200")
    time.sleep(2)  # time enough to read the rest, were it still reading
    read = server.io_counters().read_chars - before
    assert read < size // 4, f"read {read / MiB:.0f} MiB after the client left"
