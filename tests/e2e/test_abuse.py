"""A real arca process against clients that misbehave on the socket."""

from __future__ import annotations

import hashlib
import selectors
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import ArcaServer


def test_disconnect_mid_patch_leaves_no_traceback_and_the_session_resumes(arca: ArcaServer):
    location = httpx.post(f"{arca.url}/v2/app/blobs/uploads/").headers["Location"]
    with socket.create_connection(("127.0.0.1", arca.port)) as sock:
        head = f"PATCH {location} HTTP/1.1\r\nHost: arca\r\nContent-Length: 1048576\r\n\r\n"
        sock.sendall(head.encode() + b"x" * 1000)
        time.sleep(0.3)
    # The next PATCH waits for the session lock, so the aborted one has ended first.
    data = b"the whole blob"
    assert httpx.patch(f"{arca.url}{location}", content=data, timeout=30).status_code == 202
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert httpx.put(f"{arca.url}{location}?digest={digest}").status_code == 201
    arca.stop()
    log = arca.log.read_text()
    assert "Traceback" not in log
    assert "ERROR" not in log


# -- read timeouts: slowloris on headers and bodies ----------------------------------------

TIMEOUT = 2  # header and body timeouts of the server below, in seconds
SLACK = 10  # how much later than TIMEOUT a close may come on a loaded machine


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[ArcaServer]:
    env = {
        "ARCA_LIMITS_HEADER_TIMEOUT_SECONDS": str(TIMEOUT),
        "ARCA_LIMITS_BODY_TIMEOUT_SECONDS": str(TIMEOUT),
        "ARCA_LIMITS_BODY_MIN_BYTES_PER_SECOND": "100",
        "ARCA_LIMITS_BLOB_MAX_BYTES": str(1 << 20),
        "ARCA_LIMITS_UPLOAD_SESSIONS_PER_REPOSITORY": "5",
    }
    server = ArcaServer(tmp_path / "data", env).start()
    yield server
    server.stop()


def _closed_by_server(sock: socket.socket) -> bool:
    """Read what is there (a response may precede the close); True at end of stream."""
    try:
        while sock.recv(65536):
            pass
    except BlockingIOError:
        return False  # open, nothing more to read now
    except ConnectionResetError:
        pass
    return True


def _wait_until_closed(socks: list[socket.socket], deadline: float) -> dict[socket.socket, float]:
    """When the server closed each socket (monotonic time), until `deadline`."""
    closed: dict[socket.socket, float] = {}
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        while len(closed) < len(socks) and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.2):
                ready = key.fileobj
                assert isinstance(ready, socket.socket)
                sock = ready
                if _closed_by_server(sock):
                    closed[sock] = time.monotonic()
                    selector.unregister(sock)
    return closed


def test_200_half_open_connections_are_closed_within_the_header_timeout(strict: ArcaServer):
    socks = []
    try:
        for i in range(200):
            sock = socket.create_connection(("127.0.0.1", strict.port))
            if i % 2:  # half send part of a request line and headers; half send nothing
                sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: arca\r\nX-Slow: ")
            socks.append(sock)
        opened = time.monotonic()
        assert httpx.get(f"{strict.url}/v2/", timeout=10).status_code == 200
        closed = _wait_until_closed(socks, opened + TIMEOUT + SLACK)
        assert len(closed) == 200, f"{200 - len(closed)} connections still open"
        assert httpx.get(f"{strict.url}/v2/", timeout=10).status_code == 200
    finally:
        for sock in socks:
            sock.close()


def test_headers_trickling_in_and_a_slow_second_request_are_closed(strict: ArcaServer):
    trickling = socket.create_connection(("127.0.0.1", strict.port))
    kept_alive = socket.create_connection(("127.0.0.1", strict.port))
    try:
        kept_alive.sendall(b"GET /v2/ HTTP/1.1\r\nHost: arca\r\n\r\n")
        assert kept_alive.recv(65536).startswith(b"HTTP/1.1 200")
        kept_alive.sendall(b"GET /v2/ HTTP/1.1\r\nHo")
        started = time.monotonic()
        closed_at = None
        line = b"GET /v2/ HTTP/1.1\r\nHost: arca\r\n" + b"X: y\r\n" * 100
        for byte in line:  # one byte every 0.1 s: never idle, never done
            try:
                trickling.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed_at = time.monotonic()
                break
            time.sleep(0.1)
            if time.monotonic() - started > TIMEOUT + SLACK:
                break
        assert closed_at is not None, "a request whose headers never end stayed open"
        assert closed_at - started >= TIMEOUT - 0.5
        assert _wait_until_closed([kept_alive], time.monotonic() + SLACK)
    finally:
        trickling.close()
        kept_alive.close()


def test_stalled_body_is_closed_and_the_session_stays_usable(strict: ArcaServer):
    location = httpx.post(f"{strict.url}/v2/app/blobs/uploads/").headers["Location"]
    sock = socket.create_connection(("127.0.0.1", strict.port))
    try:
        head = f"PATCH {location} HTTP/1.1\r\nHost: arca\r\nContent-Length: 100000\r\n\r\n"
        sock.sendall(head.encode() + b"x" * 10)
        sent = time.monotonic()
        closed = _wait_until_closed([sock], sent + TIMEOUT + SLACK)
        assert sock in closed, "a body that stopped coming kept its connection"
        assert closed[sock] - sent >= TIMEOUT - 0.5
    finally:
        sock.close()
    data = b"blob"
    assert httpx.patch(f"{strict.url}{location}", content=data, timeout=30).status_code == 202
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert httpx.put(f"{strict.url}{location}?digest={digest}").status_code == 201
    strict.stop()
    assert "Traceback" not in strict.log.read_text()


def test_a_slow_but_steady_body_is_not_cut_off(strict: ArcaServer):
    """300 bytes/s against a minimum of 100: it outlasts the body timeout and succeeds."""
    location = httpx.post(f"{strict.url}/v2/app/blobs/uploads/").headers["Location"]
    data = b"s" * 60 * 25
    with socket.create_connection(("127.0.0.1", strict.port)) as sock:
        head = f"PATCH {location} HTTP/1.1\r\nHost: arca\r\nContent-Length: {len(data)}\r\n\r\n"
        sock.sendall(head.encode())
        started = time.monotonic()
        for start in range(0, len(data), 60):
            sock.sendall(data[start : start + 60])
            time.sleep(0.2)
        assert time.monotonic() - started > TIMEOUT
        sock.settimeout(30)
        assert sock.recv(65536).startswith(b"HTTP/1.1 202")


def test_blob_and_session_limits_over_http(strict: ArcaServer):
    data = b"x" * (20 << 20)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    response = httpx.post(f"{strict.url}/v2/app/blobs/uploads/?digest={digest}", content=data)
    assert response.status_code == 413
    assert response.json()["errors"][0]["code"] == "SIZE_INVALID"
    assert not (strict.storage / "blobs").exists()
    for _ in range(5):
        assert httpx.post(f"{strict.url}/v2/app/blobs/uploads/").status_code == 202
    refused = httpx.post(f"{strict.url}/v2/app/blobs/uploads/")
    assert refused.status_code == 429
    assert refused.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
