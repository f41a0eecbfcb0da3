"""kill -9 at the worst moments (tests/e2e/crash.py), then a restart on the same storage:
every acknowledged write reads back, every upload session resumes from the Range it
reports, and nothing half-written is visible."""

from __future__ import annotations

import functools
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.content import OCI_MANIFEST, push_image, sha256
from tests.e2e.crash import CrashingServer, CrashPoint
from tests.e2e.server import ArcaServer

MiB = 1 << 20
# The box may be loaded (the whole suite, other work): never fail on a slow answer.
get = functools.partial(httpx.get, timeout=60)
put = functools.partial(httpx.put, timeout=60)
post = functools.partial(httpx.post, timeout=60)
patch = functools.partial(httpx.patch, timeout=60)
head = functools.partial(httpx.head, timeout=60)
delete = functools.partial(httpx.delete, timeout=60)
STATE = r"^uploads/[0-9a-f]+/state$"


def crashing(tmp_path: Path, point: CrashPoint) -> CrashingServer:
    server = CrashingServer(tmp_path / "data", point)
    server.start()
    return server


def dies(method: str, url: str, **kwargs: Any) -> None:
    """Send one request that the server dies during."""
    with pytest.raises(httpx.TransportError):
        httpx.request(method, url, timeout=60, **kwargs)


def resume(url: str, location: str, data: bytes) -> str:
    """Resume an upload from the Range the registry reports, and close it."""
    status = get(f"{url}{location}")
    assert status.status_code == 204, status.text
    reported = status.headers["Range"]
    offset = 0 if reported == "0-0" else int(reported.split("-")[1]) + 1
    assert offset <= len(data)
    if offset < len(data):
        response = patch(
            f"{url}{location}",
            content=data[offset:],
            headers={"Content-Range": f"{offset}-{len(data) - 1}"},
            timeout=60,
        )
        assert response.status_code == 202, response.text
    response = put(f"{url}{location}?digest={sha256(data)}", timeout=60)
    assert response.status_code == 201, response.text
    return response.headers["Location"]


