"""Two stateless arca processes sharing one S3 bucket behave as one registry."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import create_bucket
from tests.e2e.content import OCI_MANIFEST, push_image, sha256
from tests.e2e.oci_layout import write_image
from tests.e2e.oras_client import OrasClient
from tests.e2e.server import ArcaServer, PeakRss, s3_environment

MiB = 1 << 20


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    return create_bucket(s3_endpoint)


@pytest.fixture
def replicas(
    tmp_path: Path, s3_endpoint: str, bucket: str
) -> Iterator[tuple[ArcaServer, ArcaServer]]:
    env = s3_environment(s3_endpoint, bucket)
    first = ArcaServer(tmp_path / "one", env).start()
    second = ArcaServer(tmp_path / "two", env).start()
    yield first, second
    first.stop()
    second.stop()


def test_chunked_upload_started_on_one_replica_finishes_on_the_other(replicas) -> None:
    first, second = replicas
    data = os.urandom(7 * MiB + 123)  # crosses the 5 MiB part minimum on S3
    cut = [0, 3 * MiB, 6 * MiB, len(data)]
    location = httpx.post(f"{first.url}/v2/shared/blobs/uploads/").headers["Location"]
    servers = [first, second, first]
    for server, start, end in zip(servers, cut, cut[1:], strict=False):
        response = httpx.patch(
            f"{server.url}{location}",
            content=data[start:end],
            headers={"Content-Range": f"{start}-{end - 1}"},
            timeout=60,
        )
        assert response.status_code == 202, response.text
        assert response.headers["Range"] == f"0-{end - 1}"
    response = httpx.put(f"{second.url}{location}?digest={sha256(data)}", timeout=60)
    assert response.status_code == 201, response.text
    for server in replicas:
        pulled = httpx.get(f"{server.url}/v2/shared/blobs/{sha256(data)}", timeout=60)
        assert pulled.content == data


def _push_manifest(url: str, name: str, tag: str, layer: bytes) -> str:
    with httpx.Client(base_url=url, timeout=30) as client:
        manifest = push_image(client, name, layer)
        headers = {"Content-Type": OCI_MANIFEST}
        response = client.put(f"/v2/{name}/manifests/{tag}", content=manifest, headers=headers)
        assert response.status_code == 201, response.text
        return sha256(manifest)


def test_tag_pushed_through_one_is_visible_through_the_other_at_once(replicas) -> None:
    first, second = replicas
    for round_ in range(3):
        digest = _push_manifest(first.url, "app", "latest", os.urandom(100 + round_))
        seen = httpx.head(f"{second.url}/v2/app/manifests/latest", headers={"Accept": OCI_MANIFEST})
        assert seen.headers["Docker-Content-Digest"] == digest
    assert httpx.get(f"{second.url}/v2/app/tags/list").json()["tags"] == ["latest"]


def test_same_blob_pushed_through_both_at_once_ends_consistent(replicas) -> None:
    data = os.urandom(6 * MiB)
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def push(server: ArcaServer) -> None:
        location = httpx.post(f"{server.url}/v2/race/blobs/uploads/").headers["Location"]
        barrier.wait()
        response = httpx.put(
            f"{server.url}{location}?digest={sha256(data)}", content=data, timeout=60
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=push, args=(server,)) for server in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201, 201]
    for server in replicas:
        assert sha256(
            httpx.get(f"{server.url}/v2/race/blobs/{sha256(data)}", timeout=60).content
        ) == sha256(data)


def skopeo(*args: str, tmp_path: Path) -> str:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg"), "_CONTAINERS_ROOTLESS_UID": "0"}
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_skopeo_copies_in_through_one_and_out_through_the_other(replicas, tmp_path: Path) -> None:
    first, second = replicas
    source = tmp_path / "source"
    digest = write_image(source, "v1")
    into = f"docker://{first.url.removeprefix('http://')}/mirror/app:v1"
    out_of = f"docker://{second.url.removeprefix('http://')}/mirror/app:v1"
    skopeo(
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        f"oci:{source}:v1",
        into,
        tmp_path=tmp_path,
    )
    raw = skopeo("inspect", "--raw", "--tls-verify=false", out_of, tmp_path=tmp_path)
    head = httpx.head(f"{second.url}/v2/mirror/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert (sha256(raw.encode()), head.headers.get("Docker-Content-Digest")) == (digest, digest), (
        raw
    )
    target = tmp_path / "target"
    skopeo(
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        out_of,
        f"oci:{target}:v1",
        tmp_path=tmp_path,
    )
    index = json.loads((target / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest


@pytest.fixture
def redirecting(tmp_path: Path, s3_endpoint: str, bucket: str) -> Iterator[ArcaServer]:
    server = ArcaServer(
        tmp_path / "redirect", s3_environment(s3_endpoint, bucket, redirect="true")
    ).start()
    yield server
    server.stop()


def test_blob_get_redirects_to_a_presigned_url(redirecting: ArcaServer, s3_endpoint: str) -> None:
    data = os.urandom(1000)
    httpx.post(f"{redirecting.url}/v2/direct/blobs/uploads/?digest={sha256(data)}", content=data)
    response = httpx.get(f"{redirecting.url}/v2/direct/blobs/{sha256(data)}")
    assert response.status_code == 307
    assert response.headers["Location"].startswith(s3_endpoint)
    assert (
        httpx.get(
            f"{redirecting.url}/v2/direct/blobs/{sha256(data)}", follow_redirects=True
        ).content
        == data
    )


def test_skopeo_and_oras_pull_through_the_redirect(
    redirecting: ArcaServer, tmp_path: Path, monkeypatch
) -> None:
    source = tmp_path / "source"
    digest = write_image(source, "v1")
    host = redirecting.url.removeprefix("http://")
    skopeo(
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        f"oci:{source}:v1",
        f"docker://{host}/direct/app:v1",
        tmp_path=tmp_path,
    )
    target = tmp_path / "target"
    skopeo(
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        f"docker://{host}/direct/app:v1",
        f"oci:{target}:v1",
        tmp_path=tmp_path,
    )
    assert json.loads((target / "index.json").read_text())["manifests"][0]["digest"] == digest
    (tmp_path / "notes.txt").write_bytes(b"pulled through a presigned URL\n" * 100)
    monkeypatch.chdir(tmp_path)
    client = OrasClient(host)
    client.push_files(f"{host}/direct/notes:v1", ["notes.txt:text/plain"])
    out = tmp_path / "pulled"
    client.pull(target=f"{host}/direct/notes:v1", outdir=str(out))
    assert (out / "notes.txt").read_bytes() == (tmp_path / "notes.txt").read_bytes()


@pytest.mark.slow
def test_1gib_monolithic_push_to_s3_in_bounded_memory(
    tmp_path: Path, s3_endpoint: str, bucket: str
) -> None:
    # moto assembles a 1 GiB multipart upload in Python: on a loaded machine that takes
    # longer than the driver's 30 s read timeout, and the retries then hit moto's 500s.
    env = s3_environment(s3_endpoint, bucket, read_timeout="600")
    first = ArcaServer(tmp_path / "big", env).start()
    try:
        _push_1gib(first)
    finally:
        first.stop()


def _push_1gib(first: ArcaServer) -> None:
    block = os.urandom(MiB)
    count = 1024
    hasher = hashlib.sha256()
    for index in range(count):
        hasher.update(index.to_bytes(8, "big") + block[8:])
    digest = f"sha256:{hasher.hexdigest()}"

    def body() -> Iterator[bytes]:
        for index in range(count):
            yield index.to_bytes(8, "big") + block[8:]

    assert first.process is not None
    with PeakRss(first.process.pid) as rss, httpx.Client(base_url=first.url, timeout=900) as client:
        location = client.post("/v2/big/blobs/uploads/").headers["Location"]
        response = client.put(
            f"{location}?digest={digest}",
            content=body(),
            headers={"Content-Length": str(count * MiB)},
        )
        assert response.status_code == 201, response.text
    print(f"1 GiB monolithic push, s3: server peak RSS {rss.peak / MiB:.0f} MiB")
    assert rss.peak < 200 * MiB, f"server peak RSS {rss.peak / MiB:.0f} MiB"
    head = httpx.head(f"{first.url}/v2/big/blobs/{digest}", timeout=60)
    assert head.headers["Content-Length"] == str(count * MiB)


def test_s3_advertises_its_part_minimum_as_chunk_min_length(replicas) -> None:
    first, _ = replicas
    response = httpx.post(f"{first.url}/v2/chunks/blobs/uploads/")
    assert response.headers["OCI-Chunk-Min-Length"] == str(5 * MiB)
    # A smaller chunk is still accepted: the driver buffers, it never rejects.
    location = response.headers["Location"]
    patch = httpx.patch(
        f"{first.url}{location}", content=b"small", headers={"Content-Range": "0-4"}
    )
    assert patch.status_code == 202
    assert httpx.put(f"{first.url}{location}?digest={sha256(b'small')}").status_code == 201


def test_blake3_is_recorded_when_the_whole_body_reaches_another_replica(replicas) -> None:
    """POST on one replica, PUT with every byte on the other: blake3 known at close."""
    import blake3

    first, second = replicas
    data = os.urandom(3 * MiB)
    location = httpx.post(f"{first.url}/v2/b3/blobs/uploads/").headers["Location"]
    put = httpx.put(f"{second.url}{location}?digest={sha256(data)}", content=data, timeout=60)
    assert put.status_code == 201
    head = httpx.head(f"{first.url}/v2/b3/blobs/{sha256(data)}")
    assert head.headers["Arca-Content-Blake3"] == "blake3:" + blake3.blake3(data).hexdigest()


@pytest.mark.parametrize("problem", ["endpoint down", "no such bucket"])
def test_unusable_bucket_fails_readiness_and_answers_503_fast(
    tmp_path: Path, s3_endpoint: str, problem: str
) -> None:
    import socket
    import time

    if problem == "endpoint down":
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            endpoint, bucket = f"http://127.0.0.1:{sock.getsockname()[1]}", "arca"
    else:
        endpoint, bucket = s3_endpoint, "arca-no-such-bucket"
    env = s3_environment(endpoint, bucket, connect_timeout="1", read_timeout="2", max_attempts="2")
    server = ArcaServer(tmp_path / "down", env).start()  # /v2/ needs no storage: it starts
    try:
        started = time.monotonic()
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        ready = httpx.get(f"{server.url}/readyz", timeout=30)
        assert ready.status_code == 503
        assert ready.json()["status"] == "unavailable"
        response = httpx.get(f"{server.url}/v2/app/tags/list", timeout=30)
        assert response.status_code == 503
        assert response.json()["errors"][0]["code"] == "UNAVAILABLE"
        assert time.monotonic() - started < 20
    finally:
        server.stop()
