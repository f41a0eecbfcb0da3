"""Deliberately broken registries, to prove the suite can fail.

- `Liar`: answers every request with a plausible 2xx and plausible headers, and
  stores nothing.
- `Corrupter`: a proxy in front of a real registry that flips a byte in every
  blob and manifest it serves and answers wrong Docker-Content-Digest values.

Both run in a thread of the test process on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

ROUTE = re.compile(
    r"^/v2/(?P<name>.+?)/(?:"
    r"blobs/uploads/(?P<session>[^/]*)"
    r"|blobs/(?P<digest>[^/]+)"
    r"|manifests/(?P<reference>[^/]+)"
    r"|tags/list"
    r"|referrers/(?P<subject>[^/]+)"
    r")$"
)


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the suite's own failures say what went wrong

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        self.handle_any()

    def do_HEAD(self) -> None:
        self.handle_any()

    def do_POST(self) -> None:
        self.handle_any()

    def do_PUT(self) -> None:
        self.handle_any()

    def do_PATCH(self) -> None:
        self.handle_any()

    def do_DELETE(self) -> None:
        self.handle_any()

    def handle_any(self) -> None:
        raise NotImplementedError


class Liar(_Handler):
    """Everything succeeds; nothing is kept."""

    def handle_any(self) -> None:
        body = self._body()
        split = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(split.query).items()}
        if split.path in ("/v2/", "/v2"):
            return self._send(200, b"{}", {"Content-Type": "application/json"})
        if split.path == "/v2/_catalog":
            return self._json(200, {"repositories": []})
        match = ROUTE.match(split.path)
        if match is None:
            return self._send(200, b"{}")
        name = match["name"]
        if match["session"] is not None:
            return self._upload(name, match["session"], query, body)
        if match["digest"] is not None:
            if self.command == "DELETE":
                return self._send(202)
            content = b"{}"
            headers = {"Docker-Content-Digest": match["digest"]}
            return self._send(200, content, {**headers, "Content-Type": "application/octet-stream"})
        if match["reference"] is not None:
            return self._manifest(name, match["reference"], body)
        if match["subject"] is not None:
            index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
            return self._json(200, index, OCI_INDEX, {"OCI-Filters-Applied": "artifactType"})
        return self._json(200, {"name": name, "tags": []})

    def _json(
        self,
        status: int,
        document: object,
        media_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self._send(
            status, json.dumps(document).encode(), {"Content-Type": media_type, **(headers or {})}
        )

    def _upload(self, name: str, session: str, query: dict[str, str], body: bytes) -> None:
        session = session or str(uuid.uuid4())
        location = f"/v2/{name}/blobs/uploads/{session}"
        if self.command == "POST" and ("digest" in query or "mount" in query):
            digest = query.get("digest") or query["mount"]
            return self._created(name, digest)
        if self.command == "POST":
            return self._send(202, b"", {"Location": location, "Range": "0-0"})
        if self.command == "PATCH":
            end = len(body) - 1
            content_range = self.headers.get("Content-Range")
            if content_range and "-" in content_range:
                end = int(content_range.split("-")[1])
            return self._send(202, b"", {"Location": location, "Range": f"0-{max(end, 0)}"})
        if self.command == "PUT":
            return self._created(name, query.get("digest", _sha256(body)))
        if self.command == "DELETE":
            return self._send(204)
        return self._send(204, b"", {"Location": location, "Range": "0-0"})

    def _created(self, name: str, digest: str) -> None:
        headers = {"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest}
        self._send(201, b"", headers)

    def _manifest(self, name: str, reference: str, body: bytes) -> None:
        if self.command == "PUT":
            digest = _sha256(body)
            headers = {
                "Location": f"/v2/{name}/manifests/{digest}",
                "Docker-Content-Digest": digest,
                "OCI-Subject": digest,
            }
            return self._send(201, b"", headers)
        if self.command == "DELETE":
            return self._send(202)
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": _sha256(b"{}"),
                "size": 2,
            },
            "layers": [],
        }
        content = json.dumps(document).encode()
        headers = {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": _sha256(content)}
        return self._send(200, content, headers)


HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"}


class Corrupter(_Handler):
    """Proxies to `upstream`, serving wrong bytes and wrong digests."""

    upstream: str = ""
    client: httpx.Client

    def handle_any(self) -> None:
        body = self._body()
        headers = {
            key: value
            for key, value in self.headers.items()
            if key.lower() not in HOP_BY_HOP and key.lower() != "host"
        }
        try:
            upstream = self.client.request(
                self.command, self.upstream + self.path, content=body, headers=headers
            )
        except httpx.HTTPError as error:
            self._send(502, repr(error).encode())
            return
        content = upstream.content
        out: dict[str, str] = {}
        for key, value in upstream.headers.items():
            if key.lower() in HOP_BY_HOP:
                continue
            if key.lower() == "location" and value.startswith(self.upstream):
                value = value[len(self.upstream) :]  # keep clients on the proxy
            if key.lower() == "docker-content-digest":
                value = _sha256(value.encode())  # a valid digest, of the wrong thing
            out[key] = value
        route = ROUTE.match(urlsplit(self.path).path)
        served = route is not None and (route["digest"] or route["reference"])
        if self.command == "GET" and upstream.status_code in (200, 206) and served:
            content = _flip(content)
        self._send(upstream.status_code, content, out)


def _flip(content: bytes) -> bytes:
    if not content:
        return b"\0"
    middle = len(content) // 2
    return content[:middle] + bytes([content[middle] ^ 0x01]) + content[middle + 1 :]


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Run `handler` on 127.0.0.1 and a free port in a thread; yield its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextmanager
def corrupting_proxy(upstream: str) -> Iterator[str]:
    with httpx.Client(timeout=30.0, follow_redirects=False) as client:
        handler = type("BoundCorrupter", (Corrupter,), {"upstream": upstream, "client": client})
        with serve(handler) as url:
            yield url