def listed_tags_resolve(url: str, name: str) -> list[str]:
    response = get(f"{url}/v2/{name}/tags/list")
    assert response.status_code == 200, response.text
    tags: list[str] = response.json()["tags"] or []
    for tag in tags:
        got = get(f"{url}/v2/{name}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
        assert got.status_code == 200, f"{tag} is listed but answers {got.status_code}"
    return tags


@pytest.fixture
def server_log() -> Iterator[list[ArcaServer]]:
    servers: list[ArcaServer] = []
    yield servers
    for server in servers:
        server.stop()


def test_kill_between_chunk_data_and_state_resumes_from_the_acknowledged_range(
    tmp_path: Path, server_log: list[ArcaServer]
) -> None:
    server = crashing(tmp_path, CrashPoint("put", STATE, occurrence=3))  # POST, PATCH, *PATCH
    server_log.append(server)
    data = os.urandom(3 * MiB + 17)
    location = post(f"{server.url}/v2/crash/blobs/uploads/").headers["Location"]
    first = patch(f"{server.url}{location}", content=data[:MiB], timeout=60)
    assert first.status_code == 202
    dies(method="PATCH", url=f"{server.url}{location}", content=data[MiB : 2 * MiB])
    server.wait_killed()
    server.restart()
    # The second chunk's bytes are in the data file, but no client was told: Range says 1 MiB.
    assert get(f"{server.url}{location}").headers["Range"] == f"0-{MiB - 1}"
    blob = resume(server.url, location, data)
    assert get(f"{server.url}{blob}", timeout=60).content == data


def test_kill_in_the_middle_of_a_big_chunk_resumes_from_the_acknowledged_range(
    tmp_path: Path, server_log: list[ArcaServer]
) -> None:
    """By timing: SIGKILL from outside while a 48 MiB PATCH is streaming."""
    server = ArcaServer(tmp_path / "data").start()
    server_log.append(server)
    data = os.urandom(56 * MiB)
    location = post(f"{server.url}/v2/crash/blobs/uploads/").headers["Location"]
    assert patch(f"{server.url}{location}", content=data[: 8 * MiB]).status_code == 202
    sent = threading.Event()
    assert server.process is not None
    process = server.process

    def body() -> Iterator[bytes]:
        for start in range(8 * MiB, len(data), MiB):
            if start >= 32 * MiB:
                sent.set()
                time.sleep(0.2)
            yield data[start : start + MiB]

    def killer() -> None:
        sent.wait(60)
        os.kill(process.pid, signal.SIGKILL)

    thread = threading.Thread(target=killer)
    thread.start()
    with pytest.raises(httpx.TransportError):
        patch(f"{server.url}{location}", content=body(), timeout=60)
    thread.join()
    process.wait(30)
    server.process = None
    server.start()
    assert get(f"{server.url}{location}").headers["Range"] == f"0-{8 * MiB - 1}"
    blob = resume(server.url, location, data)
    assert sha256(get(f"{server.url}{blob}", timeout=60).content) == sha256(data)


@pytest.mark.parametrize("final_chunk", [False, True], ids=["no-body", "final-chunk"])
def test_kill_between_publishing_a_blob_and_linking_it_completes_on_retry(
    tmp_path: Path, server_log: list[ArcaServer], final_chunk: bool
) -> None:
    server = crashing(tmp_path, CrashPoint("put", r"/_layers/sha256/[0-9a-f]+/link$"))
    server_log.append(server)
    first, last = os.urandom(2 * MiB), os.urandom(1000) if final_chunk else b""
    digest = sha256(first + last)
    location = post(f"{server.url}/v2/crash/blobs/uploads/").headers["Location"]
    assert patch(f"{server.url}{location}", content=first).status_code == 202
    dies(method="PUT", url=f"{server.url}{location}?digest={digest}", content=last)
    server.wait_killed()
    server.restart()
    assert head(f"{server.url}/v2/crash/blobs/{digest}").status_code == 404
    assert get(f"{server.url}{location}").headers["Range"] == f"0-{len(first) - 1}"
    response = put(f"{server.url}{location}?digest={digest}", content=last)
    assert response.status_code == 201, response.text
    assert get(f"{server.url}/v2/crash/blobs/{digest}").content == first + last


@pytest.mark.parametrize(
    "point",
    [
        CrashPoint("put", r"^blobs/sha256/[0-9a-f]{2}/[0-9a-f]+/meta$"),
        CrashPoint("put", r"/_layers/sha256/[0-9a-f]+/link$", when="after"),
    ],
    ids=["as-meta-starts", "link-written"],
)
def test_kill_while_a_blob_push_writes_meta_and_link_at_once_completes_on_retry(
    tmp_path: Path, server_log: list[ArcaServer], point: CrashPoint
) -> None:
    """The blob's metadata and its link are written at the same time after the data
    is in place: killed with either done and the other not (or half way), the blob is
    served whole or not at all, and the client's retried PUT (the same request again,
    body and all) closes the session."""
    server = crashing(tmp_path, point)
    server_log.append(server)
    data = os.urandom(3 * MiB + 5)
    digest = sha256(data)
    location = post(f"{server.url}/v2/crash/blobs/uploads/").headers["Location"]
    dies(method="PUT", url=f"{server.url}{location}?digest={digest}", content=data)
    server.wait_killed()
    server.restart()
    blob = f"{server.url}/v2/crash/blobs/{digest}"
    seen = head(blob)
    assert seen.status_code in (200, 404)
    if seen.status_code == 200:
        assert seen.headers["Content-Length"] == str(len(data))
        assert get(blob).content == data
    response = put(f"{server.url}{location}?digest={digest}", content=data)
    assert response.status_code == 201, response.text
    assert get(blob).content == data
    assert get(f"{server.url}{location}").status_code == 404  # the session is over


def test_kill_between_manifest_write_and_tag_move_keeps_the_old_tag_whole(
    tmp_path: Path, server_log: list[ArcaServer]
) -> None:
    server = crashing(tmp_path, CrashPoint("put", r"/tags/app/current/link$", occurrence=2))
    server_log.append(server)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        old = push_image(client, "crash", b"old layer")
        new = push_image(client, "crash", b"new layer")
        headers = {"Content-Type": OCI_MANIFEST}
        assert client.put("/v2/crash/manifests/app", content=old, headers=headers).is_success
        assert client.put("/v2/crash/manifests/base", content=old, headers=headers).is_success
    dies(method="PUT", url=f"{server.url}/v2/crash/manifests/app", content=new, headers=headers)
    server.wait_killed()
    server.restart()
    accept = {"Accept": OCI_MANIFEST}
    assert get(f"{server.url}/v2/crash/manifests/app", headers=accept).content == old
    by_digest = get(f"{server.url}/v2/crash/manifests/{sha256(new)}", headers=accept)
    assert by_digest.status_code == 200  # the manifest is whole, and untagged
    assert by_digest.content == new
    assert listed_tags_resolve(server.url, "crash") == ["app", "base"]
    # And the push, retried, completes.
    retried = put(f"{server.url}/v2/crash/manifests/app", content=new, headers=headers)
    assert retried.status_code == 201
    assert get(f"{server.url}/v2/crash/manifests/app", headers=accept).content == new


@pytest.mark.parametrize(
    "point",
    [
        CrashPoint("delete", r"/tags/gone/index$"),
        CrashPoint("delete_if", r"/tags/gone/current/link$", when="after"),
        CrashPoint("delete", r"/tags/gone/index$", occurrence=2),
    ],
    ids=["before-history", "after-pointer", "before-second-history"],
)
def test_kill_during_a_tag_delete_leaves_no_stuck_tag(
    tmp_path: Path, server_log: list[ArcaServer], point: CrashPoint
) -> None:
    server = crashing(tmp_path, point)
    server_log.append(server)
    headers = {"Content-Type": OCI_MANIFEST}
    with httpx.Client(base_url=server.url, timeout=60) as client:
        first = push_image(client, "crash", b"first")
        second = push_image(client, "crash", b"second")
        for manifest in (first, second):  # `gone` has history: it moved once
            assert client.put("/v2/crash/manifests/gone", content=manifest, headers=headers)
        assert client.put("/v2/crash/manifests/kept", content=first, headers=headers)
    dies(method="DELETE", url=f"{server.url}/v2/crash/manifests/gone")
    server.wait_killed()
    server.restart()
    tags = listed_tags_resolve(server.url, "crash")
    assert "kept" in tags
    deleted = delete(f"{server.url}/v2/crash/manifests/gone")
    assert deleted.status_code in (202, 404)  # done or redone, never stuck
    assert listed_tags_resolve(server.url, "crash") == ["kept"]


@pytest.mark.parametrize(
    "point",
    [
        CrashPoint("delete_if", r"/_manifests/revisions/sha256/[0-9a-f]+/link$"),
        CrashPoint("delete_if", r"/_manifests/revisions/sha256/[0-9a-f]+/link$", when="after"),
    ],
    ids=["before-revision", "after-revision"],
)
def test_kill_during_a_delete_by_digest_leaves_every_listed_tag_resolving(
    tmp_path: Path, server_log: list[ArcaServer], point: CrashPoint
) -> None:
    server = crashing(tmp_path, point)
    server_log.append(server)
    headers = {"Content-Type": OCI_MANIFEST}
    with httpx.Client(base_url=server.url, timeout=60) as client:
        doomed = push_image(client, "crash", b"doomed")
        other = push_image(client, "crash", b"other")
        for tag in ("a", "b"):
            assert client.put(f"/v2/crash/manifests/{tag}", content=doomed, headers=headers)
        assert client.put("/v2/crash/manifests/other", content=other, headers=headers)
    dies(method="DELETE", url=f"{server.url}/v2/crash/manifests/{sha256(doomed)}")
    server.wait_killed()
    server.restart()
    assert listed_tags_resolve(server.url, "crash") == ["other"]
    accept = {"Accept": OCI_MANIFEST}
    assert get(f"{server.url}/v2/crash/manifests/other", headers=accept).content == other
    again = delete(f"{server.url}/v2/crash/manifests/{sha256(doomed)}")
    assert again.status_code in (202, 404)
    gone = get(f"{server.url}/v2/crash/manifests/{sha256(doomed)}", headers=accept)
    assert gone.status_code == 404
