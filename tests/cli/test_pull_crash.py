"""`arca pull` killed with SIGKILL mid-download leaves no half-written file under its name.

The registry is a stub on loopback that sends the first file whole, then part of the
second and holds the connection; the pull process is killed once that part is on
disk, so the moment is chosen by what the disk shows, not by timing.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import blake3
import pytest

from arca.formats.artifact import ARTIFACT_MEDIA_TYPE, Artifact, ArtifactFile, encode_artifact
from arca.formats.digest import Digest

FIRST = b"complete file\n"
SECOND = os.urandom(3 << 20)
SENT_OF_SECOND = (2 << 20) + 100  # the client writes whole 1 MiB chunks: two reach disk
ON_DISK = 2 << 20


def describe(path: str, data: bytes) -> ArtifactFile:
    return ArtifactFile(
        path,
        "application/octet-stream",
        len(data),
        Digest("sha256", hashlib.sha256(data).hexdigest()),
        Digest("blake3", blake3.blake3(data).hexdigest()),
    )


@pytest.fixture
def stalling_registry() -> Iterator[tuple[str, threading.Event]]:
    files = (describe("a/first.txt", FIRST), describe("b/second.bin", SECOND))
    document = encode_artifact(Artifact(name="x", version="v1", files=files))
    release = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if "/manifests/" in self.path:
                self._answer(document, ARTIFACT_MEDIA_TYPE, Digest.of(document))
            elif str(files[0].sha256) in self.path:
                self._answer(FIRST, "application/octet-stream")
            else:
                self.send_response(200)
                self.send_header("Content-Length", str(len(SECOND)))
                self.end_headers()
                self.wfile.write(SECOND[:SENT_OF_SECOND])
                self.wfile.flush()
                release.wait(60)  # hold the connection: the client waits for the rest

        def _answer(self, body: bytes, media_type: str, digest: Digest | None = None) -> None:
            self.send_response(200)
            self.send_header("Content-Type", media_type)
            self.send_header("Content-Length", str(len(body)))
            if digest is not None:
                self.send_header("Docker-Content-Digest", str(digest))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", release
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_a_pull_killed_mid_download_leaves_no_file_under_its_name(stalling_registry, tmp_path):
    url, _ = stalling_registry
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "arca", "pull", "x:v1", "-o", str(out), "--registry", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until part of the second file is on disk
            partial = list((out / "b").glob(".arca-*.partial")) if (out / "b").exists() else []
            if partial and partial[0].stat().st_size >= ON_DISK:
                break
            assert process.poll() is None, "the pull ended before it was killed"
            time.sleep(0.05)
        else:
            pytest.fail("the pull never wrote the part that was sent")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not (out / "b" / "second.bin").exists()
    # The first file arrived whole and checked out, but is not placed before the rest.
    assert not (out / "a" / "first.txt").exists()
    leftovers = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert all(name.startswith(".arca-") and name.endswith(".partial") for name in leftovers)
