"""Two clients pushing different manifests to the same immutable tag at the same moment,
on two workers sharing storage (filesystem, and S3 via moto): exactly one push wins, the
other is DENIED, and the tag names the winner (docs/protection.md, "Under racing
writers")."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import create_bucket
from tests.e2e.races import OCI_MANIFEST, sha256
from tests.e2e.server import ArcaServer, s3_environment

ROUNDS = 8
CONFIG = """
[[immutability]]
name = "releases"
repositories = ["rel/**"]
tags = ["^v"]
"""


def _config(tmp_path: Path) -> str:
    path = tmp_path / "arca.toml"
    path.write_text(CONFIG)
    return str(path)


@pytest.fixture
def filesystem_workers(tmp_path: Path) -> Iterator[ArcaServer]:
    env = {"ARCA_SERVER_WORKERS": "2", "ARCA_CONFIG": _config(tmp_path)}
    server = ArcaServer(tmp_path / "data", env).start()
    yield server
    server.stop()


@pytest.fixture
def s3_workers(tmp_path: Path, s3_endpoint: str) -> Iterator[ArcaServer]:
    env = {
        **s3_environment(s3_endpoint, create_bucket(s3_endpoint)),
        "ARCA_SERVER_WORKERS": "2",
        "ARCA_CONFIG": _config(tmp_path),
    }
    server = ArcaServer(tmp_path / "data", env).start()
    yield server
    server.stop()


def _manifests(url: str) -> list[bytes]:
    manifests = []
    config = b"{}"
    for n in range(2):
        layer = f"layer of contender {n}".encode()
        for blob in (config, layer):
            response = httpx.post(
                f"{url}/v2/rel/app/blobs/uploads/?digest={sha256(blob)}", content=blob
            )
            assert response.status_code == 201, response.text
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": sha256(config),
                "size": 2,
            },
            "layers": [{"mediaType": "text/plain", "digest": sha256(layer), "size": len(layer)}],
        }
        manifests.append(json.dumps(manifest).encode())
    return manifests


def _race(url: str) -> None:
    manifests = _manifests(url)
    for round_ in range(ROUNDS):
        tag = f"v{round_}"
        barrier = threading.Barrier(2)
        statuses: dict[int, int] = {}

        def push(
            n: int,
            tag: str = tag,
            barrier: threading.Barrier = barrier,
            statuses: dict[int, int] = statuses,
        ) -> None:
            with httpx.Client(timeout=60) as client:
                barrier.wait()
                response = client.put(
                    f"{url}/v2/rel/app/manifests/{tag}",
                    content=manifests[n],
                    headers={"Content-Type": OCI_MANIFEST},
                )
                statuses[n] = response.status_code

        threads = [threading.Thread(target=push, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses.values()) == [201, 403], statuses
        winner = next(n for n, status in statuses.items() if status == 201)
        head = httpx.head(f"{url}/v2/rel/app/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
        assert head.headers["Docker-Content-Digest"] == sha256(manifests[winner])


def test_one_of_two_racing_pushes_of_an_immutable_tag_wins_on_the_filesystem(
    filesystem_workers: ArcaServer,
) -> None:
    _race(filesystem_workers.url)


def test_one_of_two_racing_pushes_of_an_immutable_tag_wins_on_s3(s3_workers: ArcaServer) -> None:
    _race(s3_workers.url)
