"""Concurrent clients on one server end consistent."""

from __future__ import annotations

import os
import threading

import httpx

from tests.e2e.content import OCI_MANIFEST, push_image, sha256
from tests.e2e.server import ArcaServer


def chunked_upload(
    url: str, name: str, data: bytes, barrier: threading.Barrier, out: list[int]
) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        location = client.post(f"/v2/{name}/blobs/uploads/").headers["Location"]
        barrier.wait()
        half = len(data) // 2
        for start, end in ((0, half), (half, len(data))):
            response = client.patch(
                location, content=data[start:end], headers={"Content-Range": f"{start}-{end - 1}"}
            )
            location = response.headers["Location"]
        out.append(client.put(f"{location}?digest={sha256(data)}").status_code)


def test_two_uploads_of_the_same_blob_at_once_end_consistent(arca: ArcaServer) -> None:
    data = os.urandom(8 << 20)
    barrier = threading.Barrier(2)
    results: list[int] = []
    threads = [
        threading.Thread(target=chunked_upload, args=(arca.url, name, data, barrier, results))
        for name in ("one", "two")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [201, 201]
    for name in ("one", "two"):
        response = httpx.get(f"{arca.url}/v2/{name}/blobs/{sha256(data)}", timeout=30)
        assert response.status_code == 200
        assert sha256(response.content) == sha256(data)
    leftovers = (
        list((arca.storage / "uploads").iterdir()) if (arca.storage / "uploads").exists() else []
    )
    assert leftovers == []


def test_pull_while_push_of_the_same_tag_sees_whole_manifests(arca: ArcaServer) -> None:
    """A reader racing a writer on one tag always gets a complete, verifiable manifest."""
    with httpx.Client(base_url=arca.url, timeout=30) as client:
        versions = [push_image(client, "race", os.urandom(1000 + i)) for i in range(20)]
        headers = {"Content-Type": OCI_MANIFEST}
        client.put("/v2/race/manifests/latest", content=versions[0], headers=headers)
        known = {sha256(v): v for v in versions}
        done = threading.Event()
        seen: list[str] = []
        errors: list[str] = []

        def reader() -> None:
            with httpx.Client(base_url=arca.url, timeout=30) as pulls:
                while not done.is_set():
                    response = pulls.get(
                        "/v2/race/manifests/latest", headers={"Accept": OCI_MANIFEST}
                    )
                    digest = response.headers.get("Docker-Content-Digest", "")
                    if response.status_code != 200 or known.get(digest) != response.content:
                        errors.append(f"{response.status_code} {digest}")
                    seen.append(digest)

        thread = threading.Thread(target=reader)
        thread.start()
        for version in versions[1:]:
            assert (
                client.put(
                    "/v2/race/manifests/latest", content=version, headers=headers
                ).status_code
                == 201
            )
        done.set()
        thread.join()
        assert errors == []
        assert len(set(seen)) > 1
        final = client.get("/v2/race/manifests/latest", headers={"Accept": OCI_MANIFEST})
        assert final.content == versions[-1]
