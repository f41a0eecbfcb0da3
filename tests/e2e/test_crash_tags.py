"""kill -9 while 8 clients push tags into one repository at once (tests/e2e/crash.py).

Concurrent tag PUTs share flushes: event log commits, the artifact index's batches of
writes and directory fsyncs are group commits. A kill in the middle of one must lose
nothing that was acknowledged and leave nothing half done: after a restart every tag
a client got a 201 for pulls the manifest it pushed (and is in the artifact index),
and every tag listed resolves.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest

from tests.e2e.content import OCI_MANIFEST, push_image, sha256
from tests.e2e.crash import CrashingServer, CrashPoint

CLIENTS = 8
NAME = "crash/tags"


@pytest.mark.parametrize(
    "point",
    [
        CrashPoint("put", r"^events/log/", occurrence=16, when="after"),
        CrashPoint("put", r"/_index/entries/", occurrence=12),
        CrashPoint("put", r"/tags/[^/]+/current/link$", occurrence=20, when="after"),
    ],
    ids=["after-an-event-commit", "inside-an-index-batch", "after-a-tag-link"],
)
def test_kill_during_concurrent_tag_pushes_loses_no_acknowledged_tag(
    tmp_path: Path, point: CrashPoint
) -> None:
    server = CrashingServer(tmp_path / "data", point)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            base = json.loads(push_image(client, NAME, b"layer"))
        acknowledged: dict[str, bytes] = {}
        lock = threading.Lock()

        def pusher(slot: int) -> None:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                for n in range(200):
                    tag = f"c{slot}-{n}"
                    body = json.dumps({**base, "annotations": {"push": tag}}).encode()
                    try:
                        response = client.put(
                            f"/v2/{NAME}/manifests/{tag}",
                            content=body,
                            headers={"Content-Type": OCI_MANIFEST},
                        )
                    except httpx.TransportError:
                        return  # the server died under this request
                    assert response.status_code == 201, response.text
                    with lock:
                        acknowledged[tag] = body

        threads = [threading.Thread(target=pusher, args=(slot,)) for slot in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        server.wait_killed()
        server.restart()
        assert acknowledged, "the server died before acknowledging anything"

        with httpx.Client(base_url=server.url, timeout=60) as client:
            accept = {"Accept": OCI_MANIFEST}
            for tag, body in acknowledged.items():
                got = client.get(f"/v2/{NAME}/manifests/{tag}", headers=accept)
                assert got.status_code == 200, f"acknowledged {tag} answers {got.status_code}"
                assert got.content == body
            listed = client.get(f"/v2/{NAME}/tags/list").json()["tags"]
            assert set(acknowledged) <= set(listed)
            for tag in listed:  # nothing half done: whatever is listed resolves, whole
                got = client.get(f"/v2/{NAME}/manifests/{tag}", headers=accept)
                assert got.status_code == 200, f"{tag} is listed but answers {got.status_code}"
                assert got.headers["Docker-Content-Digest"] == sha256(got.content)
            indexed = client.get(f"/api/v1/repositories/{NAME}/artifacts?limit=1000").json()
            digests = {artifact["digest"] for artifact in indexed["artifacts"]}
            assert {sha256(body) for body in acknowledged.values()} <= digests
    finally:
        server.stop()
