"""A real arca process against clients that misbehave on the socket."""

from __future__ import annotations

import hashlib
import socket
import time

import httpx

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
