"""Two stateless arca processes on one emulated GCS bucket or Azure container behave as
one registry, and a 1 GiB push streams through either in bounded memory.

The S3 twin of these tests is test_replicas.py; the emulators are started once per
session by tests/conftest.py (gcp-storage-emulator, Azurite)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import azurite_connection_string, create_container, create_gcs_bucket
from tests.e2e.content import OCI_MANIFEST, push_image, sha256
from tests.e2e.server import ArcaServer, PeakRss, azure_environment, gcs_environment

MiB = 1 << 20
CLOUDS = ["gcs", "azure"]


def environment(request: pytest.FixtureRequest, cloud: str, **options: str) -> dict[str, str]:
    """Settings for arca on a fresh bucket (gcs) or container (azure)."""
    if cloud == "gcs":
        endpoint = request.getfixturevalue("gcs_endpoint")
        return gcs_environment(endpoint, create_gcs_bucket(endpoint), **options)
    connection_string = azurite_connection_string(request.getfixturevalue("azurite_endpoint"))
    return azure_environment(connection_string, create_container(connection_string), **options)


@pytest.fixture(params=CLOUDS)
def replicas(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[ArcaServer, ArcaServer]]:
    env = environment(request, request.param)
    first = ArcaServer(tmp_path / "one", env).start()
    second = ArcaServer(tmp_path / "two", env).start()
    yield first, second
    first.stop()
    second.stop()


def test_chunked_upload_started_on_one_replica_finishes_on_the_other(replicas) -> None:
    first, second = replicas
    # Odd sizes: GCS keeps the part past a 256 KiB multiple in the writer's state, Azure
    # stages every chunk as a block; both must carry the bytes across replicas.
    data = os.urandom(19 * MiB + 123)
    cut = [0, 3 * MiB + 5, 18 * MiB + 7, len(data)]
    location = httpx.post(f"{first.url}/v2/shared/blobs/uploads/").headers["Location"]
    servers = [first, second, first]
    for server, start, end in zip(servers, cut, cut[1:], strict=False):
        response = httpx.patch(
            f"{server.url}{location}",
            content=data[start:end],
            headers={"Content-Range": f"{start}-{end - 1}"},
            timeout=120,
        )
        assert response.status_code == 202, response.text
        assert response.headers["Range"] == f"0-{end - 1}"
    response = httpx.put(f"{second.url}{location}?digest={sha256(data)}", timeout=120)
    assert response.status_code == 201, response.text
    for server in replicas:
        pulled = httpx.get(f"{server.url}/v2/shared/blobs/{sha256(data)}", timeout=120)
        assert pulled.status_code == 200
        assert pulled.content == data


def _push_manifest(url: str, name: str, tag: str, layer: bytes) -> str:
    with httpx.Client(base_url=url, timeout=60) as client:
        manifest = push_image(client, name, layer)
        headers = {"Content-Type": OCI_MANIFEST}
        response = client.put(f"/v2/{name}/manifests/{tag}", content=manifest, headers=headers)
        assert response.status_code == 201, response.text
        return sha256(manifest)


def test_tag_pushed_through_one_is_visible_through_the_other_at_once(replicas) -> None:
    first, second = replicas
    for round_ in range(3):
        digest = _push_manifest(first.url, "app", "latest", os.urandom(100 + round_))
        seen = httpx.head(
            f"{second.url}/v2/app/manifests/latest", headers={"Accept": OCI_MANIFEST}, timeout=30
        )
        assert seen.headers["Docker-Content-Digest"] == digest
    _push_manifest(second.url, "app", "v2", os.urandom(50))
    tags = httpx.get(f"{first.url}/v2/app/tags/list", timeout=30).json()["tags"]
    assert tags == ["latest", "v2"]


@pytest.mark.parametrize("cloud", CLOUDS)
def test_blob_get_redirects_to_a_signed_url(
    request: pytest.FixtureRequest, tmp_path: Path, cloud: str
) -> None:
    options = {"redirect": "true"}
    if cloud == "gcs":
        options["credentials_file"] = request.getfixturevalue("gcs_key_file")
    server = ArcaServer(tmp_path / "redirect", environment(request, cloud, **options)).start()
    try:
        data = os.urandom(1000)
        url = f"{server.url}/v2/direct/blobs/uploads/?digest={sha256(data)}"
        assert httpx.post(url, content=data, timeout=30).status_code == 201
        response = httpx.get(f"{server.url}/v2/direct/blobs/{sha256(data)}", timeout=30)
        assert response.status_code == 307
        signed = response.headers["Location"]
        assert ("X-Goog-Signature=" in signed) if cloud == "gcs" else ("sig=" in signed)
        assert httpx.get(signed, timeout=30).content == data
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("cloud", CLOUDS)
def test_1gib_monolithic_push_in_bounded_memory(
    request: pytest.FixtureRequest, tmp_path: Path, cloud: str
) -> None:
    server = ArcaServer(tmp_path / "big", environment(request, cloud)).start()
    block = os.urandom(MiB)
    count = 1024
    hasher = hashlib.sha256()
    for index in range(count):
        hasher.update(index.to_bytes(8, "big") + block[8:])
    digest = f"sha256:{hasher.hexdigest()}"

    def body() -> Iterator[bytes]:
        for index in range(count):
            yield index.to_bytes(8, "big") + block[8:]

    assert server.process is not None
    try:
        with (
            PeakRss(server.process.pid) as rss,
            httpx.Client(base_url=server.url, timeout=600) as client,
        ):
            location = client.post("/v2/big/blobs/uploads/").headers["Location"]
            response = client.put(
                f"{location}?digest={digest}",
                content=body(),
                headers={"Content-Length": str(count * MiB)},
            )
            assert response.status_code == 201, response.text
        print(f"1 GiB monolithic push, {cloud}: server peak RSS {rss.peak / MiB:.0f} MiB")
        assert rss.peak < 200 * MiB, f"server peak RSS {rss.peak / MiB:.0f} MiB"
        head = httpx.head(f"{server.url}/v2/big/blobs/{digest}", timeout=30)
        assert head.headers["Content-Length"] == str(count * MiB)
    finally:
        server.stop()


@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_replica_killed_mid_chunk_loses_nothing_acknowledged(
    request: pytest.FixtureRequest, tmp_path: Path, cloud: str
) -> None:
    """SIGKILL one replica while a chunk streams in; the other replica takes over.

    The acknowledged first chunk is never lost, no blob appears early, and the upload
    resumes where the registry's state says. On Azure the blocks staged by the dead
    process are left out of the commit. On GCS the dead process had already sent a
    16 MiB chunk on that it never recorded, and a resumable session cannot be rewound:
    the bytes the client sends again there are checked (crc32c at finalisation), not
    sent twice."""
    import signal
    import threading

    env = environment(request, cloud)
    victim = ArcaServer(tmp_path / "victim", env).start()
    survivor = ArcaServer(tmp_path / "survivor", env).start()
    try:
        first = os.urandom(3 * MiB + 11)
        rest = os.urandom(40 * MiB)
        data = first + rest
        location = httpx.post(f"{victim.url}/v2/crash/blobs/uploads/").headers["Location"]
        patch = httpx.patch(
            f"{victim.url}{location}",
            content=first,
            headers={"Content-Range": f"0-{len(first) - 1}"},
            timeout=60,
        )
        assert patch.status_code == 202, patch.text
        sent_enough, killed = threading.Event(), threading.Event()

        def body() -> Iterator[bytes]:
            for start in range(0, len(rest), MiB):
                if start >= 24 * MiB:  # past a 16 MiB GCS chunk and several Azure blocks
                    sent_enough.set()
                    killed.wait(60)  # hold the request open until the server is killed
                yield rest[start : start + MiB]

        def kill_when_ready() -> None:
            sent_enough.wait(120)
            threading.Event().wait(1)  # let the server pass on what it has buffered
            assert victim.process is not None
            victim.process.send_signal(signal.SIGKILL)
            victim.process.wait(30)
            killed.set()

        killer = threading.Thread(target=kill_when_ready)
        killer.start()
        with pytest.raises(httpx.TransportError):
            httpx.patch(
                f"{victim.url}{location}",
                content=body(),
                headers={"Content-Range": f"{len(first)}-{len(data) - 1}"},
                timeout=120,
            )
        killer.join()
        digest = sha256(data)
        assert httpx.head(f"{survivor.url}/v2/crash/blobs/{digest}").status_code == 404
        status = httpx.get(f"{survivor.url}{location}", timeout=60)
        assert status.status_code == 204, status.text
        offset = int(status.headers["Range"].split("-")[1]) + 1
        assert offset == len(first)  # the acknowledged chunk is kept, nothing else counted
        resume = httpx.patch(
            f"{survivor.url}{location}",
            content=data[offset:],
            headers={"Content-Range": f"{offset}-{len(data) - 1}"},
            timeout=120,
        )
        assert resume.status_code == 202, resume.text
        done = httpx.put(f"{survivor.url}{location}?digest={digest}", timeout=120)
        assert done.status_code == 201, done.text
        assert httpx.get(f"{survivor.url}/v2/crash/blobs/{digest}", timeout=120).content == data
    finally:
        victim.stop()
        survivor.stop()
