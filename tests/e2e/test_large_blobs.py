"""Streaming end to end: a 2 GiB blob goes through a real server in bounded memory."""

from __future__ import annotations

import hashlib
import os
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
