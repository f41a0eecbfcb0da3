"""The event log through real servers: two replicas on one bucket, the SSE stream, and
the events real clients (skopeo, oras-py) cause."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import create_bucket
from tests.e2e.content import OCI_MANIFEST, sha256
from tests.e2e.oci_layout import write_image
from tests.e2e.oras_client import OrasClient
from tests.e2e.server import ArcaServer, s3_environment
from tests.e2e.test_replicas import skopeo


def _pages(url: str, n: int) -> list[list[dict]]:
    pages: list[list[dict]] = []
    after = ""
    while True:
        page = httpx.get(f"{url}/api/v1/events", params={"n": n, "after": after}, timeout=30)
        assert page.status_code == 200, page.text
        body = page.json()
        pages.append(body["events"])
        after = body["cursor"] or after
        if not body["more"]:
            return pages


def _push_blobs(url: str, name: str, count: int) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        for n in range(count):
            blob = f"{name} blob {n}".encode()
            response = client.post(f"/v2/{name}/blobs/uploads/?digest={sha256(blob)}", content=blob)
            assert response.status_code == 201, response.text


@pytest.fixture
def replicas(tmp_path: Path, s3_endpoint: str) -> Iterator[tuple[ArcaServer, ArcaServer]]:
    env = s3_environment(s3_endpoint, create_bucket(s3_endpoint))
    first = ArcaServer(tmp_path / "one", env).start()
    second = ArcaServer(tmp_path / "two", env).start()
    yield first, second
    first.stop()
    second.stop()


def test_two_replicas_appending_at_once_share_one_order(replicas) -> None:
    first, second = replicas
    writers = [
        threading.Thread(target=_push_blobs, args=(server.url, f"from/{i}", 25))
        for i, server in enumerate(replicas)
        for _ in range(2)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    pages_one, pages_two = _pages(first.url, 7), _pages(second.url, 7)
    assert pages_one == pages_two, "both replicas serve the same pages"
    events = [event for page in pages_one for event in page]
    ids = [event["id"] for event in events]
    assert len(ids) == 4 * 25 * 2  # blob.uploaded + upload.closed per blob
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    commits = sorted({int(i.split("-")[0]) for i in ids})
    assert commits == list(range(1, len(commits) + 1)), "no gaps"
    uploaded = {e["data"]["digest"] for e in events if e["type"] == "dev.arca.blob.uploaded"}
    assert len(uploaded) == 50  # each blob once (the two writers per replica push the same)
    for server in replicas:
        assert len(_pages(server.url, 1000)[0]) == 200


def _read_stream(url: str, count: int, last_event_id: str | None = None) -> list[dict]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    found: list[dict] = []
    with httpx.stream("GET", f"{url}/api/v1/events/stream", headers=headers, timeout=30) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        for line in reply.iter_lines():
            if line.startswith(":"):
                continue
            if line == "":
                if fields:
                    event = json.loads(fields["data"])
                    assert event["id"] == fields["id"]
                    assert event["type"] == fields["event"]
                    found.append(event)
                    fields = {}
                    if len(found) == count:
                        return found
                continue
            key, _, value = line.partition(": ")
            fields[key] = value
    return found


def test_the_stream_resumes_from_last_event_id_without_gaps(arca: ArcaServer) -> None:
    _push_blobs(arca.url, "stream/app", 3)
    first = _read_stream(arca.url, 4)
    _push_blobs(arca.url, "stream/app", 2)  # while nobody is connected
    received: list[dict] = []
    reader = threading.Thread(
        target=lambda: received.extend(_read_stream(arca.url, 8, first[-1]["id"]))
    )
    reader.start()
    _push_blobs(arca.url, "stream/live", 1)  # while connected: arrives live
    reader.join(60)
    everything = _pages(arca.url, 1000)[0]
    assert [e["id"] for e in first + received] == [e["id"] for e in everything]
    assert received[-1]["data"]["repository"] == "stream/live"


def test_a_skopeo_copy_records_its_blobs_and_its_manifest(arca: ArcaServer, tmp_path) -> None:
    source = tmp_path / "source"
    digest = write_image(source, "v1")
    target = f"docker://{arca.url.removeprefix('http://')}/mirror/app:v1"
    skopeo(
        "copy", "--preserve-digests", "--dest-tls-verify=false", f"oci:{source}:v1", target,
        tmp_path=tmp_path,
    )  # fmt: skip
    events = _pages(arca.url, 1000)[0]
    types = [event["type"].removeprefix("dev.arca.") for event in events]
    assert types[-2:] == ["manifest.pushed", "tag.moved"]
    assert types.count("blob.uploaded") == 4  # three layers and the config
    assert {e["data"]["repository"] for e in events} == {"mirror/app"}
    pushed = events[-2]["data"]
    assert pushed["digest"] == digest
    assert pushed["tags"] == ["v1"]
    assert pushed["mediaType"] == OCI_MANIFEST


def test_an_oras_push_records_its_files_manifest_and_labels(
    arca: ArcaServer, tmp_path: Path, monkeypatch
) -> None:
    (tmp_path / "report.html").write_bytes(b"<html>ok</html>")
    monkeypatch.chdir(tmp_path)
    host = OrasClient.host(arca.url)
    response = OrasClient(host).push_files(
        f"{host}/reports/nightly:v7",
        ["report.html:text/html"],
        manifest_annotations={"dev.arca.label.status": "pass"},
    )
    assert response.status_code == 201
    events = _pages(arca.url, 1000)[0]
    types = [event["type"].removeprefix("dev.arca.") for event in events]
    assert types.count("blob.uploaded") == 2  # the file and the config
    assert types[-2:] == ["manifest.pushed", "tag.moved"]
    pushed = events[-2]
    assert pushed["data"]["labels"] == {"status": "pass"}
    assert pushed["subject"].startswith("reports/nightly@sha256:")
    assert events[-1]["data"]["tag"] == "v7"
