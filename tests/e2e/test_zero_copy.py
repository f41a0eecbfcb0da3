"""Blob GETs by sendfile (arca/serving.py, api/streaming.py): byte-identical to the
streamed path for whole blobs and every range, hostile ones included, on kept-alive
connections, counted in the metrics; and used only where it can be."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from arca.api.streaming import ZERO_COPY
from tests.e2e.server import ArcaServer

MiB = 1 << 20
# Larger than a socket buffer (a send waits for the client several times) and not a
# multiple of the 2 MiB storage chunk (a range can straddle a chunk boundary).
SIZE = 9 * MiB + 12_345

RANGES = [
    "bytes=0-0",
    "bytes=0-",
    f"bytes={SIZE - 1}-",
    "bytes=-1",
    f"bytes=-{SIZE}",
    f"bytes=-{SIZE + 10}",  # a suffix longer than the blob: the whole blob
    f"bytes={2 * MiB - 3}-{2 * MiB + 3}",  # across a storage chunk
    f"bytes=100-{SIZE + 1_000_000}",  # past the end: cut at the end
    f"bytes={SIZE}-",  # starts at the end: 416
    "bytes=5-4",  # backwards: 416
    "bytes=0-1,5-6",  # several ranges: not served as a range
    "bytes=-0",
    "bytes=abc",
    "bits=0-10",
    "bytes=99999999999999999999999-",
    "bytes= 7 - 9",
]


@pytest.fixture(scope="module")
def blob() -> tuple[bytes, str]:
    data = os.urandom(SIZE)
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, blob: tuple[bytes, str]
) -> Iterator[tuple[ArcaServer, ArcaServer]]:
    """One storage root, served zero-copy and streamed (`sendfile = false`)."""
    root = tmp_path_factory.mktemp("zero-copy") / "data"
    zero = ArcaServer(root).start()
    streamed = ArcaServer(root, {"ARCA_SERVER_SENDFILE": "false"}).start()
    try:
        data, digest = blob
        location = httpx.post(f"{zero.url}/v2/app/blobs/uploads/").headers["Location"]
        put = httpx.put(f"{zero.url}{location}?digest={digest}", content=data, timeout=120)
        assert put.status_code == 201, put.text
        yield zero, streamed
    finally:
        zero.stop()
        streamed.stop()


def _answer(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    headers = {
        key: value
        for key, value in response.headers.items()
        if key not in ("date", "x-request-id", "content-type")  # error bodies: JSON
    }
    body = response.content
    if response.status_code >= 400:
        body = re.sub(rb'"request_id":\s*"[0-9a-f]+"', b"", body)
    return response.status_code, headers, body


def test_whole_and_ranged_gets_are_byte_identical_to_the_streamed_path(
    servers: tuple[ArcaServer, ArcaServer], blob: tuple[bytes, str]
) -> None:
    zero, streamed = servers
    data, digest = blob
    path = f"/v2/app/blobs/{digest}"
    # One kept-alive connection per server for every request: a zero-copy answer
    # leaves the connection ready for the next request.
    with (
        httpx.Client(base_url=zero.url, timeout=60) as fast,
        httpx.Client(base_url=streamed.url, timeout=60) as slow,
    ):
        whole = fast.get(path)
        assert whole.status_code == 200
        assert whole.content == data
        assert _answer(whole) == _answer(slow.get(path))
        for value in RANGES:
            mine = fast.get(path, headers={"Range": value})
            assert _answer(mine) == _answer(slow.get(path, headers={"Range": value})), value
            if mine.status_code == 206:
                first, last = map(int, re.findall(r"\d+", mine.headers["content-range"])[:2])
                assert mine.content == data[first : last + 1], value
        head = fast.head(path)
        assert head.status_code == 200
        assert head.headers["content-length"] == str(SIZE)
        assert head.content == b""


def test_zero_copy_bytes_are_counted_in_metrics_and_the_access_log(
    servers: tuple[ArcaServer, ArcaServer], blob: tuple[bytes, str]
) -> None:
    zero, _ = servers
    _, digest = blob

    def sent() -> float:
        text = httpx.get(f"{zero.url}/metrics").text
        route = re.escape("/v2/{name:path}/blobs/{digest}")
        pattern = rf'arca_http_sent_bytes_total\{{method="GET",route="{route}"\}} (\S+)'
        found = re.search(pattern, text)
        return float(found.group(1)) if found else 0.0

    before = sent()
    response = httpx.get(f"{zero.url}/v2/app/blobs/{digest}", headers={"Range": "bytes=10-1009"})
    assert response.status_code == 206
    assert sent() - before == 1000
    request_id = response.headers["x-request-id"]
    deadline = time.monotonic() + 10
    while request_id not in zero.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    line = next(line for line in zero.log.read_text().splitlines() if request_id in line)
    assert "bytes_out=1000" in line


def test_a_client_that_leaves_mid_send_does_not_break_the_server(
    servers: tuple[ArcaServer, ArcaServer], blob: tuple[bytes, str]
) -> None:
    zero, _ = servers
    data, digest = blob
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", zero.port)) as sock:
            sock.sendall(f"GET /v2/app/blobs/{digest} HTTP/1.1\r\nHost: arca\r\n\r\n".encode())
            assert sock.recv(1000).startswith(b"HTTP/1.1 200")
    # A reader that pauses (the blob is more than the socket buffers hold, so the
    # send waits for it), then reads everything: still byte-identical.
    with socket.create_connection(("127.0.0.1", zero.port)) as sock:
        sock.sendall(f"GET /v2/app/blobs/{digest} HTTP/1.1\r\nHost: arca\r\n\r\n".encode())
        time.sleep(1)
        received = bytearray()
        while b"\r\n\r\n" not in received or len(received.partition(b"\r\n\r\n")[2]) < SIZE:
            piece = sock.recv(MiB)
            assert piece, "connection closed before the whole blob"
            received += piece
        assert bytes(received.partition(b"\r\n\r\n")[2]) == data
    assert httpx.get(f"{zero.url}/v2/app/blobs/{digest}", timeout=60).content == data
    assert "Traceback" not in zero.log.read_text()


# -- which path a GET takes --------------------------------------------------------------


def _sends(scope_extensions: dict[str, Any], root: Path, digest: str) -> list[dict[str, Any]]:
    """The ASGI messages arca's app sends for a blob GET, with or without the extension."""
    import asyncio

    from arca.app import create_app
    from arca.storage.drivers.filesystem import FilesystemDriver

    app = create_app(driver=FilesystemDriver(str(root)))
    messages: list[dict[str, Any]] = []

    async def run() -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": f"/v2/app/blobs/{digest}",
            "raw_path": f"/v2/app/blobs/{digest}".encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"arca")],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 5000),
            "extensions": scope_extensions,
        }

        async def receive() -> dict[str, Any]:
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            messages.append(dict(message))

        async with app.router.lifespan_context(app):
            await app(scope, receive, send)

    asyncio.run(run())
    return messages


def test_the_app_sends_zero_copy_only_when_the_server_offers_it(
    servers: tuple[ArcaServer, ArcaServer], blob: tuple[bytes, str]
) -> None:
    zero, _ = servers
    data, digest = blob
    offered = _sends({ZERO_COPY: {}}, zero.storage, digest)
    assert [m["type"] for m in offered] == ["http.response.start", ZERO_COPY]
    assert (offered[1]["offset"], offered[1]["count"]) == (0, SIZE)
    assert offered[1]["file"].closed
    plain = _sends({}, zero.storage, digest)
    assert {m["type"] for m in plain} == {"http.response.start", "http.response.body"}
    assert b"".join(m.get("body", b"") for m in plain) == data
