"""`/metrics` on a real server: every counter moves by exactly what was sent.

A scripted mix of pushes, pulls, errors and uploads runs against `arca serve`; the
scrapes before and after are parsed with prometheus-client's own parser, and the
difference must be exactly the requests (by method, route template and status) and the
body bytes each side sent. With two workers, every scrape, whichever worker answers it,
sums both.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.server import ArcaServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
UPLOADS = "/v2/{name:path}/blobs/uploads/"
SESSION = "/v2/{name:path}/blobs/uploads/{session_id}"
BLOB = "/v2/{name:path}/blobs/{digest}"
MANIFEST = "/v2/{name:path}/manifests/{reference}"
TAGS = "/v2/{name:path}/tags/list"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def scrape(url: str) -> tuple[Samples, int]:
    """Every sample of a scrape, by (name, sorted labels); and the body's size."""
    response = httpx.get(f"{url}/metrics", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples, len(response.content)


def moved(
    before: Samples, after: Samples, name: str, keys: tuple[str, ...]
) -> Counter[tuple[str, ...]]:
    """How much each series of `name` moved, keyed by the values of label `keys`."""
    delta: Counter[tuple[str, ...]] = Counter()
    for (sample, labels), value in after.items():
        if sample != name:
            continue
        change = value - before.get((sample, labels), 0.0)
        if change:
            as_dict = dict(labels)
            delta[tuple(as_dict[k] for k in keys)] += int(change)
            assert change == int(change), (sample, labels, change)  # counts and bytes
    return delta


class Script:
    """Sends requests and tallies what a correct /metrics must show for them."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=60)
        self.requests: Counter[tuple[str, str, str]] = Counter()
        self.received: Counter[tuple[str, str]] = Counter()  # by the server
        self.sent: Counter[tuple[str, str]] = Counter()

    def __call__(
        self, method: str, route: str, path: str, status: int, body: bytes = b"", **kw: object
    ) -> httpx.Response:
        response = self.client.request(method, path, content=body or None, **kw)  # type: ignore[arg-type]
        assert response.status_code == status, (method, path, response.text)
        self.requests[(method, route, str(status))] += 1
        self.received[(method, route)] += len(body)
        self.sent[(method, route)] += len(response.content)
        return response


def run_mix(do: Script, name: str) -> None:
    """Pushes (monolithic and chunked), pulls, HEADs, errors, an unmatched path."""
    layer, config = os.urandom(300_000), b"{}"
    do("POST", UPLOADS, f"/v2/{name}/blobs/uploads/?digest={sha256(config)}", 201, config)
    do("POST", UPLOADS, f"/v2/{name}/blobs/uploads/?digest={sha256(layer)}", 201, layer)
    chunked = os.urandom(200_000)
    location = do("POST", UPLOADS, f"/v2/{name}/blobs/uploads/", 202).headers["Location"]
    for start, end in ((0, 120_000), (120_000, 200_000)):
        headers = {
            "Content-Range": f"{start}-{end - 1}",
            "Content-Type": "application/octet-stream",
        }
        location = do("PATCH", SESSION, location, 202, chunked[start:end], headers=headers).headers[
            "Location"
        ]
    sep = "&" if "?" in location else "?"
    do("PUT", SESSION, f"{location}{sep}digest={sha256(chunked)}", 201)
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
                {"mediaType": "application/octet-stream", "digest": sha256(d), "size": len(d)}
                for d in (layer, chunked)
            ],
        }
    ).encode()
    do(
        "PUT",
        MANIFEST,
        f"/v2/{name}/manifests/v1",
        201,
        manifest,
        headers={"Content-Type": OCI_MANIFEST},
    )
    for _ in range(3):
        do("GET", MANIFEST, f"/v2/{name}/manifests/v1", 200, headers={"Accept": OCI_MANIFEST})
    do("HEAD", MANIFEST, f"/v2/{name}/manifests/v1", 200, headers={"Accept": OCI_MANIFEST})
    do("GET", BLOB, f"/v2/{name}/blobs/{sha256(layer)}", 200)
    do("GET", BLOB, f"/v2/{name}/blobs/{sha256(chunked)}", 206, headers={"Range": "bytes=0-999"})
    do("HEAD", BLOB, f"/v2/{name}/blobs/{sha256(layer)}", 200)
    do("GET", TAGS, f"/v2/{name}/tags/list", 200)
    # Errors: unknown manifest and blob, a bad digest, a bad range, no such route.
    do("GET", MANIFEST, f"/v2/{name}/manifests/nope", 404)
    do("HEAD", BLOB, f"/v2/{name}/blobs/{sha256(b'absent')}", 404)
    do("GET", BLOB, f"/v2/{name}/blobs/sha256:xyz", 400)
    do("DELETE", "/v2/", "/v2/", 405)
    do("GET", "unmatched", "/no/such/endpoint", 404)
    do("GET", "/v2/", "/v2/", 200)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ArcaServer]:
    arca = ArcaServer(tmp_path / "data").start()
    yield arca
    arca.stop()


def test_every_counter_moves_by_exactly_what_was_sent(server: ArcaServer) -> None:
    before, first_scrape_size = scrape(server.url)
    do = Script(server.url)
    try:
        run_mix(do, "team/app")
    finally:
        do.client.close()
    after, _ = scrape(server.url)

    expected = Counter(do.requests)
    expected[("GET", "/metrics", "200")] += 1  # the first scrape, counted once it was answered
    assert moved(before, after, "arca_http_requests_total", ("method", "route", "status")) == (
        expected
    )
    received = moved(before, after, "arca_http_received_bytes_total", ("method", "route"))
    assert received == +do.received  # + drops the zero entries
    sent = moved(before, after, "arca_http_sent_bytes_total", ("method", "route"))
    assert sent == +(do.sent + Counter({("GET", "/metrics"): first_scrape_size}))
    durations = moved(
        before, after, "arca_http_request_duration_seconds_count", ("method", "route")
    )
    by_route: Counter[tuple[str, str]] = Counter()
    for (method, route, _), count in expected.items():
        by_route[(method, route)] += count
    assert durations == by_route
    # The push reached storage through the checked driver, timed per operation.
    storage = moved(
        before, after, "arca_storage_operation_duration_seconds_count", ("driver", "operation")
    )
    assert storage[("filesystem", "put")] > 0
    assert storage[("filesystem", "writer.write")] > 0
    assert moved(before, after, "arca_storage_errors_total", ("driver", "operation", "error")) == {}
    assert after[("arca_uploads_in_flight", ())] == 0
    assert after[("arca_http_requests_in_flight", ())] == 1  # the scrape itself
    assert after[("arca_build_info", (("version", "0.1.0"),))] == 1


def test_an_upload_receiving_data_is_in_flight(server: ArcaServer) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        location = client.post("/v2/slow/blobs/uploads/").headers["Location"]
    resume = threading.Event()
    done: list[int] = []

    def body() -> Iterator[bytes]:
        yield b"x" * 65536
        resume.wait(60)
        yield b"y" * 65536

    def upload() -> None:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            response = client.patch(
                location, content=body(), headers={"Content-Type": "application/octet-stream"}
            )
            done.append(response.status_code)

    thread = threading.Thread(target=upload)
    thread.start()
    try:
        wait_for(lambda: scrape(server.url)[0][("arca_uploads_in_flight", ())] == 1, "1 upload")
    finally:
        resume.set()
        thread.join()
    assert done == [202]
    assert scrape(server.url)[0][("arca_uploads_in_flight", ())] == 0


def test_with_two_workers_every_scrape_sums_both(tmp_path: Path) -> None:
    env = {"ARCA_SERVER_WORKERS": "2", "ARCA_SERVER_LOG_FORMAT": "json"}
    server = ArcaServer(tmp_path / "data", env=env).start()
    try:
        wait_for(lambda: len(_worker_pids(server.log)) >= 2, "two workers", timeout=60)
        before, _ = scrape(server.url)
        pids: set[int] = set()
        sent = 0
        # Fresh connections until both workers have answered some (the kernel picks).
        while len(pids) < 2 or sent < 20:
            assert sent < 2000, "one worker answered everything"
            response = httpx.get(f"{server.url}/v2/", headers={"Connection": "close"}, timeout=30)
            assert response.status_code == 200
            pids.add(_pid_of(server.log, response.headers["x-request-id"]))
            sent += 1
        scrapes = [scrape(server.url)[0] for _ in range(6)]
    finally:
        server.stop()
    for after in scrapes:  # whichever worker answered, the total is both workers'
        counts = moved(before, after, "arca_http_requests_total", ("method", "route", "status"))
        assert counts[("GET", "/v2/", "200")] == sent


def _worker_pids(log: Path) -> set[int]:
    pids = set()
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if "Application startup complete" in record["message"]:
                pids.add(record["process"])
    return pids


def _pid_of(log: Path, request_id: str) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if request_id in line and line.startswith("{"):
                record = json.loads(line)
                if record.get("request_id") == request_id and record["logger"] == "arca.access":
                    return int(record["process"])
        time.sleep(0.05)
    raise AssertionError(f"no access line for {request_id}")
